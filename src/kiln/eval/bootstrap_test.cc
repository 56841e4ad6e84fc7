#include "kiln/eval/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::eval {
namespace {

using ::testing::HasSubstr;

struct Data {
  std::vector<float> good, noisy, bad;
  std::vector<double> labels;
};

// 400 rows: `good` separates the classes well, `noisy` is `good` with small noise,
// `bad` is random.
Data MakeData() {
  Data d;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0, 1);
  for (int i = 0; i < 400; ++i) {
    const double y = i % 2;
    d.labels.push_back(y);
    const float g = static_cast<float>(0.5 * y + 0.5 * u(rng));
    d.good.push_back(g);
    d.noisy.push_back(std::clamp(g + 0.02f * (u(rng) - 0.5f), 0.0f, 1.0f));
    d.bad.push_back(u(rng));
  }
  return d;
}

MetricsCalculator Calc(const std::vector<float>& scores, const std::vector<double>& labels) {
  auto c = MetricsCalculator::Create(MetricOptions{}, {scores, labels, {}, {}});
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(*c);
}

TEST(Bootstrap, SameSeedSameIntervalsOtherSeedOthers) {
  Data d = MakeData();
  MetricsCalculator a = Calc(d.good, d.labels), b = Calc(d.noisy, d.labels);
  BootstrapOptions o;
  auto r1 = CompareModels(a, b, o, "overall");
  auto r2 = CompareModels(a, b, o, "overall");
  ASSERT_TRUE(r1.ok() && r2.ok());
  const MetricDelta& x = r1->at("auc");
  const MetricDelta& y = r2->at("auc");
  ASSERT_TRUE(x.absolute_ci.has_value());
  EXPECT_EQ(x.absolute_ci->lower, y.absolute_ci->lower);
  EXPECT_EQ(x.absolute_ci->upper, y.absolute_ci->upper);
  EXPECT_EQ(x.relative_ci->lower, y.relative_ci->lower);
  EXPECT_EQ(r1->at("log_loss").absolute_ci->lower, r2->at("log_loss").absolute_ci->lower);
  EXPECT_EQ(x.resamples, 200);
  // The interval holds the point difference and is not a point.
  EXPECT_LE(x.absolute_ci->lower, x.absolute);
  EXPECT_GE(x.absolute_ci->upper, x.absolute);
  EXPECT_LT(r1->at("log_loss").absolute_ci->lower, r1->at("log_loss").absolute_ci->upper);
  o.seed = 43;
  auto r3 = CompareModels(a, b, o, "overall");
  ASSERT_TRUE(r3.ok());
  EXPECT_NE(r3->at("log_loss").absolute_ci->lower, r1->at("log_loss").absolute_ci->lower);
  // Another slice name draws other resamples.
  auto r4 = CompareModels(a, b, BootstrapOptions{}, "user_type=new");
  ASSERT_TRUE(r4.ok());
  EXPECT_NE(r4->at("log_loss").absolute_ci->lower, r1->at("log_loss").absolute_ci->lower);
}

TEST(Bootstrap, IdenticalModelsDifferByExactlyZero) {
  Data d = MakeData();
  MetricsCalculator a = Calc(d.good, d.labels), b = Calc(d.good, d.labels);
  auto r = CompareModels(a, b, BootstrapOptions{}, "overall");
  ASSERT_TRUE(r.ok());
  for (const auto& [name, delta] : *r) {
    EXPECT_EQ(delta.absolute, 0) << name;
    ASSERT_TRUE(delta.absolute_ci.has_value()) << name;
    EXPECT_EQ(delta.absolute_ci->lower, 0) << name;
    EXPECT_EQ(delta.absolute_ci->upper, 0) << name;
  }
}

TEST(Bootstrap, AClearlyWorseModelHasAnIntervalBelowZero) {
  Data d = MakeData();
  MetricsCalculator bad = Calc(d.bad, d.labels), good = Calc(d.good, d.labels);
  auto r = CompareModels(bad, good, BootstrapOptions{}, "overall");
  ASSERT_TRUE(r.ok());
  const MetricDelta& auc = r->at("auc");
  EXPECT_LT(auc.absolute, -0.3);
  EXPECT_LT(auc.absolute_ci->upper, 0);
  EXPECT_DOUBLE_EQ(auc.relative, auc.absolute / auc.baseline);
  ASSERT_TRUE(r->at("log_loss").absolute_ci.has_value());
  EXPECT_GT(r->at("log_loss").absolute_ci->lower, 0);  // bad has the higher loss
}

TEST(Bootstrap, NoSamplesGivesPointDifferencesOnly) {
  Data d = MakeData();
  MetricsCalculator a = Calc(d.good, d.labels), b = Calc(d.bad, d.labels);
  BootstrapOptions o;
  o.samples = 0;
  auto r = CompareModels(a, b, o, "overall");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->at("auc").absolute_ci.has_value());
  EXPECT_GT(r->at("auc").absolute, 0.3);
}

TEST(Bootstrap, UndefinedMetricHasNoInterval) {
  // No positive row: auc is undefined on the rows and on every resample.
  std::vector<float> s(50, 0.3f);
  std::vector<double> y(50, 0);
  MetricsCalculator a = Calc(s, y), b = Calc(s, y);
  auto r = CompareModels(a, b, BootstrapOptions{}, "overall");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(std::isnan(r->at("auc").absolute));
  EXPECT_FALSE(r->at("auc").absolute_ci.has_value());
  EXPECT_EQ(r->at("auc").resamples, 0);
  EXPECT_TRUE(r->at("accuracy").absolute_ci.has_value());
}

TEST(Bootstrap, RankingResamplesQueries) {
  MetricOptions o;
  o.task = model::Task::kRegression;
  o.ndcg_k = {3};
  std::vector<float> good, bad;
  std::vector<double> gains;
  std::vector<uint32_t> q;
  for (uint32_t query = 0; query < 40; ++query) {
    for (int doc = 0; doc < 4; ++doc) {
      gains.push_back(doc);
      good.push_back(static_cast<float>(doc));
      bad.push_back(static_cast<float>((doc * 7 + query) % 4));
      q.push_back(query);
    }
  }
  auto a = MetricsCalculator::Create(o, {good, gains, {}, q});
  auto b = MetricsCalculator::Create(o, {bad, gains, {}, q});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->num_queries(), 40u);
  auto r = CompareModels(*a, *b, BootstrapOptions{}, "overall");
  ASSERT_TRUE(r.ok());
  const MetricDelta& ndcg = r->at("ndcg@3");
  EXPECT_EQ(ndcg.candidate, 1.0);
  EXPECT_GT(ndcg.absolute_ci->lower, 0);
}

TEST(Bootstrap, RejectsDifferentRowsAndBadOptions) {
  Data d = MakeData();
  MetricsCalculator a = Calc(d.good, d.labels);
  std::vector<float> s = {0.5f};
  std::vector<double> y = {1};
  MetricsCalculator b = Calc(s, y);
  auto r = CompareModels(a, b, BootstrapOptions{}, "overall");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("same rows"));
  BootstrapOptions o;
  o.confidence = 1;
  EXPECT_FALSE(CompareModels(a, a, o, "overall").ok());
}

TEST(Bootstrap, QuantileInterpolatesLikeNumpy) {
  const std::vector<double> v = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(Quantile(v, 0), 1);
  EXPECT_DOUBLE_EQ(Quantile(v, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(Quantile(v, 0.975), 3.925);
  EXPECT_DOUBLE_EQ(Quantile(v, 1), 4);
  EXPECT_DOUBLE_EQ(Quantile({5}, 0.5), 5);
}

}  // namespace
}  // namespace kiln::eval
