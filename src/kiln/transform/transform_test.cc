#include "kiln/transform/transform.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kiln/base/hash.h"
#include "kiln/base/str.h"
#include "kiln/data/csv.h"
#include "kiln/data/dataset.h"
#include "kiln/data/importer.h"
#include "kiln/data/input.h"
#include "kiln/data/jsonl.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::transform {
namespace {

using data::Batch;
using data::Column;
using data::ValueType;
using kiln::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr double kNone = std::numeric_limits<double>::quiet_NaN();  // "missing" in helpers

Column Floats(const std::string& name, const std::vector<double>& v) {
  Column c;
  c.name = name;
  c.type = ValueType::kFloat;
  for (double x : v) {
    if (std::isnan(x)) {
      c.AddMissing();
    } else {
      c.AddFloat(x);
    }
  }
  return c;
}

Column Ints(const std::string& name, const std::vector<std::optional<int64_t>>& v) {
  Column c;
  c.name = name;
  c.type = ValueType::kInt;
  for (const auto& x : v) {
    if (x) {
      c.AddInt(*x);
    } else {
      c.AddMissing();
    }
  }
  return c;
}

Column Strings(const std::string& name, const std::vector<std::optional<std::string>>& v) {
  Column c;
  c.name = name;
  c.type = ValueType::kString;
  for (const auto& x : v) {
    if (x) {
      c.AddString(*x);
    } else {
      c.AddMissing();
    }
  }
  return c;
}

Batch MakeBatch(std::vector<Column> cols) {
  Batch b;
  b.num_rows = cols.empty() ? 0 : cols[0].num_rows();
  b.columns = std::move(cols);
  return b;
}

data::TableSchema SchemaOf(const Batch& b) {
  data::TableSchema s;
  for (const auto& c : b.columns) s.push_back({c.name, c.type});
  return s;
}

TransformSpec Spec(const std::string& yaml) {
  auto spec = ParseTransformSpecYaml(yaml);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : TransformSpec{};
}

FitOptions WithSalt(std::string salt) {
  FitOptions o;
  o.salts = [salt](const std::string& name) -> std::optional<std::string> {
    if (name == "KILN_TEST_SALT") return salt;
    return std::nullopt;
  };
  return o;
}

absl::StatusOr<FittedTransform> FitBatches(const TransformSpec& spec, const data::TableSchema& s,
                                           const std::vector<Batch>& batches,
                                           const FitOptions& options = {}) {
  KILN_ASSIGN_OR_RETURN(auto fitter, TransformFitter::Create(spec, s, options));
  for (const auto& b : batches) KILN_RETURN_IF_ERROR(fitter->Add(b));
  return fitter->Finish();
}

FittedTransform MustFit(const std::string& yaml, const Batch& b, const FitOptions& o = {}) {
  auto t = FitBatches(Spec(yaml), SchemaOf(b), {b}, o);
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(t).value();
}

TransformedBatch MustApply(const FittedTransform& t, const Batch& b) {
  TransformedBatch out;
  absl::Status s = t.Apply(b, &out);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

const FittedOp& OpOf(const FittedTransform& t, const std::string& feature, size_t i) {
  const FittedFeature* f = t.FindFeature(feature);
  EXPECT_NE(f, nullptr) << feature;
  return f->ops.at(i);
}

// Dense column of `feature` as a vector.
std::vector<float> DenseOf(const FittedTransform& t, const TransformedBatch& out,
                           const std::string& feature) {
  const FittedFeature* f = t.FindFeature(feature);
  EXPECT_NE(f, nullptr);
  EXPECT_EQ(f->output.kind, OutputKind::kDense);
  std::vector<float> v;
  for (size_t r = 0; r < out.num_rows; ++r) v.push_back(out.dense_at(r, f->output_index));
  return v;
}

std::vector<int64_t> IdsOf(const FittedTransform& t, const TransformedBatch& out,
                           const std::string& name) {
  size_t col = SIZE_MAX;
  const auto& cats = t.output_signature().categorical;
  for (size_t i = 0; i < cats.size(); ++i)
    if (cats[i].name == name) col = i;
  EXPECT_NE(col, SIZE_MAX) << name;
  std::vector<int64_t> v;
  for (size_t r = 0; r < out.num_rows; ++r) v.push_back(out.id_at(r, col));
  return v;
}

// Straightforward two-pass reference statistics.
struct Reference {
  double mean = 0, std = 0, min = 0, max = 0;
};
Reference TwoPass(const std::vector<double>& xs) {
  Reference r;
  double sum = 0;
  for (double x : xs) sum += x;
  r.mean = sum / static_cast<double>(xs.size());
  double ss = 0;
  for (double x : xs) ss += (x - r.mean) * (x - r.mean);
  r.std = std::sqrt(ss / static_cast<double>(xs.size()));
  r.min = *std::min_element(xs.begin(), xs.end());
  r.max = *std::max_element(xs.begin(), xs.end());
  return r;
}

void ExpectClose(double got, double want, const char* what) {
  EXPECT_NEAR(got, want, 1e-12 * std::max(1.0, std::fabs(want))) << what;
}

float ZScore(double x, const FittedOp& op) { return static_cast<float>((x - op.mean) / op.std); }

// ---- Analyzers against references --------------------------------------------------------

TEST(TransformFitTest, ZScoreAndMinMaxMatchATwoPassReference) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(5000, 1000);
  std::vector<double> xs, present;
  for (int i = 0; i < 5000; ++i) {
    if (rng() % 10 == 0) {
      xs.push_back(kNone);
    } else {
      xs.push_back(normal(rng));
      present.push_back(xs.back());
    }
  }
  // Three uneven batches: the fit streams.
  std::vector<Batch> batches;
  for (auto [lo, hi] : {std::pair<size_t, size_t>{0, 1234}, {1234, 1235}, {1235, 5000}}) {
    std::vector<double> part(xs.begin() + lo, xs.begin() + hi);
    batches.push_back(MakeBatch({Floats("x", part), Floats("y", part)}));
  }
  auto t = FitBatches(Spec("features: {x: [zscore], y: [minmax]}"), SchemaOf(batches[0]), batches);
  ASSERT_TRUE(t.ok()) << t.status();
  const Reference ref = TwoPass(present);
  const FittedOp& z = OpOf(*t, "x", 0);
  ExpectClose(z.mean, ref.mean, "mean");
  ExpectClose(z.std, ref.std, "std");
  const FittedOp& mm = OpOf(*t, "y", 0);
  EXPECT_EQ(mm.min, ref.min);
  EXPECT_EQ(mm.max, ref.max);
  EXPECT_EQ(t->num_rows(), 5000u);

  for (const Batch& b : batches) {
    TransformedBatch out = MustApply(*t, b);
    auto zx = DenseOf(*t, out, "x"), my = DenseOf(*t, out, "y");
    for (size_t r = 0; r < b.num_rows; ++r) {
      if (!b.columns[0].is_present(r)) {
        EXPECT_EQ(zx[r], 0.0f);  // still missing after the last op
        EXPECT_EQ(my[r], 0.0f);
        continue;
      }
      const double x = b.columns[0].floats[b.columns[0].offsets[r]];
      EXPECT_EQ(zx[r], ZScore(x, z));
      EXPECT_EQ(my[r], static_cast<float>((x - mm.min) / (mm.max - mm.min)));
    }
  }
}

TEST(TransformFitTest, FillThenZScoreSeesTheFilledValues) {
  const std::vector<double> raw = {1, kNone, 2, 3, kNone, 4, 100, kNone};
  Batch b = MakeBatch({Floats("med", raw), Floats("avg", raw), Floats("cst", raw)});
  FittedTransform t = MustFit(
      "features: {med: [{fill: median}, zscore], avg: [{fill: mean}, zscore],"
      " cst: [{fill: {constant: -1}}, zscore]}",
      b);
  struct Case {
    const char* feature;
    double fill;
  };
  for (const Case& c : {Case{"med", 3}, Case{"avg", 22}, Case{"cst", -1}}) {
    SCOPED_TRACE(c.feature);
    EXPECT_EQ(OpOf(t, c.feature, 0).value, c.fill);
    std::vector<double> filled;
    for (double x : raw) filled.push_back(std::isnan(x) ? c.fill : x);
    const Reference ref = TwoPass(filled);
    const FittedOp& z = OpOf(t, c.feature, 1);
    ExpectClose(z.mean, ref.mean, "mean");
    ExpectClose(z.std, ref.std, "std");
    TransformedBatch out = MustApply(t, b);
    auto got = DenseOf(t, out, c.feature);
    for (size_t r = 0; r < raw.size(); ++r) EXPECT_EQ(got[r], ZScore(filled[r], z)) << r;
  }
}

TEST(TransformFitTest, MedianIsTheValueAtPositionHalfN) {
  // Sorted 1 2 3 4: position floor(4/2) = 2 -> 3 (the upper median); 1 3 5: position 1 -> 3.
  Batch even = MakeBatch({Floats("x", {4, 1, kNone, 3, 2})});
  EXPECT_EQ(OpOf(MustFit("features: {x: [{fill: median}]}", even), "x", 0).value, 3);
  Batch odd = MakeBatch({Floats("x", {5, kNone, 1, 3})});
  FittedTransform t = MustFit("features: {x: [{fill: median}]}", odd);
  EXPECT_EQ(OpOf(t, "x", 0).value, 3);
  EXPECT_TRUE(OpOf(t, "x", 0).exact);
  EXPECT_THAT(DenseOf(t, MustApply(t, odd), "x"), ElementsAre(5, 3, 1, 3));
}

TEST(TransformFitTest, PointwiseOpsBeforeAnAnalyzerRunWhileStreaming) {
  Batch b = MakeBatch({
      Floats("clipped", {-5, 3, 20, kNone}),
      Floats("logged", {0, 1, 3, 7, -1, kNone}),
      Floats("fill_log", {0, 1, 3, 7, kNone, kNone}),
      Floats("log_fill", {0, 1, 3, 7, -2, kNone}),
  });
  // Columns of unequal length are not a batch: fit each on its own.
  auto one = [&](const std::string& yaml, size_t col) {
    return MustFit(yaml, MakeBatch({b.columns[col]}));
  };
  FittedTransform clipped = one("features: {clipped: [{clip: [0, 10]}, minmax]}", 0);
  EXPECT_EQ(OpOf(clipped, "clipped", 1).min, 0);
  EXPECT_EQ(OpOf(clipped, "clipped", 1).max, 10);
  EXPECT_THAT(DenseOf(clipped, MustApply(clipped, MakeBatch({b.columns[0]})), "clipped"),
              ElementsAre(0.0f, 0.3f, 1.0f, 0.0f));

  // log1p(-1) = -inf is missing: not counted, written as 0.
  FittedTransform logged = one("features: {logged: [log1p, zscore]}", 1);
  Reference ref = TwoPass({std::log1p(0.0), std::log1p(1.0), std::log1p(3.0), std::log1p(7.0)});
  ExpectClose(OpOf(logged, "logged", 1).mean, ref.mean, "mean");
  ExpectClose(OpOf(logged, "logged", 1).std, ref.std, "std");
  auto got = DenseOf(logged, MustApply(logged, MakeBatch({b.columns[1]})), "logged");
  EXPECT_EQ(got[4], 0.0f);
  EXPECT_EQ(got[3], ZScore(std::log1p(7.0), OpOf(logged, "logged", 1)));

  // Fill before log1p: the two filled rows enter zscore as log1p(median) = log1p(3).
  const Reference filled_ref = TwoPass({std::log1p(0.0), std::log1p(1.0), std::log1p(3.0),
                                        std::log1p(7.0), std::log1p(3.0), std::log1p(3.0)});
  FittedTransform fill_log = one("features: {fill_log: [{fill: median}, log1p, zscore]}", 2);
  EXPECT_EQ(OpOf(fill_log, "fill_log", 0).value, 3);
  ExpectClose(OpOf(fill_log, "fill_log", 2).mean, filled_ref.mean, "mean");
  ExpectClose(OpOf(fill_log, "fill_log", 2).std, filled_ref.std, "std");

  // log1p first: -2 becomes missing and is filled with the median of the logs.
  FittedTransform log_fill = one("features: {log_fill: [log1p, {fill: median}, zscore]}", 3);
  EXPECT_EQ(OpOf(log_fill, "log_fill", 1).value, std::log1p(3.0));
  ExpectClose(OpOf(log_fill, "log_fill", 2).mean, filled_ref.mean, "mean");
  ExpectClose(OpOf(log_fill, "log_fill", 2).std, filled_ref.std, "std");
  auto lf = DenseOf(log_fill, MustApply(log_fill, MakeBatch({b.columns[3]})), "log_fill");
  EXPECT_EQ(lf[4], lf[5]);
  EXPECT_EQ(lf[4], ZScore(std::log1p(3.0), OpOf(log_fill, "log_fill", 2)));
}

TEST(TransformFitTest, StatisticsAreCarriedThroughFittedOps) {
  // zscore then fill mean: the fill is the mean of the z values (about 0).
  {
    Batch b = MakeBatch({Floats("x", {1, 2, 3, 4, kNone, 10})});
    FittedTransform t = MustFit("features: {x: [zscore, {fill: mean}]}", b);
    const FittedOp& z = OpOf(t, "x", 0);
    std::vector<double> zs;
    for (double x : {1.0, 2.0, 3.0, 4.0, 10.0}) zs.push_back((x - z.mean) / z.std);
    EXPECT_NEAR(OpOf(t, "x", 1).value, TwoPass(zs).mean, 1e-15);
    EXPECT_EQ(DenseOf(t, MustApply(t, b), "x")[4], static_cast<float>(OpOf(t, "x", 1).value));
  }
  // zscore, clip, minmax: min and max are the clipped z of the extremes, exactly.
  {
    Batch b = MakeBatch({Floats("x", {0, 1, 2, 3, 100})});
    FittedTransform t = MustFit("features: {x: [zscore, {clip: [-1, 1]}, minmax]}", b);
    const FittedOp& z = OpOf(t, "x", 0);
    EXPECT_EQ(OpOf(t, "x", 2).min, std::max(-1.0, (0 - z.mean) / z.std));
    EXPECT_EQ(OpOf(t, "x", 2).max, 1.0);
    auto got = DenseOf(t, MustApply(t, b), "x");
    EXPECT_EQ(got[0], 0.0f);
    EXPECT_EQ(got[4], 1.0f);
  }
  // minmax then zscore: moments map affinely.
  {
    Batch b = MakeBatch({Floats("x", {0, 2, 4, 10, kNone})});
    FittedTransform t = MustFit("features: {x: [minmax, zscore]}", b);
    const Reference ref = TwoPass({0, 0.2, 0.4, 1.0});
    ExpectClose(OpOf(t, "x", 1).mean, ref.mean, "mean");
    ExpectClose(OpOf(t, "x", 1).std, ref.std, "std");
  }
  // zscore then quantile buckets: the same buckets as on the raw values.
  {
    Batch b = MakeBatch({Floats("x", {5, 1, 8, 3, 2, 7, 4, 6})});
    FittedTransform t = MustFit("features: {x: [zscore, {bucketize: {quantiles: 4}}]}", b);
    const FittedOp& z = OpOf(t, "x", 0);
    EXPECT_THAT(OpOf(t, "x", 1).boundaries,
                ElementsAre((3 - z.mean) / z.std, (5 - z.mean) / z.std, (7 - z.mean) / z.std));
    EXPECT_THAT(IdsOf(t, MustApply(t, b), "x"), ElementsAre(2, 0, 3, 1, 0, 3, 1, 2));
  }
}

TEST(TransformFitTest, QuantileBoundariesAreExactOnSmallInputs) {
  Batch b = MakeBatch(
      {Floats("h", {5, 1, 8, 3, 2, 7, 4, 6, kNone}), Floats("z", {0, 0, 0, 0, 0, 0, 1, 2, kNone})});
  FittedTransform t =
      MustFit("features: {h: [{bucketize: {quantiles: 4}}], z: [{bucketize: {quantiles: 4}}]}", b);
  // Position floor(i * 8 / 4) of 1..8: 3, 5, 7.
  EXPECT_THAT(OpOf(t, "h", 0).boundaries, ElementsAre(3, 5, 7));
  EXPECT_TRUE(OpOf(t, "h", 0).exact);
  TransformedBatch out = MustApply(t, b);
  EXPECT_THAT(IdsOf(t, out, "h"), ElementsAre(2, 0, 3, 1, 0, 3, 1, 2, 4));
  // Quantiles 0, 0, 1: the minimum is no boundary and duplicates collapse.
  EXPECT_THAT(OpOf(t, "z", 0).boundaries, ElementsAre(1));
  EXPECT_THAT(IdsOf(t, out, "z"), ElementsAre(0, 0, 0, 0, 0, 0, 1, 1, 2));
  EXPECT_EQ(t.FindFeature("h")->output.cardinality, 5);
  EXPECT_EQ(t.FindFeature("z")->output.cardinality, 3);

  // Against sorted[floor(i n / N)] on 2000 random values (the sketch holds them all).
  std::mt19937_64 rng(11);
  std::vector<double> xs;
  for (int i = 0; i < 2000; ++i) xs.push_back(std::ldexp(static_cast<double>(rng() >> 11), -40));
  FittedTransform big =
      MustFit("features: {x: [{bucketize: {quantiles: 10}}]}", MakeBatch({Floats("x", xs)}));
  std::vector<double> sorted = xs;
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> want;
  for (size_t i = 1; i < 10; ++i) want.push_back(sorted[i * sorted.size() / 10]);
  EXPECT_EQ(OpOf(big, "x", 0).boundaries, want);
  EXPECT_TRUE(OpOf(big, "x", 0).exact);
}

TEST(TransformFitTest, QuantilesBeyondTheSketchAreApproximateAndSaySo) {
  std::vector<double> xs;
  for (int i = 0; i < 100000; ++i) xs.push_back(static_cast<double>((i * 7919) % 100000));
  FittedTransform t = MustFit("features: {x: [{fill: median}, {bucketize: {quantiles: 4}}]}",
                              MakeBatch({Floats("x", xs)}));
  EXPECT_FALSE(OpOf(t, "x", 0).exact);
  EXPECT_NEAR(OpOf(t, "x", 0).value, 50000, 1000);  // rank error well under 1%
  ASSERT_EQ(OpOf(t, "x", 1).boundaries.size(), 3u);
  EXPECT_NEAR(OpOf(t, "x", 1).boundaries[0], 25000, 1000);
  EXPECT_NEAR(OpOf(t, "x", 1).boundaries[2], 75000, 1000);
}

// ---- Every op on hand-computed rows -------------------------------------------------------

TEST(TransformApplyTest, ExplicitBoundaries) {
  Batch b = MakeBatch({Ints("hour", {0, 5, 6, 11, 12, 18, 23, std::nullopt})});
  FittedTransform t = MustFit("features: {hour: [{bucketize: {boundaries: [6, 12, 18]}}]}", b);
  EXPECT_THAT(IdsOf(t, MustApply(t, b), "hour"), ElementsAre(0, 0, 1, 1, 2, 3, 3, 4));
  EXPECT_EQ(t.FindFeature("hour")->output.cardinality, 5);
  EXPECT_EQ(t.FindFeature("hour")->output.missing_id, 4);
}

TEST(TransformApplyTest, VocabularyOrderTiesTopKMinFrequencyAndOov) {
  std::vector<std::optional<std::string>> v = {"b", "a", "c", "b", "a",         "d",
                                               "c", "b", "a", "e", std::nullopt};
  Batch b = MakeBatch({Strings("s", v), Strings("s0", v), Strings("sf", v)});
  FittedTransform t = MustFit(
      "features:\n"
      "  s: [{vocabulary: {top_k: 4, min_frequency: 2, oov_buckets: 2}}]\n"
      "  s0: [{vocabulary: {top_k: 2, oov_buckets: 0}}]\n"
      "  sf: [{fill: {constant: zz}}, {vocabulary: {min_frequency: 1, oov_buckets: 1}}]\n",
      b);
  // a and b both appear 3 times: the tie goes to the smaller value; d (once) is cut by
  // min_frequency although top_k would admit it.
  EXPECT_THAT(OpOf(t, "s", 0).tokens, ElementsAre("a", "b", "c"));
  EXPECT_TRUE(OpOf(t, "s", 0).exact);
  EXPECT_THAT(OpOf(t, "s0", 0).tokens, ElementsAre("a", "b"));
  EXPECT_THAT(OpOf(t, "sf", 1).tokens, ElementsAre("a", "b", "c", "d", "e", "zz"));

  Batch serve = MakeBatch({Strings("s", {"a", "b", "c", "d", "unseen", std::nullopt}),
                           Strings("s0", {"a", "b", "c", "d", "unseen", std::nullopt}),
                           Strings("sf", {"a", "b", "c", "d", "unseen", std::nullopt})});
  TransformedBatch out = MustApply(t, serve);
  const int64_t d = 3 + static_cast<int64_t>(Hash64("d") % 2);
  const int64_t unseen = 3 + static_cast<int64_t>(Hash64("unseen") % 2);
  EXPECT_THAT(IdsOf(t, out, "s"), ElementsAre(0, 1, 2, d, unseen, 5));
  EXPECT_EQ(t.FindFeature("s")->output.cardinality, 6);
  // No OOV buckets: unknown values share the missing id.
  EXPECT_THAT(IdsOf(t, out, "s0"), ElementsAre(0, 1, 2, 2, 2, 2));
  EXPECT_EQ(t.FindFeature("s0")->output.cardinality, 3);
  EXPECT_THAT(IdsOf(t, out, "sf"), ElementsAre(0, 1, 2, 3, 6, 5));
}

TEST(TransformApplyTest, HashBucketsUseTheStableHashOfTheText) {
  // Pins kiln's stable hash: changing it would silently change every fitted model's ids.
  EXPECT_EQ(Hash64("kiln"), 9544461733548719156ull) << "Hash64 changed";
  Batch b = MakeBatch(
      {Strings("url", {"a.com/x", "b.org", std::nullopt}), Ints("id", {42, -7, std::nullopt})});
  FittedTransform t =
      MustFit("features: {url: [{hash_buckets: 1000}], id: [{hash_buckets: 97}]}", b);
  TransformedBatch out = MustApply(t, b);
  EXPECT_THAT(IdsOf(t, out, "url"),
              ElementsAre(Hash64("a.com/x") % 1000, Hash64("b.org") % 1000, 1000));
  EXPECT_THAT(IdsOf(t, out, "id"), ElementsAre(Hash64("42") % 97, Hash64("-7") % 97, 97));
  // An INT feature arriving as FLOAT (a JSON 42.0) or as text hashes the same.
  Batch json_like =
      MakeBatch({Floats("id", {42.0, -7.0, kNone}), Strings("url", {"a.com/x", "", "b.org"})});
  TransformedBatch out2 = MustApply(t, json_like);
  EXPECT_EQ(IdsOf(t, out2, "id"), IdsOf(t, out, "id"));
  Batch text_like = MakeBatch({Strings("id", {"42", "-7", std::nullopt})});
  EXPECT_EQ(IdsOf(t, MustApply(t, text_like), "id"), IdsOf(t, out, "id"));
}

TEST(TransformApplyTest, PiiDropAndSaltedHash) {
  Batch b = MakeBatch({Strings("email", {"alice@example.com", "bob@example.com", std::nullopt}),
                       Strings("ssn", {"1", "2", "3"}), Floats("x", {1, 2, 3})});
  const std::string yaml =
      "features:\n"
      "  email: [{pii: {salted_hash: {salt_env: KILN_TEST_SALT, buckets: 1000}}}]\n"
      "  ssn: [{pii: drop}]\n"
      "  x: [passthrough]\n";
  FittedTransform t = MustFit(yaml, b, WithSalt("pepper"));
  EXPECT_EQ(t.FindFeature("ssn"), nullptr);
  ASSERT_EQ(t.output_signature().categorical.size(), 1u);
  // Python: int.from_bytes(hmac.new(b"pepper", v, "sha256").digest()[:8], "little") % 1000
  EXPECT_THAT(IdsOf(t, MustApply(t, b), "email"), ElementsAre(757, 589, 1000));
  EXPECT_EQ(OpOf(t, "email", 0).salt_check, "de39aa657e6021a9");
  const std::string json = t.ToJson();
  EXPECT_THAT(json, ::testing::Not(HasSubstr("pepper")));
  EXPECT_THAT(DenseOf(t, MustApply(t, b), "x"), ElementsAre(1, 2, 3));

  // The salt must be set to fit and to load, and must be the same one.
  absl::Status unset = FitBatches(Spec(yaml), SchemaOf(b), {b}, FitOptions{.salts = {}}).status();
  EXPECT_EQ(unset.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(unset.message()), HasSubstr("KILN_TEST_SALT is not set"));
  LoadOptions load;
  load.salts = WithSalt("salt").salts;
  absl::Status wrong = FittedTransform::FromJson(json, load).status();
  EXPECT_EQ(wrong.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(wrong.message()), HasSubstr("not the one this transform was fitted"));
  load.salts = WithSalt("pepper").salts;
  auto loaded = FittedTransform::FromJson(json, load);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_THAT(IdsOf(*loaded, MustApply(*loaded, b), "email"), ElementsAre(757, 589, 1000));
}

TEST(TransformApplyTest, CrossesHashTheInputIds) {
  Batch b = MakeBatch({Strings("country", {"us", "de", "us", std::nullopt}),
                       Ints("hour", {1, 13, 20, 7}), Floats("age", {30, 40, 50, 60})});
  FittedTransform t = MustFit(
      "features: {country: [vocabulary], hour: [{bucketize: {boundaries: [12]}}], age: [zscore]}\n"
      "crosses: [{features: [country, hour], hash_buckets: 100}]",
      b);
  TransformedBatch out = MustApply(t, b);
  auto c = IdsOf(t, out, "country"), h = IdsOf(t, out, "hour");
  EXPECT_THAT(c, ElementsAre(0, 1, 0, 3));  // us (twice), de; OOV 2; missing 3
  EXPECT_THAT(h, ElementsAre(0, 1, 1, 0));
  std::vector<int64_t> want;
  for (size_t r = 0; r < 4; ++r) {
    std::string key(16, '\0');
    for (int i = 0; i < 8; ++i) {
      key[i] = static_cast<char>((static_cast<uint64_t>(c[r]) >> (8 * i)) & 0xff);
      key[8 + i] = static_cast<char>((static_cast<uint64_t>(h[r]) >> (8 * i)) & 0xff);
    }
    want.push_back(static_cast<int64_t>(Hash64(key) % 100));
  }
  EXPECT_EQ(IdsOf(t, out, "country_x_hour"), want);
  const auto& sig = t.output_signature();
  ASSERT_EQ(sig.categorical.size(), 3u);
  EXPECT_EQ(sig.categorical[2],
            (OutputColumn{"country_x_hour", OutputKind::kCategorical, 100, -1}));

  auto numeric = FitBatches(Spec("features: {age: [zscore]}\n"
                                 "crosses: [{features: [country, age], hash_buckets: 10}]"),
                            SchemaOf(b), {b});
  EXPECT_THAT(std::string(numeric.status().message()),
              HasSubstr("cross 'country_x_age' uses 'age', which is numeric (zscore) and has no "
                        "ids; bucketize it (or hash it) to cross it"));
  auto dropped = FitBatches(Spec("features: {country: [{pii: drop}]}\n"
                                 "crosses: [{features: [country, hour], hash_buckets: 10}]"),
                            SchemaOf(b), {b});
  EXPECT_THAT(std::string(dropped.status().message()),
              HasSubstr("uses 'country', which is not an output feature"));
  auto missing = FitBatches(Spec("crosses: [{features: [country, nope], hash_buckets: 10}]"),
                            SchemaOf(b), {b});
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("uses 'nope', which is not a column of the data"));
}

TEST(TransformApplyTest, DefaultsExcludeAndUnlistedFeatures) {
  Batch b = MakeBatch({Floats("num", {1, kNone, 3}), Strings("cat", {"x", "y", "x"}),
                       Ints("label", {0, 1, 0}), Ints("n2", {5, 6, 7})});
  FittedTransform t = MustFit("exclude: [label]\nfeatures: {n2: [minmax]}", b);
  const auto& sig = t.output_signature();
  ASSERT_EQ(sig.dense.size(), 2u);
  EXPECT_EQ(sig.dense[0].name, "num");
  EXPECT_EQ(sig.dense[1].name, "n2");
  ASSERT_EQ(sig.categorical.size(), 1u);
  EXPECT_EQ(sig.categorical[0], (OutputColumn{"cat", OutputKind::kCategorical, 4, 3}));
  EXPECT_EQ(t.FindFeature("label"), nullptr);
  // num: fill median (3: position 1 of [1, 3]) then zscore over [1, 3, 3].
  EXPECT_EQ(OpOf(t, "num", 0).value, 3);
  const Reference ref = TwoPass({1, 3, 3});
  ExpectClose(OpOf(t, "num", 1).mean, ref.mean, "mean");
  EXPECT_THAT(OpOf(t, "cat", 0).tokens, ElementsAre("x", "y"));
  TransformedBatch out = MustApply(t, b);
  EXPECT_EQ(out.dense_dim, 2u);
  EXPECT_EQ(out.num_categorical, 1u);
  EXPECT_EQ(out.dense.size(), 6u);

  FittedTransform listed_only = MustFit("defaults: false\nfeatures: {n2: [minmax]}", b);
  EXPECT_EQ(listed_only.features().size(), 1u);

  auto bad_exclude = FitBatches(Spec("exclude: [lable]"), SchemaOf(b), {b});
  EXPECT_EQ(bad_exclude.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_exclude.status().message()),
              HasSubstr("excludes 'lable', which is not a column of the data (columns: num, cat, "
                        "label, n2)"));
  auto unknown = FitBatches(Spec("features: {agee: [zscore]}"), SchemaOf(b), {b});
  EXPECT_THAT(std::string(unknown.status().message()),
              HasSubstr("lists feature 'agee', which is not a column of the data"));
  auto typed = FitBatches(Spec("features: {n2: [vocabulary]}"), SchemaOf(b), {b});
  EXPECT_THAT(std::string(typed.status().message()),
              HasSubstr("feature 'n2', op 1 (vocabulary): needs a STRING feature; 'n2' is INT"));
}

TEST(TransformApplyTest, ListsMissingColumnsAndTextNumbers) {
  Batch train = MakeBatch({Floats("x", {1, 2, 3}), Strings("s", {"a", "b", "a"})});
  FittedTransform t =
      MustFit("features: {x: [{fill: {constant: -1}}, {clip: [-5, 2]}], s: [vocabulary]}", train);

  // Lists: the first value counts; an empty list is missing. NaN is missing.
  Column x;
  x.name = "x";
  x.type = ValueType::kFloat;
  x.floats = {5, 0.5};
  x.EndRow(2);  // [5, 0.5]
  x.EndRow(0);  // []
  x.floats.push_back(kNone);
  x.EndRow(1);  // [NaN]
  x.floats.push_back(1.5);
  x.EndRow(1);
  Column s;
  s.name = "s";
  s.type = ValueType::kString;
  s.PushString("b");
  s.PushString("a");
  s.EndRow(2);
  s.EndRow(0);
  s.AddMissing();
  s.AddString("zz");
  TransformedBatch out = MustApply(t, MakeBatch({x, s}));
  EXPECT_THAT(DenseOf(t, out, "x"), ElementsAre(2, -1, -1, 1.5));
  EXPECT_THAT(IdsOf(t, out, "s"), ElementsAre(1, 3, 3, 2));

  // A column the client left out is missing everywhere; unknown columns are ignored.
  TransformedBatch none = MustApply(t, MakeBatch({Ints("other", {1, 2})}));
  EXPECT_THAT(DenseOf(t, none, "x"), ElementsAre(-1, -1));
  EXPECT_THAT(IdsOf(t, none, "s"), ElementsAre(3, 3));

  // Numbers sent as text are parsed; text that is no number is an error naming the row.
  Batch text = MakeBatch({Strings("x", {"1.5", " 2 "}), Ints("s", {7, 8})});
  EXPECT_THAT(DenseOf(t, MustApply(t, text), "x"), ElementsAre(1.5, 2));
  Batch bad = MakeBatch({Strings("x", {"1", "abc"})});
  bad.source = "req.json";
  bad.row_positions = {1, 2};
  TransformedBatch ignored;
  absl::Status st = t.Apply(bad, &ignored);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(st.message()),
            "feature 'x' (FLOAT), row 1 (req.json:2): 'abc' is not a number");

  Batch ragged = MakeBatch({Floats("x", {1, 2})});
  ragged.num_rows = 3;
  EXPECT_THAT(std::string(t.Apply(ragged, &ignored).message()),
              HasSubstr("column 'x' has 2 rows; the batch has 3"));
}

TEST(TransformApplyTest, DenseValuesSaturateAtFloatRange) {
  Batch b = MakeBatch({Floats("x", {1e300, -1e300, 1})});
  FittedTransform t = MustFit("features: {x: [passthrough]}", b);
  EXPECT_THAT(DenseOf(t, MustApply(t, b), "x"), ElementsAre(std::numeric_limits<float>::max(),
                                                            -std::numeric_limits<float>::max(), 1));
}

// A passed-through number that is missing stays missing (NaN); a chain without a fill
// gives 0; large batches (applied in tiles on several threads) give the same values.
TEST(TransformApplyTest, MissingPassthroughIsNaNAndTilesAgree) {
  std::vector<double> xs;
  for (int i = 0; i < 600000; ++i) xs.push_back(i % 7 == 0 ? kNone : i * 0.5);
  // 2.4M values: enough for the threaded path on two or more cores.
  Batch b = MakeBatch({Floats("x", xs), Floats("z", xs), Floats("x2", xs), Floats("z2", xs)});
  FittedTransform t = MustFit("features: {x: [passthrough], z: [zscore]}", b);
  TransformedBatch out = MustApply(t, b);
  const std::vector<float> x = DenseOf(t, out, "x"), z = DenseOf(t, out, "z");
  ASSERT_EQ(x.size(), xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    if (i % 7 == 0) {
      ASSERT_TRUE(std::isnan(x[i])) << i;
      ASSERT_EQ(z[i], 0.0f) << i;
    } else {
      ASSERT_EQ(x[i], static_cast<float>(xs[i])) << i;
    }
  }
  // Tree models' defaults pass numbers through.
  TransformSpec spec;
  spec.tree_defaults = true;
  auto fitter = TransformFitter::Create(spec, {{"x", data::ValueType::kFloat}});
  ASSERT_TRUE(fitter.ok());
  ASSERT_TRUE((*fitter)->Add(b).ok());
  auto fitted = (*fitter)->Finish();
  ASSERT_TRUE(fitted.ok());
  TransformedBatch tree;
  ASSERT_TRUE(fitted->Apply(b, &tree).ok());
  EXPECT_TRUE(std::isnan(tree.dense_at(0, 0)));
  EXPECT_EQ(tree.dense_at(1, 0), 0.5f);
}

TEST(TransformFitTest, EmptyAnalyzersFitNeutralParametersAndWarn) {
  Batch b = MakeBatch({Floats("x", {kNone, kNone}), Strings("s", {std::nullopt, std::nullopt})});
  FittedTransform t = MustFit("", b);  // defaults for both
  EXPECT_EQ(OpOf(t, "x", 0).value, 0);
  EXPECT_EQ(OpOf(t, "x", 1).mean, 0);
  EXPECT_EQ(OpOf(t, "x", 1).std, 0);
  EXPECT_THAT(t.warnings(),
              ElementsAre("feature 'x', fill: median: no values to analyze; filling with 0",
                          "feature 's', vocabulary: empty vocabulary (every value is out of "
                          "vocabulary)"));
  TransformedBatch out = MustApply(t, b);
  EXPECT_THAT(DenseOf(t, out, "x"), ElementsAre(0, 0));
  EXPECT_THAT(IdsOf(t, out, "s"), ElementsAre(1, 1));
}

// ---- Serialization ------------------------------------------------------------------------

TEST(TransformJsonTest, DoublesRoundTripExactly) {
  std::mt19937_64 rng(3);
  std::vector<double> values = {0.1,
                                1.0 / 3,
                                1e-310,
                                std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::denorm_min(),
                                -0.0,
                                123456.789};
  while (values.size() < 20000) {
    uint64_t bits = rng();
    double v;
    std::memcpy(&v, &bits, 8);
    if (std::isfinite(v)) values.push_back(v);
  }
  for (double v : values) {
    const double back = Json::parse(Json(v).dump()).get<double>();
    ASSERT_EQ(std::memcmp(&v, &back, 8), 0) << Json(v).dump();
  }
}

Batch EveryOpBatch() {
  return MakeBatch({
      Floats("age", {31, kNone, 45, 200, 18, 52.5}),
      Floats("income", {50000.5, 0, kNone, 1e6, 123.25, 7}),
      Ints("hour", {0, 6, 13, 23, std::nullopt, 18}),
      Strings("country", {"us", "de", "us", "fr", std::nullopt, "\xff\xfe"}),
      Strings("url", {"a", "b", "c", "d", "e", "f"}),
      Strings("email", {"a@x", "b@x", std::nullopt, "c@x", "d@x", "e@x"}),
      Strings("ssn", {"1", "2", "3", "4", "5", "6"}),
      Ints("user_id", {1, 2, 3, 4, 5, 6}),
      Floats("score", {0.1, 0.2, 0.3, kNone, 0.5, 0.6}),
      Ints("label", {0, 1, 0, 1, 0, 1}),
  });
}

constexpr char kEveryOp[] = R"(
transform:
  features:
    age: [{fill: median}, {clip: [0, 100]}, zscore]
    income: [{fill: {constant: 0}}, log1p, minmax]
    hour: [{bucketize: {quantiles: 4}}]
    country: [{vocabulary: {top_k: 100, min_frequency: 1, oov_buckets: 3}}]
    url: [{hash_buckets: 1000}]
    email: [{pii: {salted_hash: {salt_env: KILN_TEST_SALT, buckets: 1000}}}]
    ssn: [{pii: drop}]
    user_id: [passthrough]
    score: [{fill: mean}, zscore, {clip: [-1, 1]}, {bucketize: {quantiles: 3}}]
  crosses:
    - {features: [country, hour], hash_buckets: 1000}
  exclude: [label]
)";

void ExpectSameOutput(const TransformedBatch& a, const TransformedBatch& b) {
  ASSERT_EQ(a.num_rows, b.num_rows);
  ASSERT_EQ(a.dense.size(), b.dense.size());
  ASSERT_EQ(a.ids.size(), b.ids.size());
  EXPECT_EQ(std::memcmp(a.dense.data(), b.dense.data(), a.dense.size() * sizeof(float)), 0);
  EXPECT_EQ(a.ids, b.ids);
}

TEST(TransformJsonTest, RoundTripAppliesBitIdentically) {
  Batch b = EveryOpBatch();
  FittedTransform t = MustFit(kEveryOp, b, WithSalt("s3cret"));
  const std::string json = t.ToJson();
  LoadOptions load;
  load.salts = WithSalt("s3cret").salts;
  auto back = FittedTransform::FromJson(json, load);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson(), json);
  EXPECT_EQ(back->output_signature(), t.output_signature());
  EXPECT_EQ(back->spec(), t.spec());
  EXPECT_EQ(back->num_rows(), 6u);
  ExpectSameOutput(MustApply(t, b), MustApply(*back, b));
  // The non-UTF-8 token survives as hex.
  EXPECT_THAT(json, HasSubstr(R"("hex": "fffe")"));
  EXPECT_THAT(OpOf(*back, "country", 0).tokens, ::testing::Contains("\xff\xfe"));
  // Output order: schema order, categorical after dense in their own matrix, crosses last.
  std::vector<std::string> dense, cats;
  for (const auto& o : t.output_signature().dense) dense.push_back(o.name);
  for (const auto& o : t.output_signature().categorical) cats.push_back(o.name);
  EXPECT_THAT(dense, ElementsAre("age", "income", "user_id"));
  EXPECT_THAT(cats, ElementsAre("hour", "country", "url", "email", "score", "country_x_hour"));
}

TEST(TransformJsonTest, FromJsonErrors) {
  Batch b = EveryOpBatch();
  FittedTransform t = MustFit(kEveryOp, b, WithSalt("s3cret"));
  LoadOptions load;
  load.salts = WithSalt("s3cret").salts;
  Json j = Json::parse(t.ToJson());
  auto load_json = [&](const Json& doc) {
    return FittedTransform::FromJson(doc.dump(), load).status();
  };

  EXPECT_EQ(FittedTransform::FromJson("{not json", load).status().code(),
            absl::StatusCode::kInvalidArgument);
  Json other = j;
  other["format"] = "kiln.model";
  EXPECT_THAT(std::string(load_json(other).message()), HasSubstr("not a kiln transform"));
  Json newer = j;
  newer["version"] = 2;
  EXPECT_EQ(load_json(newer).code(), absl::StatusCode::kFailedPrecondition);
  Json dup = j;
  for (auto& f : dup["features"]) {
    if (f["name"] == "country") f["ops"][0]["tokens"].push_back("us");
  }
  EXPECT_THAT(std::string(load_json(dup).message()), HasSubstr("vocabulary lists 'us' twice"));
  Json bounds = j;
  for (auto& f : bounds["features"]) {
    if (f["name"] == "hour") f["ops"][0]["fitted_boundaries"] = Json::array({3.0, 1.0});
  }
  EXPECT_THAT(std::string(load_json(bounds).message()),
              HasSubstr("bucketize boundaries must be finite and increasing"));
  Json missing = j;
  missing["features"][0]["ops"][2].erase("std");
  EXPECT_EQ(load_json(missing).code(), absl::StatusCode::kInvalidArgument);
  Json outputs = j;
  outputs["outputs"][0]["name"] = "renamed";
  EXPECT_THAT(std::string(load_json(outputs).message()),
              HasSubstr("the outputs listed do not match the fitted features"));
  Json chain = j;
  chain["features"][0]["ops"][0] =
      Json{{"op", "vocabulary"},      {"top_k", 1},   {"min_frequency", 1}, {"oov_buckets", 1},
           {"tokens", Json::array()}, {"exact", true}};
  EXPECT_THAT(std::string(load_json(chain).message()), HasSubstr("must be the last op"));
}

// ---- Streaming from files, and the training/serving skew test -----------------------------

struct RawRow {
  std::optional<int64_t> age;
  std::optional<double> income;
  std::optional<int64_t> hour;
  std::optional<std::string> country, url, email, zip;
  std::optional<double> score;
  int64_t label = 0;
};

std::vector<RawRow> MakeRows(size_t n) {
  std::mt19937_64 rng(2024);
  const char* countries[] = {"us", "de", "fr", "jp", "br", "in",
                             "ng", "mx", "ca", "au", "kr", "it"};
  const double incomes[] = {0.1, 1e-7, 123456.789, 5, 0, 99999.99, 3.14159, 2.5e5};
  std::vector<RawRow> rows;
  for (size_t i = 0; i < n; ++i) {
    RawRow r;
    if (rng() % 9) r.age = static_cast<int64_t>(rng() % 90);
    if (rng() % 7) r.income = incomes[rng() % 8] * static_cast<double>(1 + rng() % 50);
    if (rng() % 11) r.hour = static_cast<int64_t>(rng() % 24);
    if (rng() % 13) r.country = countries[std::min(rng() % 16, uint64_t{11})];
    r.url = StrCat("site", rng() % 200, ".com/p?q=", rng() % 3);
    if (rng() % 5) r.email = StrCat("user", rng() % 300, "@example.com");
    r.zip = StrCat("0", 2100 + rng() % 40);  // numeric-looking text
    if (rng() % 6) r.score = static_cast<double>(rng() % 1000) / 7.0;
    r.label = static_cast<int64_t>(rng() % 2);
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string ToCsv(const std::vector<RawRow>& rows) {
  std::string out = "age,income,hour,country,url,email,zip,score,label\n";
  auto num = [](const auto& v) { return v ? StrCat(*v) : std::string(); };
  auto str = [](const std::optional<std::string>& v) { return v ? *v : std::string(); };
  for (const auto& r : rows) {
    StrAppend(&out, num(r.age), ",", num(r.income), ",", num(r.hour), ",", str(r.country), ",",
              str(r.url), ",", str(r.email), ",", str(r.zip), ",", num(r.score), ",", r.label,
              "\n");
  }
  return out;
}

// JSON instances as a client would send them: missing values as null or left out.
std::string ToJsonl(const std::vector<RawRow>& rows) {
  std::string out;
  size_t i = 0;
  for (const auto& r : rows) {
    Json j = Json::object();
    auto put = [&](const char* key, const auto& v) {
      if (v) {
        j[key] = *v;
      } else if (++i % 2) {
        j[key] = nullptr;
      }
    };
    put("zip", r.zip);
    put("score", r.score);
    put("email", r.email);
    put("age", r.age);
    put("income", r.income);
    put("hour", r.hour);
    put("country", r.country);
    put("url", r.url);
    out += j.dump() + "\n";
  }
  return out;
}

const data::TableSchema kSkewSchema = {
    {"age", ValueType::kInt},        {"income", ValueType::kFloat}, {"hour", ValueType::kInt},
    {"country", ValueType::kString}, {"url", ValueType::kString},   {"email", ValueType::kString},
    {"zip", ValueType::kString},     {"score", ValueType::kFloat},  {"label", ValueType::kInt},
};

constexpr char kSkewSpec[] = R"(
transform:
  features:
    age: [{fill: median}, {clip: [0, 100]}, zscore]
    income: [{fill: {constant: 0}}, log1p, minmax]
    hour: [{bucketize: {quantiles: 4}}]
    country: [{vocabulary: {top_k: 8, min_frequency: 2, oov_buckets: 2}}]
    url: [{hash_buckets: 1000}]
    email: [{pii: {salted_hash: {salt_env: KILN_TEST_SALT, buckets: 1000}}}]
  crosses:
    - {features: [country, hour], hash_buckets: 1000}
  exclude: [label]
)";

void AppendOutput(const TransformedBatch& part, TransformedBatch* all) {
  all->num_rows += part.num_rows;
  all->dense_dim = part.dense_dim;
  all->num_categorical = part.num_categorical;
  all->dense.insert(all->dense.end(), part.dense.begin(), part.dense.end());
  all->ids.insert(all->ids.end(), part.ids.begin(), part.ids.end());
}

// Reads `source` batch by batch and applies `t` to each.
absl::StatusOr<TransformedBatch> ApplyAll(const FittedTransform& t,
                                          std::unique_ptr<data::BlockSource> source) {
  data::BadRowSink bad(data::BadRowPolicy::kError);
  data::BatchReader reader(std::move(source), &bad);
  TransformedBatch all, part;
  Batch batch;
  while (true) {
    KILN_ASSIGN_OR_RETURN(bool more, reader.Next(&batch));
    if (!more) break;
    KILN_RETURN_IF_ERROR(t.Apply(batch, &part));
    AppendOutput(part, &all);
  }
  return all;
}

TEST(TransformSkewTest, TrainingAndServingFeaturesAreBitIdentical) {
  TempDir dir;
  const std::vector<RawRow> rows = MakeRows(3000);
  const std::string csv = dir.Write("train.csv", ToCsv(rows));
  const std::string jsonl = dir.Write("requests.jsonl", ToJsonl(rows));
  const FitOptions fit_options = [] {
    FitOptions o = WithSalt("pepper");
    o.num_threads = 2;
    return o;
  }();

  // Training: fit on the CSV in small blocks (many batches, decoded on two threads).
  data::ReadOptions train_read;
  train_read.type_overrides = kSkewSchema;
  train_read.block_bytes = 4096;
  auto fit_source = data::OpenCsvSource(Env::Default(), {csv}, train_read);
  ASSERT_TRUE(fit_source.ok()) << fit_source.status();
  data::BadRowSink bad(data::BadRowPolicy::kError);
  auto fitted = Fit(Spec(kSkewSpec), kSkewSchema, fit_source->get(), &bad, fit_options);
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  EXPECT_EQ(fitted->num_rows(), rows.size());

  auto train_source = data::OpenCsvSource(Env::Default(), {csv}, train_read);
  ASSERT_TRUE(train_source.ok());
  auto training = ApplyAll(*fitted, std::move(*train_source));
  ASSERT_TRUE(training.ok()) << training.status();

  // Serving: the transform as loaded from the bundle, rows arriving as JSON instances with
  // types inferred per request block (a block of whole numbers reads as INT, and so on).
  LoadOptions load;
  load.salts = WithSalt("pepper").salts;
  auto served = FittedTransform::FromJson(fitted->ToJson(), load);
  ASSERT_TRUE(served.ok()) << served.status();
  data::ReadOptions serve_read;
  serve_read.block_bytes = 1000;
  auto serve_source = data::OpenJsonlSource(Env::Default(), {jsonl}, serve_read);
  ASSERT_TRUE(serve_source.ok());
  auto serving = ApplyAll(*served, std::move(*serve_source));
  ASSERT_TRUE(serving.ok()) << serving.status();
  ExpectSameOutput(*training, *serving);

  // One request per row, as an online server sees them.
  auto one_source = data::OpenJsonlSource(Env::Default(), {jsonl}, {});
  ASSERT_TRUE(one_source.ok());
  data::BatchReader reader(std::move(*one_source), &bad);
  Batch all_rows;
  ASSERT_TRUE(reader.Next(&all_rows).value());
  TransformedBatch singles, part;
  size_t seen = 0;
  do {
    for (size_t r = 0; r < all_rows.num_rows; ++r) {
      Batch one;
      one.num_rows = 1;
      for (const Column& c : all_rows.columns) {
        Column single;
        single.name = c.name;
        single.type = c.type;
        single.AppendRowFrom(c, r);
        one.columns.push_back(std::move(single));
      }
      ASSERT_TRUE(served->Apply(one, &part).ok());
      AppendOutput(part, &singles);
      ++seen;
    }
  } while (reader.Next(&all_rows).value());
  EXPECT_EQ(seen, rows.size());
  ExpectSameOutput(*training, singles);

  // The features are not trivially equal: values vary and ids spread.
  std::vector<float> ages;
  for (size_t r = 0; r < training->num_rows; ++r) ages.push_back(training->dense_at(r, 0));
  std::sort(ages.begin(), ages.end());
  EXPECT_GT(std::unique(ages.begin(), ages.end()) - ages.begin(), 50);
  EXPECT_EQ(training->dense_dim, 3u);        // age, income, score (by default)
  EXPECT_EQ(training->num_categorical, 6u);  // hour, country, url, email, zip, cross
  EXPECT_EQ(OpOf(*fitted, "country", 0).tokens.size(), 8u);  // top_k of 12
}

TEST(TransformFitTest, FitDoesNotDependOnThreadsOrBlockSize) {
  TempDir dir;
  const std::string csv = dir.Write("train.csv", ToCsv(MakeRows(6000)));  // KLL compacts
  std::string first;
  for (auto [threads, block] : {std::pair<int, size_t>{1, 256 << 10}, {3, 2048}, {2, 777}}) {
    data::ReadOptions read;
    read.type_overrides = kSkewSchema;
    read.block_bytes = block;
    auto source = data::OpenCsvSource(Env::Default(), {csv}, read);
    ASSERT_TRUE(source.ok());
    data::BadRowSink bad(data::BadRowPolicy::kError);
    FitOptions o = WithSalt("pepper");
    o.num_threads = threads;
    // No schema given: the CSV source knows every column's type from the overrides.
    auto t = Fit(Spec(kSkewSpec), {}, source->get(), &bad, o);
    ASSERT_TRUE(t.ok()) << t.status();
    if (first.empty()) {
      first = t->ToJson();
      EXPECT_FALSE(OpOf(*t, "hour", 0).exact);  // 5000+ values: the sketch compacted
    } else {
      EXPECT_EQ(t->ToJson(), first) << threads << " threads, " << block << " byte blocks";
    }
  }
}

TEST(TransformFitTest, FitDatasetSplitFitsTheTrainSplitOnly) {
  TempDir dir;
  const std::string csv = dir.Write("all.csv", ToCsv(MakeRows(2000)));
  auto input = data::ResolveInput(Env::Default(), csv);
  ASSERT_TRUE(input.ok());
  data::ImportOptions import;
  import.out_dir = dir.File("ds");
  import.read.type_overrides = kSkewSchema;
  auto imported = data::ImportDataset(Env::Default(), *input, import);
  ASSERT_TRUE(imported.ok()) << imported.status();
  const data::DatasetSplitInfo* train = imported->manifest.FindSplit("train");
  ASSERT_NE(train, nullptr);

  auto t = FitDatasetSplit(Env::Default(), dir.File("ds"), "train",
                           Spec("defaults: false\nfeatures: {score: [zscore]}"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->num_rows(), train->rows);
  EXPECT_LT(train->rows, 2000u);

  // Reference over the train split's rows.
  auto source = data::OpenDatasetSource(Env::Default(), dir.File("ds"), "train", {});
  ASSERT_TRUE(source.ok());
  data::BadRowSink bad(data::BadRowPolicy::kError);
  data::BatchReader reader(std::move(*source), &bad);
  std::vector<double> scores;
  Batch batch;
  while (reader.Next(&batch).value()) {
    const Column& c = batch.columns[batch.FindColumn("score")];
    for (size_t r = 0; r < batch.num_rows; ++r)
      if (c.is_present(r)) scores.push_back(c.floats[c.offsets[r]]);
  }
  const Reference ref = TwoPass(scores);
  ExpectClose(OpOf(*t, "score", 0).mean, ref.mean, "mean");
  ExpectClose(OpOf(*t, "score", 0).std, ref.std, "std");
  EXPECT_EQ(FitDatasetSplit(Env::Default(), dir.File("ds"), "nope", Spec("")).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kiln::transform
