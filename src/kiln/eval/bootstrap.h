// Paired bootstrap confidence intervals for the difference of a metric between two models
// scored on the same rows, so that "the candidate is worse" is a statistical decision,
// not noise.
//
// Each resample draws as many rows as the slice has, uniformly with replacement, and
// weighs both models' metrics with the same draw (paired), giving one difference
// candidate - baseline per resample; ranking metrics (ndcg@K, a mean over queries)
// resample whole queries instead of rows. The interval is the percentile interval of
// those differences (numpy's linear interpolation between order statistics).
//
// Determinism: the draws come from SplitMix64 seeded with the seed and a hash of the
// slice's name, and an index is drawn as (64 random bits * n) >> 64, so the same seed
// gives the same intervals on every machine, whatever other slices are evaluated.
// Thread-safe (pure functions).
#ifndef KILN_EVAL_BOOTSTRAP_H_
#define KILN_EVAL_BOOTSTRAP_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "kiln/eval/metrics.h"

namespace kiln::eval {

struct BootstrapOptions {
  int samples = 200;         // resamples; 0: no intervals (checks use the point difference)
  uint64_t seed = 42;        // same seed, same intervals
  double confidence = 0.95;  // in (0, 1)
};

struct Interval {
  double lower = 0;
  double upper = 0;
};

// One metric of one slice: both models' values and their difference.
struct MetricDelta {
  double candidate = 0;
  double baseline = 0;
  double absolute = 0;  // candidate - baseline
  double relative = 0;  // (candidate - baseline) / |baseline|; NaN when the baseline is 0
  // Percentile intervals of the differences; absent without resamples, or when fewer than
  // half of the resamples define the difference (e.g. auc on resamples of one class).
  std::optional<Interval> absolute_ci;
  std::optional<Interval> relative_ci;
  int resamples = 0;  // resamples that defined the absolute difference
};

// The difference of every scalar metric of `candidate` and `baseline`, which must hold
// the same rows (and queries) in the same order. `stream` names the slice (it seeds its
// draws). Errors: kInvalidArgument when the two hold different numbers of rows or queries,
// or for options out of range.
absl::StatusOr<std::map<std::string, MetricDelta>> CompareModels(const MetricsCalculator& candidate,
                                                                 const MetricsCalculator& baseline,
                                                                 const BootstrapOptions& options,
                                                                 std::string_view stream);

// The q-quantile (0 <= q <= 1) of `sorted` values with linear interpolation between order
// statistics (numpy's default method). `sorted` must be non-empty and ascending.
double Quantile(const std::vector<double>& sorted, double q);

}  // namespace kiln::eval

#endif  // KILN_EVAL_BOOTSTRAP_H_
