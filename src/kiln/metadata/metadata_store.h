// kiln's metadata and lineage store, after ML Metadata: what ran, on which inputs, with
// which parameters, producing what. The top of four layers:
//
//   MetadataStore         transactions, retries, schema checks, PutExecution, lineage, diff
//   MetadataAccessObject  the data model as rows; property checks against types
//   QueryExecutor         every SQL statement and migration, per dialect
//   Backend               one SQLite or PostgreSQL connection
//
// Every public method runs in its own transaction: it either happens whole or not at
// all, whatever kills the process. Lock contention from other processes is retried
// inside the store (bounded by StoreOptions::busy_deadline_ms) and reaches the caller
// as kUnavailable only when that budget is spent.
//
// Not thread-safe: give each thread its own store (connections are cheap).
#ifndef KILN_METADATA_METADATA_STORE_H_
#define KILN_METADATA_METADATA_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/base/env.h"
#include "kiln/metadata/backend.h"
#include "kiln/metadata/metadata_access_object.h"
#include "kiln/metadata/query_executor.h"
#include "kiln/metadata/types.h"

namespace kiln::metadata {

struct StoreOptions {
  Env* env = Env::Default();  // the clock for create/update times
  // How long a transaction keeps retrying while other processes hold the lock.
  int busy_deadline_ms = 120000;
  // OpenStore only: refuse (kNotFound) an SQLite file that does not exist instead of
  // creating it, for commands that only read.
  bool must_exist = false;
  // Tests only: build or keep the schema at this version instead of kSchemaVersion.
  int schema_version_for_testing = kSchemaVersion;
  // Tests only: runs inside every write transaction just before COMMIT.
  std::function<void()> before_commit_for_testing;
};

// An artifact to record with PutExecution and how it relates to the execution. An
// artifact with an id and no type is a reference to a stored artifact, left unchanged.
struct ArtifactAndEvent {
  Artifact artifact;
  std::optional<EventType> event;  // INPUT or OUTPUT; none: attributed only
  std::string path;                // the event's path (role), e.g. "examples"
};

struct PutExecutionResult {
  int64_t execution_id = 0;
  std::vector<int64_t> artifact_ids;  // in the order given
  std::vector<int64_t> context_ids;   // in the order given
};

class MetadataStore {
 public:
  // Opens the store behind `backend`: an empty database is initialised, an older kiln
  // schema migrated forward. Errors (the database is left unchanged in each case):
  // kFailedPrecondition when the database holds tables that are not a kiln store, when
  // its schema is newer than this kiln understands, or when it is not a database at all;
  // kUnavailable when it cannot be reached.
  static absl::StatusOr<std::unique_ptr<MetadataStore>> Create(std::unique_ptr<Backend> backend,
                                                               StoreOptions options = {});

  std::string Describe() const { return backend_->Describe(); }
  int schema_version() const { return schema_version_; }

  // Types. PutType registers a type or adds properties to it; it is idempotent.
  // Errors: kAlreadyExists when a property exists with another data type;
  // kInvalidArgument for an empty name.
  absl::StatusOr<int64_t> PutType(const Type& type);
  // Errors: kNotFound.
  absl::StatusOr<Type> GetType(TypeKind kind, const std::string& name);
  absl::StatusOr<std::vector<Type>> GetTypes(TypeKind kind);

  // Insert (id 0) or replace (id set) nodes, all or none; returns their ids in order.
  // Errors: kNotFound (type or id), kInvalidArgument (undeclared or mistyped property,
  // context without a name), kAlreadyExists (name taken within the type).
  absl::StatusOr<std::vector<int64_t>> PutArtifacts(const std::vector<Artifact>& artifacts);
  absl::StatusOr<std::vector<int64_t>> PutExecutions(const std::vector<Execution>& executions);
  absl::StatusOr<std::vector<int64_t>> PutContexts(const std::vector<Context>& contexts);

  // Nodes matching `query` (see Query). Errors: kInvalidArgument (uri on non-artifacts,
  // context filter on contexts).
  absl::StatusOr<std::vector<Artifact>> GetArtifacts(const Query& query = {});
  absl::StatusOr<std::vector<Execution>> GetExecutions(const Query& query = {});
  absl::StatusOr<std::vector<Context>> GetContexts(const Query& query = {});
  // One node by id. Errors: kNotFound.
  absl::StatusOr<Artifact> GetArtifact(int64_t id);
  absl::StatusOr<Execution> GetExecution(int64_t id);
  absl::StatusOr<Context> GetContext(int64_t id);

  // Errors: kNotFound when an event names a missing node; kInvalidArgument for an
  // event type other than INPUT/OUTPUT.
  absl::Status PutEvents(const std::vector<Event>& events);
  absl::StatusOr<std::vector<Event>> GetEventsByArtifactIds(const std::vector<int64_t>& ids);
  absl::StatusOr<std::vector<Event>> GetEventsByExecutionIds(const std::vector<int64_t>& ids);

  // (context id, node id) pairs; existing pairs are kept. Errors: kNotFound... surfaces
  // as kInvalidArgument from the database's foreign keys.
  absl::Status PutAttributionsAndAssociations(
      const std::vector<std::pair<int64_t, int64_t>>& attributions,
      const std::vector<std::pair<int64_t, int64_t>>& associations);
  absl::StatusOr<std::vector<Context>> GetContextsOfArtifact(int64_t artifact_id);
  absl::StatusOr<std::vector<Context>> GetContextsOfExecution(int64_t execution_id);

  // Writes an execution with its artifacts, events and contexts in one transaction.
  // Contexts without an id are looked up by type and name and created when missing;
  // every artifact is attributed and the execution associated to every context.
  // Errors: those of the Put methods above.
  absl::StatusOr<PutExecutionResult> PutExecution(const Execution& execution,
                                                  const std::vector<ArtifactAndEvent>& artifacts,
                                                  const std::vector<Context>& contexts);

  // The lineage subgraph of an artifact up to options.max_hops executions away.
  // Errors: kNotFound, kInvalidArgument (negative hops).
  absl::StatusOr<LineageGraph> GetLineage(int64_t artifact_id, const LineageOptions& options = {});

  // How two models differ in what made them: inputs (uris, fingerprints, spans and
  // other properties of every upstream artifact), parameters of the execution that
  // produced each, code version and environment. Errors: kNotFound.
  absl::StatusOr<ModelDiff> Diff(int64_t model_a, int64_t model_b);

 private:
  MetadataStore(std::unique_ptr<Backend> backend, StoreOptions options);
  absl::Status Open();
  // Runs fn inside a transaction, retrying it whole on kUnavailable until the busy
  // deadline. fn must be safe to run again (assign its outputs, don't append).
  absl::Status Transaction(bool write, const std::function<absl::Status()>& fn);
  absl::StatusOr<std::vector<Context>> ContextsOf(TypeKind kind, int64_t node_id);
  // Transaction for a function returning StatusOr<T>: its value, or its error.
  template <typename T, typename Fn>
  absl::StatusOr<T> InTransaction(bool write, Fn fn) {
    T out;
    absl::Status s = Transaction(write, [&]() -> absl::Status {
      absl::StatusOr<T> r = fn();
      if (!r.ok()) return r.status();
      out = *std::move(r);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  std::unique_ptr<Backend> backend_;
  StoreOptions options_;
  QueryExecutor executor_;
  MetadataAccessObject mao_;
  int schema_version_ = 0;
};

// The model diff of two upstream lineage graphs (see MetadataStore::Diff); exposed for
// tests and for callers that already hold the graphs.
ModelDiff DiffLineage(int64_t model_a, const LineageGraph& a, int64_t model_b,
                      const LineageGraph& b);

}  // namespace kiln::metadata

#endif  // KILN_METADATA_METADATA_STORE_H_
