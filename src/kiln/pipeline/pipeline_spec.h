// A pipeline file (YAML) read into a checked Pipeline: named components of built-in kinds
// (kiln's own commands) or `command:` components, wired by artifact references
// (COMPONENT.OUTPUT). Every error names the file and line at fault. The full format is in
// `kiln run --help` (cli/run_command.cc). Thread-safe (pure functions).
#ifndef KILN_PIPELINE_PIPELINE_SPEC_H_
#define KILN_PIPELINE_PIPELINE_SPEC_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/base/env.h"
#include "kiln/pipeline/kinds.h"
#include "kiln/pipeline/schedule_spec.h"

namespace kiln::pipeline {

enum class OnFindings { kStop, kContinue };
// What a validate component that found only drift or skew anomalies does to the run:
// hold the push until `kiln approve RUN` (default), stop the run like any anomaly, or
// carry on as if there were none.
enum class OnDrift { kHold, kStop, kContinue };

// `inputs: {data: import.out}`: this component reads output `output` of `component`.
struct InputRef {
  std::string name;       // "data"
  std::string component;  // "import"
  std::string output;     // "out"
  // `stats.out@previous`: not this run's artifact but the one this output held in the
  // newest earlier run of the pipeline where its content differed (the previous span's
  // statistics, for drift). Absent on a pipeline's first run: the input is then left out.
  bool previous = false;
  int line = 0;
};

// One entry of `args:`; the key with '-' written as '_' ("eval_data").
struct Arg {
  std::string key;
  std::vector<std::string> values;  // a scalar is one value; a list, one per element
  // The kiln flag takes no value (--overwrite): values is {"true"} or {"false"}.
  bool is_flag = false;
  int line = 0;
};

struct OutputDecl {
  std::string name;
  std::string artifact_type;
};

struct Component {
  std::string name;
  std::string kind;                            // a built-in kind (kinds.h) or "command"
  int line = 0;                                // where the component starts
  std::vector<InputRef> inputs;                // sorted by name
  std::map<std::string, Arg> args;             // built-in kinds only
  std::vector<std::string> command;            // command components: argv
  std::map<std::string, std::string> env;      // command components: extra environment
  std::vector<OutputDecl> outputs;             // the kind's, or those declared
  std::vector<std::string> after;              // ordering without an artifact
  int retries = 0;                             // extra attempts after a retryable failure
  double retry_backoff_seconds = 1;            // first retry's delay; doubles each retry
  double timeout_seconds = 0;                  // 0: none
  OnFindings on_findings = OnFindings::kStop;  // what exit code 3 does to the run
  OnDrift on_drift = OnDrift::kHold;           // validate components only
  bool cache = true;                           // false: always run
};

// Dependencies between components, by index into Pipeline::components.
struct Dag {
  std::vector<std::vector<int>> upstream;    // sorted, unique
  std::vector<std::vector<int>> downstream;  // sorted, unique
  // Every component after all its upstream ones; among those ready together, file order.
  std::vector<int> order;
  // Parallel groups: level 0 has no upstream; level k components depend on level k-1 at
  // most. Components of one level can run at the same time.
  std::vector<std::vector<int>> levels;
};

// One `alerts:` entry (alerts.h): {webhook: URL, retries: 3, backoff_seconds: 1,
// timeout_seconds: 5} or {log: PATH}.
struct AlertSink {
  std::string webhook;         // http:// URL
  std::string log;             // absolute path of a JSON Lines file
  int retries = 3;             // further attempts after a failed POST that may pass on a retry
  double backoff_seconds = 1;  // before the first retry; doubles each retry
  double timeout_seconds = 5;  // per POST
  int line = 0;
};

struct Pipeline {
  std::string name;
  std::string file;      // as given
  std::string dir;       // the file's directory, absolute: components run here
  std::string root;      // absolute: runs live in ROOT/RUN_ID
  std::string metadata;  // as written ("" when absent)
  std::vector<Component> components;
  std::vector<AlertSink> alerts;
  std::optional<ScheduleSpec> schedule;  // `schedule:`, read by `kiln schedule`
  Dag dag;

  // Index of the component named `name`, or -1.
  int Find(std::string_view name) const;
};

// Parses `yaml` read from `file` (used in messages and to resolve relative paths).
// `catalog`, when given, checks each built-in component's args against the real flags
// of its kiln command. Errors: kInvalidArgument naming file:line (unknown key, bad value,
// unknown kind, flag or reference, missing input, a cycle).
absl::StatusOr<Pipeline> ParsePipeline(std::string_view yaml, const std::string& file,
                                       const FlagCatalog* catalog);

// Reads and parses the file at `path`. Errors: those of ParsePipeline; kNotFound.
absl::StatusOr<Pipeline> LoadPipeline(Env* env, const std::string& path,
                                      const FlagCatalog* catalog);

// Builds the DAG from inputs and `after:`. Errors: kInvalidArgument for a reference to an
// unknown component or output, or a cycle (naming its components in order).
absl::StatusOr<Dag> BuildDag(const Pipeline& pipeline);

// "eval-data" -> "eval_data".
std::string ArgKey(std::string_view key);
// "eval_data" -> "--eval-data".
std::string FlagFor(std::string_view key);

}  // namespace kiln::pipeline

#endif  // KILN_PIPELINE_PIPELINE_SPEC_H_
