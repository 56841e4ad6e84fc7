#include "kiln/eval/evaluator.h"

#include <cmath>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/testing/temp_dir.h"
#include "kiln/train/trainer.h"

namespace kiln::eval {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// 300 rows: clicked depends on x (with noise); user_type is new or returning (or
// missing), weight w in 1..3.
std::string ClicksCsv(int rows, const std::string& bad_row = "") {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  std::string csv = "x,user_type,w,clicked\n";
  for (int i = 0; i < rows; ++i) {
    const double x = u(rng);
    const int clicked = (x + 0.4 * (u(rng) - 0.5)) > 0.5 ? 1 : 0;
    const char* type = i % 7 == 0 ? "" : (i % 3 == 0 ? "new" : "returning");
    StrAppend(&csv, x, ",", type, ",", 1 + i % 3, ",", clicked, "\n");
  }
  return csv + bad_row;
}

class EvaluatorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir;
    const std::string data = dir_->Write("train.csv", ClicksCsv(300));
    model_ = Train(data,
                   "label: clicked\ntask: binary\nmodel: {type: gbdt, num_rounds: 10}\n"
                   "transform: {exclude: [w]}\n",
                   "model");
    regression_ = Train(data, "label: x\ntask: regression\nmodel: {type: gbdt, num_rounds: 3}\n",
                        "regression");
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::string Train(const std::string& data, const std::string& yaml,
                           const std::string& name) {
    train::TrainRequest req;
    req.data = data;
    auto config = train::ParseTrainConfig(yaml);
    EXPECT_TRUE(config.ok()) << config.status();
    req.config = *config;
    req.out_dir = dir_->File(name);
    auto r = train::Train(Env::Default(), req);
    EXPECT_TRUE(r.ok()) << r.status();
    return req.out_dir;
  }

  EvalRequest Request(const std::string& yaml, const std::string& data_csv) {
    EvalRequest req;
    req.model = model_;
    req.data = dir_->Write("eval.csv", data_csv);
    auto c = ParseEvalConfig(yaml, "eval.yaml");
    EXPECT_TRUE(c.ok()) << c.status();
    req.config = *c;
    return req;
  }

  static testing::TempDir* dir_;
  static std::string model_, regression_;
};
testing::TempDir* EvaluatorTest::dir_ = nullptr;
std::string EvaluatorTest::model_, EvaluatorTest::regression_;

TEST_F(EvaluatorTest, SameModelAsBaselineIsBlessedWithZeroChange) {
  EvalRequest req = Request(R"(
slicing: [{feature: user_type}]
thresholds:
  - {metric: auc, lower: 0.6, slices: all}
  - {metric: auc, change: {absolute: 0}, slices: all}
)",
                            ClicksCsv(200));
  req.baseline = model_;
  auto r = Evaluate(Env::Default(), req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->blessed);
  EXPECT_EQ(r->rows, 200u);
  ASSERT_EQ(r->slices.size(), 4u);
  EXPECT_EQ(r->slices[0].name, "overall");
  EXPECT_EQ(r->slices[1].name, "user_type=new");
  EXPECT_EQ(r->slices[2].name, "user_type=returning");
  EXPECT_EQ(r->slices[3].name, "user_type=(missing)");
  EXPECT_EQ(r->slices[1].rows + r->slices[2].rows + r->slices[3].rows, 200u);
  for (const SliceResult& s : r->slices) {
    const MetricDelta& d = s.changes.at("auc");
    EXPECT_EQ(d.absolute, 0);
    ASSERT_TRUE(d.absolute_ci.has_value());
    EXPECT_EQ(d.absolute_ci->lower, 0);
    EXPECT_EQ(d.absolute_ci->upper, 0);
  }
  EXPECT_EQ(r->checks.size(), 8u);
  EXPECT_EQ(r->blessing["status"], "BLESSED");
  EXPECT_TRUE(r->blessing["failing_checks"].empty());

  testing::TempDir out;
  ASSERT_TRUE(WriteEvaluation(Env::Default(), out.File("eval"), *r).ok());
  auto blessing = nlohmann::json::parse(testing::ReadAll(out.File("eval/blessing.json")));
  EXPECT_EQ(blessing["blessed"], true);
  auto evaluation = nlohmann::json::parse(testing::ReadAll(out.File("eval/evaluation.json")));
  EXPECT_EQ(evaluation["slices"][0]["slice"], "overall");
  EXPECT_EQ(evaluation["slices"][0]["changes"]["auc"]["absolute_ci"],
            nlohmann::json::array({0.0, 0.0}));
  EXPECT_EQ(evaluation["bootstrap"]["samples"], 200);
  EXPECT_EQ(evaluation["checks"].size(), 8u);
  const std::string report = FormatReport(*r);
  EXPECT_THAT(report, HasSubstr("candidate - baseline"));
  EXPECT_THAT(report, HasSubstr("checks: 8 passed, 0 failed, 0 skipped\nBLESSED\n"));
}

TEST_F(EvaluatorTest, FailingThresholdIsNotBlessedAndListed) {
  EvalRequest req =
      Request("thresholds:\n  - {metric: log_loss, upper: 0.0001}\n  - {metric: auc, lower: 0.5}\n",
              ClicksCsv(100));
  auto r = Evaluate(Env::Default(), req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->blessed);
  EXPECT_EQ(r->blessing["status"], "NOT_BLESSED");
  ASSERT_EQ(r->blessing["failing_checks"].size(), 1u);
  EXPECT_EQ(r->blessing["failing_checks"][0]["metric"], "log_loss");
  EXPECT_EQ(r->blessing["failing_checks"][0]["slice"], "overall");
  EXPECT_THAT(r->blessing["failing_checks"][0]["reason"].get<std::string>(),
              HasSubstr("above the upper bound 0.0001"));
  EXPECT_THAT(FormatReport(*r), HasSubstr("  FAIL upper: log_loss on overall is"));
  EXPECT_TRUE(r->evaluation["baseline"].is_null());
}

TEST_F(EvaluatorTest, RowsWithoutALabelAreLeftOutAndCounted) {
  EvalRequest req = Request("", ClicksCsv(50, "0.5,new,1,\n0.7,new,1,\n"));
  auto r = Evaluate(Env::Default(), req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rows, 50u);
  EXPECT_EQ(r->rows_without_label, 2u);
  EXPECT_TRUE(r->blessed);         // nothing to check
  EXPECT_EQ(r->label, "clicked");  // the model's
}

TEST_F(EvaluatorTest, WeightsComeFromTheConfiguredColumn) {
  EvalRequest req = Request("weight: w\n", ClicksCsv(60));
  auto r = Evaluate(Env::Default(), req);
  ASSERT_TRUE(r.ok()) << r.status();
  // Weights 1, 2, 3 repeat: 20 rows each.
  EXPECT_EQ(r->slices[0].candidate.values.at("weighted_example_count"), 120);
  EXPECT_EQ(r->slices[0].candidate.values.at("example_count"), 60);
}

TEST_F(EvaluatorTest, InputErrorsNameTheRow) {
  auto bad_label = Evaluate(Env::Default(), Request("", ClicksCsv(10, "0.5,new,1,2\n")));
  ASSERT_FALSE(bad_label.ok());
  EXPECT_EQ(bad_label.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_label.status().message(),
              HasSubstr("eval.csv line 12: label '2' is not a class of the model (0, 1)"));

  auto no_weight = Evaluate(Env::Default(), Request("weight: w\n", ClicksCsv(10, "0.5,new,,1\n")));
  ASSERT_FALSE(no_weight.ok());
  EXPECT_THAT(no_weight.status().message(), HasSubstr("line 12: no weight (column 'w')"));

  auto no_label = Evaluate(Env::Default(), Request("label: click\n", ClicksCsv(10)));
  ASSERT_FALSE(no_label.ok());
  EXPECT_THAT(no_label.status().message(), HasSubstr("has no label column 'click'"));

  auto no_feature =
      Evaluate(Env::Default(), Request("slicing: [{feature: country}]\n", ClicksCsv(10)));
  ASSERT_FALSE(no_feature.ok());
  EXPECT_THAT(no_feature.status().message(), HasSubstr("'country' is not a column"));

  auto unknown_metric =
      Evaluate(Env::Default(), Request("thresholds: [{metric: rmse, upper: 1}]\n", ClicksCsv(10)));
  ASSERT_FALSE(unknown_metric.ok());
  EXPECT_THAT(unknown_metric.status().message(),
              HasSubstr("eval.yaml line 1: unknown metric 'rmse' for this model"));

  auto ranking_multi = Request("ranking: {query_key: user_type}\n", ClicksCsv(10));
  ranking_multi.model = regression_;
  ranking_multi.config.label = "x";
  auto ranked = Evaluate(Env::Default(), ranking_multi);
  ASSERT_FALSE(ranked.ok());  // the missing user_type rows have no query key
  EXPECT_THAT(ranked.status().message(), HasSubstr("line 2: no query key (column 'user_type')"));
}

TEST_F(EvaluatorTest, BaselineOfAnotherTaskIsRefused) {
  EvalRequest req = Request("", ClicksCsv(10));
  req.baseline = regression_;
  auto r = Evaluate(Env::Default(), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("is a regression model"));
}

TEST_F(EvaluatorTest, RegressionWithRanking) {
  EvalRequest req = Request(
      "ranking: {query_key: w, k: [3]}\nslicing: [{feature: x, "
      "boundaries: [0.5]}]\n",
      ClicksCsv(90));
  req.model = regression_;
  auto r = Evaluate(Env::Default(), req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->label, "x");
  ASSERT_EQ(r->slices.size(), 3u);
  EXPECT_EQ(r->slices[1].name, "x=[-inf,0.5)");
  EXPECT_EQ(r->slices[2].name, "x=[0.5,inf)");
  EXPECT_EQ(r->slices[0].candidate.queries, 3u);  // w = 1, 2, 3
  const double ndcg = r->slices[0].candidate.values.at("ndcg@3");
  EXPECT_GT(ndcg, 0.5);
  EXPECT_LE(ndcg, 1.0);
  EXPECT_TRUE(std::isfinite(r->slices[0].candidate.values.at("rmse")));
  EXPECT_THAT(FormatReport(*r), Not(HasSubstr("candidate - baseline")));
}

}  // namespace
}  // namespace kiln::eval
