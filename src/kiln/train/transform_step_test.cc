#include "kiln/train/transform_step.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/testing/temp_dir.h"
#include "kiln/train/trainer.h"

namespace kiln::train {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// 60 rows: x = i (every 10th missing), color cycles red red blue green, y = i mod 2 with
// the label missing in rows 7, 17, ... (which no fit may see).
std::string Csv() {
  std::string csv = "x,color,y\n";
  const char* colors[] = {"red", "red", "blue", "green"};
  for (int i = 0; i < 60; ++i) {
    StrAppend(&csv, i % 10 == 3 ? "" : StrCat(i), ",", colors[i % 4], ",",
              i % 10 == 7 ? "" : StrCat(i % 2), "\n");
  }
  return csv;
}

TrainConfig Config(const std::string& yaml) {
  auto c = ParseTrainConfig(yaml);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : TrainConfig{};
}

const char kLinear[] =
    "label: y\ntask: binary\nmodel: {type: linear}\n"
    "transform: {features: {x: [{fill: mean}, zscore], color: [vocabulary]}}\n";

const transform::FittedOp& OpOf(const transform::FittedTransform& t, const std::string& feature,
                                size_t i) {
  const transform::FittedFeature* f = t.FindFeature(feature);
  EXPECT_NE(f, nullptr) << feature;
  return f->ops.at(i);
}

TEST(TransformStepTest, FitsEveryLabelledRowWithAllRows) {
  testing::TempDir dir;
  TransformStepRequest req;
  req.data = dir.Write("d.csv", Csv());
  req.config = Config(kLinear);
  req.split = "";
  auto r = FitTransformStep(Env::Default(), req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rows, 54u);
  EXPECT_EQ(r->dropped_rows, 6u);
  EXPECT_EQ(r->fitted.num_rows(), 54u);
  // x over the labelled rows with a value: i in 0..59, i % 10 not 3 or 7.
  double sum = 0, n = 0;
  for (int i = 0; i < 60; ++i) {
    if (i % 10 != 3 && i % 10 != 7) sum += i, n += 1;
  }
  const double mean = sum / n;
  double m2 = 0;
  for (int i = 0; i < 60; ++i) {
    if (i % 10 != 3 && i % 10 != 7) m2 += (i - mean) * (i - mean);
  }
  // Filled rows (i % 10 == 3, labelled) take the mean: they add nothing to m2.
  const double filled = 6;
  EXPECT_NEAR(OpOf(r->fitted, "x", 0).value, mean, 1e-12);
  EXPECT_NEAR(OpOf(r->fitted, "x", 1).mean, mean, 1e-12);
  EXPECT_NEAR(OpOf(r->fitted, "x", 1).std, std::sqrt(m2 / (n + filled)), 1e-12);
  // Labelled rows by color: red 30 - 3 (rows 17, 37, 57), blue 15, green 15 - 3.
  const std::vector<std::string> want = {"red", "blue", "green"};
  EXPECT_EQ(OpOf(r->fitted, "color", 0).tokens, want);

  const transform::Json& s = r->summary;
  EXPECT_EQ(s["format"], kTransformSummaryFormat);
  EXPECT_EQ(s["rows"], 54);
  EXPECT_EQ(s["split"], nullptr);
  EXPECT_EQ(s["spec_sha256"], TransformSpecSha256(EffectiveTransformSpec(req.config)));
  ASSERT_EQ(s["outputs"].size(), 2u);
  EXPECT_EQ(s["outputs"][0]["name"], "x");
  EXPECT_EQ(s["outputs"][0]["kind"], "dense");
  EXPECT_EQ(s["outputs"][0]["cardinality"], nullptr);
  EXPECT_EQ(s["outputs"][0]["ops"][1]["mean"].get<double>(), OpOf(r->fitted, "x", 1).mean);
  EXPECT_EQ(s["outputs"][1]["name"], "color");
  EXPECT_EQ(s["outputs"][1]["kind"], "categorical");
  EXPECT_EQ(s["outputs"][1]["cardinality"], 5);  // 3 tokens, 1 oov, missing
  EXPECT_EQ(s["outputs"][1]["ops"][0]["vocab_size"], 3);
  const std::string table = FormatTransformSummary(r->fitted);
  EXPECT_THAT(table, HasSubstr("vocabulary (3 tokens, 1 oov)"));
  EXPECT_THAT(table, HasSubstr("zscore (mean "));
}

TEST(TransformStepTest, TrainWithTheWrittenTransformWritesTheSameBundleTransform) {
  testing::TempDir dir;
  const std::string data = dir.Write("d.csv", Csv());
  const std::string yaml =
      "label: y\ntask: binary\nmodel: {type: gbdt, num_rounds: 3}\n"
      "transform: {features: {color: [vocabulary]}}\n";
  TransformStepRequest req;
  req.data = data;
  req.config = Config(yaml);
  auto r = FitTransformStep(Env::Default(), req);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(WriteTransformStep(Env::Default(), dir.File("tf"), *r).ok());
  EXPECT_EQ(testing::ReadAll(dir.File("tf/transform.json")), r->fitted.ToJson());
  auto summary = transform::Json::parse(testing::ReadAll(dir.File("tf/transform_summary.json")));
  EXPECT_EQ(summary["split"], "train");

  TrainRequest alone;
  alone.data = data;
  alone.config = Config(yaml);
  alone.config.checkpoint_every = 0;
  alone.out_dir = dir.File("alone");
  auto a = Train(Env::Default(), alone);
  ASSERT_TRUE(a.ok()) << a.status();
  TrainRequest with = alone;
  with.out_dir = dir.File("with");
  with.transform = dir.File("tf");
  auto w = Train(Env::Default(), with);
  ASSERT_TRUE(w.ok()) << w.status();
  const std::string fitted = testing::ReadAll(dir.File("alone/transform.json"));
  EXPECT_EQ(fitted, testing::ReadAll(dir.File("tf/transform.json")));
  EXPECT_EQ(fitted, testing::ReadAll(dir.File("with/transform.json")));
  EXPECT_EQ(a->eval, w->eval);
  EXPECT_EQ(r->rows, a->train_rows);
}

TEST(TransformStepTest, LoadsADirectoryOrAFileAndNamesWhatIsMissing) {
  testing::TempDir dir;
  TransformStepRequest req;
  req.data = dir.Write("d.csv", Csv());
  req.config = Config(kLinear);
  auto r = FitTransformStep(Env::Default(), req);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(WriteTransformStep(Env::Default(), dir.File("tf"), *r).ok());
  for (const std::string& path : {dir.File("tf"), dir.File("tf/transform.json")}) {
    auto t = LoadFittedTransform(Env::Default(), path);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->ToJson(), r->fitted.ToJson());
  }
  auto empty = LoadFittedTransform(Env::Default(), dir.path());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(empty.status().message(), HasSubstr("has no transform.json"));
  auto bad = LoadFittedTransform(Env::Default(), req.data);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("d.csv"));
}

TEST(TransformStepTest, SplitsThatDoNotExistAreErrors) {
  testing::TempDir dir;
  TransformStepRequest req;
  req.data = dir.Write("d.csv", Csv());
  req.config = Config(kLinear);
  req.split = "test";
  auto r = FitTransformStep(Env::Default(), req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("has no split named 'test'"));
  req.split = "eval";  // a split of training.split: fine, if not where train fits
  EXPECT_TRUE(FitTransformStep(Env::Default(), req).ok());
}

class TransformCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TransformStepRequest req;
    req.data = dir_.Write("d.csv", Csv());
    req.config = Config(kLinear);
    auto r = FitTransformStep(Env::Default(), req);
    ASSERT_TRUE(r.ok()) << r.status();
    fitted_ = std::move(r->fitted);
  }
  absl::Status Spec(const std::string& yaml) {
    return CheckTransformSpec(Config(yaml), fitted_, "tf/");
  }

  testing::TempDir dir_;
  transform::FittedTransform fitted_;
};

TEST_F(TransformCheckTest, TheSameSpecPasses) {
  EXPECT_TRUE(Spec(kLinear).ok());
  // Another model of the same family, other training settings: the same transform.
  EXPECT_TRUE(Spec("label: y\ntask: binary\nmodel: {type: mlp, hidden: [8]}\n"
                   "transform: {features: {color: [vocabulary], x: [{fill: mean}, zscore]}}\n"
                   "training: {seed: 7}\n")
                  .ok());
}

TEST_F(TransformCheckTest, ADifferentSpecIsRefusedNamingTheDifference) {
  absl::Status s = Spec(
      "label: y\ntask: binary\nmodel: {type: linear}\n"
      "transform: {features: {x: [{fill: median}, zscore], color: [vocabulary]}}\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("tf/: "), HasSubstr("feature 'x'"),
                                 HasSubstr("[fill: median, zscore]"),
                                 HasSubstr("[fill: mean, zscore]"), Not(HasSubstr("'color'"))));

  s = Spec(
      "label: y\ntask: binary\nmodel: {type: linear}\n"
      "transform: {features: {x: [{fill: mean}, zscore], color: [{vocabulary: "
      "{top_k: 1}}]}}\n");
  EXPECT_THAT(s.message(), HasSubstr("feature 'color'"));
  EXPECT_THAT(s.message(), HasSubstr("top_k: 1,"));

  s = Spec(
      "label: y\ntask: binary\nmodel: {type: linear}\n"
      "transform: {features: {x: [{fill: mean}, zscore]}}\n");
  EXPECT_THAT(s.message(), HasSubstr("feature 'color': the fitted transform's spec lists"));

  s = Spec(
      "label: x\ntask: regression\nmodel: {type: linear}\n"
      "transform: {features: {color: [vocabulary]}}\n");
  EXPECT_THAT(s.message(), HasSubstr("exclude: the config's [x]"));

  s = Spec(
      "label: y\ntask: binary\nmodel: {type: linear}\n"
      "transform: {features: {x: [{fill: mean}, zscore], color: [vocabulary]}, defaults: false}\n");
  EXPECT_THAT(s.message(), HasSubstr("defaults: the config says false"));
}

TEST_F(TransformCheckTest, TheModelTypeDecidesTheDefaultsOfUnlistedNumbers) {
  TransformStepRequest req;
  req.data = dir_.File("d.csv");
  req.config = Config("label: y\ntask: binary\nmodel: {type: gbdt}\n");
  auto r = FitTransformStep(Env::Default(), req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(
      CheckTransformSpec(Config("label: y\ntask: binary\nmodel: {type: gbdt, max_depth: 2}\n"),
                         r->fitted, "tf")
          .ok());
  absl::Status s = CheckTransformSpec(Config("label: y\ntask: binary\nmodel: {type: linear}\n"),
                                      r->fitted, "tf");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(),
              AllOf(HasSubstr("unlisted feature 'x'"), HasSubstr("[passthrough]"),
                    HasSubstr("model type 'linear'"), HasSubstr("[fill: median, zscore]")));
}

TEST_F(TransformCheckTest, ColumnsMustBeThereAsFitted) {
  using data::ValueType;
  const data::TableSchema same = {
      {"x", ValueType::kInt}, {"color", ValueType::kString}, {"y", ValueType::kInt}};
  EXPECT_TRUE(CheckTransformColumns(same, fitted_, "tf").ok());
  // INT and FLOAT read alike.
  EXPECT_TRUE(
      CheckTransformColumns(
          {{"x", ValueType::kFloat}, {"color", ValueType::kString}, {"y", ValueType::kString}},
          fitted_, "tf")
          .ok());
  absl::Status s =
      CheckTransformColumns({{"x", ValueType::kFloat}, {"y", ValueType::kInt}}, fitted_, "tf");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("column 'color' is not in the data"),
                                 HasSubstr("data columns: x, y")));
  s = CheckTransformColumns(
      {{"x", ValueType::kString}, {"color", ValueType::kString}, {"y", ValueType::kInt}}, fitted_,
      "tf");
  EXPECT_THAT(s.message(), HasSubstr("column 'x' is STRING in the data but was INT"));
  s = CheckTransformColumns({{"x", ValueType::kInt}, {"color", ValueType::kString}}, fitted_, "tf");
  EXPECT_THAT(s.message(), HasSubstr("column 'y' (excluded) is not in the data"));
  s = CheckTransformColumns({{"x", ValueType::kInt},
                             {"color", ValueType::kString},
                             {"y", ValueType::kInt},
                             {"z", ValueType::kFloat}},
                            fitted_, "tf");
  EXPECT_THAT(s.message(), HasSubstr("column 'z' is in the data but not in the fitted transform"));
}

TEST_F(TransformCheckTest, TrainRefusesAMismatchBeforeTraining) {
  dir_.Write("tf/transform.json", fitted_.ToJson());
  TrainRequest req;
  req.data = dir_.File("d.csv");
  req.config = Config(
      "label: y\ntask: binary\nmodel: {type: linear}\n"
      "transform: {features: {x: [{fill: median}, zscore], color: [vocabulary]}}\n");
  req.out_dir = dir_.File("m");
  req.transform = dir_.File("tf");
  auto r = Train(Env::Default(), req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("feature 'x'"));
}

}  // namespace
}  // namespace kiln::train
