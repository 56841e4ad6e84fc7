// The `schedule:` section of a pipeline file, read by `kiln schedule`: when to run the
// pipeline (cron times in a time zone, and/or when a new span directory appears) and what
// to do about runs missed while the scheduler was down or busy. The format is in
// `kiln schedule --help` (cli/schedule_command.cc). Thread-safe (pure functions).
#ifndef KILN_PIPELINE_SCHEDULE_SPEC_H_
#define KILN_PIPELINE_SCHEDULE_SPEC_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kiln/pipeline/cron.h"

namespace YAML {
class Node;
}

namespace kiln::pipeline {

// What happens to cron fire times that passed while the scheduler was not running, or
// while the pipeline was running (its own run or another holding the lock).
enum class MissedPolicy {
  kSkip,     // logged and dropped; the next run is at the next fire time
  kRunOnce,  // one run as soon as possible, however many were missed (as anacron)
};
std::string_view MissedPolicyName(MissedPolicy p);  // "skip", "run_once"

struct ScheduleSpec {
  std::optional<CronExpr> cron;  // `cron:`; none: no timed runs
  std::string timezone = "UTC";  // `timezone:`, as written
  absl::TimeZone zone = absl::UTCTimeZone();
  // `new_span:`, absolute: a directory pattern whose last component holds {SPAN}
  // ("/data/span-{SPAN}"); "" when there is no span trigger.
  std::string new_span;
  double poll_seconds = 30;                   // `poll_seconds:`: how often new_span is listed
  MissedPolicy missed = MissedPolicy::kSkip;  // `missed:`
};

// Parses the value of `schedule:` in `file` (relative paths are relative to `dir`, the
// file's directory). Errors: kInvalidArgument "FILE:LINE: schedule...: WHAT" for an
// unknown key, a bad cron expression (naming its field and token), an unknown time zone,
// a new_span without {SPAN} in its last component, a poll interval outside
// [0.05, 86400] s, an unknown missed policy, or neither cron nor new_span.
absl::StatusOr<ScheduleSpec> ParseScheduleSpec(const YAML::Node& node, const std::string& file,
                                               const std::string& dir);

}  // namespace kiln::pipeline

#endif  // KILN_PIPELINE_SCHEDULE_SPEC_H_
