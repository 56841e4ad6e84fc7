#include "kiln/validation/schema_infer.h"

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "kiln/testing/temp_dir.h"
#include "kiln/validation/schema_io.h"
#include "kiln/validation/stats_view.h"
#include "kiln/validation/testing_stats.h"

namespace kiln::validation {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using testing::Dataset;
using testing::FeatureBuilder;

tfmd::Schema ParseOrDie(const std::string& text) {
  tfmd::Schema s;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &s)) << text;
  return s;
}

void ExpectSchema(const tfmd::Schema& actual, const std::string& expected_text) {
  tfmd::Schema expected = ParseOrDie(expected_text);
  std::string diff;
  MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  EXPECT_TRUE(d.Compare(expected, actual)) << diff << "\nactual:\n" << SchemaToText(actual);
}

TEST(InferSchemaTest, RequiredSingleValuedFeatures) {
  auto stats = Dataset(100, {FeatureBuilder::Int("age").Present(100, 0).Range(1, 90),
                             FeatureBuilder::Float("price").Present(100, 0).Range(0.5, 9.5)});
  auto schema = InferSchema(stats);
  ASSERT_TRUE(schema.ok()) << schema.status();
  ExpectSchema(*schema, R"pb(
    feature {
      name: "age"
      type: INT
      value_count { min: 1 max: 1 }
      presence { min_fraction: 1 min_count: 1 }
    }
    feature {
      name: "price"
      type: FLOAT
      value_count { min: 1 max: 1 }
      presence { min_fraction: 1 min_count: 1 }
    }
  )pb");
}

TEST(InferSchemaTest, PresenceAndValueCountFollowTfdv) {
  auto stats = Dataset(100, {// Sometimes missing: no min_fraction.
                             FeatureBuilder::Int("optional").Present(60, 40),
                             // Lists of 1..3 values: only the lower bound.
                             FeatureBuilder::Int("list").Present(100, 0, 1, 3),
                             // Always exactly two values.
                             FeatureBuilder::Float("pair").Present(100, 0, 2, 2),
                             // Some examples hold an empty list: no value_count at all.
                             FeatureBuilder::Int("maybe_empty").Present(100, 0, 0, 2),
                             // Never present: min_count 0 and nothing else.
                             FeatureBuilder::String("never").Present(0, 100, 0, 0)});
  auto schema = InferSchema(stats);
  ASSERT_TRUE(schema.ok()) << schema.status();
  ExpectSchema(*schema, R"pb(
    feature {
      name: "optional"
      type: INT
      value_count { min: 1 max: 1 }
      presence { min_count: 1 }
    }
    feature {
      name: "list"
      type: INT
      value_count { min: 1 }
      presence { min_fraction: 1 min_count: 1 }
    }
    feature {
      name: "pair"
      type: FLOAT
      value_count { min: 2 max: 2 }
      presence { min_fraction: 1 min_count: 1 }
    }
    feature {
      name: "maybe_empty"
      type: INT
      presence { min_fraction: 1 min_count: 1 }
    }
    feature {
      name: "never"
      type: BYTES
      presence { min_count: 0 }
    }
  )pb");
}

TEST(InferSchemaTest, SmallStringFeatureGetsASortedDomain) {
  auto stats = Dataset(10, {FeatureBuilder::String("city").Present(10, 0).Values(
                               {{"Rome", 5}, {"Oslo", 3}, {"Bern", 2}})});
  auto schema = InferSchema(stats);
  ASSERT_TRUE(schema.ok()) << schema.status();
  ExpectSchema(*schema, R"pb(
    feature {
      name: "city"
      type: BYTES
      domain: "city"
      value_count { min: 1 max: 1 }
      presence { min_fraction: 1 min_count: 1 }
    }
    string_domain { name: "city" value: "Bern" value: "Oslo" value: "Rome" }
  )pb");
}

TEST(InferSchemaTest, DomainSizeLimitIsInclusive) {
  auto stats = Dataset(
      10, {FeatureBuilder::String("two").Present(10, 0).Values({{"a", 5}, {"b", 5}}),
           FeatureBuilder::String("three").Present(10, 0).Values({{"a", 5}, {"b", 3}, {"c", 2}})});
  InferSchemaOptions options;
  options.max_string_domain_size = 2;
  auto schema = InferSchema(stats, options);
  ASSERT_TRUE(schema.ok()) << schema.status();
  ASSERT_EQ(schema->string_domain_size(), 1);
  EXPECT_EQ(schema->string_domain(0).name(), "two");
  EXPECT_EQ(FindSchemaFeature(*schema, "two")->domain(), "two");
  EXPECT_FALSE(FindSchemaFeature(*schema, "three")->has_domain());
}

TEST(InferSchemaTest, DefaultDomainLimitIs100) {
  std::map<std::string, double> values;
  for (int i = 0; i < 101; ++i) values["v" + std::to_string(i)] = 1;
  auto many = Dataset(101, {FeatureBuilder::String("s").Present(101, 0).Values(values)});
  values.erase("v0");
  auto hundred = Dataset(100, {FeatureBuilder::String("s").Present(100, 0).Values(values)});
  EXPECT_EQ(InferSchema(many)->string_domain_size(), 0);
  ASSERT_EQ(InferSchema(hundred)->string_domain_size(), 1);
  EXPECT_EQ(InferSchema(hundred)->string_domain(0).value_size(), 100);
}

TEST(InferSchemaTest, NoDomainWhenOnlyTopValuesAreKnown) {
  // 30 distinct values but only the top 20 were kept: the domain would be incomplete.
  std::map<std::string, double> values;
  for (int i = 0; i < 30; ++i) values["v" + std::to_string(i)] = 30 - i;
  auto stats = Dataset(
      465,
      {FeatureBuilder::String("s").Present(465, 0).Values(values, false).TruncateTopValues(20)});
  auto schema = InferSchema(stats);
  ASSERT_TRUE(schema.ok());
  EXPECT_EQ(schema->string_domain_size(), 0);
  EXPECT_FALSE(schema->feature(0).has_domain());
}

TEST(InferSchemaTest, TopValuesSufficeWhenTheyCoverEveryValue) {
  auto stats =
      Dataset(3, {FeatureBuilder::String("s").Present(3, 0).Values({{"x", 2}, {"y", 1}}, false)});
  auto schema = InferSchema(stats);
  ASSERT_TRUE(schema.ok());
  ASSERT_EQ(schema->string_domain_size(), 1);
  EXPECT_THAT(schema->string_domain(0).value(), ::testing::ElementsAre("x", "y"));
}

TEST(InferSchemaTest, RangesOnlyWhenAsked) {
  auto stats = Dataset(10, {FeatureBuilder::Int("n").Present(10, 0).Range(-3, 42),
                            FeatureBuilder::Float("x").Present(10, 0).Range(0.1, 2.5)});
  auto plain = InferSchema(stats);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->feature(0).has_int_domain());
  EXPECT_FALSE(plain->feature(1).has_float_domain());

  InferSchemaOptions options;
  options.infer_ranges = true;
  auto ranged = InferSchema(stats, options);
  ASSERT_TRUE(ranged.ok());
  EXPECT_EQ(ranged->feature(0).int_domain().min(), -3);
  EXPECT_EQ(ranged->feature(0).int_domain().max(), 42);
  EXPECT_EQ(ranged->feature(1).float_domain().min(), 0.1f);
  EXPECT_EQ(ranged->feature(1).float_domain().max(), 2.5f);
}

TEST(InferSchemaTest, FixedShapeWhenAsked) {
  auto stats = Dataset(10, {FeatureBuilder::Float("emb").Present(10, 0, 3, 3),
                            FeatureBuilder::Float("sparse").Present(8, 2, 3, 3)});
  InferSchemaOptions options;
  options.infer_feature_shape = true;
  auto schema = InferSchema(stats, options);
  ASSERT_TRUE(schema.ok());
  ExpectSchema(*schema, R"pb(
    feature {
      name: "emb"
      type: FLOAT
      shape { dim { size: 3 } }
      presence { min_fraction: 1 min_count: 1 }
    }
    feature {
      name: "sparse"
      type: FLOAT
      value_count { min: 3 max: 3 }
      presence { min_count: 1 }
    }
  )pb");
}

TEST(InferSchemaTest, DuplicateFeatureIsAnError) {
  auto stats = Dataset(1, {FeatureBuilder::Int("a").Present(1, 0), FeatureBuilder::Int("a")});
  auto schema = InferSchema(stats);
  ASSERT_FALSE(schema.ok());
  EXPECT_EQ(schema.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(schema.status().message()), ::testing::HasSubstr("'a'"));
}

TEST(InferSchemaTest, RoundTripThroughTextFile) {
  auto stats = Dataset(
      50, {FeatureBuilder::Int("id").Present(50, 0).Range(1, 50),
           FeatureBuilder::Float("score").Present(45, 5).Range(-1.25, 3.75),
           FeatureBuilder::String("color").Present(50, 0).Values({{"red", 20}, {"blue", 30}}),
           FeatureBuilder::String("words").Present(50, 0, 1, 7).Values({{"a b", 1}}, false)});
  InferSchemaOptions options;
  options.infer_ranges = true;
  auto schema = InferSchema(stats, options);
  ASSERT_TRUE(schema.ok());
  kiln::testing::TempDir dir;
  ASSERT_TRUE(WriteSchema(Env::Default(), dir.File("schema.pbtxt"), *schema).ok());
  auto read = ReadSchema(Env::Default(), dir.File("schema.pbtxt"));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*schema, read->schema));
}

}  // namespace
}  // namespace kiln::validation
