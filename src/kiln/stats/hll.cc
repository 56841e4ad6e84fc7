#include "kiln/stats/hll.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace kiln::stats {
namespace {

// sigma(x) = x + sum_{k>=1} x^(2^k) 2^(k-1): the contribution of the empty registers.
double Sigma(double x) {
  if (x == 1) return std::numeric_limits<double>::infinity();
  double y = 1, z = x, previous;
  do {
    x *= x;
    previous = z;
    z += x * y;
    y += y;
  } while (z != previous);
  return z;
}

// tau(x) = (1 - x - sum_{k>=1} (1 - x^(2^-k))^2 2^-k) / 3: the contribution of the
// registers that hit the maximum value.
double Tau(double x) {
  if (x == 0 || x == 1) return 0;
  double y = 1, z = 1 - x, previous;
  do {
    x = std::sqrt(x);
    previous = z;
    y *= 0.5;
    z -= (1 - x) * (1 - x) * y;
  } while (z != previous);
  return z / 3;
}

}  // namespace

HyperLogLog::HyperLogLog(int precision)
    : p_(std::clamp(precision, kMinPrecision, kMaxPrecision)), registers_(size_t{1} << p_, 0) {}

void HyperLogLog::FoldTo(int p) {
  const int d = p_ - p;
  std::vector<uint8_t> folded(size_t{1} << p, 0);
  const uint64_t low_mask = (uint64_t{1} << d) - 1;
  for (uint64_t i = 0; i < registers_.size(); ++i) {
    const uint8_t r = registers_[i];
    if (r == 0) continue;  // nothing seen there
    // The d low bits of the fine index become the first bits after the coarse index.
    const uint64_t low = i & low_mask;
    const uint8_t rank =
        low != 0 ? static_cast<uint8_t>(d - std::bit_width(low) + 1) : static_cast<uint8_t>(d + r);
    uint8_t& slot = folded[i >> d];
    slot = std::max(slot, rank);
  }
  p_ = p;
  registers_ = std::move(folded);
}

void HyperLogLog::Merge(const HyperLogLog& other) {
  if (&other == this) return;
  if (other.p_ < p_) FoldTo(other.p_);
  if (other.p_ > p_) {
    HyperLogLog coarse = other;
    coarse.FoldTo(p_);
    Merge(coarse);
    return;
  }
  for (size_t i = 0; i < registers_.size(); ++i) {
    registers_[i] = std::max(registers_[i], other.registers_[i]);
  }
}

double HyperLogLog::Estimate() const {
  const int q = 64 - p_;  // registers hold 0 .. q + 1
  int histogram[66] = {};
  for (uint8_t r : registers_) ++histogram[r];
  const double m = static_cast<double>(registers_.size());
  if (histogram[0] == static_cast<int>(registers_.size())) return 0;
  double z = m * Tau((m - histogram[q + 1]) / m);
  for (int k = q; k >= 1; --k) z = 0.5 * (z + histogram[k]);
  z += m * Sigma(histogram[0] / m);
  const double alpha_inf = 0.5 / std::log(2.0);
  return alpha_inf * m * m / z;
}

double HyperLogLog::RelativeError() const {
  return 1.04 / std::sqrt(static_cast<double>(registers_.size()));
}

}  // namespace kiln::stats
