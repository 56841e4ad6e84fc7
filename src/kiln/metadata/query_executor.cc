#include "kiln/metadata/query_executor.h"

#include <algorithm>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::metadata {
namespace {

// Migration scripts, DDL with dialect tokens: {ID} an auto-increment primary key,
// {INT} a 64-bit integer, {DOUBLE} a double. Index i takes the schema to version i+1.
constexpr std::string_view kMigrations[] = {
    // 1: the data model.
    R"sql(
CREATE TABLE kiln_schema_version (version {INT} NOT NULL);
CREATE TABLE types (
  id {ID}, kind {INT} NOT NULL, name TEXT NOT NULL, description TEXT,
  UNIQUE (kind, name));
CREATE TABLE type_properties (
  type_id {INT} NOT NULL REFERENCES types(id), name TEXT NOT NULL, data_type {INT} NOT NULL,
  PRIMARY KEY (type_id, name));
CREATE TABLE artifacts (
  id {ID}, type_id {INT} NOT NULL REFERENCES types(id), uri TEXT, name TEXT,
  state {INT} NOT NULL, create_time_ms {INT} NOT NULL, update_time_ms {INT} NOT NULL,
  UNIQUE (type_id, name));
CREATE TABLE executions (
  id {ID}, type_id {INT} NOT NULL REFERENCES types(id), uri TEXT, name TEXT,
  state {INT} NOT NULL, create_time_ms {INT} NOT NULL, update_time_ms {INT} NOT NULL,
  UNIQUE (type_id, name));
CREATE TABLE contexts (
  id {ID}, type_id {INT} NOT NULL REFERENCES types(id), uri TEXT, name TEXT NOT NULL,
  state {INT} NOT NULL, create_time_ms {INT} NOT NULL, update_time_ms {INT} NOT NULL,
  UNIQUE (type_id, name));
CREATE TABLE artifact_properties (
  node_id {INT} NOT NULL REFERENCES artifacts(id), name TEXT NOT NULL,
  is_custom {INT} NOT NULL, data_type {INT} NOT NULL,
  int_value {INT}, double_value {DOUBLE}, string_value TEXT,
  PRIMARY KEY (node_id, name, is_custom));
CREATE TABLE execution_properties (
  node_id {INT} NOT NULL REFERENCES executions(id), name TEXT NOT NULL,
  is_custom {INT} NOT NULL, data_type {INT} NOT NULL,
  int_value {INT}, double_value {DOUBLE}, string_value TEXT,
  PRIMARY KEY (node_id, name, is_custom));
CREATE TABLE context_properties (
  node_id {INT} NOT NULL REFERENCES contexts(id), name TEXT NOT NULL,
  is_custom {INT} NOT NULL, data_type {INT} NOT NULL,
  int_value {INT}, double_value {DOUBLE}, string_value TEXT,
  PRIMARY KEY (node_id, name, is_custom));
CREATE TABLE events (
  id {ID}, artifact_id {INT} NOT NULL REFERENCES artifacts(id),
  execution_id {INT} NOT NULL REFERENCES executions(id),
  type {INT} NOT NULL, path TEXT NOT NULL, time_ms {INT} NOT NULL);
CREATE TABLE attributions (
  context_id {INT} NOT NULL REFERENCES contexts(id),
  artifact_id {INT} NOT NULL REFERENCES artifacts(id),
  PRIMARY KEY (context_id, artifact_id));
CREATE TABLE associations (
  context_id {INT} NOT NULL REFERENCES contexts(id),
  execution_id {INT} NOT NULL REFERENCES executions(id),
  PRIMARY KEY (context_id, execution_id));
INSERT INTO kiln_schema_version (version) VALUES (0);
)sql",
    // 2: indexes. Lineage walks go through events by either end; the CLI and the
    // dashboard look nodes up by uri, time and property value. Execution properties
    // are not indexed by value: every execution writes a dozen of them, and that index
    // cost a sixth of the write throughput for lookups nothing makes often.
    R"sql(
CREATE INDEX events_by_artifact ON events (artifact_id, type);
CREATE INDEX events_by_execution ON events (execution_id, type);
CREATE INDEX attributions_by_artifact ON attributions (artifact_id);
CREATE INDEX associations_by_execution ON associations (execution_id);
CREATE INDEX artifacts_by_uri ON artifacts (uri);
CREATE INDEX artifacts_by_time ON artifacts (create_time_ms);
CREATE INDEX executions_by_time ON executions (create_time_ms);
CREATE INDEX contexts_by_time ON contexts (create_time_ms);
CREATE INDEX artifact_properties_by_value ON artifact_properties (name, string_value);
)sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

std::string_view NodeTable(TypeKind kind) {
  switch (kind) {
    case TypeKind::kArtifact:
      return "artifacts";
    case TypeKind::kExecution:
      return "executions";
    case TypeKind::kContext:
      return "contexts";
  }
  return "";
}

std::string_view PropertyTable(TypeKind kind) {
  switch (kind) {
    case TypeKind::kArtifact:
      return "artifact_properties";
    case TypeKind::kExecution:
      return "execution_properties";
    case TypeKind::kContext:
      return "context_properties";
  }
  return "";
}

// "(?,?,...)" for n placeholders. IN lists are padded to a power of two (repeating the
// last id) so the backends' prepared-statement caches see a handful of shapes only.
constexpr size_t kMaxInList = 512;
std::string InList(size_t n) {
  std::string s = "(";
  for (size_t i = 0; i < n; ++i) s += i ? ",?" : "?";
  return s + ")";
}
size_t PaddedSize(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

SqlValue Text(const std::optional<std::string>& s) {
  return s ? SqlValue(*s) : SqlValue(std::monostate{});
}
std::optional<std::string> OptText(const SqlValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return std::nullopt;
}
int64_t Int(const SqlValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  return 0;
}
double Double(const SqlValue& v) {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  return 0;
}

// The column holding a value of this type.
std::string_view ValueColumn(const Value& v) {
  switch (TypeOf(v)) {
    case PropertyType::kDouble:
      return "double_value";
    case PropertyType::kString:
      return "string_value";
    default:
      return "int_value";
  }
}
SqlValue ValueParam(const Value& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return static_cast<int64_t>(std::get<bool>(v) ? 1 : 0);
}

// Calls fn(chunk) for padded chunks of ids.
template <typename Fn>
absl::Status ForChunks(const std::vector<int64_t>& ids, Fn fn) {
  for (size_t start = 0; start < ids.size(); start += kMaxInList) {
    size_t n = std::min(kMaxInList, ids.size() - start);
    std::vector<SqlValue> chunk;
    chunk.reserve(PaddedSize(n));
    for (size_t i = 0; i < n; ++i) chunk.emplace_back(ids[start + i]);
    while (chunk.size() < PaddedSize(n)) chunk.push_back(chunk.back());
    KILN_RETURN_IF_ERROR(fn(chunk));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<SqlRow>> QueryExecutor::Run(std::string_view sql,
                                                       std::initializer_list<SqlValue> params) {
  return backend_->Query(sql, std::span<const SqlValue>(params.begin(), params.size()));
}

std::string QueryExecutor::Ddl(std::string_view script) const {
  bool pg = backend_->dialect() == Dialect::kPostgres;
  const std::pair<std::string_view, std::string_view> tokens[] = {
      // Nothing is ever deleted, so SQLite's rowid never reuses an id and AUTOINCREMENT
      // (an extra table write per insert) buys nothing.
      {"{ID}", pg ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY"},
      {"{INT}", pg ? "BIGINT" : "INTEGER"},
      {"{DOUBLE}", pg ? "DOUBLE PRECISION" : "REAL"},
  };
  std::string out(script);
  for (const auto& [token, text] : tokens) {
    for (size_t pos = out.find(token); pos != std::string::npos; pos = out.find(token, pos)) {
      out.replace(pos, token.size(), text);
      pos += text.size();
    }
  }
  return out;
}

absl::StatusOr<std::optional<int>> QueryExecutor::SchemaVersion() {
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> tables, backend_->ListTables());
  if (std::find(tables.begin(), tables.end(), "kiln_schema_version") == tables.end()) {
    return std::optional<int>();
  }
  KILN_ASSIGN_OR_RETURN(auto rows, Run("SELECT MAX(version) FROM kiln_schema_version"));
  if (rows.empty() || std::holds_alternative<std::monostate>(rows[0][0])) {
    return absl::DataLossError(
        StrCat(backend_->Describe(), ": the kiln_schema_version table is empty"));
  }
  return std::optional<int>(static_cast<int>(Int(rows[0][0])));
}

absl::Status QueryExecutor::LockSchema() {
  if (backend_->dialect() != Dialect::kPostgres) return absl::OkStatus();
  // Any fixed key works; this one spells "kiln" in ASCII.
  return Run("SELECT pg_advisory_xact_lock(1802071150)").status();
}

absl::Status QueryExecutor::Migrate(int from_version, int to_version) {
  for (int v = from_version; v < to_version; ++v) {
    KILN_RETURN_IF_ERROR(backend_->ExecuteScript(Ddl(kMigrations[v])));
    KILN_RETURN_IF_ERROR(
        Run("UPDATE kiln_schema_version SET version = ?", {int64_t{v + 1}}).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Type>> QueryExecutor::SelectType(TypeKind kind,
                                                              const std::string& name) {
  KILN_ASSIGN_OR_RETURN(auto rows, Run("SELECT id FROM types WHERE kind = ? AND name = ?",
                                       {int64_t{static_cast<int>(kind)}, name}));
  if (rows.empty()) return std::optional<Type>();
  return SelectTypeById(Int(rows[0][0]));
}

absl::StatusOr<std::optional<Type>> QueryExecutor::SelectTypeById(int64_t id) {
  KILN_ASSIGN_OR_RETURN(auto rows,
                        Run("SELECT id, kind, name, description FROM types WHERE id = ?", {id}));
  if (rows.empty()) return std::optional<Type>();
  Type t;
  t.id = Int(rows[0][0]);
  t.kind = static_cast<TypeKind>(Int(rows[0][1]));
  t.name = OptText(rows[0][2]).value_or("");
  t.description = OptText(rows[0][3]).value_or("");
  KILN_ASSIGN_OR_RETURN(auto props,
                        Run("SELECT name, data_type FROM type_properties WHERE type_id = ?", {id}));
  for (const SqlRow& r : props) {
    t.properties[OptText(r[0]).value_or("")] = static_cast<PropertyType>(Int(r[1]));
  }
  return std::optional<Type>(std::move(t));
}

absl::StatusOr<std::vector<Type>> QueryExecutor::SelectTypes(TypeKind kind) {
  KILN_ASSIGN_OR_RETURN(auto rows, Run("SELECT id FROM types WHERE kind = ? ORDER BY name",
                                       {int64_t{static_cast<int>(kind)}}));
  std::vector<Type> types;
  for (const SqlRow& r : rows) {
    KILN_ASSIGN_OR_RETURN(auto t, SelectTypeById(Int(r[0])));
    if (t) types.push_back(std::move(*t));
  }
  return types;
}

absl::StatusOr<int64_t> QueryExecutor::InsertType(const Type& type) {
  // ON CONFLICT DO NOTHING: two processes registering one type at once both succeed.
  KILN_ASSIGN_OR_RETURN(auto rows,
                        Run("INSERT INTO types (kind, name, description) VALUES (?, ?, ?) "
                            "ON CONFLICT (kind, name) DO NOTHING RETURNING id",
                            {int64_t{static_cast<int>(type.kind)}, type.name, type.description}));
  if (!rows.empty()) return Int(rows[0][0]);
  KILN_ASSIGN_OR_RETURN(rows, Run("SELECT id FROM types WHERE kind = ? AND name = ?",
                                  {int64_t{static_cast<int>(type.kind)}, type.name}));
  if (rows.empty()) return absl::InternalError("type vanished after insert");
  return Int(rows[0][0]);
}

absl::Status QueryExecutor::InsertTypeProperty(int64_t type_id, const std::string& name,
                                               PropertyType t) {
  return Run("INSERT INTO type_properties (type_id, name, data_type) VALUES (?, ?, ?) "
             "ON CONFLICT (type_id, name) DO NOTHING",
             {type_id, name, int64_t{static_cast<int>(t)}})
      .status();
}

absl::StatusOr<int64_t> QueryExecutor::InsertNode(TypeKind kind, const NodeRow& row) {
  std::string sql = StrCat("INSERT INTO ", NodeTable(kind),
                           " (type_id, uri, name, state, create_time_ms, update_time_ms) "
                           "VALUES (?, ?, ?, ?, ?, ?) RETURNING id");
  KILN_ASSIGN_OR_RETURN(auto rows,
                        Run(sql, {row.type_id, Text(row.uri), Text(row.name), int64_t{row.state},
                                  row.create_time_ms, row.update_time_ms}));
  if (rows.empty()) return absl::InternalError("INSERT ... RETURNING returned no id");
  return Int(rows[0][0]);
}

absl::Status QueryExecutor::UpdateNode(TypeKind kind, const NodeRow& row) {
  std::string sql = StrCat("UPDATE ", NodeTable(kind),
                           " SET uri = ?, name = ?, state = ?, update_time_ms = ? WHERE id = ?");
  return Run(sql, {Text(row.uri), Text(row.name), int64_t{row.state}, row.update_time_ms, row.id})
      .status();
}

absl::StatusOr<std::vector<NodeRow>> QueryExecutor::SelectNodes(TypeKind kind,
                                                                const NodeFilter& f) {
  std::string sql = StrCat(
      "SELECT n.id, n.type_id, n.uri, n.name, n.state, n.create_time_ms, n.update_time_ms FROM ",
      NodeTable(kind), " n WHERE 1 = 1");
  std::vector<SqlValue> params;
  if (f.type_id) {
    sql += " AND n.type_id = ?";
    params.emplace_back(*f.type_id);
  }
  if (f.name) {
    sql += " AND n.name = ?";
    params.emplace_back(*f.name);
  }
  if (f.uri) {
    sql += " AND n.uri = ?";
    params.emplace_back(*f.uri);
  }
  if (f.context_id) {
    if (kind == TypeKind::kArtifact) {
      sql += " AND n.id IN (SELECT artifact_id FROM attributions WHERE context_id = ?)";
    } else if (kind == TypeKind::kExecution) {
      sql += " AND n.id IN (SELECT execution_id FROM associations WHERE context_id = ?)";
    } else {
      return absl::InvalidArgumentError("contexts cannot be filtered by context");
    }
    params.emplace_back(*f.context_id);
  }
  if (f.property) {
    const auto& [name, value] = *f.property;
    // IN, not a correlated EXISTS: SQLite then drives the lookup from the property
    // index instead of scanning every node of the type.
    StrAppend(&sql, " AND n.id IN (SELECT p.node_id FROM ", PropertyTable(kind),
              " p WHERE p.name = ? AND p.data_type = ? AND p.", ValueColumn(value), " = ?)");
    params.emplace_back(name);
    params.emplace_back(int64_t{static_cast<int>(TypeOf(value))});
    params.push_back(ValueParam(value));
  }
  if (f.created_from_ms) {
    sql += " AND n.create_time_ms >= ?";
    params.emplace_back(*f.created_from_ms);
  }
  if (f.created_until_ms) {
    sql += " AND n.create_time_ms < ?";
    params.emplace_back(*f.created_until_ms);
  }
  std::string order = f.newest_first ? " ORDER BY n.id DESC" : " ORDER BY n.id";
  if (f.limit > 0) StrAppend(&order, " LIMIT ", f.limit);

  std::vector<NodeRow> out;
  auto run = [&](const std::string& full, const std::vector<SqlValue>& all) -> absl::Status {
    KILN_ASSIGN_OR_RETURN(auto rows, backend_->Query(full, all));
    for (const SqlRow& r : rows) {
      NodeRow n;
      n.id = Int(r[0]);
      n.type_id = Int(r[1]);
      n.uri = OptText(r[2]);
      n.name = OptText(r[3]);
      n.state = static_cast<int>(Int(r[4]));
      n.create_time_ms = Int(r[5]);
      n.update_time_ms = Int(r[6]);
      out.push_back(std::move(n));
    }
    return absl::OkStatus();
  };
  if (f.ids.empty()) {
    KILN_RETURN_IF_ERROR(run(sql + order, params));
    return out;
  }
  KILN_RETURN_IF_ERROR(ForChunks(f.ids, [&](const std::vector<SqlValue>& chunk) {
    std::vector<SqlValue> all = params;
    all.insert(all.end(), chunk.begin(), chunk.end());
    return run(StrCat(sql, " AND n.id IN ", InList(chunk.size()), order), all);
  }));
  if (f.ids.size() > kMaxInList) {
    std::sort(out.begin(), out.end(), [&](const NodeRow& a, const NodeRow& b) {
      return f.newest_first ? a.id > b.id : a.id < b.id;
    });
    if (f.limit > 0 && out.size() > static_cast<size_t>(f.limit)) out.resize(f.limit);
  }
  return out;
}

absl::Status QueryExecutor::DeleteProperties(TypeKind kind, int64_t node_id) {
  return Run(StrCat("DELETE FROM ", PropertyTable(kind), " WHERE node_id = ?"), {node_id}).status();
}

absl::Status QueryExecutor::InsertRows(std::string_view head, std::string_view tail, size_t columns,
                                       const std::vector<SqlValue>& values) {
  // One statement per chunk of rows instead of one per row: on PostgreSQL every
  // statement is a network round trip. Chunks bound the number of statement shapes.
  constexpr size_t kMaxRows = 64;
  const size_t rows = values.size() / columns;
  std::string tuple = "(";
  for (size_t c = 0; c < columns; ++c) tuple += c ? ",?" : "?";
  tuple += ")";
  for (size_t start = 0; start < rows; start += kMaxRows) {
    size_t n = std::min(kMaxRows, rows - start);
    std::string sql = StrCat(head, " VALUES ");
    for (size_t r = 0; r < n; ++r) StrAppend(&sql, r ? "," : "", tuple);
    StrAppend(&sql, tail);
    std::span<const SqlValue> chunk(values.data() + start * columns, n * columns);
    KILN_RETURN_IF_ERROR(backend_->Query(sql, chunk).status());
  }
  return absl::OkStatus();
}

absl::Status QueryExecutor::InsertProperties(TypeKind kind, const std::vector<PropertyRow>& rows) {
  std::vector<SqlValue> values;
  values.reserve(rows.size() * 7);
  for (const PropertyRow& row : rows) {
    SqlValue iv, dv, sv;
    switch (TypeOf(row.value)) {
      case PropertyType::kDouble:
        dv = std::get<double>(row.value);
        break;
      case PropertyType::kString:
        sv = std::get<std::string>(row.value);
        break;
      default:
        iv = ValueParam(row.value);
    }
    values.insert(values.end(), {row.node_id, row.name, int64_t{row.is_custom ? 1 : 0},
                                 int64_t{static_cast<int>(TypeOf(row.value))}, iv, dv, sv});
  }
  return InsertRows(StrCat("INSERT INTO ", PropertyTable(kind),
                           " (node_id, name, is_custom, data_type, int_value, double_value, "
                           "string_value)"),
                    "", 7, values);
}

absl::StatusOr<std::vector<PropertyRow>> QueryExecutor::SelectProperties(
    TypeKind kind, const std::vector<int64_t>& ids) {
  std::vector<PropertyRow> out;
  KILN_RETURN_IF_ERROR(ForChunks(ids, [&](const std::vector<SqlValue>& chunk) -> absl::Status {
    std::string sql = StrCat(
        "SELECT node_id, name, is_custom, data_type, int_value, double_value, "
        "string_value FROM ",
        PropertyTable(kind), " WHERE node_id IN ", InList(chunk.size()), " ORDER BY node_id, name");
    KILN_ASSIGN_OR_RETURN(auto rows, backend_->Query(sql, chunk));
    for (const SqlRow& r : rows) {
      PropertyRow p;
      p.node_id = Int(r[0]);
      p.name = OptText(r[1]).value_or("");
      p.is_custom = Int(r[2]) != 0;
      switch (static_cast<PropertyType>(Int(r[3]))) {
        case PropertyType::kInt:
          p.value = Int(r[4]);
          break;
        case PropertyType::kDouble:
          p.value = Double(r[5]);
          break;
        case PropertyType::kBool:
          p.value = Int(r[4]) != 0;
          break;
        default:
          p.value = OptText(r[6]).value_or("");
      }
      out.push_back(std::move(p));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::Status QueryExecutor::InsertEvents(const std::vector<Event>& events) {
  std::vector<SqlValue> values;
  values.reserve(events.size() * 5);
  for (const Event& e : events) {
    values.insert(values.end(), {e.artifact_id, e.execution_id, int64_t{static_cast<int>(e.type)},
                                 e.path, e.time_ms});
  }
  return InsertRows("INSERT INTO events (artifact_id, execution_id, type, path, time_ms)", "", 5,
                    values);
}

absl::StatusOr<std::vector<Event>> QueryExecutor::SelectEvents(std::string_view column,
                                                               const std::vector<int64_t>& ids,
                                                               EventType type) {
  std::vector<Event> out;
  KILN_RETURN_IF_ERROR(ForChunks(ids, [&](const std::vector<SqlValue>& chunk) -> absl::Status {
    std::string sql = StrCat(
        "SELECT artifact_id, execution_id, type, path, time_ms FROM events "
        "WHERE ",
        column, " IN ", InList(chunk.size()));
    std::vector<SqlValue> params = chunk;
    if (type != EventType::kUnknown) {
      sql += " AND type = ?";
      params.emplace_back(int64_t{static_cast<int>(type)});
    }
    sql += " ORDER BY id";
    KILN_ASSIGN_OR_RETURN(auto rows, backend_->Query(sql, params));
    for (const SqlRow& r : rows) {
      out.push_back(Event{Int(r[0]), Int(r[1]), static_cast<EventType>(Int(r[2])),
                          OptText(r[3]).value_or(""), Int(r[4])});
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<Event>> QueryExecutor::SelectEventsByArtifacts(
    const std::vector<int64_t>& ids, EventType type) {
  return SelectEvents("artifact_id", ids, type);
}

absl::StatusOr<std::vector<Event>> QueryExecutor::SelectEventsByExecutions(
    const std::vector<int64_t>& ids, EventType type) {
  return SelectEvents("execution_id", ids, type);
}

absl::Status QueryExecutor::InsertMemberships(
    TypeKind kind, const std::vector<std::pair<int64_t, int64_t>>& pairs) {
  std::vector<SqlValue> values;
  values.reserve(pairs.size() * 2);
  for (const auto& [context_id, node_id] : pairs)
    values.insert(values.end(), {context_id, node_id});
  if (kind == TypeKind::kArtifact) {
    return InsertRows("INSERT INTO attributions (context_id, artifact_id)",
                      " ON CONFLICT (context_id, artifact_id) DO NOTHING", 2, values);
  }
  return InsertRows("INSERT INTO associations (context_id, execution_id)",
                    " ON CONFLICT (context_id, execution_id) DO NOTHING", 2, values);
}

absl::StatusOr<std::vector<int64_t>> QueryExecutor::SelectContextIds(TypeKind kind,
                                                                     int64_t node_id) {
  std::string_view sql =
      kind == TypeKind::kArtifact
          ? "SELECT context_id FROM attributions WHERE artifact_id = ? ORDER BY context_id"
          : "SELECT context_id FROM associations WHERE execution_id = ? ORDER BY context_id";
  KILN_ASSIGN_OR_RETURN(auto rows, Run(sql, {node_id}));
  std::vector<int64_t> ids;
  for (const SqlRow& r : rows) ids.push_back(Int(r[0]));
  return ids;
}

}  // namespace kiln::metadata
