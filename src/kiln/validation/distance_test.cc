#include "kiln/validation/distance.h"

#include <cmath>
#include <tuple>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::validation {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
namespace tfmd = ::tensorflow::metadata::v0;

tfmd::Histogram Hist(const std::vector<std::tuple<double, double, double>>& buckets,
                     uint64_t num_nan = 0) {
  tfmd::Histogram h;
  h.set_num_nan(num_nan);
  for (const auto& [lo, hi, n] : buckets) {
    auto* b = h.add_buckets();
    b->set_low_value(lo);
    b->set_high_value(hi);
    b->set_sample_count(n);
  }
  return h;
}

// JSD of P = (1/2, 1/2) and Q = (1, 0), worked by hand: M = (3/4, 1/4),
// KL(P||M) = 1/2 log2(2/3) + 1/2 log2(2) = 1 - 1/2 log2(3),
// KL(Q||M) = log2(4/3) = 2 - log2(3), JSD = (3 - 3/2 log2(3)) / 2 = 3/2 - 3/4 log2(3).
const double kHalfVsOne = 1.5 - 0.75 * std::log2(3.0);

TEST(LInfinityTest, HandComputed) {
  // a: x 3/4, y 1/4.  b: x 1/4, y 1/4, z 1/2.  |diff|: x 1/2, y 0, z 1/2.
  LInfinityResult r = LInfinityDistance({{"x", 3}, {"y", 1}}, {{"x", 1}, {"y", 1}, {"z", 2}});
  EXPECT_DOUBLE_EQ(r.distance, 0.5);
  EXPECT_EQ(r.value, "z");  // ties go to the last value, as in TFDV
}

TEST(LInfinityTest, SingleLargestDifference) {
  LInfinityResult r =
      LInfinityDistance({{"a", 10}, {"b", 10}, {"c", 20}}, {{"a", 10}, {"b", 30}, {"c", 10}});
  // a: .25 vs .2; b: .25 vs .6; c: .5 vs .2
  EXPECT_DOUBLE_EQ(r.distance, 0.35);
  EXPECT_EQ(r.value, "b");
}

TEST(LInfinityTest, IdenticalProportionsAreZero) {
  EXPECT_DOUBLE_EQ(LInfinityDistance({{"a", 1}, {"b", 3}}, {{"a", 10}, {"b", 30}}).distance, 0);
}

TEST(LInfinityTest, EmptySideCountsAsZero) {
  LInfinityResult r = LInfinityDistance({}, {{"a", 1}, {"b", 3}});
  EXPECT_DOUBLE_EQ(r.distance, 0.75);
  EXPECT_EQ(r.value, "b");
}

TEST(JensenShannonTest, ValueDistributionsHandComputed) {
  auto jsd =
      JensenShannonDivergence(ValueDistribution{{"a", 5}, {"b", 5}}, ValueDistribution{{"a", 7}});
  ASSERT_TRUE(jsd.ok());
  EXPECT_DOUBLE_EQ(*jsd, kHalfVsOne);
  EXPECT_NEAR(*jsd, 0.3112781244591328, 1e-15);
}

TEST(JensenShannonTest, DisjointIsOneAndIdenticalIsZero) {
  EXPECT_DOUBLE_EQ(
      *JensenShannonDivergence(ValueDistribution{{"a", 1}}, ValueDistribution{{"b", 4}}), 1.0);
  EXPECT_DOUBLE_EQ(*JensenShannonDivergence(ValueDistribution{{"a", 1}, {"b", 2}},
                                            ValueDistribution{{"a", 2}, {"b", 4}}),
                   0.0);
}

TEST(JensenShannonTest, EmptyDistributionIsAnError) {
  auto jsd = JensenShannonDivergence(ValueDistribution{}, ValueDistribution{{"a", 1}});
  ASSERT_FALSE(jsd.ok());
  EXPECT_EQ(jsd.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AlignHistogramsTest, RebucketsOntoTheUnionOfBoundaries) {
  // [0,10] holding 10 splits into [0,5] 5 and [5,10] 5; [0,5] holding 10 stays.
  auto d = AlignHistograms(Hist({{0, 10, 10}}), Hist({{0, 5, 10}}));
  ASSERT_TRUE(d.ok());
  EXPECT_THAT(d->p, ElementsAre(0.5, 0.5));
  EXPECT_THAT(d->q, ElementsAre(1.0, 0.0));
  EXPECT_DOUBLE_EQ(JensenShannon(*d), kHalfVsOne);
}

TEST(AlignHistogramsTest, UnevenOverlapSpreadsUniformly) {
  // a: [0,4] 4, [4,8] 4.  b: [2,6] 8.  Bounds 0,2,4,6,8.
  // a → 2,2,2,2 → 1/4 each.  b → 0,4,4,0 → 0,1/2,1/2,0.
  auto d = AlignHistograms(Hist({{0, 4, 4}, {4, 8, 4}}), Hist({{2, 6, 8}}));
  ASSERT_TRUE(d.ok());
  EXPECT_THAT(d->p, ElementsAre(0.25, 0.25, 0.25, 0.25));
  EXPECT_THAT(d->q, ElementsAre(0.0, 0.5, 0.5, 0.0));
  // M = (1/8, 3/8, 3/8, 1/8). KL(P||M) = 2 * 1/4 log2(2) + 2 * 1/4 log2(2/3)
  // = 1 - 1/2 log2 3;  KL(Q||M) = 2 * 1/2 log2(4/3) = 2 - log2 3;  the same JSD as above.
  EXPECT_DOUBLE_EQ(JensenShannon(*d), kHalfVsOne);
}

TEST(AlignHistogramsTest, IdenticalHistogramsHaveZeroDivergence) {
  auto h = Hist({{0, 1, 3}, {1, 2, 5}, {2, 3, 2}});
  EXPECT_DOUBLE_EQ(*JensenShannonDivergence(h, h), 0.0);
}

TEST(AlignHistogramsTest, DisjointRangesHaveDivergenceOne) {
  EXPECT_DOUBLE_EQ(*JensenShannonDivergence(Hist({{0, 1, 5}}), Hist({{2, 3, 5}})), 1.0);
}

TEST(AlignHistogramsTest, PointBucketsStaySeparateFromIntervals) {
  // A constant feature (all values 5) against values spread over [0,10].
  auto d = AlignHistograms(Hist({{5, 5, 4}}), Hist({{0, 10, 4}}));
  ASSERT_TRUE(d.ok());
  EXPECT_THAT(d->p, ElementsAre(0.0, 1.0));
  EXPECT_THAT(d->q, ElementsAre(1.0, 0.0));
  EXPECT_DOUBLE_EQ(JensenShannon(*d), 1.0);
}

TEST(AlignHistogramsTest, NanAndInfiniteMassesLineUp) {
  const double inf = std::numeric_limits<double>::infinity();
  auto h = Hist({{-inf, 0, 1}, {0, 1, 2}, {1, inf, 1}}, /*num_nan=*/4);
  auto d = AlignHistograms(h, h);
  ASSERT_TRUE(d.ok());
  // [0,1], -inf, +inf, NaN
  EXPECT_THAT(d->p, ElementsAre(0.25, 0.125, 0.125, 0.5));
  EXPECT_EQ(d->p, d->q);
  EXPECT_DOUBLE_EQ(JensenShannon(*d), 0.0);
  // NaNs on one side only.
  auto e = AlignHistograms(Hist({{0, 1, 2}}, 2), Hist({{0, 1, 2}}));
  ASSERT_TRUE(e.ok());
  EXPECT_THAT(e->p, ElementsAre(0.5, 0.5));
  EXPECT_THAT(e->q, ElementsAre(1.0, 0.0));
}

TEST(AlignHistogramsTest, EmptyHistogramIsAnError) {
  auto d = AlignHistograms(Hist({}), Hist({{0, 1, 1}}));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KullbackLeiblerTest, HandComputed) {
  // KL((1/2,1/2) || (1/4,3/4)) = 1/2 log2 2 + 1/2 log2(2/3) = 1 - 1/2 log2 3.
  AlignedDistributions d{{0.5, 0.5}, {0.25, 0.75}};
  EXPECT_THAT(KullbackLeibler(d), DoubleNear(1 - 0.5 * std::log2(3.0), 1e-5));
  EXPECT_DOUBLE_EQ(KullbackLeibler({{0.3, 0.7}, {0.3, 0.7}}), 0.0);
}

TEST(KullbackLeiblerTest, EmptyBucketGivesLargeFiniteValue) {
  double kl = KullbackLeibler({{0.5, 0.5}, {1.0, 0.0}});
  EXPECT_TRUE(std::isfinite(kl));
  // 1/2 log2(1/2) + 1/2 log2(0.5 / 1e-6) ≈ -0.5 + 9.47
  EXPECT_NEAR(kl, 8.97, 0.01);
}

}  // namespace
}  // namespace kiln::validation
