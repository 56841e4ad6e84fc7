#include "kiln/stats/generator.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/data/example_codec.h"
#include "kiln/data/input.h"
#include "kiln/stats/kll.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::stats {
namespace {

namespace tfmd = ::tensorflow::metadata::v0;
using kiln::testing::TempDir;
using ::testing::HasSubstr;

// --- running the generator

struct Result {
  absl::StatusOr<tfmd::DatasetFeatureStatistics> stats;
  uint64_t bad_rows = 0;
  std::vector<data::BadRow> bad_samples;
};

Result Compute(const std::string& spec, const data::ReadOptions& read = {},
               const StatsOptions& options = {}) {
  Result r;
  auto input = data::ResolveInput(Env::Default(), spec);
  if (!input.ok()) {
    r.stats = input.status();
    return r;
  }
  data::BadRowSink bad(read.bad_rows);
  r.stats = ComputeStatistics(Env::Default(), *input, read, options, &bad, "test");
  r.bad_rows = bad.count();
  r.bad_samples = bad.samples();
  return r;
}

const tfmd::FeatureNameStatistics* Feature(const tfmd::DatasetFeatureStatistics& ds,
                                           const std::string& name) {
  for (const auto& f : ds.features()) {
    if (f.name() == name) return &f;
  }
  return nullptr;
}

const tfmd::CommonStatistics& Common(const tfmd::FeatureNameStatistics& f) {
  return f.has_num_stats() ? f.num_stats().common_stats() : f.string_stats().common_stats();
}

const tfmd::CustomStatistic* Custom(const tfmd::FeatureNameStatistics& f, const std::string& name) {
  for (const auto& c : f.custom_stats()) {
    if (c.name() == name) return &c;
  }
  return nullptr;
}

// (label, count) pairs of a rank histogram, in order.
std::vector<std::pair<std::string, double>> RankPairs(const tfmd::RankHistogram& h) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& b : h.buckets()) out.emplace_back(b.label(), b.sample_count());
  return out;
}

std::vector<std::pair<std::string, double>> TopPairs(const tfmd::StringStatistics& s) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& t : s.top_values()) out.emplace_back(t.value(), t.frequency());
  return out;
}

double HistogramTotal(const tfmd::Histogram& h) {
  double total = 0;
  for (const auto& b : h.buckets()) total += b.sample_count();
  return total;
}

std::string Num(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest text that reads back exactly
  return std::string(buf, r.ptr);
}

// What the string statistics of a feature must be, computed straight from its values.
struct ExpectedStrings {
  std::map<std::string, uint64_t> counts;
  uint64_t total = 0, total_length = 0, non_int = 0, non_float = 0;

  void Add(const std::string& v, bool is_int, bool is_float) {
    ++counts[v];
    ++total;
    total_length += v.size();
    if (!is_int) ++non_int;
    if (!is_float) ++non_float;
  }
  // Count descending, then value ascending (bytewise).
  std::vector<std::pair<std::string, double>> Top(size_t k) const {
    std::vector<std::pair<std::string, uint64_t>> all(counts.begin(), counts.end());
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    std::vector<std::pair<std::string, double>> out;
    for (size_t i = 0; i < all.size() && i < k; ++i) {
      out.emplace_back(all[i].first, static_cast<double>(all[i].second));
    }
    return out;
  }
};

void ExpectStringStats(const tfmd::FeatureNameStatistics& f, const ExpectedStrings& want,
                       uint64_t num_missing, bool compare_top = true) {
  ASSERT_EQ(f.type(), tfmd::FeatureNameStatistics::STRING);
  ASSERT_TRUE(f.has_string_stats());
  const auto& s = f.string_stats();
  EXPECT_EQ(s.common_stats().num_non_missing(), want.total);
  EXPECT_EQ(s.common_stats().num_missing(), num_missing);
  EXPECT_EQ(s.common_stats().tot_num_values(), want.total);
  EXPECT_EQ(s.unique(), want.counts.size());
  if (compare_top) {
    EXPECT_EQ(TopPairs(s), want.Top(20));
    EXPECT_EQ(RankPairs(s.rank_histogram()), want.Top(20));
  }
  EXPECT_FLOAT_EQ(s.avg_length(), static_cast<float>(static_cast<double>(want.total_length) /
                                                     static_cast<double>(want.total)));
  const auto* non_int = Custom(f, "kiln_non_int_count");
  ASSERT_NE(non_int, nullptr);
  EXPECT_EQ(non_int->num(), static_cast<double>(want.non_int));
  const auto* non_float = Custom(f, "kiln_non_float_count");
  ASSERT_NE(non_float, nullptr);
  EXPECT_EQ(non_float->num(), static_cast<double>(want.non_float));
}

// Population mean and standard deviation in long double, two passes, shifted by the first
// value so that large offsets cost no precision.
std::pair<long double, long double> ReferenceMoments(const std::vector<double>& v) {
  const long double shift = v.front();
  long double sum = 0;
  for (double x : v) sum += static_cast<long double>(x) - shift;
  const long double n = static_cast<long double>(v.size());
  const long double mean_shifted = sum / n;
  long double m2 = 0;
  for (double x : v) {
    long double d = static_cast<long double>(x) - shift - mean_shifted;
    m2 += d * d;
  }
  return {shift + mean_shifted, std::sqrt(m2 / n)};
}

double RelErr(double got, long double want) {
  return static_cast<double>(std::fabs((static_cast<long double>(got) - want) / want));
}

absl::Status WriteExamples(const std::string& path, const data::Batch& batch) {
  KILN_ASSIGN_OR_RETURN(auto w, data::ExampleWriter::Create(Env::Default(), path));
  KILN_RETURN_IF_ERROR(w->Write(batch));
  return w->Close();
}

// --- counts

TEST(GeneratorCountsTest, CsvIntColumnCountsMomentsAndValueCounts) {
  TempDir dir;
  // i: 0, 3, missing, -2, 0, 7.
  std::string path = dir.Write("a.csv", "i,t\n0,a\n3,b\n,c\n-2,d\n0,e\n7,f\n");
  Result r = Compute(path);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  const auto& ds = *r.stats;
  EXPECT_EQ(ds.name(), "test");
  EXPECT_EQ(ds.num_examples(), 6u);
  ASSERT_EQ(ds.features_size(), 2);
  EXPECT_EQ(ds.features(0).name(), "i");  // header order
  EXPECT_EQ(ds.features(1).name(), "t");

  const auto* f = Feature(ds, "i");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->type(), tfmd::FeatureNameStatistics::INT);
  const auto& n = f->num_stats();
  const auto& c = n.common_stats();
  EXPECT_EQ(c.num_non_missing(), 5u);
  EXPECT_EQ(c.num_missing(), 1u);
  EXPECT_EQ(c.min_num_values(), 1u);
  EXPECT_EQ(c.max_num_values(), 1u);
  EXPECT_EQ(c.tot_num_values(), 5u);
  EXPECT_FLOAT_EQ(c.avg_num_values(), 1.0f);
  ASSERT_EQ(c.num_values_histogram().buckets_size(), 10);
  EXPECT_EQ(c.num_values_histogram().type(), tfmd::Histogram::QUANTILES);
  for (const auto& b : c.num_values_histogram().buckets()) {
    EXPECT_EQ(b.low_value(), 1);
    EXPECT_EQ(b.high_value(), 1);
    EXPECT_DOUBLE_EQ(b.sample_count(), 0.5);
  }
  EXPECT_EQ(n.num_zeros(), 2u);
  EXPECT_EQ(n.min(), -2);
  EXPECT_EQ(n.max(), 7);
  auto [mean, sd] = ReferenceMoments({0, 3, -2, 0, 7});
  EXPECT_DOUBLE_EQ(n.mean(), 1.6);
  EXPECT_DOUBLE_EQ(n.mean(), static_cast<double>(mean));
  EXPECT_DOUBLE_EQ(n.std_dev(), std::sqrt(49.2 / 5));
  EXPECT_DOUBLE_EQ(n.std_dev(), static_cast<double>(sd));
  EXPECT_EQ(n.median(), 0);  // sorted: -2 0 0 3 7
  const auto* inf = Custom(*f, "num_inf");
  ASSERT_NE(inf, nullptr);
  EXPECT_EQ(inf->num(), 0);
  ASSERT_EQ(n.histograms_size(), 2);
  EXPECT_EQ(n.histograms(0).type(), tfmd::Histogram::STANDARD);
  EXPECT_EQ(n.histograms(0).num_nan(), 0u);
  EXPECT_NEAR(HistogramTotal(n.histograms(0)), 5, 1e-9);
  EXPECT_EQ(n.histograms(1).type(), tfmd::Histogram::QUANTILES);
  EXPECT_NEAR(HistogramTotal(n.histograms(1)), 5, 1e-9);

  // Every value's count, by count descending then value ascending (numerically).
  const auto* vc = Custom(*f, "kiln_value_counts");
  ASSERT_NE(vc, nullptr);
  std::vector<std::pair<std::string, double>> want = {{"0", 2}, {"-2", 1}, {"3", 1}, {"7", 1}};
  EXPECT_EQ(RankPairs(vc->rank_histogram()), want);
  for (int i = 0; i < vc->rank_histogram().buckets_size(); ++i) {
    EXPECT_EQ(vc->rank_histogram().buckets(i).low_rank(), static_cast<uint64_t>(i));
    EXPECT_EQ(vc->rank_histogram().buckets(i).high_rank(), static_cast<uint64_t>(i));
  }
}

TEST(GeneratorCountsTest, JsonlListValuedFeature) {
  TempDir dir;
  std::string path = dir.Write("a.jsonl",
                               "{\"l\": [], \"k\": 1}\n"
                               "{\"l\": [5]}\n"
                               "{\"l\": [1, 2, 3]}\n"
                               "{\"k\": 2}\n"
                               "{\"l\": null}\n");
  Result r = Compute(path);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  const auto& ds = *r.stats;
  EXPECT_EQ(ds.num_examples(), 5u);

  const auto* l = Feature(ds, "l");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->type(), tfmd::FeatureNameStatistics::INT);
  const auto& c = l->num_stats().common_stats();
  EXPECT_EQ(c.num_non_missing(), 3u);  // [] is present with no values
  EXPECT_EQ(c.num_missing(), 2u);      // absent key and null
  EXPECT_EQ(c.min_num_values(), 0u);
  EXPECT_EQ(c.max_num_values(), 3u);
  EXPECT_EQ(c.tot_num_values(), 4u);
  EXPECT_FLOAT_EQ(c.avg_num_values(), static_cast<float>(4.0 / 3.0));
  const auto& nvh = c.num_values_histogram();
  EXPECT_EQ(nvh.type(), tfmd::Histogram::QUANTILES);
  ASSERT_EQ(nvh.buckets_size(), 10);
  EXPECT_EQ(nvh.buckets(0).low_value(), 0);
  EXPECT_EQ(nvh.buckets(9).high_value(), 3);
  EXPECT_NEAR(HistogramTotal(nvh), 3, 1e-9);
  const auto& n = l->num_stats();
  EXPECT_DOUBLE_EQ(n.mean(), 11.0 / 4);
  EXPECT_EQ(n.min(), 1);
  EXPECT_EQ(n.max(), 5);
  EXPECT_EQ(n.num_zeros(), 0u);

  const auto* k = Feature(ds, "k");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->num_stats().common_stats().num_non_missing(), 2u);
  EXPECT_EQ(k->num_stats().common_stats().num_missing(), 3u);
  EXPECT_EQ(k->num_stats().common_stats().tot_num_values(), 2u);
}

TEST(GeneratorCountsTest, NanAndInfinities) {
  TempDir dir;
  // f: both infinities; g: only +inf; h: only -inf; z: only NaN.
  std::string path = dir.Write("a.csv",
                               "f,g,h,z\n"
                               "2,1,1,nan\n"
                               "nan,inf,-inf,nan\n"
                               "inf,3,-4,\n"
                               "-inf,nan,0,nan\n"
                               "0,-0.0,2,nan\n"
                               "4,5,-inf,nan\n"
                               "nan,,,nan\n"
                               ",2,5,nan\n");
  Result r = Compute(path);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  const auto& ds = *r.stats;
  EXPECT_EQ(ds.num_examples(), 8u);
  const double kInf = std::numeric_limits<double>::infinity();

  const auto* f = Feature(ds, "f");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->type(), tfmd::FeatureNameStatistics::FLOAT);
  const auto& fn = f->num_stats();
  EXPECT_EQ(fn.common_stats().num_non_missing(), 7u);  // NaN is a present value
  EXPECT_EQ(fn.common_stats().num_missing(), 1u);
  EXPECT_EQ(fn.histograms(0).num_nan(), 2u);
  EXPECT_EQ(fn.histograms(1).num_nan(), 2u);
  ASSERT_NE(Custom(*f, "num_inf"), nullptr);
  EXPECT_EQ(Custom(*f, "num_inf")->num(), 2);
  EXPECT_EQ(fn.min(), -kInf);
  EXPECT_EQ(fn.max(), kInf);
  EXPECT_TRUE(std::isnan(fn.mean())) << fn.mean();  // inf + -inf
  EXPECT_TRUE(std::isnan(fn.std_dev())) << fn.std_dev();
  EXPECT_EQ(fn.num_zeros(), 1u);
  EXPECT_EQ(fn.median(), 2);  // of the finite values 0 2 4
  // Standard histogram: finite values plus the infinities in the outer buckets.
  const auto& fh = fn.histograms(0);
  ASSERT_EQ(fh.buckets_size(), 10);
  EXPECT_EQ(fh.buckets(0).low_value(), -kInf);
  EXPECT_EQ(fh.buckets(9).high_value(), kInf);
  EXPECT_NEAR(HistogramTotal(fh), 5, 1e-9);
  EXPECT_NEAR(HistogramTotal(fn.histograms(1)), 3, 1e-9);  // quantiles: finite values

  const auto* g = Feature(ds, "g");
  ASSERT_NE(g, nullptr);
  const auto& gn = g->num_stats();
  EXPECT_EQ(gn.common_stats().num_non_missing(), 7u);
  EXPECT_EQ(gn.histograms(0).num_nan(), 1u);
  EXPECT_EQ(Custom(*g, "num_inf")->num(), 1);
  EXPECT_EQ(gn.min(), -0.0);
  EXPECT_EQ(gn.max(), kInf);
  EXPECT_EQ(gn.mean(), kInf);
  EXPECT_TRUE(std::isnan(gn.std_dev())) << gn.std_dev();
  EXPECT_EQ(gn.num_zeros(), 1u);  // -0.0 is a zero
  EXPECT_EQ(gn.histograms(0).buckets(0).low_value(), -0.0);
  EXPECT_EQ(gn.histograms(0).buckets(9).high_value(), kInf);

  const auto* h = Feature(ds, "h");
  ASSERT_NE(h, nullptr);
  const auto& hn = h->num_stats();
  EXPECT_EQ(hn.common_stats().num_non_missing(), 7u);
  EXPECT_EQ(hn.histograms(0).num_nan(), 0u);
  EXPECT_EQ(Custom(*h, "num_inf")->num(), 2);
  EXPECT_EQ(hn.min(), -kInf);
  EXPECT_EQ(hn.max(), 5);
  EXPECT_EQ(hn.mean(), -kInf);
  EXPECT_TRUE(std::isnan(hn.std_dev())) << hn.std_dev();
  EXPECT_EQ(hn.histograms(0).buckets(0).low_value(), -kInf);
  EXPECT_EQ(hn.histograms(0).buckets(9).high_value(), 5);

  const auto* z = Feature(ds, "z");
  ASSERT_NE(z, nullptr);
  EXPECT_EQ(z->type(), tfmd::FeatureNameStatistics::FLOAT);
  const auto& zn = z->num_stats();
  EXPECT_EQ(zn.common_stats().num_non_missing(), 7u);
  EXPECT_EQ(zn.common_stats().num_missing(), 1u);
  EXPECT_EQ(zn.histograms(0).num_nan(), 7u);
  EXPECT_EQ(Custom(*z, "num_inf")->num(), 0);
  EXPECT_EQ(zn.num_zeros(), 0u);
  EXPECT_EQ(zn.histograms(0).buckets_size(), 0);  // no number to bucket
}

// TFDV's num_missing is num_examples - num_non_missing: a row without the feature is
// missing whether or not other rows of its block have it.
TEST(GeneratorCountsTest, MissingCountsRowsOfBlocksWithoutTheFeature) {
  TempDir dir;
  // ~900 KB: several blocks whatever the reader's minimum block size; "rare" is only in
  // the first row.
  std::string text = "{\"a\": 0, \"rare\": 7}\n";
  for (int i = 1; i < 60000; ++i) text += kiln::StrCat("{\"a\": ", i, "}\n");
  std::string path = dir.Write("a.jsonl", text);
  data::ReadOptions read;
  read.block_bytes = 4096;
  Result r = Compute(path, read);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  EXPECT_EQ(r.stats->num_examples(), 60000u);
  const auto* rare = Feature(*r.stats, "rare");
  ASSERT_NE(rare, nullptr);
  EXPECT_EQ(Common(*rare).num_non_missing(), 1u);
  EXPECT_EQ(Common(*rare).num_missing(), 59999u);

  // The same with TFRecord: "late" appears only in the second file.
  data::Batch first, second;
  first.num_rows = 100;
  first.columns.resize(1);
  first.columns[0].name = "a";
  for (int i = 0; i < 100; ++i) first.columns[0].AddInt(i);
  second.num_rows = 10;
  second.columns.resize(2);
  second.columns[0].name = "a";
  second.columns[1].name = "late";
  for (int i = 0; i < 10; ++i) {
    second.columns[0].AddInt(i);
    second.columns[1].AddInt(i);
  }
  ASSERT_TRUE(WriteExamples(dir.File("a.tfrecord"), first).ok());
  ASSERT_TRUE(WriteExamples(dir.File("b.tfrecord"), second).ok());
  Result t = Compute(dir.File("*.tfrecord"));
  ASSERT_TRUE(t.stats.ok()) << t.stats.status();
  EXPECT_EQ(t.stats->num_examples(), 110u);
  const auto* late = Feature(*t.stats, "late");
  ASSERT_NE(late, nullptr);
  EXPECT_EQ(Common(*late).num_non_missing(), 10u);
  EXPECT_EQ(Common(*late).num_missing(), 100u);
}

// A column that is INT in early blocks and FLOAT in a later one is FLOAT over every value
// (no re-read needed), and has no exact INT value counts.
TEST(GeneratorCountsTest, IntThenFloatBlocksGiveFloatOverAllValues) {
  TempDir dir;
  std::string text = "x\n";
  double sum = 0;
  uint64_t zeros = 0;
  for (int i = 0; i < 20000; ++i) {
    text += kiln::StrCat(i % 5, "\n");
    sum += i % 5;
    zeros += i % 5 == 0;
  }
  text += "0.5\n";
  sum += 0.5;
  std::string path = dir.Write("a.csv", text);
  data::ReadOptions read;
  read.block_bytes = 4096;
  StatsOptions options;
  options.threads = 2;
  Result r = Compute(path, read, options);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  const auto* x = Feature(*r.stats, "x");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->type(), tfmd::FeatureNameStatistics::FLOAT);
  EXPECT_EQ(Common(*x).num_non_missing(), 20001u);
  EXPECT_DOUBLE_EQ(x->num_stats().mean(), sum / 20001);
  EXPECT_EQ(x->num_stats().num_zeros(), zeros);
  EXPECT_EQ(x->num_stats().min(), 0);
  EXPECT_EQ(x->num_stats().max(), 4);
  EXPECT_EQ(Custom(*x, "kiln_value_counts"), nullptr);
}

// --- numbers

TEST(GeneratorNumericTest, MeanAndStdDevStableAtLargeOffset) {
  TempDir dir;
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> noise(-1.0, 1.0);
  std::vector<double> values;
  std::string text = "x\n";
  for (int i = 0; i < 50000; ++i) {
    values.push_back(1e9 + noise(rng));
    text += Num(values.back()) + "\n";
  }
  std::string path = dir.Write("a.csv", text);
  auto [mean, sd] = ReferenceMoments(values);
  for (int threads : {1, 2}) {
    SCOPED_TRACE(kiln::StrCat("threads=", threads));
    StatsOptions options;
    options.threads = threads;
    Result r = Compute(path, {}, options);
    ASSERT_TRUE(r.stats.ok()) << r.stats.status();
    const auto& n = Feature(*r.stats, "x")->num_stats();
    EXPECT_LT(RelErr(n.mean(), mean), 1e-12)
        << "mean " << Num(n.mean()) << " vs " << Num(static_cast<double>(mean));
    EXPECT_LT(RelErr(n.std_dev(), sd), 1e-12)
        << "std_dev " << Num(n.std_dev()) << " vs " << Num(static_cast<double>(sd));
    EXPECT_EQ(n.min(), *std::min_element(values.begin(), values.end()));
    EXPECT_EQ(n.max(), *std::max_element(values.begin(), values.end()));
  }
}

// 50,000 distinct uniform values in [0, 1000), written so they read back exactly.
std::vector<double> WriteUniformCsv(const TempDir& dir, std::string* path) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1000.0);
  std::vector<double> values;
  std::string text = "x\n";
  for (int i = 0; i < 50000; ++i) {
    values.push_back(u(rng));
    text += Num(values.back()) + "\n";
  }
  *path = dir.Write("u.csv", text);
  return values;
}

// The rank bound of a sketch that saw `n` values: which levels compact depends only on
// the count, so a sketch fed the same number of values has the same bound.
double BoundFor(const std::vector<double>& values, int k) {
  KllSketch sketch(k);
  for (double v : values) sketch.Add(v);
  return sketch.RankErrorBound();
}

TEST(GeneratorNumericTest, MedianAndQuantilesWithinRankErrorBound) {
  TempDir dir;
  std::string path;
  std::vector<double> values = WriteUniformCsv(dir, &path);
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  StatsOptions options;
  options.threads = 1;  // one sketch, no merges: its bound is BoundFor's
  const double eps = BoundFor(values, options.kll_k);
  ASSERT_GT(eps, 0);  // the sketch has compacted: the test exercises the approximation
  ASSERT_LT(eps, 0.05);
  Result r = Compute(path, {}, options);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  const auto& n = Feature(*r.stats, "x")->num_stats();
  const double count = static_cast<double>(values.size());

  // The exact rank range of v must meet [q - eps, q + eps].
  auto expect_rank = [&](double v, double q) {
    SCOPED_TRACE(kiln::StrCat("q=", q, " v=", v));
    auto lo = std::lower_bound(sorted.begin(), sorted.end(), v);
    auto hi = std::upper_bound(sorted.begin(), sorted.end(), v);
    ASSERT_NE(lo, hi) << "not a data value";
    double below = static_cast<double>(lo - sorted.begin()) / count;  // fraction < v
    double upto = static_cast<double>(hi - sorted.begin()) / count;   // fraction <= v
    EXPECT_GE(upto, q - eps);
    EXPECT_LE(below, q + eps);
  };
  expect_rank(n.median(), 0.5);
  const auto& qh = n.histograms(1);
  EXPECT_EQ(qh.type(), tfmd::Histogram::QUANTILES);
  ASSERT_EQ(qh.buckets_size(), 10);
  EXPECT_EQ(qh.buckets(0).low_value(), sorted.front());
  EXPECT_EQ(qh.buckets(9).high_value(), sorted.back());
  for (int i = 0; i < 10; ++i) {
    EXPECT_DOUBLE_EQ(qh.buckets(i).sample_count(), count / 10);
    if (i > 0) {
      EXPECT_EQ(qh.buckets(i).low_value(), qh.buckets(i - 1).high_value());
    }
    expect_rank(qh.buckets(i).low_value(), i / 10.0);
  }
}

TEST(GeneratorNumericTest, EqualWidthHistogramCoversMinToMaxAndSumsToCount) {
  TempDir dir;
  std::string path;
  std::vector<double> values = WriteUniformCsv(dir, &path);
  StatsOptions options;
  options.threads = 1;
  options.num_histogram_buckets = 8;
  const double eps = BoundFor(values, options.kll_k);
  Result r = Compute(path, {}, options);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  const auto& n = Feature(*r.stats, "x")->num_stats();
  const double lo = *std::min_element(values.begin(), values.end());
  const double hi = *std::max_element(values.begin(), values.end());
  EXPECT_EQ(n.min(), lo);
  EXPECT_EQ(n.max(), hi);
  const auto& h = n.histograms(0);
  EXPECT_EQ(h.type(), tfmd::Histogram::STANDARD);
  EXPECT_EQ(h.num_nan(), 0u);
  ASSERT_EQ(h.buckets_size(), 8);
  EXPECT_EQ(h.buckets(0).low_value(), lo);
  EXPECT_EQ(h.buckets(7).high_value(), hi);
  const double width = (hi - lo) / 8;
  const double count = static_cast<double>(values.size());
  EXPECT_NEAR(HistogramTotal(h), count, 1e-6);
  for (int i = 0; i < 8; ++i) {
    SCOPED_TRACE(kiln::StrCat("bucket ", i));
    const auto& b = h.buckets(i);
    if (i > 0) {
      EXPECT_EQ(b.low_value(), h.buckets(i - 1).high_value());
    }
    EXPECT_NEAR(b.high_value() - b.low_value(), width, width * 1e-9);
    // The sketch's rank at each edge is off by at most eps.
    double exact = 0;
    for (double v : values) {
      if (v >= b.low_value() && (v < b.high_value() || (i == 7 && v <= b.high_value()))) ++exact;
    }
    EXPECT_NEAR(b.sample_count(), exact, 2 * eps * count + 1);
  }
}

TEST(GeneratorNumericTest, EqualWidthHistogramExactForSmallInputs) {
  TempDir dir;
  // 5 buckets of width 2 over [0, 10]: a value on an inner edge goes to the bucket above,
  // the last bucket is closed.
  std::string path = dir.Write("a.csv", "x\n0\n1\n1\n2\n5\n10\n");
  StatsOptions options;
  options.num_histogram_buckets = 5;
  Result r = Compute(path, {}, options);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  const auto& h = Feature(*r.stats, "x")->num_stats().histograms(0);
  ASSERT_EQ(h.buckets_size(), 5);
  const double want[5] = {3, 1, 1, 0, 1};
  for (int i = 0; i < 5; ++i) {
    EXPECT_DOUBLE_EQ(h.buckets(i).low_value(), 2.0 * i);
    EXPECT_DOUBLE_EQ(h.buckets(i).high_value(), 2.0 * (i + 1));
    EXPECT_EQ(h.buckets(i).sample_count(), want[i]) << "bucket " << i;
  }

  // One distinct value: everything in the first bucket.
  path = dir.Write("b.csv", "x\n4\n4\n4\n");
  r = Compute(path, {}, options);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  const auto& one = Feature(*r.stats, "x")->num_stats().histograms(0);
  ASSERT_EQ(one.buckets_size(), 5);
  EXPECT_EQ(one.buckets(0).sample_count(), 3);
  EXPECT_EQ(HistogramTotal(one), 3);
  EXPECT_EQ(one.buckets(0).low_value(), 4);
  EXPECT_EQ(one.buckets(4).high_value(), 4);
}

// --- strings

TEST(GeneratorStringTest, TopValuesUniqueLengthsAndCustomStats) {
  TempDir dir;
  std::vector<std::string> col = {"b",   "a",      "b", "c", "a",   "b",   "3",
                                  "2.5", "xy\xff", "",  "a", "nan", "Inf", "ice"};
  // A blank line would be skipped, so the missing value needs a second column.
  std::string text = "s,o\n";
  for (const auto& v : col) text += v + ",1\n";
  std::string path = dir.Write("a.csv", text);
  Result r = Compute(path);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  const auto* f = Feature(*r.stats, "s");
  ASSERT_NE(f, nullptr);

  ExpectedStrings want;
  for (const auto& v : col) {
    if (v.empty()) continue;
    const bool is_int = v == "3";
    const bool is_float = v == "3" || v == "2.5" || v == "nan" || v == "Inf";
    want.Add(v, is_int, is_float);
  }
  ASSERT_EQ(want.total, 13u);
  ASSERT_EQ(want.non_int, 12u);
  ASSERT_EQ(want.non_float, 9u);
  ExpectStringStats(*f, want, 1, /*compare_top=*/false);  // labels are sanitized below
  const auto& s = f->string_stats();
  EXPECT_EQ(s.unique(), 9u);
  EXPECT_EQ(s.invalid_utf8_count(), 1u);
  // The invalid byte is replaced by U+FFFD in the text outputs.
  std::vector<std::pair<std::string, double>> top = {{"a", 3},   {"b", 3},   {"2.5", 1},
                                                     {"3", 1},   {"Inf", 1}, {"c", 1},
                                                     {"ice", 1}, {"nan", 1}, {"xy\xEF\xBF\xBD", 1}};
  EXPECT_EQ(TopPairs(s), top);
  EXPECT_EQ(RankPairs(s.rank_histogram()), top);
  for (int i = 0; i < s.rank_histogram().buckets_size(); ++i) {
    EXPECT_EQ(s.rank_histogram().buckets(i).low_rank(), static_cast<uint64_t>(i));
    EXPECT_EQ(s.rank_histogram().buckets(i).high_rank(), static_cast<uint64_t>(i));
  }
  // 1*3 + 1*3 + 1 + 1 + 3 + 3 + 3 + 3 + 3 = 23 bytes over 13 values.
  EXPECT_FLOAT_EQ(s.avg_length(), static_cast<float>(23.0 / 13.0));
  const auto* vc = Custom(*f, "kiln_value_counts");
  ASSERT_NE(vc, nullptr);
  EXPECT_EQ(RankPairs(vc->rank_histogram()), top);
}

TEST(GeneratorStringTest, TopValuesAndRankHistogramTruncatedToTheirSizes) {
  TempDir dir;
  std::string path = dir.Write("a.csv", "s\nq\nr\nr\np\np\np\ns\nr\n");  // p 3, r 3, q 1, s 1
  StatsOptions options;
  options.num_top_values = 2;
  options.num_rank_histogram_buckets = 3;
  Result r = Compute(path, {}, options);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  const auto& s = Feature(*r.stats, "s")->string_stats();
  EXPECT_EQ(s.unique(), 4u);
  std::vector<std::pair<std::string, double>> top2 = {{"p", 3}, {"r", 3}};
  std::vector<std::pair<std::string, double>> top3 = {{"p", 3}, {"r", 3}, {"q", 1}};
  EXPECT_EQ(TopPairs(s), top2);
  EXPECT_EQ(RankPairs(s.rank_histogram()), top3);
}

TEST(GeneratorStringTest, ValueCountsPresentUpToCapAbsentAbove) {
  TempDir dir;
  std::string path = dir.Write("a.csv", "s\nu\nv\nw\nx\ny\nz\nz\n");  // 6 distinct
  StatsOptions options;
  options.value_counts_cap = 6;
  Result at = Compute(path, {}, options);
  ASSERT_TRUE(at.stats.ok()) << at.stats.status();
  const auto* vc = Custom(*Feature(*at.stats, "s"), "kiln_value_counts");
  ASSERT_NE(vc, nullptr);
  std::vector<std::pair<std::string, double>> want = {{"z", 2}, {"u", 1}, {"v", 1},
                                                      {"w", 1}, {"x", 1}, {"y", 1}};
  EXPECT_EQ(RankPairs(vc->rank_histogram()), want);

  options.value_counts_cap = 5;
  Result above = Compute(path, {}, options);
  ASSERT_TRUE(above.stats.ok()) << above.stats.status();
  const auto* f = Feature(*above.stats, "s");
  EXPECT_EQ(Custom(*f, "kiln_value_counts"), nullptr);
  EXPECT_EQ(f->string_stats().unique(), 6u);  // the other statistics are unaffected
  EXPECT_NE(Custom(*f, "kiln_non_int_count"), nullptr);
}

// --- INT value counts

TEST(GeneratorIntTest, ValueCountsExactUpToCapAbsentAbove) {
  TempDir dir;
  // 5 x3, -3 x2, 9 x1, 10 x1: ties by numeric value, so 9 before 10.
  std::string path = dir.Write("a.csv", "n\n5\n-3\n10\n5\n9\n-3\n5\n");
  StatsOptions options;
  options.value_counts_cap = 4;
  Result at = Compute(path, {}, options);
  ASSERT_TRUE(at.stats.ok()) << at.stats.status();
  const auto* vc = Custom(*Feature(*at.stats, "n"), "kiln_value_counts");
  ASSERT_NE(vc, nullptr);
  std::vector<std::pair<std::string, double>> want = {{"5", 3}, {"-3", 2}, {"9", 1}, {"10", 1}};
  EXPECT_EQ(RankPairs(vc->rank_histogram()), want);

  options.value_counts_cap = 3;
  Result above = Compute(path, {}, options);
  ASSERT_TRUE(above.stats.ok()) << above.stats.status();
  EXPECT_EQ(Custom(*Feature(*above.stats, "n"), "kiln_value_counts"), nullptr);
}

TEST(GeneratorIntTest, ValueCountsMergedExactlyAcrossBlocksAndThreads) {
  TempDir dir;
  // Value v - 18 (v = 0..36) occurs 20 * (2v + 1) times, in runs: each 4 KiB block holds
  // only a few distinct values, 37 overall.
  std::map<int64_t, uint64_t> counts;
  std::string text = "n\n";
  for (int i = 0; i < 37 * 37 * 20; ++i) {
    int64_t q = i / 20, v = 0;
    while ((v + 1) * (v + 1) <= q) ++v;
    ++counts[v - 18];
    text += kiln::StrCat(v - 18, "\n");
  }
  ASSERT_EQ(counts.size(), 37u);
  ASSERT_EQ(counts[18], 20u * 73);
  std::string path = dir.Write("a.csv", text);
  std::vector<std::pair<int64_t, uint64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::vector<std::pair<std::string, double>> want;
  for (const auto& [v, c] : sorted) want.emplace_back(std::to_string(v), static_cast<double>(c));
  data::ReadOptions read;
  read.block_bytes = 4096;
  StatsOptions options;
  options.threads = 4;
  Result r = Compute(path, read, options);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  const auto* vc = Custom(*Feature(*r.stats, "n"), "kiln_value_counts");
  ASSERT_NE(vc, nullptr);
  EXPECT_EQ(RankPairs(vc->rank_histogram()), want);

  // No block exceeds a cap of 36 distinct values, but the whole input does: the merge
  // must drop the counts.
  options.value_counts_cap = 36;
  Result above = Compute(path, read, options);
  ASSERT_TRUE(above.stats.ok()) << above.stats.status();
  EXPECT_EQ(Custom(*Feature(*above.stats, "n"), "kiln_value_counts"), nullptr);
}

// --- threads and blocks

TEST(GeneratorMergeTest, SameResultForOneTwoFourThreadsAndSmallBlocks) {
  TempDir dir;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal(100.0, 15.0);
  std::string text = "id,x,cat,n,sparse\n";
  for (int i = 0; i < 20000; ++i) {
    std::string cat = i % 13 == 0 ? "" : kiln::StrCat("c", (i * 7919) % 37);
    std::string sparse = i % 101 == 0 ? kiln::StrCat(i % 7) : "";
    text += kiln::StrCat(i, ",", Num(normal(rng)), ",", cat, ",", i % 11, ",", sparse, "\n");
  }
  std::string path = dir.Write("a.csv", text);
  data::ReadOptions read;
  read.block_bytes = 4096;

  std::vector<tfmd::DatasetFeatureStatistics> runs;
  for (int threads : {1, 2, 4}) {
    StatsOptions options;
    options.threads = threads;
    Result r = Compute(path, read, options);
    ASSERT_TRUE(r.stats.ok()) << r.stats.status();
    runs.push_back(*r.stats);
  }
  const auto& base = runs[0];
  EXPECT_EQ(base.num_examples(), 20000u);
  ASSERT_EQ(base.features_size(), 5);
  EXPECT_EQ(Common(*Feature(base, "cat")).num_missing(), 1539u);  // multiples of 13 below 20000
  EXPECT_EQ(Common(*Feature(base, "sparse")).num_non_missing(), 199u);
  for (size_t k = 1; k < runs.size(); ++k) {
    SCOPED_TRACE(kiln::StrCat("run ", k));
    const auto& other = runs[k];
    EXPECT_EQ(other.num_examples(), base.num_examples());
    ASSERT_EQ(other.features_size(), base.features_size());
    for (int i = 0; i < base.features_size(); ++i) {
      const auto& a = base.features(i);
      const auto& b = other.features(i);
      SCOPED_TRACE(a.name());
      EXPECT_EQ(b.name(), a.name());  // same order whatever the thread timing
      EXPECT_EQ(b.type(), a.type());
      const auto& ca = Common(a);
      const auto& cb = Common(b);
      EXPECT_EQ(cb.num_non_missing(), ca.num_non_missing());
      EXPECT_EQ(cb.num_missing(), ca.num_missing());
      EXPECT_EQ(cb.min_num_values(), ca.min_num_values());
      EXPECT_EQ(cb.max_num_values(), ca.max_num_values());
      EXPECT_EQ(cb.tot_num_values(), ca.tot_num_values());
      if (a.has_num_stats()) {
        const auto& na = a.num_stats();
        const auto& nb = b.num_stats();
        // Merge order differs between thread counts: the last bits of a sum may too.
        EXPECT_LE(std::fabs(nb.mean() - na.mean()), 1e-12 * std::fabs(na.mean()))
            << Num(nb.mean()) << " vs " << Num(na.mean());
        EXPECT_LT(std::fabs(nb.std_dev() - na.std_dev()), 1e-12 * na.std_dev());
        EXPECT_EQ(nb.min(), na.min());
        EXPECT_EQ(nb.max(), na.max());
        EXPECT_EQ(nb.num_zeros(), na.num_zeros());
        EXPECT_EQ(nb.histograms(0).num_nan(), na.histograms(0).num_nan());
      } else {
        EXPECT_EQ(b.string_stats().unique(), a.string_stats().unique());
        EXPECT_EQ(TopPairs(b.string_stats()), TopPairs(a.string_stats()));
        EXPECT_EQ(b.string_stats().avg_length(), a.string_stats().avg_length());
      }
      const auto* va = Custom(a, "kiln_value_counts");
      const auto* vb = Custom(b, "kiln_value_counts");
      ASSERT_EQ(va == nullptr, vb == nullptr);
      if (va) {
        EXPECT_EQ(RankPairs(vb->rank_histogram()), RankPairs(va->rank_histogram()));
      }
    }
  }
}

// --- a feature typed per block as numbers, then as text: the re-read path

// Writes 100,000 rows whose x is a number (i % 997) and one last row whose x is "zzz",
// and returns what x's string statistics must be.
ExpectedStrings NumbersThenString(std::vector<std::string>* values) {
  ExpectedStrings want;
  for (int i = 0; i < 100000; ++i) {
    values->push_back(std::to_string(i % 997));
    want.Add(values->back(), true, true);
  }
  values->push_back("zzz");
  want.Add("zzz", false, false);
  return want;
}

void ExpectNumbersThenString(const Result& r) {
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  std::vector<std::string> values;
  ExpectedStrings want = NumbersThenString(&values);
  EXPECT_EQ(r.stats->num_examples(), 100001u);
  const auto* x = Feature(*r.stats, "x");
  ASSERT_NE(x, nullptr);
  ExpectStringStats(*x, want, 0);
  EXPECT_EQ(x->string_stats().unique(), 998u);
  // 0..299 occur 101 times, the rest 100: the top are the first 20 of 0..299 bytewise.
  ASSERT_GT(x->string_stats().top_values_size(), 0);
  EXPECT_EQ(x->string_stats().top_values(0).value(), "0");
  EXPECT_EQ(x->string_stats().top_values(0).frequency(), 101);
  EXPECT_EQ(x->string_stats().top_values(1).value(), "1");
  EXPECT_EQ(x->string_stats().top_values(2).value(), "10");
  EXPECT_EQ(x->string_stats().top_values(3).value(), "100");
  // Only the last value is not an integer.
  EXPECT_EQ(Custom(*x, "kiln_non_int_count")->num(), 1);
  // y stays INT and is counted once.
  const auto* y = Feature(*r.stats, "y");
  ASSERT_NE(y, nullptr);
  EXPECT_EQ(y->type(), tfmd::FeatureNameStatistics::INT);
  EXPECT_EQ(Common(*y).num_non_missing(), 100001u);
  EXPECT_EQ(y->num_stats().max(), 100000);
  EXPECT_DOUBLE_EQ(y->num_stats().mean(), 50000);
}

TEST(GeneratorRescanTest, CsvNumbersThenStringCountsEveryValue) {
  TempDir dir;
  std::vector<std::string> values;
  NumbersThenString(&values);
  std::string text = "x,y\n";
  for (size_t i = 0; i < values.size(); ++i) text += kiln::StrCat(values[i], ",", i, "\n");
  std::string path = dir.Write("a.csv", text);
  data::ReadOptions read;
  read.block_bytes = 4096;
  for (int threads : {1, 3}) {
    SCOPED_TRACE(kiln::StrCat("threads=", threads));
    StatsOptions options;
    options.threads = threads;
    ExpectNumbersThenString(Compute(path, read, options));
  }
}

TEST(GeneratorRescanTest, JsonlNumbersThenStringCountsEveryValue) {
  TempDir dir;
  std::vector<std::string> values;
  NumbersThenString(&values);
  std::string text;
  for (size_t i = 0; i + 1 < values.size(); ++i) {
    text += kiln::StrCat("{\"x\": ", values[i], ", \"y\": ", i, "}\n");
  }
  text += kiln::StrCat("{\"x\": \"", values.back(), "\", \"y\": ", values.size() - 1, "}\n");
  std::string path = dir.Write("a.jsonl", text);
  data::ReadOptions read;
  read.block_bytes = 4096;
  StatsOptions options;
  options.threads = 2;
  ExpectNumbersThenString(Compute(path, read, options));
}

TEST(GeneratorRescanTest, TfRecordInt64ThenBytesCountsEveryValue) {
  TempDir dir;
  constexpr int kFirst = 5000, kSecond = 3000;
  ExpectedStrings want;
  data::Batch a;
  a.num_rows = kFirst;
  a.columns.resize(2);
  a.columns[0].name = "id";
  a.columns[1].name = "x";
  for (int i = 0; i < kFirst; ++i) {
    a.columns[0].AddInt(i);
    a.columns[1].AddInt(i % 50);
    want.Add(std::to_string(i % 50), true, true);
  }
  data::Batch b;
  b.num_rows = kSecond;
  b.columns.resize(2);
  b.columns[0].name = "id";
  b.columns[1].name = "x";
  b.columns[1].type = data::ValueType::kString;
  for (int i = 0; i < kSecond; ++i) {
    b.columns[0].AddInt(kFirst + i);
    std::string v = kiln::StrCat("s", i % 7);
    b.columns[1].AddString(v);
    want.Add(v, false, false);
  }
  ASSERT_TRUE(WriteExamples(dir.File("a.tfrecord"), a).ok());
  ASSERT_TRUE(WriteExamples(dir.File("b.tfrecord"), b).ok());
  data::ReadOptions read;
  read.block_bytes = 4096;
  StatsOptions options;
  options.threads = 2;
  Result r = Compute(dir.File("*.tfrecord"), read, options);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  EXPECT_EQ(r.bad_rows, 0u);
  EXPECT_EQ(r.stats->num_examples(), static_cast<uint64_t>(kFirst + kSecond));
  const auto* x = Feature(*r.stats, "x");
  ASSERT_NE(x, nullptr);
  ExpectStringStats(*x, want, 0);
  EXPECT_EQ(x->string_stats().unique(), 57u);
  const auto* id = Feature(*r.stats, "id");
  ASSERT_NE(id, nullptr);
  EXPECT_EQ(Common(*id).num_non_missing(), static_cast<uint64_t>(kFirst + kSecond));
  EXPECT_EQ(id->num_stats().max(), kFirst + kSecond - 1);
}

// --- bad rows

TEST(GeneratorBadRowsTest, SkippedCsvRowsAreNotExamples) {
  TempDir dir;
  std::string path = dir.Write("a.csv", "a,b\n1,2\n3\n4,5\n6,7,8\n9,10\n");
  data::ReadOptions read;
  read.bad_rows = data::BadRowPolicy::kSkip;
  Result r = Compute(path, read);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  EXPECT_EQ(r.stats->num_examples(), 3u);
  EXPECT_EQ(r.bad_rows, 2u);
  ASSERT_EQ(r.bad_samples.size(), 2u);
  std::vector<uint64_t> lines = {r.bad_samples[0].line, r.bad_samples[1].line};
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<uint64_t>{3, 5}));
  const auto& a = Feature(*r.stats, "a")->num_stats();
  EXPECT_EQ(a.common_stats().num_non_missing(), 3u);
  EXPECT_EQ(a.common_stats().num_missing(), 0u);
  EXPECT_DOUBLE_EQ(a.mean(), (1 + 4 + 9) / 3.0);
  EXPECT_EQ(a.max(), 9);
  const auto& b = Feature(*r.stats, "b")->num_stats();
  EXPECT_DOUBLE_EQ(b.mean(), (2 + 5 + 10) / 3.0);
}

TEST(GeneratorBadRowsTest, SkippedJsonlRowsAreNotExamples) {
  TempDir dir;
  std::string path = dir.Write("a.jsonl",
                               "{\"a\": 1}\n"
                               "not json\n"
                               "{\"a\": 2}\n"
                               "[1, 2]\n"
                               "{\"a\": {\"n\": 1}}\n"
                               "{\"a\": 4}\n");
  data::ReadOptions read;
  read.bad_rows = data::BadRowPolicy::kSkip;
  Result r = Compute(path, read);
  ASSERT_TRUE(r.stats.ok()) << r.stats.status();
  EXPECT_EQ(r.stats->num_examples(), 3u);
  EXPECT_EQ(r.bad_rows, 3u);
  const auto& a = Feature(*r.stats, "a")->num_stats();
  EXPECT_EQ(a.common_stats().num_non_missing(), 3u);
  EXPECT_EQ(a.common_stats().num_missing(), 0u);
  EXPECT_DOUBLE_EQ(a.mean(), 7 / 3.0);
}

TEST(GeneratorBadRowsTest, ErrorPolicyStopsNamingFileAndLine) {
  TempDir dir;
  std::string path = dir.Write("a.csv", "a,b\n1,2\n3\n4,5\n");
  Result r = Compute(path);
  ASSERT_FALSE(r.stats.ok());
  EXPECT_EQ(r.stats.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.stats.status().message()), HasSubstr("a.csv:3:"));
}

}  // namespace
}  // namespace kiln::stats

namespace kiln::stats {
namespace {

TEST(GeneratorMergeTest, SameThreadCountGivesBitIdenticalStatistics) {
  kiln::testing::TempDir dir;
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(1e6, 3.0);
  std::string text = "x,c\n";
  for (int i = 0; i < 30000; ++i) text += kiln::StrCat(normal(rng), ",v", rng() % 5000, "\n");
  std::string path = dir.Write("r.csv", text);
  auto input = data::ResolveInput(Env::Default(), path);
  ASSERT_TRUE(input.ok());
  data::ReadOptions read;
  read.block_bytes = 4096;
  StatsOptions options;
  options.threads = 3;
  std::string first;
  for (int run = 0; run < 5; ++run) {
    data::BadRowSink bad(data::BadRowPolicy::kError);
    auto ds = ComputeStatistics(Env::Default(), *input, read, options, &bad);
    ASSERT_TRUE(ds.ok()) << ds.status();
    std::string bytes;
    ASSERT_TRUE(ds->SerializeToString(&bytes));
    if (run == 0) first = bytes;
    EXPECT_EQ(bytes, first) << "run " << run << " differs";
  }
}

}  // namespace
}  // namespace kiln::stats
