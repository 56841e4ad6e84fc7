// The SQL layer of the metadata store: every statement kiln sends to a metadata
// database is written here, once, with `?` placeholders. It knows the table layout and
// the schema migrations, and the few differences between SQLite and PostgreSQL DDL; it
// knows nothing of transactions or of what the rows mean (MetadataAccessObject does).
#ifndef KILN_METADATA_QUERY_EXECUTOR_H_
#define KILN_METADATA_QUERY_EXECUTOR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/metadata/backend.h"
#include "kiln/metadata/types.h"

namespace kiln::metadata {

// The schema version this kiln writes. Version history:
//   1  types, artifacts, executions, contexts, their properties, events, attributions
//      and associations
//   2  indexes for lineage walks, uri/name/property lookups and time ranges
inline constexpr int kSchemaVersion = 2;

// A node row: artifacts, executions and contexts share one table layout.
struct NodeRow {
  int64_t id = 0;
  int64_t type_id = 0;
  std::optional<std::string> uri;
  std::optional<std::string> name;
  int state = 0;
  int64_t create_time_ms = 0;
  int64_t update_time_ms = 0;
};

struct PropertyRow {
  int64_t node_id = 0;
  std::string name;
  bool is_custom = false;
  Value value;
};

// Filters for SelectNodes, already resolved to ids by the access object.
struct NodeFilter {
  std::optional<int64_t> type_id;
  std::optional<std::string> name;
  std::optional<std::string> uri;
  std::optional<int64_t> context_id;
  std::optional<std::pair<std::string, Value>> property;
  std::optional<int64_t> created_from_ms;
  std::optional<int64_t> created_until_ms;
  std::vector<int64_t> ids;
  bool newest_first = false;
  int64_t limit = 0;
};

class QueryExecutor {
 public:
  explicit QueryExecutor(Backend* backend) : backend_(backend) {}

  Backend* backend() const { return backend_; }

  // The stored schema version; nullopt when the version table does not exist.
  absl::StatusOr<std::optional<int>> SchemaVersion();
  // Serialises schema changes between processes for the rest of the transaction
  // (PostgreSQL advisory lock; SQLite's BEGIN IMMEDIATE already does).
  absl::Status LockSchema();
  // Applies migrations (from_version, to_version]; from 0 creates every table.
  absl::Status Migrate(int from_version, int to_version);

  // Types.
  absl::StatusOr<std::optional<Type>> SelectType(TypeKind kind, const std::string& name);
  absl::StatusOr<std::optional<Type>> SelectTypeById(int64_t id);
  absl::StatusOr<std::vector<Type>> SelectTypes(TypeKind kind);
  // Inserts unless a type of that kind and name exists; returns the id either way.
  absl::StatusOr<int64_t> InsertType(const Type& type);
  absl::Status InsertTypeProperty(int64_t type_id, const std::string& name, PropertyType t);

  // Nodes.
  absl::StatusOr<int64_t> InsertNode(TypeKind kind, const NodeRow& row);
  absl::Status UpdateNode(TypeKind kind, const NodeRow& row);
  absl::StatusOr<std::vector<NodeRow>> SelectNodes(TypeKind kind, const NodeFilter& filter);
  absl::Status DeleteProperties(TypeKind kind, int64_t node_id);
  absl::Status InsertProperties(TypeKind kind, const std::vector<PropertyRow>& rows);
  absl::StatusOr<std::vector<PropertyRow>> SelectProperties(TypeKind kind,
                                                            const std::vector<int64_t>& ids);

  // Events and context membership.
  absl::Status InsertEvents(const std::vector<Event>& events);
  // Events whose artifact (or execution) is one of `ids`; `type` kUnknown means any.
  absl::StatusOr<std::vector<Event>> SelectEventsByArtifacts(const std::vector<int64_t>& ids,
                                                             EventType type);
  absl::StatusOr<std::vector<Event>> SelectEventsByExecutions(const std::vector<int64_t>& ids,
                                                              EventType type);
  // (context id, node id) pairs into attributions (artifacts) or associations
  // (executions); pairs already present are kept.
  absl::Status InsertMemberships(TypeKind kind,
                                 const std::vector<std::pair<int64_t, int64_t>>& pairs);
  // Contexts an artifact (or execution) belongs to.
  absl::StatusOr<std::vector<int64_t>> SelectContextIds(TypeKind kind, int64_t node_id);

 private:
  absl::StatusOr<std::vector<SqlRow>> Run(std::string_view sql,
                                          std::initializer_list<SqlValue> params = {});
  // Multi-row INSERT: `head` VALUES (...),(...) `tail`, `columns` values per row.
  absl::Status InsertRows(std::string_view head, std::string_view tail, size_t columns,
                          const std::vector<SqlValue>& values);
  absl::StatusOr<std::vector<Event>> SelectEvents(std::string_view column,
                                                  const std::vector<int64_t>& ids, EventType type);
  std::string Ddl(std::string_view script) const;

  Backend* backend_;
};

}  // namespace kiln::metadata

#endif  // KILN_METADATA_QUERY_EXECUTOR_H_
