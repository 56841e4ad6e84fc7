// The pipeline runner's use of the metadata store: the cache index (executions carrying a
// `cache_key` custom property, with the path and content fingerprint of each output) and
// the records of a run — every component an execution in the "pipeline", "pipeline_run"
// and "component" contexts (the Recorder's conventions, recorder.h).
//
// A kiln command run as a component records its own execution (with its parameters,
// spans and metrics); the runner then completes that record — rewrites its outputs'
// staging paths to their final paths, adds the cache key and the contexts — in one
// transaction. It writes the record itself only for `command:` components and commands
// that record nothing, so every component has exactly one execution per run.
//
// Not thread-safe (one MetadataStore connection).
#ifndef KILN_PIPELINE_RUN_RECORDS_H_
#define KILN_PIPELINE_RUN_RECORDS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/metadata/metadata_store.h"

namespace kiln::pipeline {

class RunRecords {
 public:
  // Opens the store at `url` ("" = $KILN_HOME/metadata.sqlite) for one run of `pipeline`.
  // Errors: those of metadata::OpenStore.
  static absl::StatusOr<std::unique_ptr<RunRecords>> Open(const std::string& url,
                                                          std::string pipeline, std::string run_id);

  // The store's URL as child commands should be given it (never empty).
  const std::string& url() const { return url_; }

  struct CachedOutput {
    std::string uri;
    std::string fingerprint;
  };
  struct CacheHit {
    int64_t execution_id = 0;
    std::string type;
    int exit_code = 0;
    std::string run;  // the run that produced it ("" when unknown)
    std::map<std::string, CachedOutput> outputs;
  };
  // The newest complete execution with `cache_key` that recorded every output in
  // `outputs` and whose outputs still hold what they held: `verify(uri, fingerprint)`
  // decides. nullopt when there is none.
  using Verify = std::function<bool(const std::string& uri, const std::string& fingerprint)>;
  absl::StatusOr<std::optional<CacheHit>> FindCached(const std::string& cache_key,
                                                     const std::vector<std::string>& outputs,
                                                     const Verify& verify);

  // Records `component` as CACHED in this run: a new execution of the hit's type with
  // `cached_from` = the hit, in the run's contexts, the reused outputs attributed to them.
  absl::StatusOr<int64_t> RecordCached(const std::string& component, const CacheHit& hit);

  struct Input {
    std::string role;
    std::string uri;
    std::string type;  // used only when no artifact is recorded at uri yet
  };
  struct Output {
    std::string name;
    std::string artifact_type;
    std::string staging_uri;  // where the command wrote it
    std::string uri;          // where it is now
    std::string fingerprint;
  };
  struct Completion {
    std::string component;
    std::string execution_type;  // used when the runner writes the record
    std::string cache_key;       // "" for a component that is never cached
    int exit_code = 0;
    int attempts = 1;
    int64_t started_ms = 0;           // when the last attempt started
    bool adopt = false;               // the command recorded itself: complete its record
    std::string staging_root;         // the component's staging directory
    metadata::Properties parameters;  // for a record the runner writes
    std::vector<Input> inputs;
    std::vector<Output> outputs;
  };
  // Records a successful (exit 0) or findings (exit 3) completion. Returns the execution id.
  absl::StatusOr<int64_t> RecordCompleted(const Completion& c);
  // Records a failed component (no outputs); `reason` becomes a custom property.
  absl::StatusOr<int64_t> RecordFailed(const Completion& c, const std::string& reason);

  // For `COMPONENT.OUTPUT@previous`: the output `output` of the newest complete execution
  // of `component` in this pipeline (cached ones are copies of an earlier one) whose
  // recorded fingerprint differs from `current_fingerprint`, which `verify` accepts and
  // whose run did not end stopped or failed (a bad day's statistics are no baseline).
  // nullopt when there is none (a first run).
  absl::StatusOr<std::optional<CachedOutput>> FindPrevious(const std::string& component,
                                                           const std::string& output,
                                                           const std::string& current_fingerprint,
                                                           const Verify& verify);

  // The default baseline of an evaluate component: the model that the newest evaluation
  // of this pipeline blessed (an Evaluator execution that exited 0), skipping models
  // whose content fingerprint — computed by `fingerprint`, which fails for a model that is
  // gone — equals `candidate_fingerprint`. nullopt when no other blessed model exists.
  using FingerprintFn = std::function<absl::StatusOr<std::string>(const std::string& uri)>;
  absl::StatusOr<std::optional<CachedOutput>> FindBlessedModel(
      const std::string& candidate_fingerprint, const FingerprintFn& fingerprint);

  // Records an approval of a held run (`kiln approve`): an Approval execution in the run's
  // contexts with the user, host, note and time.
  absl::StatusOr<int64_t> RecordApproval(const std::string& user, const std::string& host,
                                         const std::string& note);
  // Whether this run has an approval recorded.
  absl::StatusOr<bool> Approved();

  // Records that the run started: the run's context (created now if it is new) gets the
  // custom properties pipeline, run_dir, state "running" and started_ms (kept from the
  // first start when a run id is run again), so a dashboard sees runs in progress.
  absl::Status RecordRunStart(const std::string& run_dir, int64_t started_ms);

  // Records how the run ended ("succeeded", "stopped", "held", ...) on its context, so
  // later runs can tell a stopped run's artifacts apart (@previous skips them). A run
  // that recorded nothing has no context: nothing to do.
  absl::Status RecordRunState(const std::string& state);

  // Ids of this pipeline's and this run's contexts, 0 while nothing is recorded.
  std::pair<int64_t, int64_t> ContextIds();

 private:
  RunRecords(std::unique_ptr<metadata::MetadataStore> store, std::string url, std::string pipeline,
             std::string run_id)
      : store_(std::move(store)),
        url_(std::move(url)),
        pipeline_(std::move(pipeline)),
        run_id_(std::move(run_id)) {}
  std::vector<metadata::Context> Contexts(const std::string& component) const;
  // When this run id was first recorded for this pipeline (by RecordRunStart; for a run run
  // again, approved or resumed, its first start), so that history lookups see only what
  // came before it; nullopt before the run started. Read from the store once per run.
  absl::StatusOr<std::optional<int64_t>> EarlierThan();
  // The id of the context `type`/`name`, or 0 when it does not exist.
  absl::StatusOr<int64_t> ContextId(const std::string& type, const std::string& name);
  // The execution the command recorded for this completion, if any.
  absl::StatusOr<std::optional<metadata::Execution>> FindOwnRecord(const Completion& c);
  // Completes the command's own record `e`: the runner's properties and the contexts,
  // and (when `publish`) its outputs moved from staging to their final paths.
  absl::StatusOr<int64_t> Adopt(const Completion& c, metadata::Execution e, bool publish);
  absl::StatusOr<int64_t> RecordByRunner(const Completion& c, metadata::ExecutionState state,
                                         metadata::Properties extra);
  absl::StatusOr<int64_t> NewestAt(const std::string& uri);

  std::unique_ptr<metadata::MetadataStore> store_;
  std::string url_;
  std::string pipeline_;
  std::string run_id_;
  std::optional<int64_t> earlier_than_;  // EarlierThan once the run has started
};

// Custom properties the runner writes on executions.
inline constexpr char kCacheKeyProperty[] = "cache_key";
inline constexpr char kCachedFromProperty[] = "cached_from";
inline constexpr char kApprovalType[] = "Approval";

}  // namespace kiln::pipeline

#endif  // KILN_PIPELINE_RUN_RECORDS_H_
