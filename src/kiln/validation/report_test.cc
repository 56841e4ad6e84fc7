#include "kiln/validation/report.h"

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "kiln/testing/temp_dir.h"
#include "kiln/validation/stats_view.h"
#include "kiln/validation/testing_stats.h"
#include "nlohmann/json.hpp"

namespace kiln::validation {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using testing::Dataset;
using testing::FeatureBuilder;
using ::testing::HasSubstr;

ValidationResult Example() {
  tfmd::Schema schema;
  google::protobuf::TextFormat::ParseFromString(
      R"pb(
        feature {
          name: "age"
          type: INT
          int_domain { max: 100 }
          drift_comparator { jensen_shannon_divergence { threshold: 0.5 } }
        }
        feature {
          name: "gone"
          type: INT
          presence { min_count: 1 }
        }
      )pb",
      &schema);
  auto current = Dataset(
      10, {FeatureBuilder::Int("age").Present(10, 0).Range(1, 200).Histogram({{1, 200, 10}})});
  auto previous = Dataset(
      10, {FeatureBuilder::Int("age").Present(10, 0).Range(1, 200).Histogram({{1, 200, 10}})});
  ValidationOptions options;
  options.previous = &previous;
  auto result = ValidateStatistics(current, schema, options);
  EXPECT_TRUE(result.ok());
  return *result;
}

TEST(ReportTest, NothingToReport) {
  ValidationResult empty;
  EXPECT_EQ(FormatReport(empty), "No anomalies found.\n");
}

TEST(ReportTest, ReadableReport) {
  EXPECT_EQ(FormatReport(Example()),
            "2 anomalies found:\n"
            "  age  ERROR  Out-of-range values\n"
            "      INT_TYPE_BIG_INT: Unexpectedly large value: 200 (the domain's max is 100).\n"
            "  gone  ERROR  Column dropped\n"
            "      SCHEMA_MISSING_COLUMN: Column is completely missing\n"
            "Drift (current vs. previous span):\n"
            "  age: Jensen-Shannon 0 <= 0.5; KL 0 bits; ok\n");
}

TEST(ReportTest, JsonRoundTrips) {
  ValidationResult r = Example();
  auto json = AnomaliesToJson(r.anomalies);
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, HasSubstr("\"anomaly_info\""));
  EXPECT_THAT(*json, HasSubstr("\"SCHEMA_MISSING_COLUMN\""));
  tfmd::Anomalies back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*json, &back).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(back, r.anomalies));
}

TEST(ReportTest, ComparisonsJsonCarriesKl) {
  auto parsed = nlohmann::json::parse(ComparisonsToJson(Example().comparisons));
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0]["feature"], "age");
  EXPECT_EQ(parsed[0]["kind"], "drift");
  EXPECT_EQ(parsed[0]["measurements"][0]["type"], "JENSEN_SHANNON_DIVERGENCE");
  EXPECT_EQ(parsed[0]["measurements"][0]["threshold"], 0.5);
  EXPECT_EQ(parsed[0]["kl_divergence"], 0.0);
  EXPECT_EQ(parsed[0]["anomalous"], false);

  FeatureComparison unmeasured;
  unmeasured.feature = "x";
  unmeasured.kind = ComparisonKind::kSkew;
  unmeasured.note = "why";
  auto p2 = nlohmann::json::parse(ComparisonsToJson({unmeasured}));
  EXPECT_TRUE(p2[0]["kl_divergence"].is_null());
  EXPECT_EQ(p2[0]["kind"], "skew");
  EXPECT_EQ(p2[0]["note"], "why");
}

TEST(ReportTest, WritesTheThreeFiles) {
  kiln::testing::TempDir dir;
  ValidationResult r = Example();
  ASSERT_TRUE(WriteValidationOutputs(Env::Default(), dir.File("out/v"), r).ok());
  tfmd::Anomalies text;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      kiln::testing::ReadAll(dir.File("out/v/anomalies.pbtxt")), &text));
  EXPECT_TRUE(MessageDifferencer::Equals(text, r.anomalies));
  tfmd::Anomalies json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  kiln::testing::ReadAll(dir.File("out/v/anomalies.json")), &json)
                  .ok());
  EXPECT_TRUE(MessageDifferencer::Equals(json, r.anomalies));
  EXPECT_EQ(nlohmann::json::parse(kiln::testing::ReadAll(dir.File("out/v/drift_skew.json"))).size(),
            1u);
}

}  // namespace
}  // namespace kiln::validation
