#include "kiln/validation/schema_diff.h"

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace kiln::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
namespace tfmd = ::tensorflow::metadata::v0;

tfmd::Schema Parse(const std::string& text) {
  tfmd::Schema s;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &s)) << text;
  return s;
}

const char kBase[] = R"pb(
  feature {
    name: "age"
    type: INT
    presence { min_fraction: 1 min_count: 1 }
    int_domain { min: 0 max: 120 }
  }
  feature { name: "city" type: BYTES domain: "city" }
  string_domain { name: "city" value: "Bern" value: "Oslo" }
  dataset_constraints { min_examples_count: 10 }
)pb";

TEST(SchemaDiffTest, IdenticalSchemasHaveNoDifference) {
  EXPECT_THAT(SchemaDiff(Parse(kBase), Parse(kBase)), IsEmpty());
}

TEST(SchemaDiffTest, FeatureAndDomainValueOrderDoNotMatter) {
  tfmd::Schema b = Parse(R"pb(
    feature { name: "city" type: BYTES domain: "city" }
    feature {
      name: "age"
      type: INT
      presence { min_count: 1 min_fraction: 1 }
      int_domain { max: 120 min: 0 }
    }
    string_domain { name: "city" value: "Oslo" value: "Bern" }
    dataset_constraints { min_examples_count: 10 }
  )pb");
  EXPECT_THAT(SchemaDiff(Parse(kBase), b), IsEmpty());
}

TEST(SchemaDiffTest, AddedAndRemovedFeatures) {
  tfmd::Schema b = Parse(kBase);
  b.mutable_feature()->erase(b.mutable_feature()->begin());  // drop "age"
  tfmd::Feature* f = b.add_feature();
  f->set_name("price");
  f->set_type(tfmd::FLOAT);
  EXPECT_THAT(SchemaDiff(Parse(kBase), b),
              ElementsAre("feature 'age' removed", "feature 'price' added (FLOAT)"));
}

TEST(SchemaDiffTest, TypePresenceAndRangeChanges) {
  tfmd::Schema b = Parse(kBase);
  tfmd::Feature* age = b.mutable_feature(0);
  age->set_type(tfmd::FLOAT);
  age->mutable_presence()->clear_min_fraction();
  age->mutable_int_domain()->set_max(150);
  age->mutable_value_count()->set_min(1);
  EXPECT_THAT(SchemaDiff(Parse(kBase), b),
              ElementsAre("feature 'age': presence.min_fraction: 1 -> (unset)",
                          "feature 'age': value_count: (unset) -> { min: 1 }",
                          "feature 'age': type: INT -> FLOAT",
                          "feature 'age': int_domain.max: 120 -> 150"));
}

TEST(SchemaDiffTest, DomainValuesAddedAndRemoved) {
  tfmd::Schema b = Parse(kBase);
  b.mutable_string_domain(0)->clear_value();
  b.mutable_string_domain(0)->add_value("Oslo");
  b.mutable_string_domain(0)->add_value("Rome");
  b.mutable_string_domain(0)->add_value("Lima");
  EXPECT_THAT(SchemaDiff(Parse(kBase), b),
              ElementsAre("feature 'city': domain values added: \"Lima\", \"Rome\"",
                          "feature 'city': domain values removed: \"Bern\""));
}

TEST(SchemaDiffTest, InlineDomainComparedWithNamedDomain) {
  // The same values listed inline instead of by reference: only the reference changed.
  tfmd::Schema b = Parse(R"pb(
    feature {
      name: "age"
      type: INT
      presence { min_fraction: 1 min_count: 1 }
      int_domain { min: 0 max: 120 }
    }
    feature {
      name: "city"
      type: BYTES
      string_domain { value: "Bern" value: "Oslo" value: "Paris" }
    }
    dataset_constraints { min_examples_count: 10 }
  )pb");
  EXPECT_THAT(SchemaDiff(Parse(kBase), b),
              ElementsAre("feature 'city': domain: \"city\" -> (unset)",
                          "feature 'city': string_domain: (unset) -> { value: \"Bern\" value: "
                          "\"Oslo\" value: \"Paris\" }",
                          "feature 'city': domain values added: \"Paris\""));
}

TEST(SchemaDiffTest, DatasetConstraintsAndComparators) {
  tfmd::Schema b = Parse(kBase);
  b.mutable_dataset_constraints()->set_min_examples_count(20);
  b.mutable_dataset_constraints()->set_max_examples_count(500);
  b.mutable_feature(1)->mutable_drift_comparator()->mutable_infinity_norm()->set_threshold(0.1);
  EXPECT_THAT(SchemaDiff(Parse(kBase), b),
              ElementsAre("feature 'city': drift_comparator: (unset) -> { infinity_norm { "
                          "threshold: 0.1 } }",
                          "dataset_constraints.min_examples_count: 10 -> 20",
                          "dataset_constraints.max_examples_count: (unset) -> 500"));
}

}  // namespace
}  // namespace kiln::validation
