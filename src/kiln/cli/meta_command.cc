// `kiln meta` and `kiln lineage`: read and write the metadata store from the shell.
//
//   kiln meta ls artifacts|executions|contexts   list nodes, filtered
//   kiln meta show ID                            one node, its contexts and events
//   kiln meta types                              the registered types
//   kiln meta record TYPE ...                    record an execution run outside kiln
//   kiln meta register TYPE URI                  register external data
//   kiln meta diff A B                           how two models were made differently
//   kiln lineage ID                              what made an artifact and what used it
//
// Text output is for people (aligned, ISO-8601 UTC times, strings quoted when they
// contain spaces or special characters); --json output is for programs and carries
// every field. Commands that only read never create the default store.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/cli/metadata_flags.h"
#include "kiln/metadata/json.h"
#include "kiln/metadata/metadata_store.h"
#include "kiln/metadata/open_store.h"
#include "kiln/metadata/recorder.h"
#include "kiln/metadata/types.h"
#include "nlohmann/json.hpp"

namespace kiln::cli {
namespace {

namespace md = ::kiln::metadata;
using Json = nlohmann::ordered_json;

// ---------------------------------------------------------------------------------------
// Parsing flag values.

// A node named on the command line: 12 (an artifact), a12 / e5 / c3, or
// artifact:12 / execution:5 / context:3.
struct NodeRef {
  md::TypeKind kind = md::TypeKind::kArtifact;
  int64_t id = 0;
};

constexpr const char* kIdForms =
    "expected a number (an artifact id), a12 / e5 / c3, or artifact:12 / execution:5 / "
    "context:3";

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// An integer (the syntax ParseInt takes) outside the int64 range.
bool IsOutOfRangeInt(std::string_view s) {
  int64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc::result_out_of_range && r.ptr == s.data() + s.size();
}

std::optional<double> ParseDouble(std::string_view s) {
  double v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

absl::StatusOr<NodeRef> ParseNodeRef(std::string_view text) {
  NodeRef ref;
  std::string_view digits = text;
  static constexpr std::pair<std::string_view, md::TypeKind> kPrefixes[] = {
      {"artifact:", md::TypeKind::kArtifact}, {"execution:", md::TypeKind::kExecution},
      {"context:", md::TypeKind::kContext},   {"a", md::TypeKind::kArtifact},
      {"e", md::TypeKind::kExecution},        {"c", md::TypeKind::kContext},
  };
  for (const auto& [prefix, kind] : kPrefixes) {
    if (text.starts_with(prefix)) {
      ref.kind = kind;
      digits = text.substr(prefix.size());
      break;
    }
  }
  std::optional<int64_t> id = ParseInt(digits);
  if (!id || *id <= 0) {
    return absl::InvalidArgumentError(StrCat("bad id '", text, "': ", kIdForms));
  }
  ref.id = *id;
  return ref;
}

// An artifact id: the same forms, but only artifacts.
absl::StatusOr<int64_t> ParseArtifactRef(std::string_view text, std::string_view why) {
  KILN_ASSIGN_OR_RETURN(NodeRef ref, ParseNodeRef(text));
  if (ref.kind != md::TypeKind::kArtifact) {
    return absl::InvalidArgumentError(StrCat("'", text, "' is ", md::TypeKindName(ref.kind), " ",
                                             ref.id, ", not an artifact; ", why));
  }
  return ref.id;
}

// The value of KEY=VALUE: an int64 if VALUE is one, else a finite double, else true or
// false as a bool, else a string. KEY:string=VALUE (or :int, :double, :bool) forces the
// type. Errors carry no flag name; callers add it.
absl::StatusOr<std::pair<std::string, md::Value>> ParseKeyValue(std::string_view text) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return absl::InvalidArgumentError(
        "expected KEY=VALUE (KEY:string=VALUE keeps a number as text)");
  }
  std::string_view key = text.substr(0, eq);
  std::string_view value = text.substr(eq + 1);
  std::string_view forced;
  if (size_t colon = key.rfind(':'); colon != std::string_view::npos) {
    std::string_view t = key.substr(colon + 1);
    if (t == "string" || t == "int" || t == "double" || t == "bool") {
      forced = t;
      key = key.substr(0, colon);
    }
  }
  if (key.empty()) return absl::InvalidArgumentError("the key is empty; expected KEY=VALUE");
  std::pair<std::string, md::Value> kv{std::string(key), std::string(value)};
  if (forced == "string") return kv;
  if (forced.empty() || forced == "int") {
    if (auto i = ParseInt(value)) {
      kv.second = *i;
      return kv;
    }
    if (forced == "int") {
      return absl::InvalidArgumentError(StrCat("'", value, "' is not a 64-bit integer"));
    }
    // Read as a double, 9223372036854775809 would be stored as ...808 without a word.
    if (IsOutOfRangeInt(value)) {
      return absl::InvalidArgumentError(
          StrCat("'", value,
                 "' is outside the 64-bit integer range; KEY:string=VALUE keeps it as text, "
                 "KEY:double=VALUE rounds it to a double"));
    }
  }
  if (forced.empty() || forced == "double") {
    if (auto d = ParseDouble(value)) {
      kv.second = *d;
      return kv;
    }
    if (forced == "double") {
      return absl::InvalidArgumentError(StrCat("'", value, "' is not a finite number"));
    }
  }
  if (value == "true" || value == "false") {
    kv.second = value == "true";
    return kv;
  }
  if (forced == "bool") {
    return absl::InvalidArgumentError(StrCat("'", value, "' is not true or false"));
  }
  return kv;
}

absl::Status FlagError(std::string_view flag, std::string_view text, const absl::Status& s) {
  return absl::InvalidArgumentError(StrCat(flag, " '", text, "': ", s.message()));
}

// Days since 1970-01-01 of a civil date (proleptic Gregorian), and back. After Howard
// Hinnant's chrono algorithms; valid for every int64 millisecond time kiln stores.
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, int64_t* m, int64_t* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yoe + era * 400 + (*m <= 2);
}

// ISO-8601 UTC: 2026-11-25T10:00:00Z, or with milliseconds 2026-11-25T10:00:00.123Z.
std::string FormatTime(int64_t ms, bool with_ms) {
  // Floor division without negating `ms`, which overflows for the smallest int64.
  constexpr int64_t kMsPerDay = 86400000;
  int64_t days = ms / kMsPerDay;
  int64_t rest = ms % kMsPerDay;
  if (rest < 0) {
    rest += kMsPerDay;
    --days;
  }
  int64_t y, m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld", (long long)y,
                (long long)m, (long long)d, (long long)(rest / 3600000),
                (long long)(rest / 60000 % 60), (long long)(rest / 1000 % 60));
  std::string out = buf;
  if (with_ms) {
    std::snprintf(buf, sizeof(buf), ".%03lld", (long long)(rest % 1000));
    out += buf;
  }
  return out + "Z";
}

// --since / --until: milliseconds since the epoch, or an ISO-8601 date or time
// (YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM]; UTC unless an offset is given).
absl::StatusOr<int64_t> ParseTime(std::string_view flag, std::string_view text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        StrCat(flag, " '", text,
               "': expected an ISO-8601 date or time (2026-11-25, 2026-11-25T10:00:00Z, "
               "2026-11-25T12:00:00+02:00) or milliseconds since the epoch"));
  };
  if (auto ms = ParseInt(text)) return *ms;
  std::string_view s = text;
  auto number = [&](size_t width, int64_t* out) {
    if (s.size() < width) return false;
    for (size_t i = 0; i < width; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
    }
    *out = *ParseInt(s.substr(0, width));
    s.remove_prefix(width);
    return true;
  };
  auto expect = [&](char c) {
    if (s.empty() || s[0] != c) return false;
    s.remove_prefix(1);
    return true;
  };
  int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, frac_ms = 0;
  if (!number(4, &y) || !expect('-') || !number(2, &mo) || !expect('-') || !number(2, &d)) {
    return bad();
  }
  static constexpr int kDaysIn[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo < 1 || mo > 12 || d < 1 || d > kDaysIn[mo - 1] || (mo == 2 && d == 29 && !leap)) {
    return bad();
  }
  int64_t offset_min = 0;
  if (!s.empty()) {
    if (!expect('T') && !expect(' ')) return bad();
    if (!number(2, &h) || !expect(':') || !number(2, &mi)) return bad();
    if (expect(':')) {
      if (!number(2, &sec)) return bad();
      if (expect('.')) {
        int64_t scale = 100;
        size_t digits = 0;
        while (!s.empty() && s[0] >= '0' && s[0] <= '9') {
          frac_ms += (s[0] - '0') * scale;
          scale /= 10;
          s.remove_prefix(1);
          ++digits;
        }
        if (digits == 0) return bad();
      }
    }
    if (h > 23 || mi > 59 || sec > 59) return bad();
    if (!s.empty() && !expect('Z')) {
      int sign = s[0] == '+' ? 1 : s[0] == '-' ? -1 : 0;
      if (sign == 0) return bad();
      s.remove_prefix(1);
      int64_t oh = 0, om = 0;
      if (!number(2, &oh) || !expect(':') || !number(2, &om) || oh > 23 || om > 59) return bad();
      offset_min = sign * (oh * 60 + om);
    }
    if (!s.empty()) return bad();
  }
  int64_t seconds = DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
  return seconds * 1000 + frac_ms;
}

// ---------------------------------------------------------------------------------------
// The three node kinds. They share id, type, name, properties and times; an artifact
// adds a uri and a state, an execution a state.

template <typename Node>
constexpr bool kIsArtifact = std::is_same_v<Node, md::Artifact>;
template <typename Node>
constexpr bool kIsExecution = std::is_same_v<Node, md::Execution>;
template <typename Node>
constexpr bool kIsContext = std::is_same_v<Node, md::Context>;

template <typename Node>
constexpr md::TypeKind kKindOf = kIsArtifact<Node>    ? md::TypeKind::kArtifact
                                 : kIsExecution<Node> ? md::TypeKind::kExecution
                                                      : md::TypeKind::kContext;

std::string StateName(const md::Artifact& a) { return std::string(md::ArtifactStateName(a.state)); }
std::string StateName(const md::Execution& e) {
  return std::string(md::ExecutionStateName(e.state));
}

absl::Status NotFound(md::TypeKind kind, int64_t id) {
  return absl::NotFoundError(StrCat("no ", md::TypeKindName(kind), " with id ", id));
}

// The nodes of one kind that `q` selects.
template <typename Node>
absl::StatusOr<std::vector<Node>> Find(md::MetadataStore* store, const md::Query& q) {
  if constexpr (kIsArtifact<Node>) {
    return store->GetArtifacts(q);
  } else if constexpr (kIsExecution<Node>) {
    return store->GetExecutions(q);
  } else {
    return store->GetContexts(q);
  }
}

// One node; kNotFound says "no artifact with id 7".
template <typename Node>
absl::StatusOr<Node> Get(md::MetadataStore* store, int64_t id) {
  absl::StatusOr<Node> node;
  if constexpr (kIsArtifact<Node>) {
    node = store->GetArtifact(id);
  } else if constexpr (kIsExecution<Node>) {
    node = store->GetExecution(id);
  } else {
    node = store->GetContext(id);
  }
  if (absl::IsNotFound(node.status())) return NotFound(kKindOf<Node>, id);
  return node;
}

// The nodes at one end of `events` (`end`: &md::Event::execution_id or ::artifact_id),
// by id.
template <typename Node>
absl::StatusOr<std::map<int64_t, Node>> ById(md::MetadataStore* store,
                                             const std::vector<md::Event>& events,
                                             int64_t md::Event::*end) {
  std::map<int64_t, Node> out;
  if (events.empty()) return out;
  md::Query q;
  for (const md::Event& e : events) q.ids.push_back(e.*end);
  KILN_ASSIGN_OR_RETURN(std::vector<Node> nodes, Find<Node>(store, q));
  for (Node& n : nodes) out.emplace(n.id, std::move(n));
  return out;
}

template <typename Node>
void SortById(std::vector<Node>* nodes) {
  std::sort(nodes->begin(), nodes->end(), [](const Node& x, const Node& y) { return x.id < y.id; });
}

// Display orders of events: an artifact's by execution, then role; an execution's by
// role, then artifact.
bool ByExecution(const md::Event& x, const md::Event& y) {
  return std::tie(x.execution_id, x.path) < std::tie(y.execution_id, y.path);
}
bool ByRole(const md::Event& x, const md::Event& y) {
  return std::tie(x.path, x.artifact_id) < std::tie(y.path, y.artifact_id);
}

// ---------------------------------------------------------------------------------------
// Formatting.

std::string Quoted(std::string_view s) {
  return Json(std::string(s)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

// A user string in text output: as is when it is one plain word, else quoted JSON-style,
// so spaces, quotes and control characters cannot break the layout.
std::string Text(std::string_view s) {
  bool plain = !s.empty();
  for (unsigned char c : s) {
    if (c <= ' ' || c == 0x7f || c == '"' || c == '\\' || c == '[' || c == ']') plain = false;
  }
  return plain ? std::string(s) : Quoted(s);
}

// A property value in text: strings as Text() (quote_strings: always quoted, so "2"
// and 2 look different).
std::string TextValue(const md::Value& v, bool quote_strings) {
  if (const auto* s = std::get_if<std::string>(&v)) return quote_strings ? Quoted(*s) : Text(*s);
  return md::ValueToString(v);
}

template <typename T, typename ToJson>
Json JsonArray(const std::vector<T>& items, ToJson to_json) {
  Json j = Json::array();
  for (const T& item : items) j.push_back(to_json(item));
  return j;
}

// id, type, name (null when unset; a context always has one), and an artifact's uri or
// an execution's state.
template <typename Node>
Json SummaryJson(const Node& n) {
  Json j{{"id", n.id}, {"type", n.type}};
  j["name"] = kIsContext<Node> || !n.name.empty() ? Json(n.name) : Json(nullptr);
  if constexpr (kIsArtifact<Node>) j["uri"] = n.uri;
  if constexpr (kIsExecution<Node>) j["state"] = StateName(n);
  return j;
}

// Every field.
template <typename Node>
Json NodeJson(const Node& n) {
  Json j = SummaryJson(n);
  if constexpr (kIsArtifact<Node>) j["state"] = StateName(n);
  j["properties"] = md::PropertiesToJson(n.properties);
  j["custom_properties"] = md::PropertiesToJson(n.custom_properties);
  j["create_time_ms"] = n.create_time_ms;
  j["create_time"] = FormatTime(n.create_time_ms, true);
  j["update_time_ms"] = n.update_time_ms;
  j["update_time"] = FormatTime(n.update_time_ms, true);
  return j;
}

Json EventJson(const md::Event& e) {
  return Json{{"artifact_id", e.artifact_id},
              {"execution_id", e.execution_id},
              {"type", md::EventTypeName(e.type)},
              {"role", e.path},
              {"time_ms", e.time_ms},
              {"time", FormatTime(e.time_ms, true)}};
}

void PrintJson(const Json& j) {
  std::printf("%s\n", j.dump(2, ' ', false, Json::error_handler_t::replace).c_str());
}

// One-line descriptions used by show, lineage and diff.
std::string Describe(const md::Artifact& a) {
  std::string out = StrCat("artifact ", a.id, " ", Text(a.type));
  if (!a.uri.empty()) StrAppend(&out, " ", Text(a.uri));
  return out;
}
std::string Describe(const md::Execution& e) {
  return StrCat("execution ", e.id, " ", Text(e.type));
}
std::string Describe(const md::Context& c) {
  return StrCat("context ", c.id, " ", Text(c.type), " ", Text(c.name));
}
std::string StateAndTime(const md::Execution& e) {
  return StrCat("(", StateName(e), ", ", FormatTime(e.create_time_ms, false), ")");
}

// What the recorder adds to every execution; left out of the parameters lineage shows.
bool IsProvenance(std::string_view key) {
  return key == "kiln_version" || key == "git_sha" || key.starts_with("code.") ||
         key.starts_with("env.");
}

// "  [k=v k=v]" of a node's name and properties, or "" when there is nothing to show.
template <typename Node>
std::string Attributes(const Node& n) {
  std::vector<std::string> parts;
  if (!n.name.empty()) parts.push_back(StrCat("name=", Text(n.name)));
  for (const md::Properties* p : {&n.properties, &n.custom_properties}) {
    for (const auto& [k, v] : *p) {
      if (kIsExecution<Node> && p == &n.custom_properties && IsProvenance(k)) continue;
      parts.push_back(StrCat(Text(k), "=", TextValue(v, false)));
    }
  }
  if (parts.empty()) return "";
  return StrCat("  [", StrJoin(parts, " "), "]");
}

// Display width of UTF-8 text: code points, not bytes.
size_t Width(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], Width(row[i]));
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - Width(row[i]) + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

// ---------------------------------------------------------------------------------------
// What every subcommand shares.

const char* const kExamples =
    "Examples:\n"
    "  kiln meta ls artifacts --type Model --newest-first --limit 5\n"
    "  kiln meta ls executions --property learning_rate=0.1 --since 2026-11-01\n"
    "  kiln meta show a7            # artifact 7; e5 / c3 for an execution / a context\n"
    "  kiln lineage 7 --depth 2\n"
    "  kiln meta diff 7 12\n";

// The exit code of a finished subcommand: its own, or that of its error, which goes to
// stderr as "kiln COMMAND: error: ...".
int ExitCode(std::string_view command, const absl::StatusOr<int>& code) {
  return code.ok() ? *code : ReportError(command, code.status());
}
int ExitCode(std::string_view command, const absl::Status& status) {
  return status.ok() ? kExitOk : ReportError(command, status);
}

// Ends the declaration of subcommand `app`: the flags every subcommand takes last
// (--json when Flags has `json`, then --metadata), and the callback that runs `run` on the
// parsed flags and exits. `command` ("meta", "lineage") names it in errors.
template <typename Flags, typename Run>
void AddCommonFlagsAndRun(CLI::App* app, std::shared_ptr<Flags> f, std::string_view command,
                          Run run, const char* json_help = "Print JSON") {
  if constexpr (requires { f->json; }) app->add_flag("--json", f->json, json_help);
  f->store.Add(app, /*recording=*/false);
  app->callback([f, command, run] { Exit(ExitCode(command, run(*f))); });
}

// Declares subcommand `name` of `parent` with its summary and --help footer (`help`, then
// the exit codes), and the flags it fills in. The caller adds the flags particular to it,
// then calls AddCommonFlagsAndRun.
template <typename Flags>
std::pair<CLI::App*, std::shared_ptr<Flags>> AddSubcommand(
    CLI::App* parent, std::string name, std::string summary, std::string_view help,
    std::string_view exit_codes = kExitCodesHelp) {
  CLI::App* app = parent->add_subcommand(std::move(name), std::move(summary));
  app->footer(StrCat(help, "\n\n", exit_codes));
  return {app, std::make_shared<Flags>()};
}

// The exit codes of a command that takes node ids.
std::string UnknownIdExitCodes() { return StrCat(kExitCodesHelp, " (e.g. an unknown id)"); }

// ---------------------------------------------------------------------------------------
// kiln meta ls

struct LsFlags {
  MetadataFlags store;
  std::string what;
  std::string type;
  std::optional<std::string> name;
  std::optional<std::string> uri;
  std::string context;
  std::string property;
  std::string since;
  std::string until;
  int64_t limit = 0;
  bool newest_first = false;
  bool json = false;
};

absl::StatusOr<md::Query> BuildQuery(const LsFlags& f) {
  md::Query q;
  q.type = f.type;
  q.name = f.name;
  if (f.uri && f.what != "artifacts") {
    return absl::InvalidArgumentError(StrCat("--uri applies to artifacts only, not ", f.what));
  }
  q.uri = f.uri;
  if (!f.context.empty()) {
    if (f.what == "contexts") {
      return absl::InvalidArgumentError("--context applies to artifacts and executions");
    }
    auto ref = ParseNodeRef(f.context.starts_with("c") || f.context.starts_with("context:")
                                ? f.context
                                : StrCat("c", f.context));
    if (!ref.ok()) {
      return absl::InvalidArgumentError(
          StrCat("--context '", f.context, "': expected a context id (3, c3 or context:3)"));
    }
    q.context_id = ref->id;
  }
  if (!f.property.empty()) {
    auto kv = ParseKeyValue(f.property);
    if (!kv.ok()) return FlagError("--property", f.property, kv.status());
    q.property = std::move(*kv);
  }
  if (!f.since.empty()) {
    KILN_ASSIGN_OR_RETURN(q.created_from_ms, ParseTime("--since", f.since));
  }
  if (!f.until.empty()) {
    KILN_ASSIGN_OR_RETURN(q.created_until_ms, ParseTime("--until", f.until));
  }
  q.newest_first = f.newest_first;
  q.limit = f.limit;
  return q;
}

// The table: ID TYPE NAME, URI (artifacts) or STATE (executions), CREATED.
template <typename Node>
absl::Status List(md::MetadataStore* store, const md::Query& q, const LsFlags& f) {
  KILN_ASSIGN_OR_RETURN(std::vector<Node> nodes, Find<Node>(store, q));
  if (f.json) {
    PrintJson(JsonArray(nodes, NodeJson<Node>));
    return absl::OkStatus();
  }
  if (nodes.empty()) {
    std::printf("no %s found\n", f.what.c_str());
    return absl::OkStatus();
  }
  std::vector<std::vector<std::string>> rows = {{"ID", "TYPE", "NAME"}};
  if constexpr (kIsArtifact<Node>) rows[0].push_back("URI");
  if constexpr (kIsExecution<Node>) rows[0].push_back("STATE");
  rows[0].push_back("CREATED");
  for (const Node& n : nodes) {
    std::vector<std::string> row = {StrCat(n.id), Text(n.type),
                                    n.name.empty() ? "-" : Text(n.name)};
    if constexpr (kIsArtifact<Node>) row.push_back(n.uri.empty() ? "-" : Text(n.uri));
    if constexpr (kIsExecution<Node>) row.push_back(StateName(n));
    row.push_back(FormatTime(n.create_time_ms, false));
    rows.push_back(std::move(row));
  }
  PrintTable(rows);
  return absl::OkStatus();
}

absl::Status RunLs(const LsFlags& f) {
  KILN_ASSIGN_OR_RETURN(md::Query query, BuildQuery(f));
  KILN_ASSIGN_OR_RETURN(auto store, f.store.OpenForReading());
  if (f.what == "artifacts") return List<md::Artifact>(store.get(), query, f);
  if (f.what == "executions") return List<md::Execution>(store.get(), query, f);
  return List<md::Context>(store.get(), query, f);
}

void AddLs(CLI::App* meta) {
  auto [app, f] = AddSubcommand<LsFlags>(
      meta, "ls", "List artifacts, executions or contexts",
      "Every filter narrows the list (they combine with AND). The table shows ID, TYPE, NAME, "
      "URI (artifacts) or STATE (executions) and CREATED (UTC); --json prints every field "
      "of each node, properties included, times as milliseconds and ISO-8601.\n\n"
      "VALUE in --property is read as an integer if it is one, else a number, else true / "
      "false, else text; KEY:string=VALUE keeps it text (also :int, :double, :bool). "
      "--since and --until take a date (2026-11-25, midnight UTC), a time "
      "(2026-11-25T10:00:00Z, or with an offset +02:00) or milliseconds since the epoch; "
      "--since is inclusive, --until exclusive.\n\n"
      "Examples:\n"
      "  kiln meta ls artifacts --type Examples --property span=42\n"
      "  kiln meta ls executions --type Trainer --since 2026-11-25 --newest-first --limit 1\n"
      "  kiln meta ls artifacts --context c3 --json");
  app->add_option("WHAT", f->what, "artifacts, executions or contexts")
      ->required()
      ->check(CLI::IsMember({"artifacts", "executions", "contexts"}));
  app->add_option("--type", f->type, "Only nodes of this type (e.g. Model, Trainer)");
  app->add_option("--name", f->name, "Only the node with this name");
  app->add_option("--uri", f->uri, "Artifacts only: only those at this exact URI");
  app->add_option("--context", f->context,
                  "Only nodes in this context (id: 3, c3 or context:3; see `kiln meta ls "
                  "contexts`)");
  app->add_option("--property", f->property,
                  "Only nodes whose property or custom property KEY equals VALUE (KEY=VALUE)");
  app->add_option("--since", f->since, "Only nodes created at or after this time");
  app->add_option("--until", f->until, "Only nodes created before this time");
  app->add_option("--limit", f->limit, "At most this many nodes")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000000}));
  app->add_flag("--newest-first", f->newest_first, "Newest first (default: oldest first)");
  AddCommonFlagsAndRun(app, f, "meta", RunLs, "Print a JSON array instead of a table");
}

// ---------------------------------------------------------------------------------------
// kiln meta show

struct ShowFlags {
  MetadataFlags store;
  std::string id;
  bool json = false;
};

// A list under a node in `kiln meta show`: in text, "  TITLE:" then a line per entry
// ("(none)" when empty); in JSON, an array under `key`.
struct Section {
  std::string title;
  std::string key;
  std::vector<std::string> lines;
  Json json = Json::array();

  void Add(std::string line, Json value) {
    lines.push_back(std::move(line));
    json.push_back(std::move(value));
  }
};

// A section of nodes, each a line of text and its SummaryJson.
template <typename Node>
Section NodeSection(const std::string& title, const std::vector<Node>& nodes,
                    std::type_identity_t<std::string (*)(const Node&)> line) {
  Section s{title, title};
  for (const Node& n : nodes) s.Add(line(n), SummaryJson(n));
  return s;
}

// Where an event of this type goes: `output` or `input`; null for any other type, which
// show leaves out.
Section* ByType(md::EventType type, Section* output, Section* input) {
  return type == md::EventType::kOutput ? output : type == md::EventType::kInput ? input : nullptr;
}

void PrintProperties(const char* title, const md::Properties& props) {
  if (props.empty()) return;
  std::printf("  %s:\n", title);
  for (const auto& [k, v] : props) {
    std::printf("    %s = %s\n", Text(k).c_str(), TextValue(v, true).c_str());
  }
}

// The node's fields, then its sections.
template <typename Node>
void PrintShow(const Node& n, const std::vector<Section>& sections, bool json) {
  if (json) {
    Json j;
    j[std::string(md::TypeKindName(kKindOf<Node>))] = NodeJson(n);
    for (const Section& s : sections) j[s.key] = s.json;
    PrintJson(j);
    return;
  }
  std::printf("%s %lld\n  type: %s\n", std::string(md::TypeKindName(kKindOf<Node>)).c_str(),
              static_cast<long long>(n.id), Text(n.type).c_str());
  if (kIsContext<Node> || !n.name.empty()) std::printf("  name: %s\n", Text(n.name).c_str());
  if constexpr (kIsArtifact<Node>) {
    std::printf("  uri: %s\n", n.uri.empty() ? "(none)" : Text(n.uri).c_str());
  }
  if constexpr (!kIsContext<Node>) std::printf("  state: %s\n", StateName(n).c_str());
  std::printf("  created: %s\n  updated: %s\n", FormatTime(n.create_time_ms, true).c_str(),
              FormatTime(n.update_time_ms, true).c_str());
  PrintProperties("properties", n.properties);
  PrintProperties("custom properties", n.custom_properties);
  for (const Section& s : sections) {
    std::printf("  %s:%s\n", s.title.c_str(), s.lines.empty() ? " (none)" : "");
    for (const std::string& l : s.lines) std::printf("    %s\n", l.c_str());
  }
}

absl::Status ShowArtifact(md::MetadataStore* store, int64_t id, bool json) {
  KILN_ASSIGN_OR_RETURN(md::Artifact a, Get<md::Artifact>(store, id));
  KILN_ASSIGN_OR_RETURN(auto contexts, store->GetContextsOfArtifact(id));
  KILN_ASSIGN_OR_RETURN(auto events, store->GetEventsByArtifactIds({id}));
  std::sort(events.begin(), events.end(), ByExecution);
  KILN_ASSIGN_OR_RETURN(auto executions,
                        ById<md::Execution>(store, events, &md::Event::execution_id));
  Section made_by{"made by", "produced_by"}, used_by{"used by", "used_by"};
  for (const md::Event& e : events) {
    auto x = executions.find(e.execution_id);
    Section* to = ByType(e.type, &made_by, &used_by);
    if (x == executions.end() || to == nullptr) continue;
    to->Add(StrCat(Describe(x->second), " as ", Text(e.path), " ", StateAndTime(x->second)),
            Json{{"role", e.path}, {"execution", SummaryJson(x->second)}});
  }
  PrintShow(a, {NodeSection("contexts", contexts, Describe), made_by, used_by}, json);
  return absl::OkStatus();
}

absl::Status ShowExecution(md::MetadataStore* store, int64_t id, bool json) {
  KILN_ASSIGN_OR_RETURN(md::Execution x, Get<md::Execution>(store, id));
  KILN_ASSIGN_OR_RETURN(auto contexts, store->GetContextsOfExecution(id));
  KILN_ASSIGN_OR_RETURN(auto events, store->GetEventsByExecutionIds({id}));
  std::sort(events.begin(), events.end(), ByRole);
  KILN_ASSIGN_OR_RETURN(auto artifacts, ById<md::Artifact>(store, events, &md::Event::artifact_id));
  Section inputs{"inputs", "inputs"}, outputs{"outputs", "outputs"};
  for (const md::Event& e : events) {
    auto a = artifacts.find(e.artifact_id);
    Section* to = ByType(e.type, &outputs, &inputs);
    if (a == artifacts.end() || to == nullptr) continue;
    to->Add(StrCat(Text(e.path), to == &inputs ? " <- " : " -> ", Describe(a->second)),
            Json{{"role", e.path}, {"artifact", SummaryJson(a->second)}});
  }
  PrintShow(x, {NodeSection("contexts", contexts, Describe), inputs, outputs}, json);
  return absl::OkStatus();
}

absl::Status ShowContext(md::MetadataStore* store, int64_t id, bool json) {
  KILN_ASSIGN_OR_RETURN(md::Context c, Get<md::Context>(store, id));
  md::Query members;
  members.context_id = id;
  KILN_ASSIGN_OR_RETURN(auto executions, Find<md::Execution>(store, members));
  KILN_ASSIGN_OR_RETURN(auto artifacts, Find<md::Artifact>(store, members));
  auto execution_line = [](const md::Execution& e) {
    return StrCat(Describe(e), " ", StateAndTime(e));
  };
  PrintShow(c,
            {NodeSection("executions", executions, execution_line),
             NodeSection("artifacts", artifacts, Describe)},
            json);
  return absl::OkStatus();
}

absl::Status RunShow(const ShowFlags& f) {
  KILN_ASSIGN_OR_RETURN(NodeRef ref, ParseNodeRef(f.id));
  KILN_ASSIGN_OR_RETURN(auto store, f.store.OpenForReading());
  switch (ref.kind) {
    case md::TypeKind::kArtifact:
      return ShowArtifact(store.get(), ref.id, f.json);
    case md::TypeKind::kExecution:
      return ShowExecution(store.get(), ref.id, f.json);
    case md::TypeKind::kContext:
      return ShowContext(store.get(), ref.id, f.json);
  }
  return absl::InternalError("unknown node kind");
}

void AddShow(CLI::App* meta) {
  auto [app, f] = AddSubcommand<ShowFlags>(
      meta, "show", "Show one artifact, execution or context",
      "ID is a bare number (an artifact), a12 / e5 / c3, or artifact:12 / execution:5 / "
      "context:3. Shows every field and property, the contexts the node belongs to, and its "
      "events: for an artifact, the executions that made and used it (with the role it "
      "played); for an execution, its inputs and outputs; for a context, its members. "
      "String properties are quoted.\n\n"
      "Examples:\n"
      "  kiln meta show 7\n"
      "  kiln meta show e5 --json\n"
      "  kiln meta show context:3",
      UnknownIdExitCodes());
  app->add_option("ID", f->id, "The node: 12, a12, e5, c3, artifact:12, ...")->required();
  AddCommonFlagsAndRun(app, f, "meta", RunShow);
}

// ---------------------------------------------------------------------------------------
// kiln meta types

struct TypesFlags {
  MetadataFlags store;
  bool json = false;
};

absl::Status RunTypes(const TypesFlags& f) {
  KILN_ASSIGN_OR_RETURN(auto store, f.store.OpenForReading());
  Json j = Json::array();
  std::vector<std::vector<std::string>> rows = {{"KIND", "ID", "NAME", "PROPERTIES"}};
  for (md::TypeKind kind :
       {md::TypeKind::kArtifact, md::TypeKind::kExecution, md::TypeKind::kContext}) {
    KILN_ASSIGN_OR_RETURN(std::vector<md::Type> types, store->GetTypes(kind));
    std::sort(types.begin(), types.end(),
              [](const md::Type& a, const md::Type& b) { return a.name < b.name; });
    for (const md::Type& t : types) {
      Json props = Json::object();
      std::vector<std::string> parts;
      for (const auto& [name, type] : t.properties) {
        props[name] = md::PropertyTypeName(type);
        parts.push_back(StrCat(Text(name), ":", md::PropertyTypeName(type)));
      }
      j.push_back(Json{{"id", t.id},
                       {"kind", md::TypeKindName(kind)},
                       {"name", t.name},
                       {"description", t.description},
                       {"properties", std::move(props)}});
      rows.push_back({std::string(md::TypeKindName(kind)), StrCat(t.id), Text(t.name),
                      parts.empty() ? "-" : StrJoin(parts, " ")});
    }
  }
  if (f.json) {
    PrintJson(j);
  } else if (rows.size() == 1) {
    std::printf("no types registered\n");
  } else {
    PrintTable(rows);
  }
  return absl::OkStatus();
}

void AddTypes(CLI::App* meta) {
  auto [app, f] = AddSubcommand<TypesFlags>(
      meta, "types", "List artifact, execution and context types",
      "Lists every registered type with its declared properties and their data types "
      "(INT, DOUBLE, STRING, BOOLEAN). Types are registered by the commands that record.\n\n"
      "Example:\n  kiln meta types --json");
  AddCommonFlagsAndRun(app, f, "meta", RunTypes);
}

// ---------------------------------------------------------------------------------------
// kiln meta record / register

struct RecordFlags {
  MetadataFlags store;
  std::string type;
  std::string name;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::vector<std::string> output_properties;
  std::vector<std::string> params;
  std::string pipeline;
  std::string run;
  std::string component;
  std::string state = "COMPLETE";
};

absl::StatusOr<md::ExecutionRecord> BuildRecord(const RecordFlags& f) {
  md::ExecutionRecord r;
  r.type = f.type;
  r.name = f.name;
  r.pipeline = f.pipeline;
  r.run = f.run;
  r.component = f.component;
  if (!f.run.empty() && f.pipeline.empty()) {
    return absl::InvalidArgumentError("--run needs --pipeline");
  }
  std::string state = f.state;
  for (char& c : state) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto parsed_state = md::ParseExecutionState(state);
  if (!parsed_state.ok()) return FlagError("--state", f.state, parsed_state.status());
  r.state = *parsed_state;
  for (const std::string& in : f.inputs) {
    size_t eq = in.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          StrCat("--input '", in, "': expected ROLE=ARTIFACT_ID, e.g. examples=3"));
    }
    auto id = ParseArtifactRef(in.substr(eq + 1), "an input is an artifact");
    if (!id.ok()) return FlagError("--input", in, id.status());
    r.inputs.emplace_back(in.substr(0, eq), *id);
  }
  std::map<std::string, size_t> output_index;
  for (const std::string& out : f.outputs) {
    size_t eq = out.find('=');
    size_t colon = eq == std::string::npos ? std::string::npos : out.find(':', eq + 1);
    if (eq == std::string::npos || eq == 0 || colon == std::string::npos || colon == eq + 1) {
      return absl::InvalidArgumentError(StrCat(
          "--output '", out, "': expected ROLE=ARTIFACT_TYPE:URI, e.g. model=Model:/models/7"));
    }
    std::string role = out.substr(0, eq);
    if (!output_index.emplace(role, r.outputs.size()).second) {
      return absl::InvalidArgumentError(StrCat("--output role '", role, "' is given twice"));
    }
    md::Artifact a;
    a.type = out.substr(eq + 1, colon - eq - 1);
    a.uri = out.substr(colon + 1);
    r.outputs.emplace_back(role, std::move(a));
  }
  for (const std::string& p : f.output_properties) {
    size_t eq = p.find('=');
    size_t dot = p.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot == 0 || dot > eq) {
      return absl::InvalidArgumentError(
          StrCat("--output-property '", p, "': expected ROLE.KEY=VALUE, e.g. examples.span=42"));
    }
    std::string role = p.substr(0, dot);
    auto it = output_index.find(role);
    if (it == output_index.end()) {
      return absl::InvalidArgumentError(
          StrCat("--output-property '", p, "': no --output has the role '", role, "'"));
    }
    auto kv = ParseKeyValue(std::string_view(p).substr(dot + 1));
    if (!kv.ok()) return FlagError("--output-property", p, kv.status());
    r.outputs[it->second].second.properties[kv->first] = kv->second;
  }
  for (const std::string& p : f.params) {
    auto kv = ParseKeyValue(p);
    if (!kv.ok()) return FlagError("--param", p, kv.status());
    r.parameters[kv->first] = kv->second;
  }
  return r;
}

absl::Status RunRecord(const RecordFlags& f) {
  KILN_ASSIGN_OR_RETURN(md::ExecutionRecord record, BuildRecord(f));
  KILN_ASSIGN_OR_RETURN(auto store, md::OpenStore(f.store.url));
  md::Recorder recorder(store.get());
  KILN_ASSIGN_OR_RETURN(auto recorded, recorder.Record(record));
  Json outputs = Json::object();
  for (size_t i = 0; i < record.outputs.size(); ++i) {
    outputs[record.outputs[i].first] = recorded.output_ids[i];
  }
  PrintJson(Json{{"execution_id", recorded.execution_id}, {"outputs", std::move(outputs)}});
  return absl::OkStatus();
}

void AddRecord(CLI::App* meta) {
  auto [app, f] = AddSubcommand<RecordFlags>(
      meta, "record", "Record an execution that ran outside kiln, with its I/O",
      "Records one execution of type TYPE (the component kind, e.g. Trainer) with its input "
      "artifacts (already stored: see `kiln meta register`), new output artifacts, "
      "parameters and pipeline contexts, in one transaction, as kiln's own components do. "
      "Also stored: kiln_version, git_sha and env.host / env.os / env.user. Prints "
      "{\"execution_id\": N, \"outputs\": {ROLE: ARTIFACT_ID, ...}}.\n\n"
      "VALUE is read as an integer if it is one, else a number, else true / false, else "
      "text; KEY:string=VALUE keeps it text (also :int, :double, :bool). An output "
      "property's data type is fixed by its first use for that artifact type.\n\n"
      "Example (a training step run by another tool):\n"
      "  kiln meta record Trainer --input examples=3 --param learning_rate=0.1 \\\n"
      "      --output model=Model:s3://models/7 --output-property model.accuracy=0.93 \\\n"
      "      --pipeline taxi --run 2026-11-25");
  app->add_option("TYPE", f->type, "The execution type (component kind), e.g. Trainer")->required();
  app->add_option("--input", f->inputs, "ROLE=ARTIFACT_ID: a stored artifact read as ROLE")
      ->allow_extra_args(false);
  app->add_option("--output", f->outputs,
                  "ROLE=ARTIFACT_TYPE:URI: a new artifact written as ROLE (one per role)")
      ->allow_extra_args(false);
  app->add_option("--output-property", f->output_properties,
                  "ROLE.KEY=VALUE: a property of the output ROLE (e.g. examples.span=42)")
      ->allow_extra_args(false);
  app->add_option("--param", f->params, "KEY=VALUE: a parameter of the execution")
      ->allow_extra_args(false);
  app->add_option("--pipeline", f->pipeline,
                  "Put the execution and its artifacts in this pipeline's contexts");
  app->add_option("--run", f->run, "With --pipeline: the pipeline run id");
  app->add_option("--component", f->component,
                  "With --pipeline: the node name in the pipeline (default: TYPE)");
  app->add_option("--name", f->name, "A name for the execution, unique within TYPE");
  app->add_option("--state", f->state,
                  "COMPLETE, FAILED, RUNNING, CACHED, CANCELED, NEW or UNKNOWN")
      ->capture_default_str();
  AddCommonFlagsAndRun(app, f, "meta", RunRecord);
}

struct RegisterFlags {
  MetadataFlags store;
  std::string type;
  std::string uri;
  std::string name;
  std::vector<std::string> properties;
};

absl::Status RunRegister(const RegisterFlags& f) {
  md::Artifact a;
  a.type = f.type;
  a.uri = f.uri;
  a.name = f.name;
  for (const std::string& p : f.properties) {
    auto kv = ParseKeyValue(p);
    if (!kv.ok()) return FlagError("--property", p, kv.status());
    a.properties[kv->first] = kv->second;
  }
  KILN_ASSIGN_OR_RETURN(auto store, md::OpenStore(f.store.url));
  md::Recorder recorder(store.get());
  KILN_ASSIGN_OR_RETURN(int64_t id, recorder.RegisterExternal(a));
  std::printf("%lld\n", static_cast<long long>(id));
  return absl::OkStatus();
}

void AddRegister(CLI::App* meta) {
  auto [app, f] = AddSubcommand<RegisterFlags>(
      meta, "register", "Register external data (an artifact no step made)",
      "Stores an artifact of type ARTIFACT_TYPE at URI, typically raw data, and prints its "
      "id. Registering the same type, URI, name and properties again prints the existing "
      "id, so re-runs over the same data share one node. VALUE is typed as in `kiln meta "
      "record`.\n\n"
      "Example:\n  kiln meta register RawData s3://lake/taxi/span-42 --property span=42 "
      "--property fingerprint=sha256:9f2c");
  app->add_option("ARTIFACT_TYPE", f->type, "The artifact type, e.g. RawData")->required();
  app->add_option("URI", f->uri, "Where the data is")->required();
  app->add_option("--property", f->properties, "KEY=VALUE: a property of the artifact")
      ->allow_extra_args(false);
  app->add_option("--name", f->name, "A name, unique within ARTIFACT_TYPE");
  AddCommonFlagsAndRun(app, f, "meta", RunRegister);
}

// ---------------------------------------------------------------------------------------
// kiln meta diff

struct DiffFlags {
  MetadataFlags store;
  std::string a;
  std::string b;
  bool json = false;
};

constexpr std::string_view kDiffCategories[] = {"input", "parameter", "code", "environment",
                                                "model"};

std::string DiffValue(const std::optional<std::string>& v) { return v ? Text(*v) : "(absent)"; }

absl::StatusOr<int> RunDiff(const DiffFlags& f) {
  const char* why = "diff compares two model artifacts";
  KILN_ASSIGN_OR_RETURN(int64_t a, ParseArtifactRef(f.a, why));
  KILN_ASSIGN_OR_RETURN(int64_t b, ParseArtifactRef(f.b, why));
  KILN_ASSIGN_OR_RETURN(auto store, f.store.OpenForReading());
  for (int64_t id : {a, b}) KILN_RETURN_IF_ERROR(Get<md::Artifact>(store.get(), id).status());
  KILN_ASSIGN_OR_RETURN(md::ModelDiff diff, store->Diff(a, b));
  if (f.json) {
    auto side = [](const std::optional<std::string>& v) { return v ? Json(*v) : Json(nullptr); };
    PrintJson(
        Json{{"a", diff.a},
             {"b", diff.b},
             {"same", diff.same},
             {"differences", JsonArray(diff.differences, [&](const md::DiffEntry& d) {
                return Json{
                    {"category", d.category}, {"key", d.key}, {"a", side(d.a)}, {"b", side(d.b)}};
              })}});
  } else {
    size_t n = diff.differences.size();
    std::printf(
        "artifact %lld -> artifact %lld: %s\n", static_cast<long long>(diff.a),
        static_cast<long long>(diff.b),
        n == 0 ? "no differences" : StrCat(n, n == 1 ? " difference" : " differences").c_str());
    // The store sorts by category name; print in the order a reader asks: what data,
    // which settings, which code, where, and the resulting model.
    std::set<std::string> known(std::begin(kDiffCategories), std::end(kDiffCategories));
    std::vector<std::string> order(std::begin(kDiffCategories), std::end(kDiffCategories));
    for (const md::DiffEntry& d : diff.differences) {
      if (known.insert(d.category).second) order.push_back(d.category);
    }
    for (const std::string& category : order) {
      bool header = false;
      for (const md::DiffEntry& d : diff.differences) {
        if (d.category != category) continue;
        if (!header) std::printf("%s\n", category.c_str());
        header = true;
        std::printf("  %s: %s -> %s\n", Text(d.key).c_str(), DiffValue(d.a).c_str(),
                    DiffValue(d.b).c_str());
      }
    }
    std::printf("%lld %s equal\n", static_cast<long long>(diff.same),
                diff.same == 1 ? "fact" : "facts");
  }
  return diff.differences.empty() ? kExitOk : kExitFindings;
}

void AddDiff(CLI::App* meta) {
  auto [app, f] = AddSubcommand<DiffFlags>(
      meta, "diff", "How two models were made differently",
      "Compares what made model artifacts A and B (ids as in `kiln meta show`): every "
      "upstream input (URIs, spans, fingerprints and other properties, keyed by role path "
      "such as examples/raw), the parameters of the executions that made them, code "
      "(kiln_version, git_sha), environment (env.*) and the models' own properties. Prints "
      "one line per difference, grouped by category, as `key: A_VALUE -> B_VALUE` "
      "((absent) when one side lacks the key), then how many facts are equal.\n\n"
      "Example:\n  kiln meta diff 7 12",
      "Exit codes: 0 no differences, 3 the models differ, 1 internal or I/O failure, 2 usage "
      "or input error (e.g. an unknown id)");
  app->add_option("A", f->a, "The first model artifact")->required();
  app->add_option("B", f->b, "The second model artifact")->required();
  AddCommonFlagsAndRun(app, f, "meta", RunDiff);
}

// ---------------------------------------------------------------------------------------
// kiln lineage

struct LineageFlags {
  MetadataFlags store;
  std::string id;
  int depth = 5;
  std::string direction = "both";
  std::string format = "text";
};

// The lineage graph with its edges indexed both ways, rendered as an indented tree:
// upstream under "made by", downstream under "used by". Each node is expanded once;
// later occurrences say "(see above)".
class TreePrinter {
 public:
  // `stored_events`: every event of the graph's artifacts; those not in the graph are
  // the ones the --depth limit left out.
  TreePrinter(const md::LineageGraph& g, const std::vector<md::Event>& stored_events, int depth)
      : depth_(depth) {
    for (const md::Artifact& a : g.artifacts) artifacts_[a.id] = &a;
    for (const md::Execution& e : g.executions) executions_[e.id] = &e;
    std::set<std::tuple<int64_t, int64_t, md::EventType>> shown;
    for (const md::Event& e : g.events) {
      shown.emplace(e.artifact_id, e.execution_id, e.type);
      if (e.type == md::EventType::kOutput) {
        producers_[e.artifact_id].push_back(&e);
        outputs_[e.execution_id].push_back(&e);
      } else if (e.type == md::EventType::kInput) {
        consumers_[e.artifact_id].push_back(&e);
        inputs_[e.execution_id].push_back(&e);
      }
    }
    for (auto* index : {&producers_, &consumers_, &inputs_, &outputs_}) {
      bool (*less)(const md::Event&, const md::Event&) =
          index == &producers_ || index == &consumers_ ? ByExecution : ByRole;
      for (auto& [id, events] : *index) {
        std::sort(events.begin(), events.end(),
                  [less](const md::Event* x, const md::Event* y) { return less(*x, *y); });
      }
    }
    // By event, not by execution: an execution in the graph can still have made or
    // used an artifact at the depth limit through an event the walk did not reach.
    for (const md::Event& e : stored_events) {
      if (shown.count({e.artifact_id, e.execution_id, e.type})) continue;
      if (e.type == md::EventType::kOutput) hidden_producers_[e.artifact_id].insert(e.execution_id);
      if (e.type == md::EventType::kInput) hidden_consumers_[e.artifact_id].insert(e.execution_id);
    }
  }

  std::string Render(int64_t root, bool up, bool down) {
    const md::Artifact* a = artifacts_.at(root);
    Line(0, StrCat(Describe(*a), Attributes(*a)));
    if (up) {
      seen_.clear();
      if (producers_[root].empty() && hidden_producers_[root].empty()) {
        Line(1, "made by no recorded execution");
      }
      Walk(root, 1, true);
    }
    if (down) {
      seen_.clear();
      if (consumers_[root].empty() && hidden_consumers_[root].empty()) {
        Line(1, "used by no recorded execution");
      }
      Walk(root, 1, false);
    }
    return out_;
  }

 private:
  void Line(int level, const std::string& text) {
    out_.append(2 * level, ' ');
    StrAppend(&out_, text, "\n");
  }

  // Adds `line` for `node`: with its attributes the first time, else "(see above)".
  // Returns whether this is the first time.
  template <typename Node>
  bool NodeLine(int level, const std::string& line, const Node& node) {
    if (!seen_.emplace(kKindOf<Node>, node.id).second) {
      Line(level, StrCat(line, " (see above)"));
      return false;
    }
    Line(level, StrCat(line, Attributes(node)));
    return true;
  }

  // The executions that made (up) or used (down) artifact `id`, and under each the
  // artifacts it read (up) or wrote (down), recursively.
  void Walk(int64_t id, int level, bool up) {
    for (const md::Event* link : (up ? producers_ : consumers_)[id]) {
      const md::Execution* e = executions_.at(link->execution_id);
      if (!NodeLine(level,
                    StrCat(up ? "made by " : "used by ", Describe(*e), " as ", Text(link->path),
                           " ", StateAndTime(*e)),
                    *e)) {
        continue;
      }
      for (const md::Event* io : (up ? inputs_ : outputs_)[e->id]) {
        const md::Artifact* a = artifacts_.at(io->artifact_id);
        if (NodeLine(level + 1, StrCat(Text(io->path), up ? " <- " : " -> ", Describe(*a)), *a)) {
          Walk(a->id, level + 2, up);
        }
      }
    }
    size_t hidden = (up ? hidden_producers_ : hidden_consumers_)[id].size();
    if (hidden > 0) {
      Line(level, StrCat("... ", up ? "made by " : "used by ", hidden,
                         hidden == 1 ? " more execution" : " more executions", " beyond --depth ",
                         depth_));
    }
  }

  int depth_;
  std::map<int64_t, const md::Artifact*> artifacts_;
  std::map<int64_t, const md::Execution*> executions_;
  std::map<int64_t, std::vector<const md::Event*>> producers_, consumers_, inputs_, outputs_;
  std::map<int64_t, std::set<int64_t>> hidden_producers_, hidden_consumers_;
  std::set<std::pair<md::TypeKind, int64_t>> seen_;
  std::string out_;
};

// A DOT double-quoted string.
std::string DotString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < ' ' || c == 0x7f) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string RenderDot(const md::LineageGraph& g, int64_t root) {
  std::string out =
      "digraph lineage {\n"
      "  rankdir=LR;\n"
      "  node [fontname=\"Helvetica\", fontsize=10];\n"
      "  edge [fontname=\"Helvetica\", fontsize=9];\n";
  for (const md::Artifact& a : g.artifacts) {
    std::string label = StrCat("artifact ", a.id, "\n", a.type);
    if (!a.uri.empty()) StrAppend(&label, "\n", a.uri);
    StrAppend(&out, "  \"a", a.id,
              "\" [shape=box, style=", a.id == root ? "\"rounded,bold\"" : "rounded",
              ", label=", DotString(label), "];\n");
  }
  for (const md::Execution& e : g.executions) {
    std::string label =
        StrCat("execution ", e.id, "\n", e.type, "\n", md::ExecutionStateName(e.state));
    StrAppend(&out, "  \"e", e.id,
              "\" [shape=ellipse, style=filled, fillcolor=\"#e8e8e8\", label=", DotString(label),
              "];\n");
  }
  for (const md::Event& e : g.events) {
    if (e.type == md::EventType::kInput) {
      StrAppend(&out, "  \"a", e.artifact_id, "\" -> \"e", e.execution_id, "\"");
    } else {
      StrAppend(&out, "  \"e", e.execution_id, "\" -> \"a", e.artifact_id, "\"");
    }
    StrAppend(&out, " [label=", DotString(e.path), "];\n");
  }
  return out + "}\n";
}

absl::Status RunLineage(const LineageFlags& f) {
  KILN_ASSIGN_OR_RETURN(int64_t root,
                        ParseArtifactRef(f.id,
                                         "lineage starts from an artifact (`kiln meta show` lists "
                                         "an execution's inputs and outputs)"));
  KILN_ASSIGN_OR_RETURN(auto store, f.store.OpenForReading());
  md::LineageOptions options;
  options.max_hops = f.depth;
  options.direction = f.direction == "up"     ? md::LineageDirection::kUpstream
                      : f.direction == "down" ? md::LineageDirection::kDownstream
                                              : md::LineageDirection::kBoth;
  auto g = store->GetLineage(root, options);
  if (absl::IsNotFound(g.status())) return NotFound(md::TypeKind::kArtifact, root);
  KILN_RETURN_IF_ERROR(g.status());
  SortById(&g->artifacts);
  SortById(&g->executions);
  if (f.format == "json") {
    PrintJson(Json{{"root", root},
                   {"depth", f.depth},
                   {"direction", f.direction},
                   {"artifacts", JsonArray(g->artifacts, NodeJson<md::Artifact>)},
                   {"executions", JsonArray(g->executions, NodeJson<md::Execution>)},
                   {"events", JsonArray(g->events, EventJson)}});
    return absl::OkStatus();
  }
  if (f.format == "dot") {
    std::printf("%s", RenderDot(*g, root).c_str());
    return absl::OkStatus();
  }
  // Every event of the shown artifacts, to announce those the depth limit cut off.
  std::vector<int64_t> ids;
  for (const md::Artifact& a : g->artifacts) ids.push_back(a.id);
  KILN_ASSIGN_OR_RETURN(auto stored, store->GetEventsByArtifactIds(ids));
  TreePrinter printer(*g, stored, f.depth);
  std::printf("%s", printer.Render(root, f.direction != "down", f.direction != "up").c_str());
  return absl::OkStatus();
}

}  // namespace

void AddMetaCommand(CLI::App& root) {
  CLI::App* meta = root.add_subcommand(
      "meta", "Query and record ML metadata: artifacts, executions, contexts (ML Metadata)");
  meta->footer(
      StrCat("The metadata store records what ran, on which inputs, with which parameters, "
             "producing what (the ML Metadata data model). Commands that record (import, stats, "
             "validate, ...) write to it; these subcommands read it and let steps that run "
             "outside kiln record themselves.\n\n"
             "Every subcommand takes --metadata sqlite:PATH or --metadata postgresql://USER@HOST:"
             "PORT/DB; the default is ",
             md::DefaultStorePath(),
             " ($KILN_HOME/metadata.sqlite, KILN_HOME defaulting to ~/.kiln). Commands that only "
             "read (ls, show, types, diff, lineage) never create the default store.\n\n",
             kExamples, "\nRun `kiln meta COMMAND --help` for a subcommand's flags."));
  meta->require_subcommand(1);
  AddLs(meta);
  AddShow(meta);
  AddTypes(meta);
  AddRecord(meta);
  AddRegister(meta);
  AddDiff(meta);
}

void AddLineageCommand(CLI::App& root) {
  auto [app, f] = AddSubcommand<LineageFlags>(
      &root, "lineage", "Show what made an artifact and what used it (provenance)",
      "ID is an artifact: 7, a7 or artifact:7. Walks the events of the metadata store up to "
      "--depth executions away: upstream, the executions that made the artifact and their "
      "inputs; downstream, the executions that used it and their outputs.\n\n"
      "text: an indented tree. `made by` / `used by` lines name an execution, the role the "
      "artifact played for it, its state and start time, and its parameters in [...]; "
      "`ROLE <- artifact` lines are an execution's inputs, `ROLE -> artifact` its outputs, "
      "with the artifact's properties in [...]. A node already shown says (see above); "
      "`...` marks executions beyond --depth.\n"
      "dot: a Graphviz digraph (artifacts are boxes, executions grey ellipses, edges "
      "labelled with the role): kiln lineage 7 --format dot | dot -Tsvg > lineage.svg\n"
      "json: {\"root\", \"depth\", \"direction\", \"artifacts\": [...], \"executions\": "
      "[...], \"events\": [...]} with every field.\n\n"
      "Example output:\n"
      "  artifact 7 Model /m/2  [accuracy=0.93]\n"
      "    made by execution 5 Trainer as model (COMPLETE, 2026-11-25T10:02:00Z)  "
      "[epochs=3 learning_rate=0.2]\n"
      "      examples <- artifact 6 Examples /d/span-2  [fingerprint=sha256:bbb span=2]\n"
      "        made by execution 4 Import as examples (COMPLETE, 2026-11-25T10:00:00Z)  "
      "[format=csv]\n"
      "          raw <- artifact 5 RawData /raw/span-2  [fingerprint=sha256:bbb span=2]\n"
      "    used by execution 6 Evaluator as model (COMPLETE, 2026-11-25T10:09:00Z)  "
      "[threshold=0.9]\n"
      "      blessing -> artifact 8 ModelBlessing /b/2  [blessed=true]\n\n"
      "Examples:\n"
      "  kiln lineage 7\n"
      "  kiln lineage 7 --direction up --depth 1\n"
      "  kiln lineage 7 --format json --metadata postgresql://kiln@db:5432/kiln",
      UnknownIdExitCodes());
  app->add_option("ID", f->id, "The artifact: 7, a7 or artifact:7")->required();
  app->add_option("--depth", f->depth, "Executions to cross in each direction")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app->add_option("--direction", f->direction, "up (what made it), down (what used it) or both")
      ->capture_default_str()
      ->check(CLI::IsMember({"up", "down", "both"}));
  app->add_option("--format", f->format, "text, dot or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "dot", "json"}));
  AddCommonFlagsAndRun(app, f, "lineage", RunLineage);
}

}  // namespace kiln::cli
