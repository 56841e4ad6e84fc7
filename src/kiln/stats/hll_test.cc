#include "kiln/stats/hll.h"

#include <cmath>
#include <cstdint>
#include <iostream>

#include "gtest/gtest.h"
#include "kiln/base/hash.h"

namespace kiln::stats {
namespace {

uint64_t HashOf(uint64_t i, uint64_t seed = 0) { return Hash64(&i, sizeof(i), seed); }

HyperLogLog Build(uint64_t begin, uint64_t end, int precision = 14, uint64_t seed = 0) {
  HyperLogLog h(precision);
  for (uint64_t i = begin; i < end; ++i) h.AddHash(HashOf(i, seed));
  return h;
}

TEST(HyperLogLogTest, RelativeErrorIsTheStandardFormula) {
  EXPECT_DOUBLE_EQ(HyperLogLog(14).RelativeError(), 1.04 / 128);
  EXPECT_DOUBLE_EQ(HyperLogLog(10).RelativeError(), 1.04 / 32);
  EXPECT_EQ(HyperLogLog(2).precision(), HyperLogLog::kMinPrecision);
  EXPECT_EQ(HyperLogLog(30).precision(), HyperLogLog::kMaxPrecision);
}

TEST(HyperLogLogTest, TinyCountsAreAlmostExact) {
  EXPECT_EQ(HyperLogLog().Estimate(), 0);
  for (uint64_t n : {1, 2, 10}) {
    const double e = Build(0, n).Estimate();
    EXPECT_NEAR(e, static_cast<double>(n), 0.005 * static_cast<double>(n)) << n;
    EXPECT_EQ(std::llround(e), static_cast<long long>(n)) << n;
  }
  // At 100, two of the values share a register (as happens with probability ~26%), so
  // the estimate is one low, as linear counting would be.
  EXPECT_NEAR(Build(0, 100).Estimate(), 99.3, 0.05);
}

TEST(HyperLogLogTest, WithinThreeStandardErrors) {
  for (uint64_t n : {1000, 100000, 1000000}) {
    HyperLogLog h = Build(0, n);
    const double e = h.Estimate();
    std::cout << "n=" << n << " estimate=" << e << " rel=" << (e - n) / n << "\n";
    EXPECT_NEAR(e, static_cast<double>(n), 3 * h.RelativeError() * static_cast<double>(n)) << n;
  }
}

TEST(HyperLogLogTest, NoBiasWhereClassicEstimatorsSwitchOver) {
  // The classic estimator switches from linear counting at 2.5 m (41k for p = 14) and is
  // biased for a while above that; averaged over 8 runs, the bias must stay below 1/3 of
  // the per-run standard error at every step.
  for (uint64_t n : {20000, 30000, 40000, 50000, 60000, 80000}) {
    double sum = 0;
    for (uint64_t seed = 1; seed <= 8; ++seed) sum += Build(0, n, 14, seed).Estimate();
    const double mean_rel = (sum / 8 - n) / n;
    EXPECT_LT(std::abs(mean_rel), HyperLogLog().RelativeError() / 3) << n;
  }
}

TEST(HyperLogLogTest, DuplicatesDoNotCount) {
  HyperLogLog once = Build(0, 5000);
  HyperLogLog thrice(14);
  for (int r = 0; r < 3; ++r) {
    for (uint64_t i = 0; i < 5000; ++i) thrice.AddHash(HashOf(i));
  }
  EXPECT_EQ(once.registers(), thrice.registers());
}

TEST(HyperLogLogTest, MergeEqualsUnion) {
  HyperLogLog a = Build(0, 60000);
  HyperLogLog b = Build(40000, 100000);
  a.Merge(b);
  EXPECT_EQ(a.registers(), Build(0, 100000).registers());
  EXPECT_NEAR(a.Estimate(), 100000, 3 * a.RelativeError() * 100000);
  HyperLogLog empty(14);
  a.Merge(empty);
  EXPECT_EQ(a.registers(), Build(0, 100000).registers());
  a.Merge(a);
  EXPECT_EQ(a.registers(), Build(0, 100000).registers());
}

TEST(HyperLogLogTest, MergingDifferentPrecisionsFoldsToTheCoarser) {
  // Folding must give exactly what a coarse sketch of the same hashes holds, including for
  // hashes whose bits after the index are all zero.
  HyperLogLog fine = Build(0, 30000, 14);
  HyperLogLog coarse = Build(30000, 50000, 10);
  fine.AddHash(0);
  fine.AddHash(uint64_t{1} << 52);
  HyperLogLog expected = Build(0, 50000, 10);
  expected.AddHash(0);
  expected.AddHash(uint64_t{1} << 52);

  HyperLogLog a = fine;
  a.Merge(coarse);
  EXPECT_EQ(a.precision(), 10);
  EXPECT_EQ(a.registers(), expected.registers());
  HyperLogLog b = coarse;
  b.Merge(fine);
  EXPECT_EQ(b.precision(), 10);
  EXPECT_EQ(b.registers(), expected.registers());
}

TEST(HyperLogLogTest, AllZeroHashReachesTheTopRegisterValue) {
  HyperLogLog h(14);
  h.AddHash(0);
  EXPECT_EQ(h.registers()[0], 64 - 14 + 1);
  h.AddHash(~uint64_t{0});
  EXPECT_EQ(h.registers().back(), 1);
  EXPECT_GT(h.Estimate(), 1.5);
  EXPECT_LT(h.Estimate(), 2.5);
}

}  // namespace
}  // namespace kiln::stats
