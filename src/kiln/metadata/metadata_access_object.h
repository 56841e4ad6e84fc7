// The access-object layer of the metadata store: turns the data model (artifacts,
// executions, contexts with typed and custom properties) into rows through the
// QueryExecutor, checks properties against their types, and walks lineage. It runs
// inside a transaction the store opened; it never begins or commits one.
#ifndef KILN_METADATA_METADATA_ACCESS_OBJECT_H_
#define KILN_METADATA_METADATA_ACCESS_OBJECT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/metadata/query_executor.h"
#include "kiln/metadata/types.h"

namespace kiln::metadata {

class MetadataAccessObject {
 public:
  // `now_ms` supplies create/update times.
  MetadataAccessObject(QueryExecutor* executor, std::function<int64_t()> now_ms)
      : executor_(executor), now_ms_(std::move(now_ms)) {}

  // Registers `type` or extends an existing one with new properties. Errors:
  // kAlreadyExists when an existing property has a different data type.
  absl::StatusOr<int64_t> PutType(const Type& type);
  // Errors: kNotFound.
  absl::StatusOr<Type> GetType(TypeKind kind, const std::string& name);
  absl::StatusOr<std::vector<Type>> GetTypes(TypeKind kind);

  // Insert (id 0) or update (id set). Errors: kNotFound for an unknown type or id,
  // kInvalidArgument for a property the type does not declare or of the wrong data type
  // (use custom properties for undeclared ones), kAlreadyExists for a duplicate name.
  absl::StatusOr<int64_t> PutArtifact(const Artifact& a);
  absl::StatusOr<int64_t> PutExecution(const Execution& e);
  absl::StatusOr<int64_t> PutContext(const Context& c);
  // Returns the id of the context of that type and name, creating it when missing.
  absl::StatusOr<int64_t> GetOrCreateContext(const Context& c);

  absl::StatusOr<std::vector<Artifact>> FindArtifacts(const Query& q);
  absl::StatusOr<std::vector<Execution>> FindExecutions(const Query& q);
  absl::StatusOr<std::vector<Context>> FindContexts(const Query& q);

  // Errors: kNotFound when an end of the event does not exist, kInvalidArgument for an
  // event type other than INPUT/OUTPUT.
  absl::Status PutEvents(std::vector<Event> events);
  // PutEvents for callers that have just written or read both ends in this transaction.
  absl::Status PutEventsOfKnownNodes(std::vector<Event> events);
  absl::StatusOr<std::vector<Event>> EventsOfArtifacts(const std::vector<int64_t>& ids);
  absl::StatusOr<std::vector<Event>> EventsOfExecutions(const std::vector<int64_t>& ids);
  // (context id, node id) pairs: attributions for artifacts, associations for
  // executions. Existing pairs are kept.
  absl::Status PutMemberships(TypeKind kind, const std::vector<std::pair<int64_t, int64_t>>& pairs);
  // Errors: kNotFound when there is no node of `kind` with `id`.
  absl::Status CheckExists(TypeKind kind, int64_t id);
  absl::StatusOr<std::vector<int64_t>> ContextsOf(TypeKind kind, int64_t node_id);

  // Forgets cached types; the store calls it after a rolled-back transaction, which may
  // have taken a type id with it.
  void ClearCache() {
    types_by_id_.clear();
    type_ids_.clear();
  }

  // The subgraph reachable from `artifact_id`. Errors: kNotFound.
  absl::StatusOr<LineageGraph> Lineage(int64_t artifact_id, const LineageOptions& options);

 private:
  struct NodeData {
    NodeRow row;
    std::string type;
    Properties properties;
    Properties custom;
  };
  absl::StatusOr<int64_t> PutNode(TypeKind kind, const std::string& type, NodeRow row,
                                  const Properties& properties, const Properties& custom);
  absl::StatusOr<std::vector<NodeData>> FindNodes(TypeKind kind, const Query& q);
  // FindNodes as Artifact, Execution or Context.
  template <typename T>
  absl::StatusOr<std::vector<T>> FindAs(TypeKind kind, const Query& q);
  absl::StatusOr<const Type*> TypeByName(TypeKind kind, const std::string& name);
  absl::StatusOr<const Type*> TypeById(int64_t id);
  // Walks one direction: downstream follows artifact -INPUT-> execution -OUTPUT->
  // artifact; upstream the reverse.
  absl::Status Walk(int64_t artifact_id, int max_hops, bool downstream,
                    std::map<int64_t, bool>* artifacts, std::map<int64_t, bool>* executions,
                    std::vector<Event>* events);

  QueryExecutor* executor_;
  std::function<int64_t()> now_ms_;
  // Types never change meaning once written, so they are cached (extensions re-read).
  std::map<int64_t, Type> types_by_id_;
  std::map<std::pair<TypeKind, std::string>, int64_t> type_ids_;
};

}  // namespace kiln::metadata

#endif  // KILN_METADATA_METADATA_ACCESS_OBJECT_H_
