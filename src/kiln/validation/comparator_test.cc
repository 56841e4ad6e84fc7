#include "kiln/validation/comparator.h"

#include <algorithm>
#include <random>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "kiln/validation/stats_view.h"
#include "kiln/validation/testing_stats.h"
#include "kiln/validation/validator.h"

namespace kiln::validation {
namespace {

using testing::Dataset;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using testing::FeatureBuilder;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using Info = tfmd::AnomalyInfo;
using Measurement = tfmd::DriftSkewInfo::Measurement;

tfmd::Schema Parse(const std::string& text) {
  tfmd::Schema s;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &s)) << text;
  return s;
}

const char kSchema[] = R"pb(
  feature {
    name: "city"
    type: BYTES
    drift_comparator { infinity_norm { threshold: 0.1 } }
  }
  feature {
    name: "price"
    type: FLOAT
    skew_comparator { jensen_shannon_divergence { threshold: 0.1 } }
  }
  feature { name: "age" type: INT }
)pb";

tfmd::FeatureNameStatistics City(double bern, double oslo, double rome) {
  return FeatureBuilder::String("city").Present(100, 0).Values(
      {{"Bern", bern}, {"Oslo", oslo}, {"Rome", rome}});
}

tfmd::FeatureNameStatistics Price(const std::vector<std::tuple<double, double, double>>& h) {
  return FeatureBuilder::Float("price").Present(100, 0).Range(0, 10).Histogram(h);
}

tfmd::FeatureNameStatistics Age() {
  return FeatureBuilder::Int("age").Present(100, 0).Range(0, 10).Histogram({{0, 10, 100}});
}

TEST(CompareTest, CategoricalDriftAboveThreshold) {
  auto current = Dataset(100, {City(30, 50, 20), Price({{0, 10, 100}}), Age()});
  auto previous = Dataset(100, {City(50, 30, 20), Price({{0, 10, 100}}), Age()});
  auto result = Compare(current, previous, Parse(kSchema), ComparisonKind::kDrift);
  ASSERT_EQ(result.size(), 1u);  // only city has a drift comparator
  const FeatureComparison& c = result[0];
  EXPECT_EQ(c.feature, "city");
  ASSERT_EQ(c.measurements.size(), 1u);
  EXPECT_EQ(c.measurements[0].type(), Measurement::L_INFTY);
  EXPECT_DOUBLE_EQ(c.measurements[0].value(), 0.2);
  EXPECT_DOUBLE_EQ(c.measurements[0].threshold(), 0.1);
  ASSERT_EQ(c.reasons.size(), 1u);
  EXPECT_EQ(c.reasons[0].type(), Info::COMPARATOR_L_INFTY_HIGH);
  EXPECT_EQ(c.reasons[0].short_description(), "High Linfty distance between current and previous");
  EXPECT_THAT(c.reasons[0].description(),
              StartsWith("The Linfty distance between current and previous is 0.2 (up to six "
                         "significant digits), above the threshold 0.1. The feature value with "
                         "maximum difference is: Oslo. KL divergence (current || previous): "));
  // KL((.3,.5,.2) || (.5,.3,.2)) = .3 log2(.6) + .5 log2(5/3)
  ASSERT_TRUE(c.kl_divergence.has_value());
  EXPECT_THAT(*c.kl_divergence, DoubleNear(0.3 * std::log2(0.6) + 0.5 * std::log2(5.0 / 3), 1e-5));
}

TEST(CompareTest, UnderThresholdIsMeasuredButNotAnAnomaly) {
  auto current = Dataset(100, {City(48, 32, 20)});
  auto previous = Dataset(100, {City(50, 30, 20)});
  auto result = Compare(current, previous, Parse(kSchema), ComparisonKind::kDrift);
  ASSERT_EQ(result.size(), 1u);
  ASSERT_EQ(result[0].measurements.size(), 1u);
  EXPECT_THAT(result[0].measurements[0].value(), DoubleNear(0.02, 1e-12));
  EXPECT_THAT(result[0].reasons, IsEmpty());
}

TEST(CompareTest, NumericSkewUsesJensenShannonOnHistograms) {
  // Training spread over [0,10]; serving all in [0,5]: JSD = 3/2 - 3/4 log2 3.
  auto training = Dataset(100, {City(50, 30, 20), Price({{0, 10, 100}})});
  auto serving = Dataset(100, {City(50, 30, 20), Price({{0, 5, 100}})});
  auto result = Compare(training, serving, Parse(kSchema), ComparisonKind::kSkew);
  ASSERT_EQ(result.size(), 1u);
  const FeatureComparison& c = result[0];
  EXPECT_EQ(c.feature, "price");
  ASSERT_EQ(c.measurements.size(), 1u);
  EXPECT_EQ(c.measurements[0].type(), Measurement::JENSEN_SHANNON_DIVERGENCE);
  EXPECT_DOUBLE_EQ(c.measurements[0].value(), 1.5 - 0.75 * std::log2(3.0));
  ASSERT_EQ(c.reasons.size(), 1u);
  EXPECT_EQ(c.reasons[0].type(), Info::COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH);
  EXPECT_EQ(c.reasons[0].short_description(),
            "High approximate Jensen-Shannon divergence between training and serving");
  EXPECT_THAT(c.reasons[0].description(),
              StartsWith("The approximate Jensen-Shannon divergence between training and serving "
                         "is 0.311278 (up to six significant digits), above the threshold 0.1."));
}

TEST(CompareTest, ThresholdOptionCoversEveryFeature) {
  auto current = Dataset(100, {City(50, 30, 20), Price({{0, 10, 100}}), Age()});
  auto previous = Dataset(100, {City(50, 30, 20), Price({{0, 10, 100}}), Age()});
  CompareOptions options;
  options.threshold = 0.05;
  auto result = Compare(current, previous, Parse(kSchema), ComparisonKind::kSkew, options);
  ASSERT_EQ(result.size(), 3u);
  EXPECT_EQ(result[0].feature, "city");
  EXPECT_EQ(result[0].measurements[0].type(), Measurement::L_INFTY);
  EXPECT_DOUBLE_EQ(result[0].measurements[0].threshold(), 0.05);
  EXPECT_EQ(result[1].feature, "price");
  EXPECT_EQ(result[1].measurements[0].type(), Measurement::JENSEN_SHANNON_DIVERGENCE);
  EXPECT_EQ(result[2].feature, "age");
  EXPECT_EQ(result[2].measurements[0].type(), Measurement::JENSEN_SHANNON_DIVERGENCE);
  for (const auto& c : result) {
    EXPECT_DOUBLE_EQ(c.measurements[0].value(), 0.0) << c.feature;
    EXPECT_THAT(c.reasons, IsEmpty());
  }
}

TEST(CompareTest, CategoricalIntUsesValueCounts) {
  tfmd::Schema schema = Parse(R"pb(
    feature {
      name: "rating"
      type: INT
      int_domain { min: 1 max: 5 is_categorical: true }
    }
  )pb");
  auto rating = [](double ones, double fives) {
    return FeatureBuilder::Int("rating").Present(100, 0).Range(1, 5).Values(
        {{"1", ones}, {"5", fives}});
  };
  CompareOptions options;
  options.threshold = 0.1;
  auto result = Compare(Dataset(100, {rating(70, 30)}), Dataset(100, {rating(40, 60)}), schema,
                        ComparisonKind::kDrift, options);
  ASSERT_EQ(result.size(), 1u);
  EXPECT_EQ(result[0].measurements[0].type(), Measurement::L_INFTY);
  EXPECT_DOUBLE_EQ(result[0].measurements[0].value(), 0.3);

  // Without value counts the distance cannot be measured; the note says why.
  auto bare = FeatureBuilder::Int("rating").Present(100, 0).Range(1, 5);
  auto none =
      Compare(Dataset(100, {bare}), Dataset(100, {bare}), schema, ComparisonKind::kDrift, options);
  ASSERT_EQ(none.size(), 1u);
  EXPECT_THAT(none[0].measurements, IsEmpty());
  EXPECT_THAT(none[0].note, HasSubstr("value counts"));
}

TEST(CompareTest, FeatureMissingFromControl) {
  auto current = Dataset(100, {City(50, 30, 20)});
  auto previous = Dataset(100, {Age()});
  auto result = Compare(current, previous, Parse(kSchema), ComparisonKind::kDrift);
  ASSERT_EQ(result.size(), 1u);
  ASSERT_EQ(result[0].reasons.size(), 1u);
  EXPECT_EQ(result[0].reasons[0].type(), Info::COMPARATOR_CONTROL_DATA_MISSING);
  EXPECT_EQ(result[0].reasons[0].short_description(), "previous data missing");
  EXPECT_EQ(result[0].reasons[0].description(), "previous data is missing.");
}

// Statistics of `values` as kiln's generator lays them out: 10 equal-width buckets
// between the observed min and max.
tfmd::FeatureNameStatistics NumericStats(const std::string& name,
                                         const std::vector<double>& values) {
  auto [lo_it, hi_it] = std::minmax_element(values.begin(), values.end());
  double lo = *lo_it, hi = *hi_it, width = (hi - lo) / 10;
  std::vector<double> counts(10, 0);
  for (double v : values) counts[std::min(9, static_cast<int>((v - lo) / width))] += 1;
  std::vector<std::tuple<double, double, double>> buckets;
  for (int i = 0; i < 10; ++i) {
    buckets.emplace_back(lo + i * width, lo + (i + 1) * width, counts[i]);
  }
  buckets.back() = {lo + 9 * width, hi, counts[9]};
  return FeatureBuilder::Float(name).Present(values.size(), 0).Range(lo, hi).Histogram(buckets);
}

tfmd::FeatureNameStatistics CategoricalStats(const std::string& name, std::mt19937& rng,
                                             const std::vector<double>& weights, int n) {
  static const char* kNames[] = {"a", "b", "c", "d"};
  std::discrete_distribution<int> pick(weights.begin(), weights.end());
  std::map<std::string, double> counts;
  for (int i = 0; i < n; ++i) counts[kNames[pick(rng)]] += 1;
  return FeatureBuilder::String(name).Present(n, 0).Values(counts);
}

TEST(CompareTest, DriftFoundOnShiftNotOnResample) {
  tfmd::Schema schema = Parse(R"pb(
    feature {
      name: "x"
      type: FLOAT
      drift_comparator { jensen_shannon_divergence { threshold: 0.05 } }
    }
    feature {
      name: "c"
      type: BYTES
      drift_comparator { infinity_norm { threshold: 0.05 } }
    }
  )pb");
  std::mt19937 rng(20240611);
  auto sample = [&rng](double mean, int n) {
    std::normal_distribution<double> normal(mean, 1.0);
    std::vector<double> v(n);
    for (double& x : v) x = normal(rng);
    return v;
  };
  const int n = 20000;
  auto previous = Dataset(
      n, {NumericStats("x", sample(0, n)), CategoricalStats("c", rng, {0.4, 0.3, 0.2, 0.1}, n)});
  auto resample = Dataset(
      n, {NumericStats("x", sample(0, n)), CategoricalStats("c", rng, {0.4, 0.3, 0.2, 0.1}, n)});
  auto shifted = Dataset(n, {NumericStats("x", sample(0.75, n)),
                             CategoricalStats("c", rng, {0.25, 0.3, 0.25, 0.2}, n)});

  auto same = Compare(resample, previous, schema, ComparisonKind::kDrift);
  ASSERT_EQ(same.size(), 2u);
  for (const auto& c : same) {
    EXPECT_THAT(c.reasons, IsEmpty()) << c.feature << " " << c.measurements[0].value();
  }
  // Rebucketing two equal-width histograms with different edges costs a resample about
  // 0.01-0.03 bits of JSD (TFDV's method has the same floor).
  EXPECT_LT(same[0].measurements[0].value(), 0.035);
  EXPECT_LT(same[1].measurements[0].value(), 0.02);  // L-infinity of a resample

  auto moved = Compare(shifted, previous, schema, ComparisonKind::kDrift);
  ASSERT_EQ(moved.size(), 2u);
  ASSERT_EQ(moved[0].reasons.size(), 1u);
  EXPECT_EQ(moved[0].reasons[0].type(), Info::COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH);
  EXPECT_GT(moved[0].measurements[0].value(), 0.05);
  ASSERT_EQ(moved[1].reasons.size(), 1u);
  EXPECT_EQ(moved[1].reasons[0].type(), Info::COMPARATOR_L_INFTY_HIGH);
  EXPECT_NEAR(moved[1].measurements[0].value(), 0.15, 0.02);  // "a": 0.40 → 0.25
  EXPECT_GT(*moved[0].kl_divergence, *same[0].kl_divergence);
}

TEST(ValidateWithControlsTest, DriftAndSkewLandInAnomaliesAndDriftSkewInfo) {
  tfmd::Schema schema = Parse(kSchema);
  auto current = Dataset(100, {City(30, 50, 20), Price({{0, 10, 100}}), Age()});
  auto previous = Dataset(100, {City(50, 30, 20), Price({{0, 10, 100}}), Age()});
  auto serving = Dataset(100, {City(30, 50, 20), Price({{0, 5, 100}}), Age()});
  ValidationOptions options;
  options.previous = &previous;
  options.serving = &serving;
  auto result = ValidateStatistics(current, schema, options);
  ASSERT_TRUE(result.ok()) << result.status();
  const tfmd::Anomalies& a = result->anomalies;
  ASSERT_EQ(a.anomaly_info_size(), 2);
  EXPECT_EQ(a.anomaly_info().at("city").reason(0).type(), Info::COMPARATOR_L_INFTY_HIGH);
  EXPECT_EQ(a.anomaly_info().at("price").reason(0).type(),
            Info::COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH);
  ASSERT_EQ(a.drift_skew_info_size(), 2);
  EXPECT_THAT(a.drift_skew_info(0).path().step(), ElementsAre("city"));
  ASSERT_EQ(a.drift_skew_info(0).drift_measurements_size(), 1);
  EXPECT_DOUBLE_EQ(a.drift_skew_info(0).drift_measurements(0).value(), 0.2);
  EXPECT_EQ(a.drift_skew_info(0).skew_measurements_size(), 0);
  EXPECT_THAT(a.drift_skew_info(1).path().step(), ElementsAre("price"));
  ASSERT_EQ(a.drift_skew_info(1).skew_measurements_size(), 1);
  EXPECT_EQ(a.drift_skew_info(1).skew_measurements(0).type(),
            Measurement::JENSEN_SHANNON_DIVERGENCE);
  EXPECT_EQ(result->comparisons.size(), 2u);

  // Without control statistics nothing is compared.
  auto plain = ValidateStatistics(current, schema);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(HasAnomalies(plain->anomalies));
  EXPECT_EQ(plain->anomalies.drift_skew_info_size(), 0);
}

TEST(ValidateWithControlsTest, DriftThresholdAppliesToDriftAndSkew) {
  tfmd::Schema schema = Parse(R"pb(
    feature { name: "city" type: BYTES }
    feature { name: "price" type: FLOAT }
  )pb");
  auto current = Dataset(100, {City(30, 50, 20), Price({{0, 10, 100}})});
  auto other = Dataset(100, {City(50, 30, 20), Price({{0, 5, 100}})});
  ValidationOptions options;
  options.previous = &other;
  options.serving = &other;
  options.drift_threshold = 0.15;
  auto result = ValidateStatistics(current, schema, options);
  ASSERT_TRUE(result.ok());
  const tfmd::Anomalies& a = result->anomalies;
  EXPECT_THAT(a.anomaly_info().at("city").reason(0).type(), Info::COMPARATOR_L_INFTY_HIGH);
  EXPECT_EQ(a.anomaly_info().at("city").reason_size(), 2);  // drift and skew
  EXPECT_EQ(a.anomaly_info().at("price").reason_size(), 2);
  ASSERT_EQ(a.drift_skew_info_size(), 2);
  EXPECT_EQ(a.drift_skew_info(0).drift_measurements_size(), 1);
  EXPECT_EQ(a.drift_skew_info(0).skew_measurements_size(), 1);
  EXPECT_EQ(a.anomaly_info().at("city").reason(1).short_description(),
            "High Linfty distance between training and serving");
}

}  // namespace
}  // namespace kiln::validation
