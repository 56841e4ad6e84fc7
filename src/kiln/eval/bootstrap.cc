#include "kiln/eval/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "kiln/base/hash.h"
#include "kiln/base/str.h"

namespace kiln::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// SplitMix64 (Steele, Lea and Flood): tiny, fast, and fully specified, unlike the
// distributions of <random>, whose output differs between standard libraries.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) (Lemire's multiply-shift; the bias is below 2^-32 for n < 2^32).
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

 private:
  uint64_t state_;
};

double Relative(double candidate, double baseline) {
  return baseline != 0 && std::isfinite(baseline) ? (candidate - baseline) / std::abs(baseline)
                                                  : kNaN;
}

}  // namespace

double Quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

absl::StatusOr<std::map<std::string, MetricDelta>> CompareModels(const MetricsCalculator& candidate,
                                                                 const MetricsCalculator& baseline,
                                                                 const BootstrapOptions& options,
                                                                 std::string_view stream) {
  if (candidate.num_rows() != baseline.num_rows() ||
      candidate.num_queries() != baseline.num_queries()) {
    return absl::InvalidArgumentError(
        StrCat("the candidate holds ", candidate.num_rows(), " rows and ", candidate.num_queries(),
               " queries, the baseline ", baseline.num_rows(), " and ", baseline.num_queries(),
               ": both must be scored on the same rows"));
  }
  if (options.samples < 0) {
    return absl::InvalidArgumentError(StrCat("bootstrap samples ", options.samples, " < 0"));
  }
  if (!(options.confidence > 0 && options.confidence < 1)) {
    return absl::InvalidArgumentError(
        StrCat("bootstrap confidence ", options.confidence, " is not in (0, 1)"));
  }
  const MetricValues cand = candidate.ComputeResampled({}, {});
  const MetricValues base = baseline.ComputeResampled({}, {});
  std::map<std::string, MetricDelta> out;
  for (const auto& [name, c] : cand) {
    auto b = base.find(name);
    if (b == base.end()) continue;
    MetricDelta& d = out[name];
    d.candidate = c;
    d.baseline = b->second;
    d.absolute = c - b->second;
    d.relative = Relative(c, b->second);
  }
  if (options.samples == 0) return out;

  const size_t n = candidate.num_rows(), q = candidate.num_queries();
  SplitMix64 rng(HashCombine(options.seed, Hash64(stream)));
  std::vector<double> row_mult(n), query_mult(q);
  std::map<std::string, std::vector<double>> abs_diffs, rel_diffs;
  for (int s = 0; s < options.samples; ++s) {
    std::fill(row_mult.begin(), row_mult.end(), 0.0);
    std::fill(query_mult.begin(), query_mult.end(), 0.0);
    for (size_t i = 0; i < n; ++i) row_mult[rng.Below(n)] += 1;
    for (size_t i = 0; i < q; ++i) query_mult[rng.Below(q)] += 1;
    const MetricValues c = candidate.ComputeResampled(row_mult, query_mult);
    const MetricValues b = baseline.ComputeResampled(row_mult, query_mult);
    for (const auto& [name, cv] : c) {
      auto it = b.find(name);
      if (it == b.end()) continue;
      const double diff = cv - it->second;
      if (std::isfinite(diff)) abs_diffs[name].push_back(diff);
      const double rel = Relative(cv, it->second);
      if (std::isfinite(rel)) rel_diffs[name].push_back(rel);
    }
  }
  const double tail = (1 - options.confidence) / 2;
  auto interval = [&](std::vector<double>& v) -> std::optional<Interval> {
    if (v.empty() || 2 * v.size() < static_cast<size_t>(options.samples)) return std::nullopt;
    std::sort(v.begin(), v.end());
    return Interval{Quantile(v, tail), Quantile(v, 1 - tail)};
  };
  for (auto& [name, d] : out) {
    d.resamples = static_cast<int>(abs_diffs[name].size());
    if (std::isfinite(d.absolute)) d.absolute_ci = interval(abs_diffs[name]);
    if (std::isfinite(d.relative)) d.relative_ci = interval(rel_diffs[name]);
  }
  return out;
}

}  // namespace kiln::eval
