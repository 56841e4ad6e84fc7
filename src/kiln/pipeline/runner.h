// The local pipeline runner behind `kiln run`: runs a Pipeline's components as child
// processes in dependency order, at most `parallel` at a time, with retries, timeouts,
// caching, gates and a record of every component in the metadata store.
//
// A run lives in ROOT/RUN_ID: each component's log (COMPONENT/log.txt), cache key and
// its ingredients (COMPONENT/cache_key.txt) and outputs (COMPONENT/OUTPUT), and run.json,
// the summary. A component whose cache key (kinds.h,
// invocation.h) equals that of a complete earlier execution whose outputs still hold
// what they held is not run again: its earlier outputs are used. Outputs are written in
// COMPONENT/.staging and renamed into place only when the attempt succeeded, and only
// recorded outputs are trusted, so a run killed at any point (kill -9 included) is
// resumed by running the pipeline again.
//
// Inputs written `COMPONENT.OUTPUT@previous` resolve to that output's artifact in the
// newest earlier run of the pipeline where it held something else (the previous span's
// statistics); an evaluate component without a baseline gets the latest model this
// pipeline blessed (other than the candidate) from the metadata store.
//
// Drift: a validate component whose anomalies (anomalies.json) are all drift or skew
// comparisons does not stop the run (on_drift: hold, the default). Everything else runs,
// but push components are held until the run is approved (`kiln approve RUN`, recorded
// in the metadata store): running the pipeline again under the same run id then pushes.
//
// Exit codes of a component's attempt: 0 success; 3 success with findings (anomalies,
// not blessed) — by default the run stops there: nothing more starts (on_findings:
// continue to go on); 75 (EX_TEMPFAIL), death by a signal, a timeout and, for kiln's own
// commands, 1 (internal or I/O error) are retried with exponential backoff up to
// `retries`; anything else (2: bad usage or input) fails the component at once, and
// what depends on it is skipped (independent components still run).
//
// Not thread-safe: one run at a time per process (it handles SIGINT and SIGTERM while
// running: children are sent SIGTERM, then SIGKILL after a grace period).
#ifndef KILN_PIPELINE_RUNNER_H_
#define KILN_PIPELINE_RUNNER_H_

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/base/env.h"
#include "kiln/pipeline/kinds.h"
#include "kiln/pipeline/pipeline_spec.h"

namespace kiln::pipeline {

struct RunOptions {
  std::string metadata_url;  // default: the pipeline's metadata:, else $KILN_HOME's store
  std::string run_id;        // default: UTC time and a random suffix (20250114-093015-3f2a)
  int parallel = 0;          // at most this many components at once; 0: the core count
  bool use_cache = true;     // false: run everything (still records cache keys)
  std::string kiln_binary = "/proc/self/exe";  // what runs the built-in kinds
  // The flags of this binary's commands; required (tells which take --metadata).
  const FlagCatalog* catalog = nullptr;
  FILE* progress = nullptr;       // a line per finished component, or nullptr
  double kill_grace_seconds = 5;  // SIGTERM to SIGKILL, on timeout or interrupt
  Env* env = Env::Default();
};

// kRunning: an attempt is under way (or it waits to retry). kHeld: a push not run
// because drift was found and the run is not approved.
enum class ComponentState {
  kPending,
  kRunning,
  kRan,
  kCached,
  kFailed,
  kSkipped,
  kCanceled,
  kHeld
};
std::string_view StateName(ComponentState s);  // "pending", "ran", "cached", ...

struct ComponentResult {
  std::string name;
  std::string kind;
  std::vector<std::string> upstream;  // the components it waits for
  ComponentState state = ComponentState::kPending;
  double seconds = 0;  // first attempt's start to the last's end; cache check when cached
  int attempts = 0;
  int exit_code = -1;     // of the last attempt (or the reused execution); -1: none
  bool findings = false;  // exited 3
  // A validate component whose anomalies are all drift or skew: the features concerned.
  std::vector<std::string> drift;
  std::string note;  // why it failed or was skipped; where a cached result came from
  std::string log;   // RUN_DIR/COMPONENT/log.txt ("" when nothing was run)
  std::string cache_key;
  int64_t execution_id = 0;
  std::map<std::string, std::string> outputs;  // name -> artifact path
};

struct RunResult {
  std::string pipeline;
  std::string pipeline_file;  // absolute
  std::string run_id;
  std::string run_dir;
  std::string metadata_url;
  // "succeeded", "failed", "stopped" (by a gate), "held" (drift: a push waits for
  // `kiln approve`), "interrupted".
  std::string state;
  std::string stopped_by;  // the gate component
  std::string held_by;     // the validate component that found drift
  bool approved = false;   // `kiln approve` was recorded for this run
  int signal = 0;          // the signal that interrupted the run
  double seconds = 0;
  int64_t pipeline_context_id = 0;
  int64_t run_context_id = 0;
  std::vector<ComponentResult> components;  // in file order

  // 0 succeeded, 3 stopped by a gate or held, 1 failed, 128+signal interrupted.
  int ExitCode() const;
};

// Runs `pipeline`. Component failures are in the result, not the status. Errors: the
// metadata store cannot be opened; ROOT/RUN_ID cannot be created.
absl::StatusOr<RunResult> RunPipeline(const Pipeline& pipeline, const RunOptions& options);

// run.json: the result as JSON.
std::string RunJson(const RunResult& result);
// The summary table printed by `kiln run`.
std::string SummaryTable(const RunResult& result);

}  // namespace kiln::pipeline

#endif  // KILN_PIPELINE_RUNNER_H_
