#include "kiln/metadata/types.h"

#include <array>

#include "absl/status/status.h"
#include "kiln/base/str.h"

namespace kiln::metadata {
namespace {

template <typename E, size_t N>
absl::StatusOr<E> ParseEnum(std::string_view what, std::string_view name,
                            const std::array<std::pair<E, std::string_view>, N>& table) {
  std::string names;
  for (const auto& [value, text] : table) {
    if (text == name) return value;
    StrAppend(&names, names.empty() ? "" : ", ", text);
  }
  return absl::InvalidArgumentError(StrCat("unknown ", what, " '", name, "'; one of: ", names));
}

template <typename E, size_t N>
std::string_view EnumName(E value, const std::array<std::pair<E, std::string_view>, N>& table) {
  for (const auto& [v, text] : table) {
    if (v == value) return text;
  }
  return "UNKNOWN";
}

constexpr std::array<std::pair<PropertyType, std::string_view>, 4> kPropertyTypes = {{
    {PropertyType::kInt, "INT"},
    {PropertyType::kDouble, "DOUBLE"},
    {PropertyType::kString, "STRING"},
    {PropertyType::kBool, "BOOLEAN"},
}};
constexpr std::array<std::pair<ArtifactState, std::string_view>, 5> kArtifactStates = {{
    {ArtifactState::kUnknown, "UNKNOWN"},
    {ArtifactState::kPending, "PENDING"},
    {ArtifactState::kLive, "LIVE"},
    {ArtifactState::kMarkedForDeletion, "MARKED_FOR_DELETION"},
    {ArtifactState::kDeleted, "DELETED"},
}};
constexpr std::array<std::pair<ExecutionState, std::string_view>, 7> kExecutionStates = {{
    {ExecutionState::kUnknown, "UNKNOWN"},
    {ExecutionState::kNew, "NEW"},
    {ExecutionState::kRunning, "RUNNING"},
    {ExecutionState::kComplete, "COMPLETE"},
    {ExecutionState::kFailed, "FAILED"},
    {ExecutionState::kCached, "CACHED"},
    {ExecutionState::kCanceled, "CANCELED"},
}};

}  // namespace

PropertyType TypeOf(const Value& v) {
  switch (v.index()) {
    case 0:
      return PropertyType::kInt;
    case 1:
      return PropertyType::kDouble;
    case 2:
      return PropertyType::kString;
    default:
      return PropertyType::kBool;
  }
}

std::string_view PropertyTypeName(PropertyType t) { return EnumName(t, kPropertyTypes); }
absl::StatusOr<PropertyType> ParsePropertyType(std::string_view name) {
  return ParseEnum("property type", name, kPropertyTypes);
}

std::string ValueToString(const Value& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return StrCat(*i);
  if (const auto* d = std::get_if<double>(&v)) return StrCat(*d);
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return std::get<bool>(v) ? "true" : "false";
}

std::string_view TypeKindName(TypeKind k) {
  switch (k) {
    case TypeKind::kExecution:
      return "execution";
    case TypeKind::kArtifact:
      return "artifact";
    case TypeKind::kContext:
      return "context";
  }
  return "unknown";
}

std::string_view ArtifactStateName(ArtifactState s) { return EnumName(s, kArtifactStates); }
std::string_view ExecutionStateName(ExecutionState s) { return EnumName(s, kExecutionStates); }
absl::StatusOr<ArtifactState> ParseArtifactState(std::string_view name) {
  return ParseEnum("artifact state", name, kArtifactStates);
}
absl::StatusOr<ExecutionState> ParseExecutionState(std::string_view name) {
  return ParseEnum("execution state", name, kExecutionStates);
}

std::string_view EventTypeName(EventType t) {
  switch (t) {
    case EventType::kInput:
      return "INPUT";
    case EventType::kOutput:
      return "OUTPUT";
    default:
      return "UNKNOWN";
  }
}

}  // namespace kiln::metadata
