#include "kiln/eval/checks.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::eval {
namespace {

using ::testing::HasSubstr;

const std::vector<std::string> kBinaryMetrics = {"example_count", "auc", "log_loss", "calibration"};

SliceResult Slice(const std::string& name, const std::string& spec, uint64_t rows, double auc,
                  double log_loss) {
  SliceResult s;
  s.name = name;
  s.spec = spec;
  s.rows = rows;
  s.candidate.values = {{"example_count", static_cast<double>(rows)},
                        {"auc", auc},
                        {"log_loss", log_loss},
                        {"calibration", 1.0}};
  return s;
}

EvalConfig Config(const std::string& yaml) {
  auto c = ParseEvalConfig(yaml, "eval.yaml");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

std::vector<CheckResult> Check(const std::string& yaml, const std::vector<SliceResult>& slices,
                               bool baseline) {
  auto r = RunChecks(Config(yaml), slices, kBinaryMetrics, baseline);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : std::vector<CheckResult>{};
}

TEST(Checks, ValueBoundsOnChosenSlices) {
  std::vector<SliceResult> slices = {Slice("overall", "", 100, 0.9, 0.3),
                                     Slice("user_type=new", "user_type", 40, 0.6, 0.5),
                                     Slice("user_type=returning", "user_type", 60, 0.95, 0.2)};
  auto checks = Check(R"(
slicing: [{feature: user_type}]
thresholds:
  - {metric: auc, lower: 0.7, slices: [overall, user_type]}
  - {metric: log_loss, upper: 0.4, slices: ["user_type=returning"]}
)",
                      slices, false);
  ASSERT_EQ(checks.size(), 4u);
  EXPECT_EQ(checks[0].slice, "overall");
  EXPECT_EQ(checks[0].status, CheckStatus::kPass);
  EXPECT_EQ(checks[0].reason, "auc on overall is 0.9, within the lower bound 0.7");
  EXPECT_EQ(checks[1].slice, "user_type=new");
  EXPECT_EQ(checks[1].status, CheckStatus::kFail);
  EXPECT_EQ(checks[1].kind, "lower");
  EXPECT_EQ(checks[1].value, 0.6);
  EXPECT_EQ(checks[1].threshold, 0.7);
  EXPECT_EQ(checks[1].line, 4);
  EXPECT_EQ(checks[1].reason, "auc on user_type=new is 0.6, below the lower bound 0.7");
  EXPECT_EQ(checks[2].status, CheckStatus::kPass);
  EXPECT_EQ(checks[3].slice, "user_type=returning");
  EXPECT_EQ(checks[3].kind, "upper");
  EXPECT_EQ(checks[3].status, CheckStatus::kPass);
}

TEST(Checks, UndefinedMetricFailsWithTheReason) {
  std::vector<SliceResult> slices = {Slice("overall", "", 10, NAN, 0.3)};
  auto checks = Check("thresholds: [{metric: auc, lower: 0.5}]\n", slices, false);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].status, CheckStatus::kFail);
  EXPECT_EQ(checks[0].reason, "auc on overall is undefined: it needs rows of both classes");
}

TEST(Checks, NamedSliceWithoutRowsFails) {
  std::vector<SliceResult> slices = {Slice("overall", "", 10, 0.9, 0.3)};
  auto checks = Check(
      "slicing: [{feature: device}]\nthresholds: [{metric: auc, lower: 0.5, slices: "
      "[device=tv]}]\n",
      slices, false);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].status, CheckStatus::kFail);
  EXPECT_EQ(checks[0].reason, "slice device=tv has no rows in the data");
}

TEST(Checks, ChangeWithoutBaselineIsSkippedAndSmallSlicesSkip) {
  std::vector<SliceResult> slices = {Slice("overall", "", 10, 0.9, 0.3)};
  auto checks = Check("thresholds: [{metric: auc, change: {absolute: -0.01}}]\n", slices, false);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].status, CheckStatus::kSkipped);
  EXPECT_THAT(checks[0].reason, HasSubstr("no baseline given"));
  auto small = Check("thresholds: [{metric: auc, lower: 0.95, min_examples: 11}]\n", slices, false);
  EXPECT_EQ(small[0].status, CheckStatus::kSkipped);
  EXPECT_EQ(small[0].reason, "overall has 10 rows, fewer than min_examples 11");
}

SliceResult WithChange(SliceResult s, const std::string& metric, double cand, double base,
                       std::optional<Interval> ci, std::optional<Interval> rel_ci = {}) {
  MetricDelta d;
  d.candidate = cand;
  d.baseline = base;
  d.absolute = cand - base;
  d.relative = (cand - base) / std::abs(base);
  d.absolute_ci = ci;
  d.relative_ci = rel_ci;
  s.changes[metric] = d;
  return s;
}

TEST(Checks, ChangeFailsOnlyWhenSignificantlyWorse) {
  const std::string yaml = "thresholds: [{metric: auc, change: {absolute: -0.01}}]\n";
  // Worse by 0.03, interval [-0.05, -0.012] entirely below -0.01: fails.
  auto worse = Check(
      yaml,
      {WithChange(Slice("overall", "", 100, 0.87, 0.3), "auc", 0.87, 0.9, Interval{-0.05, -0.012})},
      true);
  ASSERT_EQ(worse.size(), 1u);
  EXPECT_EQ(worse[0].status, CheckStatus::kFail);
  EXPECT_EQ(worse[0].kind, "change_absolute");
  EXPECT_NEAR(worse[0].value, -0.03, 1e-12);
  EXPECT_EQ(worse[0].reason,
            "auc on overall: improvement -0.03 (95% CI [-0.05, -0.012]) is significantly "
            "below the required -0.01 (candidate 0.87, baseline 0.9)");
  // Worse by 0.03 too, but the interval reaches above -0.01: noise, passes.
  auto noisy = Check(
      yaml,
      {WithChange(Slice("overall", "", 100, 0.87, 0.3), "auc", 0.87, 0.9, Interval{-0.07, 0.01})},
      true);
  EXPECT_EQ(noisy[0].status, CheckStatus::kPass);
  EXPECT_THAT(noisy[0].reason, HasSubstr("is not significantly below the required -0.01"));
  // Without an interval the point difference decides.
  auto point =
      Check(yaml, {WithChange(Slice("overall", "", 100, 0.87, 0.3), "auc", 0.87, 0.9, {})}, true);
  EXPECT_EQ(point[0].status, CheckStatus::kFail);
  EXPECT_THAT(point[0].reason, HasSubstr("no confidence interval"));
}

TEST(Checks, LowerIsBetterFlipsTheImprovement) {
  // log_loss rose from 0.30 to 0.33 (interval of the difference [0.02, 0.04]): the
  // improvement is -0.03 with interval [-0.04, -0.02].
  SliceResult s = WithChange(Slice("overall", "", 100, 0.9, 0.33), "log_loss", 0.33, 0.30,
                             Interval{0.02, 0.04}, Interval{0.05, 0.15});
  auto checks = Check("thresholds: [{metric: log_loss, change: {absolute: -0.05, relative: 0}}]\n",
                      {s}, true);
  ASSERT_EQ(checks.size(), 2u);
  EXPECT_EQ(checks[0].kind, "change_absolute");
  EXPECT_EQ(checks[0].status, CheckStatus::kPass);  // allowed to be 0.05 worse
  EXPECT_NEAR(checks[0].interval->lower, -0.04, 1e-12);
  EXPECT_NEAR(checks[0].interval->upper, -0.02, 1e-12);
  EXPECT_EQ(checks[1].kind, "change_relative");
  EXPECT_EQ(checks[1].status, CheckStatus::kFail);  // 5-15% worse, required no worse
  EXPECT_NEAR(checks[1].value, -0.1, 1e-12);
  // An explicit direction overrides the metric's.
  auto flipped = Check(
      "thresholds: [{metric: log_loss, change: {relative: 0, direction: higher_is_better}}]\n", {s},
      true);
  EXPECT_EQ(flipped[0].status, CheckStatus::kPass);
}

TEST(Checks, ConfigErrorsNameTheLine) {
  std::vector<SliceResult> slices = {Slice("overall", "", 10, 0.9, 0.3)};
  auto unknown = RunChecks(Config("\nthresholds: [{metric: rmse, upper: 1}]\n"), slices,
                           kBinaryMetrics, false);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(),
            "eval.yaml line 2: unknown metric 'rmse' for this model; metrics: example_count, "
            "auc, log_loss, calibration");
  auto direction = RunChecks(Config("thresholds: [{metric: calibration, change: {absolute: 0}}]"),
                             slices, kBinaryMetrics, true);
  ASSERT_FALSE(direction.ok());
  EXPECT_THAT(direction.status().message(),
              HasSubstr("calibration is neither higher- nor lower-is-better"));
  EXPECT_TRUE(ValidateThresholds(
                  Config("thresholds: [{metric: calibration, change: {absolute: 0, direction: "
                         "lower_is_better}}]"),
                  kBinaryMetrics)
                  .ok());
}

}  // namespace
}  // namespace kiln::eval
