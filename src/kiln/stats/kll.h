// KllSketch: a mergeable quantile sketch over doubles (Karnin, Lang, Liberty, "Optimal
// Quantile Approximation in Streams", 2016). It keeps at most 5k + 8 log2(n/k) values: a
// 2k input buffer plus levels ("compactors") of capacity k, 2k/3, 4k/9, ... (at least 8)
// from the top down. Level h holds values standing for 2^h inputs each. A full level is
// sorted and every other value (odd or even positions, by a coin flip) moves up a level.
//
// Error guarantee. Every compaction of level h moves the estimated rank of any fixed value
// x by +2^h, -2^h (each with probability 1/2) or 0, independently of what came before. So
// the rank error at x is a sum of bounded zero-mean steps and Azuma-Hoeffding gives
//   P(|estimated rank(x) - rank(x)| > t) <= 2 exp(-t^2 / (2 S)),  S = sum of 4^h over
// every compaction done so far (in this sketch and everything merged into it). Which
// levels compact when depends only on counts, never on values or coins, so S is known
// exactly. RankErrorBound() reports t/n for a failure probability of 5e-5 per fixed x.
// Quantile(q) is off by more than the bound only if the bound fails at one of two fixed
// values (the data values at ranks q*n -+ bound*n), so one answer fails with probability
// <= 1e-4 and any 100 answers (say, percentiles) all hold together with probability >= 99%.
// For k = 200 and n = 1e6 the bound is about 1.8% (1.3% at 99% per answer, which is
// RankErrorBoundAt(0.005)); observed maxima over a percentile grid are around 0.2-0.8%.
// It is 0 until the first compaction, i.e. the sketch is exact while it holds every value.
//
// Determinism: coins come from a seeded generator (also stirred by the data being
// compacted), so the same inputs in the same order, and merges in the same order, give
// bit-identical sketches. Shards of identical data built with the same seed make the same
// choices, so their errors add instead of averaging; give shards distinct seeds.
//
// Not thread-safe; merge per-thread sketches instead. Copyable and movable.
#ifndef KILN_STATS_KLL_H_
#define KILN_STATS_KLL_H_

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/base/status.h"

namespace kiln::stats {

class KllSketch {
 public:
  static constexpr int kMinK = 8;
  static constexpr int kMaxK = 1 << 16;
  static constexpr uint64_t kDefaultSeed = 0x6b696c6e4b4c4c31ULL;  // "kilnKLL1"
  // Failure probability per fixed query value behind RankErrorBound().
  static constexpr double kRankErrorDelta = 5e-5;

  // k is clamped to [kMinK, kMaxK].
  explicit KllSketch(int k = 200);
  KllSketch(int k, uint64_t seed);

  // Amortized O(1): a radix sort of the ~k-value level-0 buffer per ~k/2 adds; the common
  // case is a compare for min/max and an append into a preallocated buffer. NaN is ignored.
  void Add(double v) {
    if (v != v) return;  // NaN has no rank; it would also break the sort's ordering
    if (v < min_) min_ = v;
    if (v > max_) max_ = v;
    ++n_;
    levels_[0].push_back(v);  // capacity reserved: never reallocates here
    if (++size_ >= capacity_) Compress();
  }

  // As if every value added to `other` had been added here (up to the coin flips).
  // Deterministic given both sketches and the merge order.
  void Merge(const KllSketch& other);

  uint64_t count() const { return n_; }
  // Exact. NaN when count() == 0.
  double min() const;
  double max() const;

  // The smallest retained value whose estimated rank (number of inputs <= it) reaches
  // q * count(); min() for q <= 0 and max() for q >= 1 (a NaN q counts as 0).
  // NaN when count() == 0.
  double Quantile(double q) const;
  // Quantile() of each q, sorting the retained values once.
  std::vector<double> Quantiles(const std::vector<double>& qs) const;

  // See the header comment: |rank error| / n with failure probability kRankErrorDelta per
  // fixed value (so 2 * kRankErrorDelta = 1e-4 per Quantile answer). 0 while exact.
  double RankErrorBound() const { return RankErrorBoundAt(kRankErrorDelta); }
  // The same bound for failure probability delta per fixed value, delta in (0, 1).
  double RankErrorBoundAt(double delta) const;

  // Calls fn(value, weight) for every retained value (weight 2^level), in no particular
  // order. The weights add up to count(); while the sketch is exact every weight is 1.
  template <typename Fn>
  void ForEachRetained(Fn&& fn) const {
    for (size_t h = 0; h < levels_.size(); ++h)
      for (double v : levels_[h]) fn(v, uint64_t{1} << h);
  }

  int k() const { return k_; }
  size_t num_retained() const { return size_; }

  // A self-checking (CRC32C) little-endian encoding of the whole state, including the
  // generator, so a deserialized sketch continues exactly as the original would.
  std::string Serialize() const;
  // kInvalidArgument if the bytes are not a KLL sketch; kDataLoss if they are corrupt.
  static absl::StatusOr<KllSketch> Deserialize(std::string_view bytes);

 private:
  void Compress();
  void CompactLevel(size_t h);
  void AddLevel();
  void RecomputeCapacities();
  uint64_t NextRandom();

  int k_;
  uint64_t n_ = 0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
  // levels_[0] is unsorted; every higher level is kept sorted.
  std::vector<std::vector<double>> levels_;
  std::vector<uint32_t> level_capacity_;
  size_t size_ = 0;      // values retained over all levels
  size_t capacity_ = 0;  // sum of level_capacity_
  uint64_t rng_;
  double variance_sum_ = 0;     // S in the header comment
  std::vector<double> merged_;  // reused by CompactLevel
  std::vector<uint64_t> sort_keys_;
};

namespace internal {
// Sorts `values` ascending (no NaN; -0 before +0); `scratch` is reused storage. Exposed
// for tests.
void SortValues(std::vector<double>* values, std::vector<uint64_t>* scratch);
}  // namespace internal

}  // namespace kiln::stats

#endif  // KILN_STATS_KLL_H_
