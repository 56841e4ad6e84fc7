#include "kiln/model/model.h"

#include <cmath>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::model {
namespace {

using ::testing::HasSubstr;

// Against the definition: the fraction of (positive, negative) pairs ordered right, ties
// counted half; scores of both signs, many ties, -0 and +0 as one score.
TEST(MetricsTest, AucEqualsThePairwiseDefinition) {
  std::mt19937 rng(7);
  for (size_t n : {size_t{2}, size_t{17}, size_t{1000}, size_t{5000}}) {
    std::vector<float> scores(n), labels(n);
    for (size_t i = 0; i < n; ++i) {
      int bucket = static_cast<int>(rng() % 200) - 100;
      scores[i] = bucket == 0 ? (rng() % 2 ? 0.0f : -0.0f) : bucket * 0.37f;
      if (rng() % 3 == 0) scores[i] = std::ldexp(scores[i], static_cast<int>(rng() % 60) - 30);
      labels[i] = static_cast<float>(rng() % 2);
    }
    labels[0] = 0, labels[1] = 1;
    double good = 0, pairs = 0;
    for (size_t i = 0; i < n; ++i) {
      if (labels[i] != 1) continue;
      for (size_t j = 0; j < n; ++j) {
        if (labels[j] != 0) continue;
        pairs += 1;
        good += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
      }
    }
    EXPECT_NEAR(BinaryAuc(scores, labels), good / pairs, 1e-12) << n;
  }
}

TEST(MetricsTest, AucCountsTiesHalf) {
  // Pairs (pos, neg): (0.8,0.1) (0.8,0.4) (0.8,0.8)=half (0.35,0.1) (0.35,0.4)=0 (0.35,0.8)=0
  // -> (1 + 1 + 0.5 + 1) / 6.
  EXPECT_DOUBLE_EQ(BinaryAuc({0.1f, 0.4f, 0.35f, 0.8f, 0.8f}, {0, 0, 1, 1, 0}), 3.5 / 6);
  EXPECT_DOUBLE_EQ(BinaryAuc({0.1f, 0.2f, 0.3f}, {0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(BinaryAuc({0.5f, 0.5f}, {0, 1}), 0.5);
  EXPECT_TRUE(std::isnan(BinaryAuc({0.1f, 0.2f}, {1, 1})));
}

TEST(MetricsTest, BinaryMulticlassRegression) {
  Metrics b = ComputeMetrics(Task::kBinary, 2, {0.9f, 0.2f, 0.6f, 0.4f}, {1, 0, 0, 1});
  EXPECT_DOUBLE_EQ(b.at("accuracy"), 0.5);
  EXPECT_NEAR(b.at("log_loss"),
              -(std::log(0.9) + std::log(0.8) + std::log(0.4) + std::log(0.4)) / 4, 1e-6);
  EXPECT_DOUBLE_EQ(b.at("auc"), 0.75);
  Metrics m = ComputeMetrics(Task::kMulticlass, 3, {0.7f, 0.2f, 0.1f, 0.1f, 0.3f, 0.6f}, {0, 1});
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 0.5);
  EXPECT_NEAR(m.at("log_loss"), -(std::log(0.7) + std::log(0.3)) / 2, 1e-6);
  Metrics r = ComputeMetrics(Task::kRegression, 1, {1, 2, 4}, {1, 3, 3});
  EXPECT_DOUBLE_EQ(r.at("rmse"), std::sqrt(2.0 / 3));
  EXPECT_DOUBLE_EQ(r.at("mae"), 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.at("r2"), 1 - 2.0 / (24.0 / 9));  // mean 7/3, SS_tot 24/9
}

TEST(ModelRegistryTest, UnknownTypeListsTheKnownOnes) {
  auto r = TrainModel("forest", {}, {}, {}, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("model types: cnn, gbdt, linear, mlp, wide_deep"));
  EXPECT_EQ(ParseTask("ranking").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseTask("multiclass"), Task::kMulticlass);
  EXPECT_TRUE(HigherIsBetter("auc"));
  EXPECT_FALSE(HigherIsBetter("log_loss"));
}

}  // namespace
}  // namespace kiln::model
