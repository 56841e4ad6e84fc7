// The metadata data model, after ML Metadata (MLMD): typed artifacts, executions and
// contexts, the events that link artifacts to executions, and the attributions and
// associations that put them in contexts. Enum values keep MLMD's numbers so records can
// be exported to MLMD tooling without a translation table.
#ifndef KILN_METADATA_TYPES_H_
#define KILN_METADATA_TYPES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace kiln::metadata {

// A property value. Properties declared by a node's type are "typed"; anything else
// goes into custom properties, whose type is whatever the value holds.
using Value = std::variant<int64_t, double, std::string, bool>;
using Properties = std::map<std::string, Value>;

enum class PropertyType : int { kUnknown = 0, kInt = 1, kDouble = 2, kString = 3, kBool = 6 };
PropertyType TypeOf(const Value& v);
std::string_view PropertyTypeName(PropertyType t);  // "INT", "DOUBLE", "STRING", "BOOLEAN"
absl::StatusOr<PropertyType> ParsePropertyType(std::string_view name);
// The value as text: ints and bools as written, doubles shortest round-trip, strings raw.
std::string ValueToString(const Value& v);

enum class TypeKind : int { kExecution = 0, kArtifact = 1, kContext = 2 };
std::string_view TypeKindName(TypeKind k);  // "execution", "artifact", "context"

struct Type {
  int64_t id = 0;
  TypeKind kind = TypeKind::kArtifact;
  std::string name;
  std::string description;
  std::map<std::string, PropertyType> properties;
};

enum class ArtifactState : int {
  kUnknown = 0,
  kPending = 1,
  kLive = 2,
  kMarkedForDeletion = 3,
  kDeleted = 4
};
enum class ExecutionState : int {
  kUnknown = 0,
  kNew = 1,
  kRunning = 2,
  kComplete = 3,
  kFailed = 4,
  kCached = 5,
  kCanceled = 6
};
std::string_view ArtifactStateName(ArtifactState s);  // "LIVE", ...
std::string_view ExecutionStateName(ExecutionState s);
absl::StatusOr<ArtifactState> ParseArtifactState(std::string_view name);
absl::StatusOr<ExecutionState> ParseExecutionState(std::string_view name);

// Times are milliseconds since the Unix epoch, set by the store.
struct Artifact {
  int64_t id = 0;    // 0: not stored yet
  std::string type;  // type name; the store resolves it to a type id
  std::string uri;
  std::string name;  // optional; unique within the type when set
  ArtifactState state = ArtifactState::kLive;
  Properties properties;
  Properties custom_properties;
  int64_t create_time_ms = 0;
  int64_t update_time_ms = 0;
};

struct Execution {
  int64_t id = 0;
  std::string type;
  std::string name;  // optional; unique within the type when set
  ExecutionState state = ExecutionState::kComplete;
  Properties properties;
  Properties custom_properties;
  int64_t create_time_ms = 0;
  int64_t update_time_ms = 0;
};

// Contexts group nodes: a pipeline, one run of it, a component.
struct Context {
  int64_t id = 0;
  std::string type;
  std::string name;  // required; unique within the type
  Properties properties;
  Properties custom_properties;
  int64_t create_time_ms = 0;
  int64_t update_time_ms = 0;
};

enum class EventType : int { kUnknown = 0, kInput = 3, kOutput = 4 };
std::string_view EventTypeName(EventType t);  // "INPUT", "OUTPUT"

struct Event {
  int64_t artifact_id = 0;
  int64_t execution_id = 0;
  EventType type = EventType::kUnknown;
  std::string path;  // the role of the artifact for the execution, e.g. "examples"
  int64_t time_ms = 0;
};

// Which nodes to return. Every field set narrows the result (AND); none set returns all.
struct Query {
  std::string type;                                       // type name
  std::optional<std::string> name;                        // exact
  std::optional<std::string> uri;                         // exact; artifacts only
  std::optional<int64_t> context_id;                      // attributed/associated to this context
  std::optional<std::pair<std::string, Value>> property;  // typed or custom, equal value
  std::optional<int64_t> created_from_ms;                 // create_time >= from
  std::optional<int64_t> created_until_ms;                // create_time < until
  std::vector<int64_t> ids;                               // any of these ids
  bool newest_first = false;                              // default order: id ascending
  int64_t limit = 0;                                      // 0: no limit
};

// The subgraph around an artifact: nodes reachable through events.
struct LineageGraph {
  std::vector<Artifact> artifacts;
  std::vector<Execution> executions;
  std::vector<Event> events;
};

enum class LineageDirection { kUpstream, kDownstream, kBoth };
struct LineageOptions {
  // One hop crosses one execution: artifact -> execution -> artifact.
  int max_hops = 5;
  LineageDirection direction = LineageDirection::kBoth;
};

// One way two models differ. `a` or `b` is absent when only one side has the key.
struct DiffEntry {
  std::string category;  // "input", "parameter", "code", "environment", "model"
  std::string key;
  std::optional<std::string> a;
  std::optional<std::string> b;
};
struct ModelDiff {
  int64_t a = 0;
  int64_t b = 0;
  std::vector<DiffEntry> differences;  // sorted by category, then key
  int64_t same = 0;                    // keys present on both sides with equal values
};

}  // namespace kiln::metadata

#endif  // KILN_METADATA_TYPES_H_
