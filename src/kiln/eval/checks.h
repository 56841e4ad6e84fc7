// Checks: an eval config's thresholds applied to the metrics of each slice, and the
// blessing that follows (blessed when no check fails).
//
//  - Value bounds compare the candidate's value: lower <= value <= upper.
//  - Change thresholds compare with the baseline as an improvement: candidate - baseline
//    for a higher-is-better metric, baseline - candidate for a lower-is-better one (and
//    relative: divided by |baseline|). The check fails only when the whole confidence
//    interval of the improvement lies below the required improvement, so noise does not
//    fail a model; without an interval (bootstrap off, or too few resamples define the
//    metric) the point improvement decides. With no baseline, change checks are skipped.
//  - A metric that is undefined on a slice (NaN: e.g. auc on a slice of one class) fails
//    every check on it, naming why; so does a named slice with no rows.
//  - A slice with fewer rows than the threshold's min_examples skips it.
// Thread-safe (pure functions).
#ifndef KILN_EVAL_CHECKS_H_
#define KILN_EVAL_CHECKS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/eval/bootstrap.h"
#include "kiln/eval/eval_config.h"
#include "kiln/eval/metrics.h"

namespace kiln::eval {

// One slice's results for one or two models.
struct SliceResult {
  std::string name;
  std::string spec;  // "" for overall
  uint64_t rows = 0;
  Metrics candidate;
  std::optional<Metrics> baseline;
  std::map<std::string, MetricDelta> changes;  // with a baseline
};

enum class CheckStatus { kPass, kFail, kSkipped };
std::string_view CheckStatusName(CheckStatus s);  // "pass", "fail", "skipped"

struct CheckResult {
  std::string metric;
  std::string slice;
  std::string kind;                  // "lower", "upper", "change_absolute", "change_relative"
  double threshold = 0;              // the bound, or the improvement required
  double value = 0;                  // the metric's value, or the improvement (NaN when undefined)
  std::optional<Interval> interval;  // change checks: the improvement's interval
  CheckStatus status = CheckStatus::kPass;
  std::string reason;  // one sentence: why it passed, failed or was skipped
  int line = 0;        // the threshold's line in the config
};

// Checks that every threshold names a metric the model reports (`metric_names`) and that
// change thresholds have a direction. Errors: kInvalidArgument naming the config line.
absl::Status ValidateThresholds(const EvalConfig& config,
                                const std::vector<std::string>& metric_names);

// Applies `config.thresholds` to `slices` (the first is "overall"). `metric_names` are
// the metrics the model reports. Errors: those of ValidateThresholds.
absl::StatusOr<std::vector<CheckResult>> RunChecks(const EvalConfig& config,
                                                   const std::vector<SliceResult>& slices,
                                                   const std::vector<std::string>& metric_names,
                                                   bool has_baseline);

}  // namespace kiln::eval

#endif  // KILN_EVAL_CHECKS_H_
