#include "kiln/stats/kll.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/crc32c.h"
#include "kiln/base/str.h"

namespace kiln::stats {
namespace {

constexpr size_t kN = 1000000;

std::vector<double> Steps() {
  std::vector<double> qs;
  for (int i = 0; i <= 100; ++i) qs.push_back(i / 100.0);
  return qs;
}

// Largest normalized distance between q and the true rank interval of the answer, over the
// 0.01 grid. `sorted` is every input, sorted. Also checks each answer is an input value.
double MaxRankError(const KllSketch& s, const std::vector<double>& sorted) {
  const double n = static_cast<double>(sorted.size());
  const std::vector<double> qs = Steps();
  const std::vector<double> answers = s.Quantiles(qs);
  double worst = 0;
  for (size_t i = 0; i < qs.size(); ++i) {
    const double v = answers[i];
    EXPECT_TRUE(std::binary_search(sorted.begin(), sorted.end(), v)) << v;
    // Inputs < v and inputs <= v: any rank in between is a correct answer for v.
    const double below = std::lower_bound(sorted.begin(), sorted.end(), v) - sorted.begin();
    const double through = std::upper_bound(sorted.begin(), sorted.end(), v) - sorted.begin();
    const double target = qs[i] * n;
    const double err = std::max({0.0, below - target, target - through}) / n;
    worst = std::max(worst, err);
  }
  return worst;
}

void ExpectAccurate(const KllSketch& s, std::vector<double> data, const std::string& name) {
  std::sort(data.begin(), data.end());
  ASSERT_EQ(s.count(), data.size());
  EXPECT_EQ(s.min(), data.front());
  EXPECT_EQ(s.max(), data.back());
  EXPECT_EQ(s.Quantile(0), data.front());
  EXPECT_EQ(s.Quantile(1), data.back());
  const double bound = s.RankErrorBound();
  const double worst = MaxRankError(s, data);
  std::cout << name << ": n=" << data.size() << " retained=" << s.num_retained()
            << " bound=" << bound << " observed max error=" << worst << "\n";
  EXPECT_LE(worst, bound) << name;
  // The bound must be informative for k = 200, not a vacuous 1.
  EXPECT_GT(bound, 0) << name;
  EXPECT_LT(bound, 0.02) << name;
}

KllSketch Build(const std::vector<double>& data, int k = 200) {
  KllSketch s(k);
  for (double v : data) s.Add(v);
  return s;
}

std::vector<double> Uniform(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(-5, 5);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

// The figures README.md and tests/test_stats_reference.py quote. The bound depends only on
// how many values were added (the compaction schedule), not on the values.
// The level-0 sort against std::sort, on the shapes that exercise each of its ways:
// spread values (top bytes only, then the insertion pass), integers (few differing
// bytes), a narrow band beside one outlier (the insertion pass gives up), timestamps,
// signed zeros, infinities and duplicates.
TEST(KllSortTest, MatchesStdSort) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(-1e3, 1e3);
  std::vector<std::pair<std::string, std::vector<double>>> cases;
  for (size_t n : {64, 65, 400, 401, 1000}) {
    std::vector<double> spread, ints, band, stamps, special;
    for (size_t i = 0; i < n; ++i) {
      spread.push_back(u(rng));
      ints.push_back(static_cast<double>(rng() % 100000));
      band.push_back(1.0 + static_cast<double>(rng() % 1000000) * 1e-12);
      stamps.push_back(1.7e9 + static_cast<double>(rng() % 86400));
      const double pick[] = {0.0, -0.0, 1.5, -1.5, HUGE_VAL, -HUGE_VAL, 1e-300, -1e-300};
      special.push_back(pick[rng() % 8]);
    }
    band[n / 2] = 1e10;
    for (auto* v : {&spread, &ints, &band, &stamps, &special}) {
      cases.emplace_back(StrCat("n=", n), *v);
    }
    std::vector<double> descending = spread;
    std::sort(descending.begin(), descending.end(), std::greater<>());
    cases.emplace_back(StrCat("descending n=", n), descending);
  }
  std::vector<uint64_t> scratch;
  for (auto& [name, values] : cases) {
    std::vector<double> want = values;
    std::sort(want.begin(), want.end(), [](double a, double b) {
      return a < b || (a == b && std::signbit(a) && !std::signbit(b));
    });
    internal::SortValues(&values, &scratch);
    ASSERT_EQ(values.size(), want.size()) << name;
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(std::bit_cast<uint64_t>(values[i]), std::bit_cast<uint64_t>(want[i]))
          << name << " at " << i;
    }
  }
}

TEST(KllSketchTest, DefaultBoundAtTheSizesTheDocsQuote) {
  auto bound_after = [](int n) {
    KllSketch s;  // k = 200
    for (int64_t i = 0; i < n; ++i) s.Add(static_cast<double>((i * 7919) % 100003));
    return s;
  };
  EXPECT_NEAR(bound_after(569).RankErrorBound(), 0.0081, 0.0002);
  EXPECT_NEAR(bound_after(1797).RankErrorBound(), 0.0089, 0.0002);
  KllSketch million = bound_after(1000000);
  EXPECT_NEAR(million.RankErrorBound(), 0.0174, 0.0003);
  EXPECT_NEAR(million.RankErrorBoundAt(0.005), 0.0131, 0.0003);
}

TEST(KllSketchTest, UniformWithinBound) {
  auto data = Uniform(kN, 1);
  ExpectAccurate(Build(data), data, "uniform");
}

TEST(KllSketchTest, SortedWithinBound) {
  std::vector<double> data(kN);
  for (size_t i = 0; i < kN; ++i) data[i] = static_cast<double>(i);
  ExpectAccurate(Build(data), data, "sorted");
}

TEST(KllSketchTest, ReverseSortedWithinBound) {
  std::vector<double> data(kN);
  for (size_t i = 0; i < kN; ++i) data[i] = static_cast<double>(kN - i);
  ExpectAccurate(Build(data), data, "reverse");
}

TEST(KllSketchTest, HeavyDuplicatesWithinBound) {
  // Half the values are 3.0, the rest spread over ten integers.
  std::mt19937_64 rng(2);
  std::vector<double> data(kN);
  for (double& x : data) x = (rng() & 1) ? 3.0 : static_cast<double>(rng() % 10);
  ExpectAccurate(Build(data), data, "duplicates");
}

TEST(KllSketchTest, NormalWithinBound) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> dist(100, 15);
  std::vector<double> data(kN);
  for (double& x : data) x = dist(rng);
  ExpectAccurate(Build(data), data, "normal");
}

TEST(KllSketchTest, SmallerKHasLargerBoundAndStillHoldsIt) {
  auto data = Uniform(200000, 4);
  KllSketch coarse = Build(data, 50);
  KllSketch fine = Build(data, 400);
  EXPECT_GT(coarse.RankErrorBound(), 2 * fine.RankErrorBound());
  std::sort(data.begin(), data.end());
  EXPECT_LE(MaxRankError(coarse, data), coarse.RankErrorBound());
  EXPECT_LE(MaxRankError(fine, data), fine.RankErrorBound());
  EXPECT_LT(fine.num_retained(), 5u * 400);
}

TEST(KllSketchTest, MergeOfTenDisjointPartsKeepsTheBound) {
  auto data = Uniform(kN, 5);
  // Parts by position (interleaved values) and by value range (sorted blocks).
  std::vector<double> sorted = data;
  std::sort(sorted.begin(), sorted.end());
  for (const auto* source : {&data, &sorted}) {
    KllSketch merged;
    for (int part = 0; part < 10; ++part) {
      KllSketch s;  // same default seed in every part, as per-thread accumulators do
      for (size_t i = part * kN / 10; i < (part + 1) * kN / 10; ++i) s.Add((*source)[i]);
      merged.Merge(s);
    }
    const double single = Build(data).RankErrorBound();
    ExpectAccurate(merged, data, source == &data ? "merged parts" : "merged ranges");
    EXPECT_LE(merged.RankErrorBound(), 1.25 * single);
  }
}

TEST(KllSketchTest, TreeMergeIsDeterministic) {
  auto data = Uniform(100000, 6);
  auto run = [&] {
    std::vector<KllSketch> parts(8);
    for (size_t i = 0; i < data.size(); ++i) parts[i % 8].Add(data[i]);
    for (size_t width = 1; width < 8; width *= 2) {
      for (size_t i = 0; i + width < 8; i += 2 * width) parts[i].Merge(parts[i + width]);
    }
    return parts[0].Serialize();
  };
  EXPECT_EQ(run(), run());
  KllSketch a = Build(data), b = Build(data);
  EXPECT_EQ(a.Serialize(), b.Serialize());
}

TEST(KllSketchTest, DifferentSeedsGiveDifferentSketches) {
  auto data = Uniform(10000, 7);
  KllSketch a(200, 1), b(200, 2);
  for (double v : data) {
    a.Add(v);
    b.Add(v);
  }
  EXPECT_NE(a.Serialize(), b.Serialize());
}

TEST(KllSketchTest, ExactWhileEverythingFits) {
  std::vector<double> data = {5, 1, 4, 1, 3, 9, 2, 6, 5, 3};
  KllSketch s = Build(data);
  std::sort(data.begin(), data.end());
  EXPECT_EQ(s.RankErrorBound(), 0);
  for (double q : Steps()) {
    // The inverse CDF: the smallest value with at least q*n values <= it.
    const double rank = std::max(1.0, std::ceil(q * 10 - 1e-9));
    EXPECT_EQ(s.Quantile(q), data[static_cast<size_t>(rank) - 1]) << q;
  }
  EXPECT_EQ(s.Quantile(0.5), 3);
  EXPECT_EQ(s.Quantile(0.51), 4);
}

TEST(KllSketchTest, EmptySketch) {
  KllSketch s;
  EXPECT_EQ(s.count(), 0u);
  EXPECT_TRUE(std::isnan(s.min()));
  EXPECT_TRUE(std::isnan(s.max()));
  EXPECT_TRUE(std::isnan(s.Quantile(0.5)));
  auto qs = s.Quantiles({0, 0.5, 1});
  ASSERT_EQ(qs.size(), 3u);
  EXPECT_TRUE(std::isnan(qs[0]) && std::isnan(qs[1]) && std::isnan(qs[2]));
  EXPECT_EQ(s.RankErrorBound(), 0);

  KllSketch empty_copy = KllSketch::Deserialize(s.Serialize()).value();
  EXPECT_EQ(empty_copy.count(), 0u);
  EXPECT_EQ(empty_copy.Serialize(), s.Serialize());

  // Merging empties in either direction changes nothing.
  KllSketch one;
  one.Add(7);
  const std::string before = one.Serialize();
  one.Merge(s);
  EXPECT_EQ(one.Serialize(), before);
  s.Merge(one);
  EXPECT_EQ(s.count(), 1u);
  EXPECT_EQ(s.Quantile(0.3), 7);
}

TEST(KllSketchTest, SingleValue) {
  KllSketch s;
  s.Add(-2.5);
  EXPECT_EQ(s.count(), 1u);
  EXPECT_EQ(s.min(), -2.5);
  EXPECT_EQ(s.max(), -2.5);
  for (double q : {0.0, 0.001, 0.5, 0.999, 1.0}) EXPECT_EQ(s.Quantile(q), -2.5);
}

TEST(KllSketchTest, NanIsIgnoredAndInfinitiesAreValues) {
  KllSketch s;
  s.Add(std::nan(""));
  EXPECT_EQ(s.count(), 0u);
  s.Add(-INFINITY);
  s.Add(1);
  s.Add(INFINITY);
  EXPECT_EQ(s.count(), 3u);
  EXPECT_EQ(s.min(), -INFINITY);
  EXPECT_EQ(s.max(), INFINITY);
  EXPECT_EQ(s.Quantile(0.5), 1);
}

TEST(KllSketchTest, OutOfRangeQuantilesClampToMinMax) {
  KllSketch s = Build({1, 2, 3});
  EXPECT_THAT(s.Quantiles({-1, 2, std::nan("")}), testing::ElementsAre(1, 3, 1));
}

TEST(KllSketchTest, SelfMergeDoublesTheCounts) {
  KllSketch s = Build({1, 2, 3, 4});
  s.Merge(s);
  EXPECT_EQ(s.count(), 8u);
  EXPECT_EQ(s.Quantile(0.25), 1);
  EXPECT_EQ(s.Quantile(0.26), 2);
}

TEST(KllSketchTest, SerializeRoundTripContinuesIdentically) {
  auto data = Uniform(300000, 8);
  KllSketch original;
  for (size_t i = 0; i < 150000; ++i) original.Add(data[i]);
  const std::string bytes = original.Serialize();
  absl::StatusOr<KllSketch> restored = KllSketch::Deserialize(bytes);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->Serialize(), bytes);
  EXPECT_EQ(restored->count(), 150000u);
  EXPECT_EQ(restored->RankErrorBound(), original.RankErrorBound());
  EXPECT_EQ(restored->Quantiles(Steps()), original.Quantiles(Steps()));
  for (size_t i = 150000; i < data.size(); ++i) {
    original.Add(data[i]);
    restored->Add(data[i]);
  }
  EXPECT_EQ(restored->Serialize(), original.Serialize());
}

TEST(KllSketchTest, EveryTruncationAndBitFlipIsAnError) {
  KllSketch s = Build(Uniform(5000, 9));
  const std::string bytes = s.Serialize();
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_FALSE(KllSketch::Deserialize(bytes.substr(0, len)).ok()) << len;
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit : {0, 7}) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      EXPECT_FALSE(KllSketch::Deserialize(bad).ok()) << i;
    }
  }
  EXPECT_EQ(KllSketch::Deserialize("nonsense").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KllSketch::Deserialize(bytes + "x").status().code(), absl::StatusCode::kDataLoss);
}

// Recomputes the trailing checksum, so a test can reach the structural checks.
std::string Reseal(std::string bytes) {
  const uint32_t crc = crc32c::Value(std::string_view(bytes).substr(0, bytes.size() - 4));
  for (size_t i = 0; i < 4; ++i) bytes[bytes.size() - 4 + i] = static_cast<char>(crc >> (8 * i));
  return bytes;
}

// Rewrites `width` bytes at `offset` (little-endian) and reseals.
std::string Patch(std::string bytes, size_t offset, uint64_t value, size_t width = 8) {
  for (size_t i = 0; i < width; ++i) bytes[offset + i] = static_cast<char>(value >> (8 * i));
  return Reseal(std::move(bytes));
}

TEST(KllSketchTest, StructurallyInvalidButCheckedBytesAreDataLoss) {
  KllSketch s = Build({3, 1, 2});
  const std::string bytes = s.Serialize();
  ASSERT_TRUE(KllSketch::Deserialize(Patch(bytes, 4, 200, 4)).ok());  // a no-op patch
  // Layout: magic 0, k 4, rng 8, n 16, min 24, max 32, S 40, levels 48, sizes 52, values.
  const size_t values = 52 + 4 * 1;
  auto bits = [](double d) {
    uint64_t u;
    std::memcpy(&u, &d, 8);
    return u;
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"k too small", Patch(bytes, 4, 2, 4)},
      {"count mismatch", Patch(bytes, 16, 4)},
      {"min above max", Patch(bytes, 24, bits(5))},
      {"negative S", Patch(bytes, 40, bits(-1))},
      {"zero levels", Patch(bytes, 48, 0, 4)},
      {"65 levels", Patch(bytes, 48, 65, 4)},
      {"size past end", Patch(bytes, 52, 4, 4)},
      {"NaN value", Patch(bytes, values, bits(std::nan("")))},
      {"value outside min/max", Patch(bytes, values, bits(10))},
  };
  for (const auto& [name, bad] : cases) {
    absl::StatusOr<KllSketch> r = KllSketch::Deserialize(bad);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << name;
  }
}

TEST(KllSketchTest, UnsortedUpperLevelIsRejected) {
  std::vector<double> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<double>(i);
  KllSketch s = Build(data, 8);
  std::string bytes = s.Serialize();
  // Swap the first two values of the highest level (the last values in the encoding).
  const size_t last = bytes.size() - 4 - 8;
  std::string a = bytes.substr(last - 8, 8), b = bytes.substr(last, 8);
  ASSERT_NE(a, b);
  const std::string swapped = Reseal(bytes.substr(0, last - 8) + b + a + bytes.substr(last + 8));
  EXPECT_EQ(KllSketch::Deserialize(swapped).status().code(), absl::StatusCode::kDataLoss);
}

TEST(KllSketchTest, RandomlyMutatedButResealedBytesNeverCrash) {
  // Past the checksum, the structural checks alone must keep every accepted sketch usable.
  const std::string bytes = Build(Uniform(3000, 10)).Serialize();
  std::mt19937_64 rng(11);
  int accepted = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bad = bytes;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      bad[4 + rng() % (bad.size() - 8)] = static_cast<char>(rng());
    }
    absl::StatusOr<KllSketch> r = KllSketch::Deserialize(Reseal(bad));
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
      continue;
    }
    ++accepted;
    KllSketch s = *std::move(r);
    const double median = s.Quantile(0.5);
    EXPECT_TRUE(s.count() == 0 || (median >= s.min() && median <= s.max()));
    s.Add(1.0);
    s.Merge(Build({2, 3}));
    EXPECT_FALSE(std::isnan(s.Quantile(0.5)));
  }
  // Some mutations land in values and keep the sketch valid; most are caught.
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, 3000);
}

TEST(KllSketchTest, MemoryStaysSmall) {
  KllSketch s;
  for (size_t i = 0; i < 4 * kN; ++i) s.Add(static_cast<double>(i % 100003));
  // Capacities: a 2k input buffer, then 200 + 134 + 90 + ... + 8 per extra level: about
  // 5k + 8 log2(n/k), and the lazy policy keeps the total below that.
  EXPECT_LT(s.num_retained(), 5u * 200);
  EXPECT_EQ(s.count(), 4 * kN);
}

}  // namespace
}  // namespace kiln::stats
