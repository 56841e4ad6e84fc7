// eval.yaml: what `kiln evaluate` measures and what a model must meet to be blessed
// (TFMA's EvalConfig). Every key is optional:
//
//   label: clicked               # default: the label the model was trained on
//   weight: importance           # a column of row weights (default: every row weighs 1)
//   decision_threshold: 0.5      # binary: predicted positive when score >= this
//   top_k: 3                     # multiclass: k of top_k_accuracy
//   ranking: {query_key: session_id, k: [5, 10]}   # ndcg@5, ndcg@10 (k default [10])
//   slicing:                     # "overall" is always evaluated
//     - feature: user_type       # one slice per value ("user_type=new"; a missing value
//                                #   is its own slice, "user_type=(missing)")
//     - features: [user_type, device]   # crosses: "user_type=new,device=mobile"
//     - feature: price           # numeric buckets: "price=[-inf,10)", "price=[10,20)",
//       boundaries: [10, 20]     #   "price=[20,inf)"
//   thresholds:
//     - metric: auc
//       slices: [overall, user_type]   # slice names, slicing specs ("user_type": each of
//                                      # its slices) or `all`; default [overall]
//       lower: 0.7                     # value bounds: lower <= value <= upper
//       upper: 1.0
//       change:                        # vs --baseline
//         absolute: -0.01              # least improvement required; negative allows that
//         relative: -0.02              #   much worsening (relative: of the baseline value)
//         direction: higher_is_better  # default: the metric's own
//       min_examples: 100              # smaller slices skip this check
//   bootstrap: {samples: 200, seed: 42, confidence: 0.95}
//
// A change check fails only when the whole confidence interval of the improvement lies
// below what is required (significantly worse); with samples: 0, when the point
// improvement does.
#ifndef KILN_EVAL_EVAL_CONFIG_H_
#define KILN_EVAL_EVAL_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/eval/bootstrap.h"

namespace kiln::eval {

struct SliceDimension {
  std::string feature;
  std::vector<double> boundaries;  // ascending; empty: one slice per value
};

// One way to slice the rows: by one feature, or by the cross of several.
struct SliceSpec {
  std::vector<SliceDimension> dimensions;
  // "user_type" or "user_type,device": how thresholds name every slice of this spec.
  std::string Key() const;
};

struct ChangeThreshold {
  std::optional<double> absolute;  // least improvement required, in the metric's units
  std::optional<double> relative;  // least improvement required, as a fraction of baseline
  int direction = 0;               // +1 higher is better, -1 lower; 0: the metric's own
};

struct MetricThreshold {
  std::string metric;
  std::vector<std::string> slices = {"overall"};  // names, spec keys or "all"
  std::optional<double> lower;
  std::optional<double> upper;
  std::optional<ChangeThreshold> change;
  uint64_t min_examples = 0;
  int line = 0;  // where the threshold starts in the config (1-based), for messages
};

struct RankingConfig {
  std::string query_key;
  std::vector<int> k = {10};
};

struct EvalConfig {
  std::string label;   // "" = the model's label
  std::string weight;  // "" = unweighted
  double decision_threshold = 0.5;
  int top_k = 3;
  std::optional<RankingConfig> ranking;
  std::vector<SliceSpec> slicing;
  std::vector<MetricThreshold> thresholds;
  BootstrapOptions bootstrap;
  std::string source;  // the file it came from, for messages
};

// Parses eval.yaml; `source` names it in errors. Errors: kInvalidArgument as
// "SOURCE line N: ..." naming the key at fault (unknown keys are errors, listing the
// valid ones).
absl::StatusOr<EvalConfig> ParseEvalConfig(std::string_view yaml, std::string_view source);

}  // namespace kiln::eval

#endif  // KILN_EVAL_EVAL_CONFIG_H_
