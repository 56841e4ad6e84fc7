#include "kiln/validation/validator.h"

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "kiln/validation/stats_view.h"
#include "kiln/validation/testing_stats.h"

namespace kiln::validation {
namespace {

using testing::Dataset;
using ::testing::ElementsAre;
using testing::FeatureBuilder;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Info = tfmd::AnomalyInfo;

const char kSchema[] = R"pb(
  feature {
    name: "age"
    type: INT
    presence { min_fraction: 1 min_count: 1 }
    value_count { min: 1 max: 1 }
    int_domain { min: 0 max: 120 }
  }
  feature {
    name: "price"
    type: FLOAT
    presence { min_count: 1 }
    float_domain { min: 0 max: 1000 disallow_nan: true }
  }
  feature {
    name: "city"
    type: BYTES
    domain: "city"
    presence { min_fraction: 0.5 min_count: 1 }
  }
  feature { name: "score" type: FLOAT }
  feature { name: "count" type: INT }
  string_domain { name: "city" value: "Bern" value: "Oslo" value: "Rome" }
  dataset_constraints { min_examples_count: 10 max_examples_count: 1000 }
)pb";

tfmd::Schema Schema(const std::string& text = kSchema) {
  tfmd::Schema s;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &s));
  return s;
}

tfmd::FeatureNameStatistics Age() {
  return FeatureBuilder::Int("age").Present(100, 0).Range(18, 90).Histogram({{18, 90, 100}});
}
tfmd::FeatureNameStatistics Price() {
  return FeatureBuilder::Float("price").Present(100, 0).Range(0.5, 999).Histogram(
      {{0.5, 999, 100}});
}
tfmd::FeatureNameStatistics City() {
  return FeatureBuilder::String("city").Present(100, 0).Values(
      {{"Bern", 50}, {"Oslo", 30}, {"Rome", 20}});
}
tfmd::FeatureNameStatistics Score() {
  return FeatureBuilder::Float("score").Present(100, 0).Range(-1, 1);
}
tfmd::FeatureNameStatistics Count() {
  return FeatureBuilder::Int("count").Present(100, 0).Range(0, 7);
}

tfmd::DatasetFeatureStatistics Clean() {
  return Dataset(100, {Age(), Price(), City(), Score(), Count()});
}

// `stats` with the feature of the same name replaced by `f` (or added).
tfmd::DatasetFeatureStatistics With(tfmd::DatasetFeatureStatistics stats,
                                    const tfmd::FeatureNameStatistics& f) {
  for (auto& existing : *stats.mutable_features()) {
    if (existing.name() == f.name()) {
      existing = f;
      return stats;
    }
  }
  *stats.add_features() = f;
  return stats;
}

tfmd::DatasetFeatureStatistics Without(tfmd::DatasetFeatureStatistics stats,
                                       const std::string& name) {
  auto* fs = stats.mutable_features();
  for (int i = 0; i < fs->size(); ++i) {
    if (fs->Get(i).name() == name) {
      fs->DeleteSubrange(i, 1);
      break;
    }
  }
  return stats;
}

tfmd::Anomalies Validate(const tfmd::DatasetFeatureStatistics& stats,
                         const tfmd::Schema& schema = Schema()) {
  auto result = ValidateStatistics(stats, schema);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->anomalies : tfmd::Anomalies();
}

std::vector<std::string> Keys(const tfmd::Anomalies& a) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : a.anomaly_info()) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::vector<Info::Type> Types(const tfmd::AnomalyInfo& info) {
  std::vector<Info::Type> types;
  for (const auto& r : info.reason()) types.push_back(r.type());
  return types;
}

// The single anomaly reported, which must be for `feature` (a copy: callers often pass a
// temporary).
tfmd::AnomalyInfo Only(const tfmd::Anomalies& a, const std::string& feature) {
  EXPECT_THAT(Keys(a), ElementsAre(feature));
  auto it = a.anomaly_info().find(feature);
  return it == a.anomaly_info().end() ? tfmd::AnomalyInfo() : it->second;
}

TEST(ValidatorTest, CleanDataHasNoAnomalies) {
  tfmd::Anomalies a = Validate(Clean());
  EXPECT_FALSE(HasAnomalies(a));
  EXPECT_THAT(Keys(a), IsEmpty());
  EXPECT_FALSE(a.has_dataset_anomaly_info());
  EXPECT_FALSE(a.data_missing());
  EXPECT_EQ(a.anomaly_name_format(), tfmd::Anomalies::SERIALIZED_PATH);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(a.baseline(), Schema()));
}

TEST(ValidatorTest, MissingRequiredColumn) {
  // "count" is optional (no presence), so dropping it is fine; "age" is required.
  tfmd::Anomalies a = Validate(Without(Without(Clean(), "age"), "count"));
  const tfmd::AnomalyInfo& info = Only(a, "age");
  EXPECT_EQ(info.severity(), Info::ERROR);
  EXPECT_THAT(info.path().step(), ElementsAre("age"));
  EXPECT_EQ(info.short_description(), "Column dropped");
  EXPECT_EQ(info.description(), "Column is completely missing");
  ASSERT_EQ(info.reason_size(), 1);
  EXPECT_EQ(info.reason(0).type(), Info::SCHEMA_MISSING_COLUMN);
  EXPECT_EQ(info.reason(0).short_description(), "Column dropped");
}

TEST(ValidatorTest, NewColumn) {
  tfmd::Anomalies a = Validate(With(Clean(), FeatureBuilder::Int("extra").Present(100, 0)));
  const tfmd::AnomalyInfo& info = Only(a, "extra");
  EXPECT_THAT(Types(info), ElementsAre(Info::SCHEMA_NEW_COLUMN));
  EXPECT_EQ(info.short_description(), "New column");
  EXPECT_EQ(info.description(), "New column (column in data but not in schema)");
  EXPECT_EQ(info.severity(), Info::ERROR);
}

TEST(ValidatorTest, KeyIsTheSerializedPath) {
  tfmd::Anomalies a = Validate(With(Clean(), FeatureBuilder::Int("a.b").Present(100, 0)));
  const tfmd::AnomalyInfo& info = Only(a, "'a.b'");
  EXPECT_THAT(info.path().step(), ElementsAre("a.b"));
}

TEST(ValidatorTest, LowFractionPresent) {
  tfmd::Anomalies a = Validate(
      With(Clean(), FeatureBuilder::String("city").Present(40, 60).Values({{"Bern", 40}})));
  const tfmd::AnomalyInfo& info = Only(a, "city");
  EXPECT_THAT(Types(info), ElementsAre(Info::FEATURE_TYPE_LOW_FRACTION_PRESENT));
  EXPECT_EQ(info.short_description(), "Column dropped");
  EXPECT_EQ(info.description(),
            "The feature was present in fewer examples than expected: 40% of examples, expected "
            "at least 50%.");
  // 60% present is enough.
  EXPECT_FALSE(HasAnomalies(Validate(
      With(Clean(), FeatureBuilder::String("city").Present(60, 40).Values({{"Bern", 60}})))));
}

TEST(ValidatorTest, RequiredEverywhereButMissingOnce) {
  tfmd::Anomalies a =
      Validate(With(Clean(), FeatureBuilder::Int("age").Present(99, 1).Range(18, 90)));
  const tfmd::AnomalyInfo& info = Only(a, "age");
  EXPECT_THAT(Types(info), ElementsAre(Info::FEATURE_TYPE_LOW_FRACTION_PRESENT));
  EXPECT_EQ(info.description(),
            "The feature was expected everywhere, but was missing in 1 examples.");
}

TEST(ValidatorTest, NotPresent) {
  tfmd::Anomalies a = Validate(With(Clean(), FeatureBuilder::Int("age").Present(0, 100, 0, 0)));
  const tfmd::AnomalyInfo& info = Only(a, "age");
  EXPECT_THAT(Types(info), ElementsAre(Info::FEATURE_TYPE_NOT_PRESENT));
  EXPECT_EQ(info.description(), "The feature was not present in any examples.");
  // An optional feature may be absent from every example.
  EXPECT_FALSE(
      HasAnomalies(Validate(With(Clean(), FeatureBuilder::Int("count").Present(0, 100, 0, 0)))));
}

TEST(ValidatorTest, LowNumberPresent) {
  tfmd::Schema schema = Schema();
  schema.mutable_feature(1)->mutable_presence()->set_min_count(50);
  tfmd::Anomalies a =
      Validate(With(Clean(), FeatureBuilder::Float("price").Present(30, 70).Range(1, 2)), schema);
  const tfmd::AnomalyInfo& info = Only(a, "price");
  EXPECT_THAT(Types(info), ElementsAre(Info::FEATURE_TYPE_LOW_NUMBER_PRESENT));
  EXPECT_EQ(info.description(),
            "The feature was present in fewer examples than expected: 30, expected at least 50.");
}

TEST(ValidatorTest, ValueCountBounds) {
  tfmd::Anomalies many =
      Validate(With(Clean(), FeatureBuilder::Int("age").Present(100, 0, 1, 3).Range(18, 90)));
  const tfmd::AnomalyInfo& high = Only(many, "age");
  EXPECT_THAT(Types(high), ElementsAre(Info::FEATURE_TYPE_HIGH_NUMBER_VALUES));
  EXPECT_EQ(high.short_description(), "Superfluous values");
  EXPECT_EQ(high.description(),
            "Some examples have more values than expected: as many as 3, expected at most 1.");

  tfmd::Anomalies few =
      Validate(With(Clean(), FeatureBuilder::Int("age").Present(100, 0, 0, 1).Range(18, 90)));
  const tfmd::AnomalyInfo& low = Only(few, "age");
  EXPECT_THAT(Types(low), ElementsAre(Info::FEATURE_TYPE_LOW_NUMBER_VALUES));
  EXPECT_EQ(low.short_description(), "Missing values");
}

TEST(ValidatorTest, FixedShape) {
  tfmd::Schema schema = Schema();
  schema.mutable_feature(3)->mutable_shape()->add_dim()->set_size(1);
  EXPECT_FALSE(HasAnomalies(Validate(Clean(), schema)));
  tfmd::Anomalies a =
      Validate(With(Clean(), FeatureBuilder::Float("score").Present(90, 10).Range(-1, 1)), schema);
  EXPECT_THAT(Types(Only(a, "score")), ElementsAre(Info::INVALID_FEATURE_SHAPE));
}

TEST(ValidatorTest, IntOutOfRangeBothWays) {
  tfmd::Anomalies a =
      Validate(With(Clean(), FeatureBuilder::Int("age").Present(100, 0).Range(-1, 130)));
  const tfmd::AnomalyInfo& info = Only(a, "age");
  EXPECT_THAT(Types(info), ElementsAre(Info::INT_TYPE_SMALL_INT, Info::INT_TYPE_BIG_INT));
  EXPECT_EQ(info.short_description(), "Multiple errors");
  EXPECT_EQ(info.reason(0).short_description(), "Out-of-range values");
  EXPECT_EQ(info.reason(0).description(), "Unexpectedly small value: -1 (the domain's min is 0).");
  EXPECT_EQ(info.reason(1).description(),
            "Unexpectedly large value: 130 (the domain's max is 120).");
  EXPECT_EQ(info.description(),
            "Unexpectedly small value: -1 (the domain's min is 0). Unexpectedly large value: 130 "
            "(the domain's max is 120).");
  // The bounds themselves are inside.
  EXPECT_FALSE(HasAnomalies(
      Validate(With(Clean(), FeatureBuilder::Int("age").Present(100, 0).Range(0, 120)))));
}

TEST(ValidatorTest, FloatOutOfRange) {
  tfmd::Anomalies low =
      Validate(With(Clean(), FeatureBuilder::Float("price").Present(100, 0).Range(-5, 10)));
  const tfmd::AnomalyInfo& l = Only(low, "price");
  EXPECT_THAT(Types(l), ElementsAre(Info::FLOAT_TYPE_SMALL_FLOAT));
  EXPECT_EQ(l.description(), "Unexpectedly low values: -5 < 0 (up to six significant digits).");
  tfmd::Anomalies high =
      Validate(With(Clean(), FeatureBuilder::Float("price").Present(100, 0).Range(5, 1000.5)));
  const tfmd::AnomalyInfo& h = Only(high, "price");
  EXPECT_THAT(Types(h), ElementsAre(Info::FLOAT_TYPE_BIG_FLOAT));
  EXPECT_EQ(h.description(),
            "Unexpectedly high value: 1000.5 > 1000 (up to six significant digits).");
}

TEST(ValidatorTest, FloatBoundsAreComparedAsFloat) {
  // 0.1 (double) rounds to the float bound 0.1f: inside, as TFDV decides.
  tfmd::Schema schema = Schema();
  schema.mutable_feature(1)->mutable_float_domain()->set_min(0.1f);
  EXPECT_FALSE(HasAnomalies(Validate(
      With(Clean(), FeatureBuilder::Float("price").Present(100, 0).Range(0.1, 2)), schema)));
}

TEST(ValidatorTest, NanWhenDisallowed) {
  auto nan_price = FeatureBuilder::Float("price").Present(100, 0).Range(1, 2).Histogram(
      {{1, 2, 97}}, /*num_nan=*/3);
  const tfmd::AnomalyInfo& info = Only(Validate(With(Clean(), nan_price)), "price");
  EXPECT_THAT(Types(info), ElementsAre(Info::FLOAT_TYPE_HAS_NAN));
  EXPECT_EQ(info.short_description(), "Invalid values");
  EXPECT_EQ(info.description(), "Float feature has NaN values.");
  // Allowed once disallow_nan is off.
  tfmd::Schema schema = Schema();
  schema.mutable_feature(1)->mutable_float_domain()->set_disallow_nan(false);
  EXPECT_FALSE(HasAnomalies(Validate(With(Clean(), nan_price), schema)));
}

TEST(ValidatorTest, InfWhenDisallowed) {
  tfmd::Schema schema = Schema();
  schema.mutable_feature(3)->mutable_float_domain()->set_disallow_inf(true);
  EXPECT_FALSE(HasAnomalies(Validate(Clean(), schema)));
  auto inf_score = FeatureBuilder::Float("score").Present(100, 0).Range(-1, 1).Custom("num_inf", 2);
  EXPECT_THAT(Types(Only(Validate(With(Clean(), inf_score), schema), "score")),
              ElementsAre(Info::FLOAT_TYPE_HAS_INF));
}

TEST(ValidatorTest, StringDataForFloatFeature) {
  auto bad = FeatureBuilder::String("score")
                 .Present(100, 0)
                 .Values({{"1.5", 60}, {"abc", 30}, {"n/a", 10}})
                 .Custom("kiln_non_int_count", 100)
                 .Custom("kiln_non_float_count", 40);
  const tfmd::AnomalyInfo& info = Only(Validate(With(Clean(), bad)), "score");
  EXPECT_THAT(Types(info), ElementsAre(Info::FLOAT_TYPE_STRING_NOT_FLOAT));
  EXPECT_EQ(info.short_description(), "Invalid values");
  EXPECT_EQ(info.description(),
            "String values that were not floats were found, such as \"abc\". 40 of 100 values do "
            "not parse.");
  // Strings that all parse as floats are accepted.
  auto fine = FeatureBuilder::String("score")
                  .Present(100, 0)
                  .Values({{"1.5", 60}, {"2", 40}})
                  .Custom("kiln_non_int_count", 60)
                  .Custom("kiln_non_float_count", 0);
  EXPECT_FALSE(HasAnomalies(Validate(With(Clean(), fine))));
}

TEST(ValidatorTest, StringDataForIntFeature) {
  auto bad = FeatureBuilder::String("count")
                 .Present(100, 0)
                 .Values({{"3", 90}, {"x7", 10}})
                 .Custom("kiln_non_int_count", 10)
                 .Custom("kiln_non_float_count", 10);
  const tfmd::AnomalyInfo& info = Only(Validate(With(Clean(), bad)), "count");
  EXPECT_THAT(Types(info), ElementsAre(Info::INT_TYPE_NOT_INT_STRING));
  EXPECT_EQ(info.description(),
            "String values that were not ints were found, such as \"x7\". 10 of 100 values do "
            "not parse.");
  // Without the custom stat, a complete value list decides.
  auto listed = FeatureBuilder::String("count").Present(100, 0).Values({{"3", 90}, {"2.5", 10}});
  EXPECT_THAT(Types(Only(Validate(With(Clean(), listed)), "count")),
              ElementsAre(Info::INT_TYPE_NOT_INT_STRING));
  auto ints = FeatureBuilder::String("count").Present(100, 0).Values({{"3", 90}, {"12", 10}});
  EXPECT_FALSE(HasAnomalies(Validate(With(Clean(), ints))));
}

TEST(ValidatorTest, StringIntsAreRangeChecked) {
  auto ages = FeatureBuilder::String("age").Present(100, 0).Values({{"30", 90}, {"300", 10}});
  EXPECT_THAT(Types(Only(Validate(With(Clean(), ages)), "age")),
              ElementsAre(Info::INT_TYPE_BIG_INT));
}

TEST(ValidatorTest, NumericDomainOnBytesFeature) {
  // TFDV's convention for numbers stored as strings: BYTES with an int_domain.
  tfmd::Schema schema = Schema(R"pb(
    feature {
      name: "zip"
      type: BYTES
      int_domain { min: 1000 max: 9999 }
    }
  )pb");
  auto zips = [](const std::map<std::string, double>& v) {
    return Dataset(10, {FeatureBuilder::String("zip").Present(10, 0).Values(v)});
  };
  EXPECT_FALSE(HasAnomalies(Validate(zips({{"1234", 5}, {"9999", 5}}), schema)));
  EXPECT_THAT(Types(Only(Validate(zips({{"1234", 5}, {"99999", 5}}), schema), "zip")),
              ElementsAre(Info::INT_TYPE_BIG_INT));
  EXPECT_THAT(Types(Only(Validate(zips({{"1234", 5}, {"CH-1", 5}}), schema), "zip")),
              ElementsAre(Info::INT_TYPE_NOT_INT_STRING));
}

TEST(ValidatorTest, FloatDataForIntFeatureIsATypeMismatch) {
  auto f = FeatureBuilder::Float("age").Present(100, 0).Range(18.5, 90);
  const tfmd::AnomalyInfo& info = Only(Validate(With(Clean(), f)), "age");
  EXPECT_THAT(Types(info), ElementsAre(Info::UNEXPECTED_DATA_TYPE));
  EXPECT_EQ(info.short_description(), "Expected data of type: INT but got FLOAT");
}

TEST(ValidatorTest, IntDataForFloatFeatureIsAccepted) {
  EXPECT_FALSE(HasAnomalies(
      Validate(With(Clean(), FeatureBuilder::Int("price").Present(100, 0).Range(1, 900)))));
}

TEST(ValidatorTest, NumericDataForBytesFeatureIsATypeMismatch) {
  auto f = FeatureBuilder::Int("city").Present(100, 0).Range(1, 3);
  EXPECT_THAT(Types(Only(Validate(With(Clean(), f)), "city")),
              ElementsAre(Info::UNEXPECTED_DATA_TYPE));
}

TEST(ValidatorTest, UnexpectedStringValues) {
  auto city = FeatureBuilder::String("city").Present(100, 0).Values(
      {{"Bern", 50}, {"Oslo", 38}, {"Paris", 12}});
  const tfmd::AnomalyInfo& info = Only(Validate(With(Clean(), city)), "city");
  EXPECT_THAT(Types(info), ElementsAre(Info::ENUM_TYPE_UNEXPECTED_STRING_VALUES));
  EXPECT_EQ(info.short_description(), "Unexpected string values");
  EXPECT_EQ(info.description(), "Examples contain values missing from the schema: Paris (~12%).");
}

TEST(ValidatorTest, UnexpectedStringValuesListsEveryOneWithItsShare) {
  auto city = FeatureBuilder::String("city").Present(1000, 0).Values(
      {{"Bern", 800}, {"Lima", 5}, {"Oslo", 55}, {"Paris", 140}});
  const tfmd::AnomalyInfo& info = Only(Validate(With(Clean(), city)), "city");
  EXPECT_EQ(info.description(),
            "Examples contain values missing from the schema: Lima (<1%), Paris (~14%). "
            "Together ~14% of all values.");
}

TEST(ValidatorTest, MinDomainMassToleratesAFewUnexpectedValues) {
  auto city = FeatureBuilder::String("city").Present(100, 0).Values(
      {{"Bern", 50}, {"Oslo", 38}, {"Paris", 12}});
  tfmd::Schema schema = Schema();
  schema.mutable_feature(2)->mutable_distribution_constraints()->set_min_domain_mass(0.85);
  EXPECT_FALSE(HasAnomalies(Validate(With(Clean(), city), schema)));
  schema.mutable_feature(2)->mutable_distribution_constraints()->set_min_domain_mass(0.9);
  const tfmd::AnomalyInfo& info = Only(Validate(With(Clean(), city), schema), "city");
  EXPECT_THAT(Types(info), ElementsAre(Info::ENUM_TYPE_UNEXPECTED_STRING_VALUES));
  EXPECT_THAT(info.description(), HasSubstr("Paris (~12%)."));
  EXPECT_THAT(info.description(), HasSubstr("more than the allowed 10%"));
}

TEST(ValidatorTest, InlineStringDomain) {
  tfmd::Schema schema = Schema();
  tfmd::Feature* city = schema.mutable_feature(2);
  city->mutable_string_domain()->add_value("Bern");  // replaces the reference
  const tfmd::AnomalyInfo& info = Only(Validate(Clean(), schema), "city");
  EXPECT_EQ(info.description(),
            "Examples contain values missing from the schema: Oslo (~30%), Rome (~20%). "
            "Together ~50% of all values.");
}

TEST(ValidatorTest, UndeclaredDomainName) {
  tfmd::Schema schema = Schema();
  schema.mutable_feature(2)->set_domain("towns");
  EXPECT_THAT(Types(Only(Validate(Clean(), schema), "city")),
              ElementsAre(Info::INVALID_SCHEMA_SPECIFICATION));
}

TEST(ValidatorTest, UniqueConstraints) {
  tfmd::Schema schema = Schema();
  schema.mutable_feature(2)->mutable_unique_constraints()->set_min(4);
  EXPECT_THAT(Types(Only(Validate(Clean(), schema), "city")),
              ElementsAre(Info::FEATURE_TYPE_LOW_UNIQUE));
  schema.mutable_feature(2)->mutable_unique_constraints()->set_min(1);
  schema.mutable_feature(2)->mutable_unique_constraints()->set_max(2);
  EXPECT_THAT(Types(Only(Validate(Clean(), schema), "city")),
              ElementsAre(Info::FEATURE_TYPE_HIGH_UNIQUE));
  schema.mutable_feature(2)->mutable_unique_constraints()->set_max(3);
  EXPECT_FALSE(HasAnomalies(Validate(Clean(), schema)));
}

TEST(ValidatorTest, DatasetExampleCounts) {
  tfmd::DatasetFeatureStatistics few = Clean();
  few.set_num_examples(5);
  tfmd::Anomalies a = Validate(few);
  EXPECT_THAT(Keys(a), IsEmpty());
  EXPECT_TRUE(HasAnomalies(a));
  EXPECT_FALSE(a.dataset_anomaly_info().has_path());
  EXPECT_THAT(Types(a.dataset_anomaly_info()), ElementsAre(Info::DATASET_LOW_NUM_EXAMPLES));
  EXPECT_EQ(a.dataset_anomaly_info().short_description(), "Low num examples in dataset.");
  EXPECT_EQ(a.dataset_anomaly_info().description(),
            "The dataset has 5 examples, which is fewer than expected (at least 10).");
  EXPECT_EQ(a.dataset_anomaly_info().severity(), Info::ERROR);

  tfmd::DatasetFeatureStatistics many = Clean();
  many.set_num_examples(5000);
  EXPECT_THAT(Types(Validate(many).dataset_anomaly_info()),
              ElementsAre(Info::DATASET_HIGH_NUM_EXAMPLES));
}

TEST(ValidatorTest, MaxExamplesCheckedWithoutMin) {
  tfmd::Schema schema = Schema();
  schema.mutable_dataset_constraints()->clear_min_examples_count();
  tfmd::DatasetFeatureStatistics many = Clean();
  many.set_num_examples(5000);
  EXPECT_THAT(Types(Validate(many, schema).dataset_anomaly_info()),
              ElementsAre(Info::DATASET_HIGH_NUM_EXAMPLES));
}

TEST(ValidatorTest, EmptyDatasetSetsDataMissing) {
  tfmd::Anomalies a = Validate(Dataset(0, {}));
  EXPECT_TRUE(a.data_missing());
  EXPECT_THAT(Keys(a), IsEmpty());
  EXPECT_TRUE(HasAnomalies(a));
}

TEST(ValidatorTest, DeprecatedFeaturesAreIgnored) {
  tfmd::Schema schema = Schema();
  schema.mutable_feature(0)->set_lifecycle_stage(tfmd::DEPRECATED);
  // Absent: no missing-column anomaly.
  EXPECT_FALSE(HasAnomalies(Validate(Without(Clean(), "age"), schema)));
  // Present and out of range: not checked, and not a new column either.
  EXPECT_FALSE(HasAnomalies(Validate(
      With(Clean(), FeatureBuilder::Int("age").Present(10, 90, 0, 5).Range(-9, 999)), schema)));
}

TEST(ValidatorTest, SeveralFeaturesAtOnce) {
  auto stats = With(With(Without(Clean(), "age"), FeatureBuilder::Int("new").Present(1, 99)),
                    FeatureBuilder::Float("price").Present(100, 0).Range(-3, 5));
  tfmd::Anomalies a = Validate(stats);
  EXPECT_THAT(Keys(a), ElementsAre("age", "new", "price"));
}

TEST(ValidatorTest, DuplicateSchemaFeatureIsAnError) {
  tfmd::Schema schema = Schema();
  *schema.add_feature() = schema.feature(0);
  auto result = ValidateStatistics(Clean(), schema);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidatorTest, NumExamplesDriftComparator) {
  tfmd::Schema schema = Schema();
  auto* c = schema.mutable_dataset_constraints()->mutable_num_examples_drift_comparator();
  c->set_min_fraction_threshold(0.5);
  c->set_max_fraction_threshold(1.5);
  tfmd::DatasetFeatureStatistics previous = Clean();
  previous.set_num_examples(300);  // 100 / 300 = 0.33 < 0.5
  ValidationOptions options;
  options.previous = &previous;
  auto result = ValidateStatistics(Clean(), schema, options);
  ASSERT_TRUE(result.ok());
  const tfmd::AnomalyInfo& d = result->anomalies.dataset_anomaly_info();
  EXPECT_THAT(Types(d), ElementsAre(Info::COMPARATOR_LOW_NUM_EXAMPLES));
  EXPECT_EQ(d.description(),
            "The ratio of num examples in the current dataset versus the previous span is "
            "0.333333 (up to six significant digits), which is below the threshold 0.5.");
  previous.set_num_examples(120);
  EXPECT_FALSE(HasAnomalies(ValidateStatistics(Clean(), schema, options)->anomalies));
}

}  // namespace
}  // namespace kiln::validation
