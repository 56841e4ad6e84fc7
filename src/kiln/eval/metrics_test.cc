#include "kiln/eval/metrics.h"

#include <cmath>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::eval {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

double D(float f) { return static_cast<double>(f); }

Metrics Binary(const std::vector<float>& scores, const std::vector<double>& labels,
               const std::vector<double>& weights = {}, double threshold = 0.5) {
  MetricOptions o;
  o.task = model::Task::kBinary;
  o.threshold = threshold;
  o.weighted = !weights.empty();
  auto m = ComputeMetrics(o, {scores, labels, weights, {}});
  EXPECT_TRUE(m.ok()) << m.status();
  return *m;
}

TEST(BinaryMetrics, HandComputedValues) {
  // sklearn's documentation example: roc_auc 0.75, average precision 0.8333.
  const std::vector<float> s = {0.1f, 0.4f, 0.35f, 0.8f};
  Metrics m = Binary(s, {0, 0, 1, 1});
  const MetricValues& v = m.values;
  EXPECT_EQ(v.at("example_count"), 4);
  EXPECT_EQ(v.count("weighted_example_count"), 0u);
  EXPECT_DOUBLE_EQ(v.at("auc"), 0.75);
  // Thresholds 0.8 (tp 1, fp 0), 0.4 (recall unchanged), 0.35 (tp 2, fp 1).
  EXPECT_DOUBLE_EQ(v.at("auc_pr"), 0.5 * 1 + 0.5 * (2.0 / 3));
  EXPECT_DOUBLE_EQ(
      v.at("log_loss"),
      -(std::log(1 - D(s[0])) + std::log(1 - D(s[1])) + std::log(D(s[2])) + std::log(D(s[3]))) / 4);
  // Predicted positive at >= 0.5: only 0.8. tp 1, fp 0, tn 2, fn 1.
  EXPECT_DOUBLE_EQ(v.at("accuracy"), 0.75);
  EXPECT_DOUBLE_EQ(v.at("precision"), 1.0);
  EXPECT_DOUBLE_EQ(v.at("recall"), 0.5);
  EXPECT_DOUBLE_EQ(v.at("f1"), 2.0 / 3);
  const double mean_pred = (D(s[0]) + D(s[1]) + D(s[2]) + D(s[3])) / 4;
  EXPECT_DOUBLE_EQ(v.at("mean_prediction"), mean_pred);
  EXPECT_DOUBLE_EQ(v.at("mean_label"), 0.5);
  EXPECT_DOUBLE_EQ(v.at("calibration"), mean_pred / 0.5);
  EXPECT_THAT(m.confusion_matrix, ElementsAre(ElementsAre(2, 0), ElementsAre(1, 1)));
}

TEST(BinaryMetrics, ThresholdIsInclusiveAndConfigurable) {
  Metrics m = Binary({0.1f, 0.4f, 0.35f, 0.8f}, {0, 0, 1, 1}, {}, 0.35);
  // Positive: 0.4, 0.35, 0.8 -> tp 2, fp 1, tn 1, fn 0.
  EXPECT_THAT(m.confusion_matrix, ElementsAre(ElementsAre(1, 1), ElementsAre(0, 2)));
  EXPECT_DOUBLE_EQ(m.values.at("precision"), 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.values.at("recall"), 1.0);
  EXPECT_DOUBLE_EQ(m.values.at("f1"), 0.8);
}

TEST(BinaryMetrics, TiedScoresCountHalf) {
  // Positives 0.5, 0.5, 0.9; negative 0.5: pairs (0.5, 0.5) twice half, (0.9, 0.5) once.
  Metrics m = Binary({0.5f, 0.5f, 0.5f, 0.9f}, {0, 1, 1, 1});
  EXPECT_DOUBLE_EQ(m.values.at("auc"), 2.0 / 3);
  // AP: threshold 0.9 (recall 1/3, precision 1), threshold 0.5 (recall 1, precision 3/4):
  // one step per distinct score, tied rows enter together.
  EXPECT_DOUBLE_EQ(m.values.at("auc_pr"), 1.0 / 3 + 2.0 / 3 * 0.75);
}

TEST(BinaryMetrics, AucAgreesWithTheTrainersBinaryAuc) {
  std::mt19937 rng(7);
  std::vector<float> scores;
  std::vector<double> labels;
  std::vector<float> labels_f;
  for (int i = 0; i < 500; ++i) {
    // Scores on a coarse grid, so there are many ties.
    scores.push_back(static_cast<float>(rng() % 20) / 20);
    labels.push_back(rng() % 3 == 0 ? 1 : 0);
    labels_f.push_back(static_cast<float>(labels.back()));
  }
  Metrics m = Binary(scores, labels);
  EXPECT_NEAR(m.values.at("auc"), model::BinaryAuc(scores, labels_f), 1e-12);
}

TEST(BinaryMetrics, OneClassLeavesRankingMetricsUndefined) {
  Metrics pos = Binary({0.2f, 0.7f}, {1, 1});
  EXPECT_TRUE(std::isnan(pos.values.at("auc")));
  EXPECT_DOUBLE_EQ(pos.values.at("auc_pr"), 1.0);  // every threshold has precision 1
  Metrics neg = Binary({0.2f, 0.7f}, {0, 0});
  EXPECT_TRUE(std::isnan(neg.values.at("auc")));
  EXPECT_TRUE(std::isnan(neg.values.at("auc_pr")));
  EXPECT_TRUE(std::isnan(neg.values.at("recall")));
  EXPECT_TRUE(std::isnan(neg.values.at("calibration")));
  EXPECT_DOUBLE_EQ(neg.values.at("precision"), 0.0);  // 0.7 predicted positive: fp 1
  EXPECT_DOUBLE_EQ(neg.values.at("f1"), 0.0);
  Metrics none_predicted = Binary({0.2f, 0.1f}, {0, 0});
  EXPECT_TRUE(std::isnan(none_predicted.values.at("precision")));
  EXPECT_TRUE(std::isnan(none_predicted.values.at("f1")));
  EXPECT_DOUBLE_EQ(none_predicted.values.at("accuracy"), 1.0);
}

TEST(BinaryMetrics, NoRowsGiveNaNNotZero) {
  Metrics m = Binary({}, {});
  EXPECT_EQ(m.values.at("example_count"), 0);
  for (const char* name : {"auc", "auc_pr", "log_loss", "accuracy", "mean_prediction"}) {
    EXPECT_TRUE(std::isnan(m.values.at(name))) << name;
  }
}

TEST(BinaryMetrics, IntegerWeightsEqualRepeatedRows) {
  const std::vector<float> s = {0.1f, 0.4f, 0.35f, 0.8f, 0.5f, 0.35f};
  const std::vector<double> y = {0, 0, 1, 1, 0, 0};
  const std::vector<double> w = {1, 2, 1, 3, 1, 2};
  std::vector<float> rs;
  std::vector<double> ry;
  for (size_t i = 0; i < s.size(); ++i) {
    for (int j = 0; j < w[i]; ++j) {
      rs.push_back(s[i]);
      ry.push_back(y[i]);
    }
  }
  Metrics weighted = Binary(s, y, w);
  Metrics repeated = Binary(rs, ry);
  EXPECT_EQ(weighted.values.at("example_count"), 6);
  EXPECT_EQ(weighted.values.at("weighted_example_count"), 10);
  for (const auto& [name, value] : repeated.values) {
    if (name == "example_count") continue;
    EXPECT_NEAR(weighted.values.at(name), value, 1e-12) << name;
  }
  EXPECT_EQ(weighted.confusion_matrix, repeated.confusion_matrix);
}

TEST(BinaryMetrics, CalibrationTableHasTenEqualWidthBuckets) {
  Metrics m = Binary({0.05f, 0.15f, 0.15f, 0.2f, 0.95f, 1.0f, 0.0f}, {0, 0, 1, 0, 1, 1, 0},
                     {1, 1, 1, 1, 1, 3, 1});
  ASSERT_EQ(m.calibration_table.size(), 10u);
  const CalibrationBucket& b0 = m.calibration_table[0];
  EXPECT_DOUBLE_EQ(b0.lower, 0.0);
  EXPECT_DOUBLE_EQ(b0.upper, 0.1);
  EXPECT_EQ(b0.count, 2u);  // 0.05 and 0.0
  EXPECT_DOUBLE_EQ(b0.mean_prediction, D(0.05f) / 2);
  EXPECT_DOUBLE_EQ(b0.mean_label, 0);
  const CalibrationBucket& b1 = m.calibration_table[1];
  EXPECT_EQ(b1.count, 2u);
  EXPECT_DOUBLE_EQ(b1.mean_label, 0.5);
  EXPECT_EQ(m.calibration_table[2].count, 1u);                      // 0.2f is just above 0.2
  EXPECT_TRUE(std::isnan(m.calibration_table[5].mean_prediction));  // empty
  const CalibrationBucket& b9 = m.calibration_table[9];             // 0.95 and 1.0 (closed at 1)
  EXPECT_EQ(b9.count, 2u);
  EXPECT_DOUBLE_EQ(b9.weight, 4);
  EXPECT_DOUBLE_EQ(b9.mean_prediction, (D(0.95f) + 3 * 1.0) / 4);
  EXPECT_DOUBLE_EQ(b9.mean_label, 1);
}

TEST(BinaryMetrics, LogLossClipsAtMachineEpsilon) {
  // A confident wrong prediction costs -log(2^-52), as sklearn >= 1.5 computes it.
  Metrics m = Binary({1.0f, 0.0f}, {0, 1});
  EXPECT_DOUBLE_EQ(m.values.at("log_loss"), -std::log(DBL_EPSILON));
}

Metrics Multiclass(const std::vector<float>& scores, const std::vector<double>& labels, int top_k,
                   const std::vector<double>& weights = {}) {
  MetricOptions o;
  o.task = model::Task::kMulticlass;
  o.num_classes = 3;
  o.top_k = top_k;
  auto m = ComputeMetrics(o, {scores, labels, weights, {}});
  EXPECT_TRUE(m.ok()) << m.status();
  return *m;
}

TEST(MulticlassMetrics, HandComputedValues) {
  const std::vector<float> s = {
      0.7f, 0.2f, 0.1f,  // label 0: predicted 0
      0.2f, 0.5f, 0.3f,  // label 2: predicted 1, second
      0.3f, 0.3f, 0.4f,  // label 0: predicted 2; tied with class 1, which ranks above it
      0.1f, 0.8f, 0.1f,  // label 1: predicted 1
  };
  const std::vector<double> y = {0, 2, 0, 1};
  Metrics m = Multiclass(s, y, 2);
  EXPECT_DOUBLE_EQ(m.values.at("accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(m.values.at("top_k_accuracy"), 0.75);
  EXPECT_DOUBLE_EQ(
      m.values.at("log_loss"),
      -(std::log(D(0.7f)) + std::log(D(0.3f)) + std::log(D(0.3f)) + std::log(D(0.8f))) / 4);
  EXPECT_THAT(m.confusion_matrix,
              ElementsAre(ElementsAre(1, 0, 1), ElementsAre(0, 1, 0), ElementsAre(0, 1, 0)));
  EXPECT_DOUBLE_EQ(Multiclass(s, y, 1).values.at("top_k_accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(Multiclass(s, y, 3).values.at("top_k_accuracy"), 1.0);
  // Weighted: the two wrong rows weigh 3 each.
  Metrics w = Multiclass(s, y, 2, {1, 3, 3, 1});
  EXPECT_DOUBLE_EQ(w.values.at("accuracy"), 2.0 / 8);
  EXPECT_DOUBLE_EQ(w.values.at("top_k_accuracy"), 5.0 / 8);
  EXPECT_THAT(w.confusion_matrix[0], ElementsAre(1, 0, 3));
}

TEST(MulticlassMetrics, RejectsClassesOutOfRange) {
  MetricOptions o;
  o.task = model::Task::kMulticlass;
  o.num_classes = 3;
  std::vector<float> s = {0.2f, 0.3f, 0.5f};
  std::vector<double> y = {3};
  auto m = ComputeMetrics(o, {s, y, {}, {}});
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("class 3 is not in [0, 3)"));
}

TEST(RegressionMetrics, HandComputedValuesWithAndWithoutWeights) {
  MetricOptions o;
  o.task = model::Task::kRegression;
  const std::vector<float> s = {1.5f, 2, 2, 5};
  const std::vector<double> y = {1, 2, 3, 4};
  auto m = ComputeMetrics(o, {s, y, {}, {}});
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->values.at("rmse"), 0.75);  // errors .5, 0, -1, 1
  EXPECT_DOUBLE_EQ(m->values.at("mae"), 0.625);
  EXPECT_DOUBLE_EQ(m->values.at("r2"), 1 - 2.25 / 5);
  EXPECT_DOUBLE_EQ(m->values.at("mean_prediction"), 2.625);
  EXPECT_DOUBLE_EQ(m->values.at("mean_label"), 2.5);
  o.weighted = true;
  const std::vector<double> w = {1, 1, 2, 0};
  auto mw = ComputeMetrics(o, {s, y, w, {}});
  ASSERT_TRUE(mw.ok());
  EXPECT_DOUBLE_EQ(mw->values.at("weighted_example_count"), 4);
  EXPECT_DOUBLE_EQ(mw->values.at("rmse"), 0.75);  // (.25 + 0 + 2) / 4
  EXPECT_DOUBLE_EQ(mw->values.at("mae"), 0.625);  // (.5 + 0 + 2) / 4
  // Weighted mean label 2.25; total sum of squares 1.5625 + .0625 + 2 * .5625 = 2.75.
  EXPECT_DOUBLE_EQ(mw->values.at("r2"), 1 - 2.25 / 2.75);
  auto constant = ComputeMetrics(o, {s, std::vector<double>{2, 2, 2, 2}, w, {}});
  ASSERT_TRUE(constant.ok());
  EXPECT_TRUE(std::isnan(constant->values.at("r2")));
}

TEST(RankingMetrics, NdcgWithTiesSingletonsAndIrrelevantQueries) {
  MetricOptions o;
  o.task = model::Task::kRegression;
  o.ndcg_k = {2, 10};
  // Query 7: gains 3 2 0 1 in score order; query 8: a tie between gains 1 and 0; query 9:
  // one row (left out); query 5: no relevant row (ndcg 0).
  const std::vector<float> s = {0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.5f, 0.3f, 0.2f, 0.1f};
  const std::vector<double> y = {3, 2, 0, 1, 1, 0, 2, 0, 0};
  const std::vector<uint32_t> q = {7, 7, 7, 7, 8, 8, 9, 5, 5};
  auto m = ComputeMetrics(o, {s, y, {}, q});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->queries, 3u);
  const double l3 = std::log2(3.0), l4 = 2, l5 = std::log2(5.0);
  const double q7_full = (3 + 2 / l3 + 0 / l4 + 1 / l5) / (3 + 2 / l3 + 1 / l4);
  const double q8 = 0.5 * (1 + 1 / l3);  // the tie shares gain 1 over ranks 1 and 2
  EXPECT_NEAR(m->values.at("ndcg@10"), (q7_full + q8 + 0) / 3, 1e-15);
  EXPECT_NEAR(m->values.at("ndcg@2"), (1 + q8 + 0) / 3, 1e-15);
}

TEST(RankingMetrics, RejectsNegativeGainsAndMulticlass) {
  MetricOptions o;
  o.task = model::Task::kRegression;
  o.ndcg_k = {5};
  std::vector<float> s = {0.1f, 0.2f};
  std::vector<double> y = {-1, 2};
  std::vector<uint32_t> q = {0, 0};
  auto m = ComputeMetrics(o, {s, y, {}, q});
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("gain -1 is negative"));
  o.task = model::Task::kMulticlass;
  EXPECT_FALSE(ComputeMetrics(o, {s, std::vector<double>{0}, {}, {}}).ok());
}

TEST(Metrics, RejectsBadInputs) {
  MetricOptions o;
  std::vector<float> s = {0.5f, 0.5f};
  EXPECT_THAT(ComputeMetrics(o, {s, std::vector<double>{0, 2}, {}, {}}).status().message(),
              HasSubstr("binary label 2 is not 0 or 1"));
  EXPECT_THAT(ComputeMetrics(o, {s, std::vector<double>{0, 1}, std::vector<double>{1, -1}, {}})
                  .status()
                  .message(),
              HasSubstr("weight -1"));
  EXPECT_FALSE(ComputeMetrics(o, {s, std::vector<double>{0}, {}, {}}).ok());
  std::vector<float> nan = {0.5f, NAN};
  EXPECT_EQ(ComputeMetrics(o, {nan, std::vector<double>{0, 1}, {}, {}}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(Metrics, ResampledWithMultiplicitiesEqualsRepeatedRows) {
  MetricOptions o;
  const std::vector<float> s = {0.1f, 0.4f, 0.35f, 0.8f};
  const std::vector<double> y = {0, 0, 1, 1};
  auto c = MetricsCalculator::Create(o, {s, y, {}, {}});
  ASSERT_TRUE(c.ok());
  const std::vector<double> mult = {2, 0, 1, 1};
  MetricValues r = c->ComputeResampled(mult, {});
  Metrics repeated = Binary({0.1f, 0.1f, 0.35f, 0.8f}, {0, 0, 1, 1});
  for (const auto& [name, value] : repeated.values) {
    EXPECT_NEAR(r.at(name), value, 1e-12) << name;
  }
}

TEST(Metrics, NamesAndDirections) {
  MetricOptions o;
  o.task = model::Task::kMulticlass;
  o.weighted = true;
  EXPECT_THAT(MetricNames(o), ElementsAre("example_count", "weighted_example_count", "accuracy",
                                          "log_loss", "top_k_accuracy"));
  o.task = model::Task::kRegression;
  o.weighted = false;
  o.ndcg_k = {5};
  EXPECT_THAT(MetricNames(o), ElementsAre("example_count", "rmse", "mae", "r2", "mean_prediction",
                                          "mean_label", "ndcg@5"));
  EXPECT_EQ(MetricDirection("auc"), 1);
  EXPECT_EQ(MetricDirection("ndcg@10"), 1);
  EXPECT_EQ(MetricDirection("log_loss"), -1);
  EXPECT_EQ(MetricDirection("calibration"), 0);
}

}  // namespace
}  // namespace kiln::eval
