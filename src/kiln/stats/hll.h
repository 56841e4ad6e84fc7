// HyperLogLog: a mergeable estimate of the number of distinct values, from their 64-bit
// hashes (Flajolet et al. 2007). 2^p one-byte registers; the top p bits of a hash pick a
// register, which keeps the longest run of leading zeros (+1) seen in the other bits.
//
// Estimate() uses Ertl's "improved raw estimator" (O. Ertl, "New cardinality estimation
// algorithms for HyperLogLog sketches", 2017). It needs no bias tables and has no
// switch-over point: while many registers are empty it behaves like linear counting
// (m ln(m / empty)), so tiny counts come out almost exact (0 exactly, 1 and 10 within a
// few thousandths), and from there up it is unbiased with standard error 1.04 / sqrt(2^p).
//
// Hashes must be well mixed (kiln::Hash64). Not thread-safe; copyable and movable.
#ifndef KILN_STATS_HLL_H_
#define KILN_STATS_HLL_H_

#include <bit>
#include <cstdint>
#include <vector>

namespace kiln::stats {

class HyperLogLog {
 public:
  static constexpr int kMinPrecision = 4;
  static constexpr int kMaxPrecision = 18;

  // precision is clamped to [kMinPrecision, kMaxPrecision]; 14 uses 16 KiB, error 0.81%.
  explicit HyperLogLog(int precision = 14);

  void AddHash(uint64_t hash) {
    const uint64_t idx = hash >> (64 - p_);
    // The guard bit caps the run at 64 - p zeros, so a register never exceeds 64 - p + 1.
    const uint64_t rest = (hash << p_) | (uint64_t{1} << (p_ - 1));
    const uint8_t rank = static_cast<uint8_t>(std::countl_zero(rest) + 1);
    if (rank > registers_[idx]) registers_[idx] = rank;
  }

  // The union of both inputs. With a different precision, the finer sketch is folded down
  // to the coarser one first (exactly what the coarser sketch would have seen), so `this`
  // may end up with other's smaller precision.
  void Merge(const HyperLogLog& other);

  // Estimated number of distinct hashes added; 0 for an empty sketch.
  double Estimate() const;
  // Relative standard error 1.04 / sqrt(2^p).
  double RelativeError() const;

  int precision() const { return p_; }
  const std::vector<uint8_t>& registers() const { return registers_; }

 private:
  // Rewrites the registers as if the sketch had been built with precision p < p_.
  void FoldTo(int p);

  int p_;
  std::vector<uint8_t> registers_;
};

}  // namespace kiln::stats

#endif  // KILN_STATS_HLL_H_
