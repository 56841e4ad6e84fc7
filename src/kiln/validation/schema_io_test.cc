#include "kiln/validation/schema_io.h"

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "kiln/testing/temp_dir.h"
#include "kiln/validation/stats_view.h"

namespace kiln::validation {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(SchemaIoTest, LoadsHandWrittenTfdvSchema) {
  std::string path = kiln::testing::SourcePath("tests/fixtures/validation/schema.pbtxt");
  auto parsed = ReadSchema(Env::Default(), path);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->warnings.empty());
  const tfmd::Schema& s = parsed->schema;
  ASSERT_EQ(s.feature_size(), 9);

  const tfmd::Feature* country = FindSchemaFeature(s, "country");
  ASSERT_NE(country, nullptr);
  EXPECT_EQ(country->type(), tfmd::BYTES);
  EXPECT_EQ(country->domain(), "country");
  EXPECT_EQ(country->value_count().min(), 1);
  EXPECT_EQ(country->value_count().max(), 1);
  EXPECT_EQ(country->presence().min_fraction(), 1.0);
  EXPECT_EQ(country->presence().min_count(), 1);
  EXPECT_DOUBLE_EQ(country->distribution_constraints().min_domain_mass(), 0.95);
  EXPECT_DOUBLE_EQ(country->drift_comparator().infinity_norm().threshold(), 0.1);
  EXPECT_DOUBLE_EQ(country->skew_comparator().infinity_norm().threshold(), 0.05);
  const tfmd::StringDomain* domain = GetStringDomain(s, *country);
  ASSERT_NE(domain, nullptr);
  EXPECT_THAT(domain->value(), ::testing::ElementsAre("DE", "FR", "IT", "US"));

  const tfmd::Feature* age = FindSchemaFeature(s, "age");
  ASSERT_NE(age, nullptr);
  EXPECT_EQ(age->int_domain().min(), 0);
  EXPECT_EQ(age->int_domain().max(), 120);
  EXPECT_DOUBLE_EQ(age->presence().min_fraction(), 0.9);

  const tfmd::Feature* price = FindSchemaFeature(s, "price");
  ASSERT_NE(price, nullptr);
  EXPECT_EQ(price->float_domain().max(), 10000.5f);
  EXPECT_TRUE(price->float_domain().disallow_nan());
  EXPECT_EQ(price->shape().dim(0).size(), 1);
  EXPECT_DOUBLE_EQ(price->drift_comparator().jensen_shannon_divergence().threshold(), 0.05);
  EXPECT_EQ(price->skew_comparator().jensen_shannon_divergence().source().type(),
            tfmd::HistogramSelection::STANDARD);

  EXPECT_TRUE(FindSchemaFeature(s, "rating")->int_domain().is_categorical());
  EXPECT_TRUE(IsDeprecated(*FindSchemaFeature(s, "legacy_score")));
  EXPECT_FALSE(IsDeprecated(*FindSchemaFeature(s, "tags")));
  EXPECT_EQ(s.dataset_constraints().min_examples_count(), 1000);
  EXPECT_EQ(s.dataset_constraints().max_examples_count(), 10000000);
  EXPECT_DOUBLE_EQ(s.dataset_constraints().num_examples_drift_comparator().max_fraction_threshold(),
                   2.0);
}

TEST(SchemaIoTest, ParseErrorNamesFileLineAndColumn) {
  auto parsed = ParseSchemaText("feature {\n  name: \"a\"\n  type: WIDE\n}\n", "my/schema.pbtxt");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(parsed.status().message()),
              ::testing::MatchesRegex("my/schema\\.pbtxt:[34]:[0-9]+: .*WIDE.*"));
  // A value of the wrong kind is reported where it stands.
  auto wrong = ParseSchemaText("feature {\n  name: 5\n}\n", "s.pbtxt");
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(std::string(wrong.status().message()), StartsWith("s.pbtxt:2:9: "));
}

TEST(SchemaIoTest, UnbalancedBraceIsAnError) {
  auto parsed = ParseSchemaText("feature {\n  name: \"a\"\n", "s.pbtxt");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(std::string(parsed.status().message()), StartsWith("s.pbtxt:3:"));
}

TEST(SchemaIoTest, UnknownFieldsAreSkippedWithAWarning) {
  auto parsed =
      ParseSchemaText("feature {\n  name: \"a\"\n  type: INT\n  future_field: 3\n}\n", "s.pbtxt");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->schema.feature_size(), 1);
  EXPECT_EQ(parsed->schema.feature(0).type(), tfmd::INT);
  ASSERT_EQ(parsed->warnings.size(), 1u);
  EXPECT_THAT(parsed->warnings[0], StartsWith("s.pbtxt:4:"));
  EXPECT_THAT(parsed->warnings[0], HasSubstr("future_field"));
}

TEST(SchemaIoTest, MissingFileIsNotFound) {
  kiln::testing::TempDir dir;
  auto parsed = ReadSchema(Env::Default(), dir.File("absent.pbtxt"));
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kNotFound);
}

TEST(SchemaIoTest, WriteThenReadGivesTheSameSchema) {
  std::string path = kiln::testing::SourcePath("tests/fixtures/validation/schema.pbtxt");
  auto parsed = ReadSchema(Env::Default(), path);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  kiln::testing::TempDir dir;
  ASSERT_TRUE(WriteSchema(Env::Default(), dir.File("out.pbtxt"), parsed->schema).ok());
  auto again = ReadSchema(Env::Default(), dir.File("out.pbtxt"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(MessageDifferencer::Equals(parsed->schema, again->schema));
  // No temporary file is left next to the schema.
  auto entries = Env::Default()->ListDir(dir.path());
  ASSERT_TRUE(entries.ok());
  EXPECT_THAT(*entries, ::testing::ElementsAre("out.pbtxt"));
}

TEST(SchemaIoTest, TextLooksLikeTfdvOutput) {
  tfmd::Schema s;
  tfmd::Feature* f = s.add_feature();
  f->set_name("city");
  f->set_type(tfmd::BYTES);
  f->set_domain("city");
  f->mutable_presence()->set_min_fraction(1.0);
  f->mutable_presence()->set_min_count(1);
  f->mutable_value_count()->set_min(1);
  f->mutable_value_count()->set_max(1);
  tfmd::StringDomain* d = s.add_string_domain();
  d->set_name("city");
  d->add_value("Zürich");
  EXPECT_EQ(SchemaToText(s),
            "feature {\n"
            "  name: \"city\"\n"
            "  value_count {\n"
            "    min: 1\n"
            "    max: 1\n"
            "  }\n"
            "  type: BYTES\n"
            "  domain: \"city\"\n"
            "  presence {\n"
            "    min_fraction: 1\n"
            "    min_count: 1\n"
            "  }\n"
            "}\n"
            "string_domain {\n"
            "  name: \"city\"\n"
            "  value: \"Zürich\"\n"
            "}\n");
}

}  // namespace
}  // namespace kiln::validation
