#include "kiln/model/model.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::model {
namespace {

using ::testing::HasSubstr;

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
