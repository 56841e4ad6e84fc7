#include "kiln/transform/transform_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

namespace kiln::transform {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kExample[] = R"(
transform:
  features:
    age: [{fill: median}, {clip: [0, 100]}, zscore]
    income: [{fill: {constant: 0}}, log1p, minmax]
    hour: [{bucketize: {quantiles: 4}}]
    minute: [{bucketize: {boundaries: [15, 30, 45]}}]
    country: [{vocabulary: {top_k: 100, min_frequency: 2, oov_buckets: 1}}]
    city: [vocabulary]
    url: [{hash_buckets: 1000}]
    email: [{pii: drop}]
    phone: [{pii: {salted_hash: {salt_env: KILN_PII_SALT, buckets: 1000}}}]
    user_id: [passthrough]
    score: [{fill: mean}, {clip: [null, 5]}]
  crosses:
    - {features: [country, hour], hash_buckets: 1000}
    - {features: [city, url], hash_buckets: 50, name: where}
  defaults: false
  exclude: [label_col, label_col]
)";

Op Make(OpKind kind) {
  Op op;
  op.kind = kind;
  return op;
}

absl::Status ParseError(const std::string& yaml) { return ParseTransformSpecYaml(yaml).status(); }

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(TransformSpecTest, ParsesEveryOpOfTheExample) {
  auto spec = ParseTransformSpecYaml(kExample);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->features.size(), 11u);
  EXPECT_FALSE(spec->defaults);
  EXPECT_THAT(spec->exclude, ElementsAre("label_col"));  // duplicates collapse

  const FeatureSpec* age = spec->FindFeature("age");
  ASSERT_NE(age, nullptr);
  ASSERT_EQ(age->ops.size(), 3u);
  EXPECT_EQ(age->ops[0].kind, OpKind::kFill);
  EXPECT_EQ(age->ops[0].fill, FillMethod::kMedian);
  EXPECT_EQ(age->ops[1].kind, OpKind::kClip);
  EXPECT_EQ(age->ops[1].clip_min, 0);
  EXPECT_EQ(age->ops[1].clip_max, 100);
  EXPECT_EQ(age->ops[2], Make(OpKind::kZScore));

  const FeatureSpec* income = spec->FindFeature("income");
  EXPECT_EQ(income->ops[0].fill, FillMethod::kConstant);
  EXPECT_EQ(income->ops[0].constant, "0");
  EXPECT_EQ(income->ops[1], Make(OpKind::kLog1p));
  EXPECT_EQ(income->ops[2], Make(OpKind::kMinMax));

  EXPECT_EQ(spec->FindFeature("hour")->ops[0].quantiles, 4);
  EXPECT_THAT(spec->FindFeature("minute")->ops[0].boundaries, ElementsAre(15, 30, 45));

  const Op& country = spec->FindFeature("country")->ops[0];
  EXPECT_EQ(country.kind, OpKind::kVocabulary);
  EXPECT_EQ(country.top_k, 100);
  EXPECT_EQ(country.min_frequency, 2);
  EXPECT_EQ(country.oov_buckets, 1);
  const Op& city = spec->FindFeature("city")->ops[0];
  EXPECT_EQ(city.top_k, kDefaultTopK);
  EXPECT_EQ(city.min_frequency, 1);
  EXPECT_EQ(city.oov_buckets, 1);

  EXPECT_EQ(spec->FindFeature("url")->ops[0].kind, OpKind::kHashBuckets);
  EXPECT_EQ(spec->FindFeature("url")->ops[0].buckets, 1000);
  EXPECT_EQ(spec->FindFeature("email")->ops[0], Make(OpKind::kPiiDrop));
  const Op& phone = spec->FindFeature("phone")->ops[0];
  EXPECT_EQ(phone.kind, OpKind::kPiiSaltedHash);
  EXPECT_EQ(phone.salt_env, "KILN_PII_SALT");
  EXPECT_EQ(phone.buckets, 1000);
  EXPECT_EQ(spec->FindFeature("user_id")->ops[0], Make(OpKind::kPassthrough));
  const Op& clip = spec->FindFeature("score")->ops[1];
  EXPECT_EQ(clip.clip_min, -std::numeric_limits<double>::infinity());
  EXPECT_EQ(clip.clip_max, 5);

  ASSERT_EQ(spec->crosses.size(), 2u);
  EXPECT_EQ(spec->crosses[0].name, "country_x_hour");
  EXPECT_THAT(spec->crosses[0].features, ElementsAre("country", "hour"));
  EXPECT_EQ(spec->crosses[0].hash_buckets, 1000);
  EXPECT_EQ(spec->crosses[1].name, "where");
}

TEST(TransformSpecTest, FeaturesKeepTheirWrittenOrder) {
  auto spec = ParseTransformSpecYaml("features: {b: [zscore], a: [minmax], c: [log1p]}");
  ASSERT_TRUE(spec.ok()) << spec.status();
  std::vector<std::string> names;
  for (const auto& f : spec->features) names.push_back(f.name);
  EXPECT_THAT(names, ElementsAre("b", "a", "c"));
}

TEST(TransformSpecTest, EmptyOrRootlessDocuments) {
  auto empty = ParseTransformSpecYaml("");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->features.empty());
  EXPECT_TRUE(empty->defaults);
  auto null_section = ParseTransformSpecYaml("transform:\n");
  ASSERT_TRUE(null_section.ok()) << null_section.status();
  EXPECT_TRUE(null_section->defaults);
  auto rootless = ParseTransformSpecYaml("defaults: no\nexclude: [y]\n");
  ASSERT_TRUE(rootless.ok()) << rootless.status();
  EXPECT_FALSE(rootless->defaults);
  EXPECT_THAT(rootless->exclude, ElementsAre("y"));
  auto inf = ParseTransformSpecYaml("features: {x: [{clip: [-.inf, 3]}]}");
  ASSERT_TRUE(inf.ok()) << inf.status();
  EXPECT_EQ(inf->features[0].ops[0].clip_min, -std::numeric_limits<double>::infinity());
}

TEST(TransformSpecTest, UnknownOpNamesFeaturePositionLineAndValidOps) {
  absl::Status s = ParseError("transform:\n  features:\n    age: [{fill: median}, zcore]\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(s),
            "transform spec, features.age[2] (line 3): unknown op 'zcore'; valid ops: bucketize, "
            "clip, fill, hash_buckets, log1p, minmax, passthrough, pii, vocabulary, zscore");
}

struct ErrorCase {
  const char* yaml;
  const char* message;
};

TEST(TransformSpecTest, GrammarErrorsSayWhatIsWrongAndWhatIsValid) {
  const ErrorCase cases[] = {
      {"features: {a: [fill]}",
       "op 'fill' needs an argument: {fill: mean}, {fill: median} or {fill: {constant: VALUE}}"},
      {"features: {a: [{zscore: 1}]}", "op 'zscore' takes no argument: write it as zscore"},
      {"features: {a: [{fill: mode}]}", "fill takes mean, median or {constant: VALUE}"},
      {"features: {a: [{fill: {constant: [1]}}]}", "fill constant must be a number or a string"},
      {"features: {a: [{fill: {value: 1}}]}", "unknown key 'value'; valid keys: constant"},
      {"features: {a: [{clip: [1]}]}", "clip takes [LO, HI] (either may be null for no bound)"},
      {"features: {a: [{clip: [5, 1]}]}", "clip LO (5) is above HI (1)"},
      {"features: {a: [{clip: [null, null]}]}", "clip needs at least one finite bound"},
      {"features: {a: [{clip: [x, 1]}]}", "clip LO must be a number, not 'x'"},
      {"features: {a: [{bucketize: {quantiles: 4, boundaries: [1]}}]}",
       "bucketize takes exactly one of {quantiles: N} or {boundaries: [...]}"},
      {"features: {a: [{bucketize: {}}]}",
       "bucketize takes exactly one of {quantiles: N} or {boundaries: [...]}"},
      {"features: {a: [{bucketize: {quantiles: 1}}]}",
       "bucketize quantiles must be between 2 and 10000, not 1"},
      {"features: {a: [{bucketize: {quantiles: 2.5}}]}",
       "bucketize quantiles must be an integer, not '2.5'"},
      {"features: {a: [{bucketize: {boundaries: [1, 3, 3]}}]}",
       "bucketize boundaries must be strictly increasing (3 follows 3)"},
      {"features: {a: [{bucketize: {boundaries: []}}]}",
       "bucketize boundaries must be a non-empty list of numbers"},
      {"features: {a: [{bucketize: {boundaries: [1, .inf]}}]}",
       "bucketize boundaries must be finite"},
      {"features: {a: [{bucketize: {bins: 3}}]}",
       "unknown key 'bins'; valid keys: quantiles, boundaries"},
      {"features: {a: [{vocabulary: {topk: 3}}]}",
       "unknown key 'topk'; valid keys: top_k, min_frequency, oov_buckets"},
      {"features: {a: [{vocabulary: {top_k: 0}}]}", "vocabulary top_k must be between 1 and"},
      {"features: {a: [{vocabulary: {oov_buckets: -1}}]}",
       "vocabulary oov_buckets must be between 0 and"},
      {"features: {a: [{vocabulary: {min_frequency: 0}}]}",
       "vocabulary min_frequency must be between 1 and"},
      {"features: {a: [{hash_buckets: 0}]}", "hash_buckets must be between 1 and"},
      {"features: {a: [{hash_buckets: many}]}", "hash_buckets must be an integer, not 'many'"},
      {"features: {a: [{pii: keep}]}",
       "pii takes drop or {salted_hash: {salt_env: VAR, buckets: N}}"},
      {"features: {a: [{pii: {salted_hash: {salt_env: S}}}]}",
       "pii salted_hash needs salt_env (the environment variable holding the salt) and buckets"},
      {"features: {a: [{pii: {salted_hash: {salt: x, buckets: 3}}}]}",
       "unknown key 'salt'; valid keys: salt_env, buckets"},
      {"features: {a: [[zscore]]}", "an op is a name (zscore) or a one-key map ({fill: median})"},
      {"features: {a: [{fill: median, clip: [0, 1]}]}",
       "an op is a name (zscore) or a one-key map ({fill: median})"},
      {"features: {a: zscore}", "a feature's ops must be a list, e.g. [{fill: median}, zscore]"},
      {"features: [a]", "features must be a map of feature name -> list of ops"},
      {"featuers: {a: [zscore]}",
       "unknown key 'featuers'; valid keys: features, crosses, defaults, exclude"},
      {"defaults: maybe", "defaults must be true or false"},
      {"exclude: a", "exclude must be a list of feature names"},
      {"features: {a: [zscore]}\nexclude: [a]", "feature is both listed and excluded"},
      {"features: {a: [zscore], a: [minmax]}", "feature listed twice"},
      {"crosses: {a: b}", "crosses must be a list"},
      {"crosses: [{features: [a], hash_buckets: 3}]", "a cross needs at least two features"},
      {"crosses: [{features: [a, a], hash_buckets: 3}]", "cross lists 'a' twice"},
      {"crosses: [{features: [a, b]}]", "a cross needs features: [A, B, ...] and hash_buckets: N"},
      {"crosses: [{features: [a, b], hash_buckets: 3, buckets: 2}]",
       "unknown key 'buckets'; valid keys: features, hash_buckets, name"},
      {"exclude: [b]\ncrosses: [{features: [a, b], hash_buckets: 3}]",
       "cross uses 'b', which is excluded"},
      {"crosses: [{features: [a, b], hash_buckets: 3}, {features: [b, a], hash_buckets: 3, name: "
       "a_x_b}]",
       "two crosses are named 'a_x_b'"},
      {"features: {a: [vocabulary]}\ncrosses: [{features: [b, c], hash_buckets: 3, name: a}]",
       "cross name 'a' is also a feature name"},
      {"features: {a: [zscore]", "transform spec: "},  // YAML syntax error
  };
  for (const auto& c : cases) {
    absl::Status s = ParseError(c.yaml);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_THAT(Message(s), HasSubstr(c.message)) << c.yaml;
  }
}

TEST(TransformSpecTest, ErrorsNameTheFeatureAndLine) {
  absl::Status s = ParseError("features:\n  a: [zscore]\n  b: [{clip: [3, 1]}]\n");
  EXPECT_THAT(Message(s), HasSubstr("transform spec, features.b[1] (line 3): clip LO (3)"));
}

TEST(TransformSpecTest, ChainRules) {
  const ErrorCase cases[] = {
      {"features: {a: []}", "feature 'a' has no ops; write [passthrough]"},
      {"features: {a: [passthrough, zscore]}",
       "feature 'a', op 1 (passthrough): must be the only op of its feature"},
      {"features: {a: [{fill: median}, {pii: drop}]}",
       "feature 'a', op 2 (pii: drop): must be the only op of its feature"},
      {"features: {a: [vocabulary, {fill: {constant: x}}]}",
       "feature 'a', op 1 (vocabulary): must be the last op (it makes the feature categorical), "
       "but 'fill: constant x' follows it"},
      {"features: {a: [{bucketize: {quantiles: 4}}, zscore]}",
       "op 1 (bucketize: quantiles 4): must be the last op"},
      {"features: {a: [{clip: [0, 1]}, vocabulary]}",
       "op 2 (vocabulary): may follow only {fill: {constant: ...}}, not 'clip: [0, 1]'"},
      {"features: {a: [{fill: median}, {hash_buckets: 10}]}",
       "op 2 (hash_buckets: 10): may follow only {fill: {constant: ...}}, not 'fill: median'"},
      {"features: {a: [zscore, log1p]}",
       "op 2 (log1p): cannot follow 'zscore' (op 1), whose output is centred near 0; put log1p "
       "before it"},
      {"features: {a: [minmax, {clip: [0, 0.5]}, zscore]}",
       "op 3 (zscore): needs the mean and variance of its input, which one pass over the data "
       "cannot compute after 'clip' (op 2) follows 'minmax' (op 1); move the clip before it"},
      {"features: {a: [zscore, {clip: [-3, 3]}, {fill: mean}]}",
       "op 3 (fill: mean): needs the mean and variance"},
  };
  for (const auto& c : cases) {
    absl::Status s = ParseError(c.yaml);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_THAT(Message(s), HasSubstr(c.message)) << c.yaml;
  }
  // Fine: analyzers after analyzers, order statistics after a clip of a zscore.
  for (const char* ok : {
           "features: {a: [zscore, {bucketize: {quantiles: 4}}]}",
           "features: {a: [zscore, {clip: [-3, 3]}, minmax]}",
           "features: {a: [zscore, {clip: [-3, 3]}, {fill: median}, {bucketize: {quantiles: 3}}]}",
           "features: {a: [{fill: median}, log1p, zscore, minmax, {fill: mean}]}",
           "features: {a: [{fill: {constant: unknown}}, {hash_buckets: 5}]}",
       }) {
    EXPECT_TRUE(ParseTransformSpecYaml(ok).ok()) << ok << ": " << ParseError(ok);
  }
}

TEST(TransformSpecTest, TypeRulesNameFeatureTypeAndFittingOps) {
  auto ops_of = [](const std::string& yaml) {
    auto spec = ParseTransformSpecYaml(yaml);
    EXPECT_TRUE(spec.ok()) << spec.status();
    return spec->features[0].ops;
  };
  using data::ValueType;
  absl::Status s =
      ValidateOpsForType("age", ValueType::kInt, ops_of("features: {age: [vocabulary]}"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(s),
            "transform spec: feature 'age', op 1 (vocabulary): needs a STRING feature; 'age' is "
            "INT (for numbers use bucketize, or hash_buckets for INT ids)");
  s = ValidateOpsForType("country", ValueType::kString, ops_of("features: {c: [zscore]}"));
  EXPECT_THAT(Message(s), HasSubstr("op 1 (zscore): needs a numeric (INT or FLOAT) feature; "
                                    "'country' is STRING. Ops for STRING features: fill "
                                    "(constant), vocabulary, hash_buckets, pii"));
  s = ValidateOpsForType("c", ValueType::kString, ops_of("features: {c: [{fill: mean}, minmax]}"));
  EXPECT_THAT(Message(s), HasSubstr("op 1 (fill: mean): needs a numeric feature; 'c' is STRING "
                                    "(use {fill: {constant: VALUE}})"));
  s = ValidateOpsForType("c", ValueType::kString,
                         ops_of("features: {c: [{bucketize: {boundaries: [1]}}]}"));
  EXPECT_THAT(Message(s), HasSubstr("op 1 (bucketize: boundaries [1]): needs a numeric"));
  s = ValidateOpsForType("price", ValueType::kFloat, ops_of("features: {p: [{hash_buckets: 9}]}"));
  EXPECT_THAT(Message(s),
              HasSubstr("needs a STRING or INT feature; 'price' is FLOAT (use bucketize)"));
  s = ValidateOpsForType("n", ValueType::kFloat,
                         ops_of("features: {n: [{fill: {constant: abc}}, zscore]}"));
  EXPECT_THAT(Message(s), HasSubstr("the constant 'abc' is not a finite number ('n' is FLOAT)"));

  EXPECT_TRUE(
      ValidateOpsForType("id", ValueType::kInt,
                         ops_of("features: {i: [{fill: {constant: 0}}, {hash_buckets: 9}]}"))
          .ok());
  EXPECT_TRUE(ValidateOpsForType("x", ValueType::kFloat,
                                 ops_of("features: {x: [zscore, {bucketize: {quantiles: 4}}]}"))
                  .ok());
  EXPECT_TRUE(ValidateOpsForType("s", ValueType::kString,
                                 ops_of("features: {s: [{fill: {constant: 0}}, vocabulary]}"))
                  .ok());
  for (auto t : {ValueType::kInt, ValueType::kFloat, ValueType::kString}) {
    EXPECT_TRUE(ValidateOpsForType("p", t, ops_of("features: {p: [{pii: drop}]}")).ok());
  }
}

TEST(TransformSpecTest, DefaultOps) {
  auto numeric = DefaultOps(data::ValueType::kFloat);
  ASSERT_EQ(numeric.size(), 2u);
  EXPECT_EQ(numeric[0].kind, OpKind::kFill);
  EXPECT_EQ(numeric[0].fill, FillMethod::kMedian);
  EXPECT_EQ(numeric[1].kind, OpKind::kZScore);
  EXPECT_EQ(DefaultOps(data::ValueType::kInt), numeric);
  EXPECT_EQ(DefaultOps(data::ValueType::kFloat, /*tree_model=*/true), std::vector<Op>{Op{}});
  EXPECT_EQ(DefaultOps(data::ValueType::kString, /*tree_model=*/true),
            DefaultOps(data::ValueType::kString));
  auto text = DefaultOps(data::ValueType::kString);
  ASSERT_EQ(text.size(), 1u);
  EXPECT_EQ(text[0].kind, OpKind::kVocabulary);
  EXPECT_EQ(text[0].top_k, 10000);
  EXPECT_EQ(text[0].min_frequency, 1);
  EXPECT_EQ(text[0].oov_buckets, 1);
}

TEST(TransformSpecTest, JsonRoundTrip) {
  auto spec = ParseTransformSpecYaml(kExample);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const Json j = SpecToJson(*spec);
  auto back = SpecFromJson(Json::parse(j.dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, *spec);
  EXPECT_EQ(j["features"][0]["ops"][1].dump(), R"({"op":"clip","min":0.0,"max":100.0})");
  EXPECT_EQ(j["features"][10]["ops"][1].dump(), R"({"op":"clip","min":null,"max":5.0})");

  Json bad = j;
  bad["features"][0]["ops"][0]["op"] = "zcore";
  EXPECT_THAT(Message(SpecFromJson(bad).status()), HasSubstr("unknown op 'zcore'"));
  bad = j;
  bad["features"][0]["ops"] = Json::array({Json{{"op", "zscore"}}, Json{{"op", "log1p"}}});
  EXPECT_THAT(Message(SpecFromJson(bad).status()), HasSubstr("cannot follow 'zscore'"));
  bad = j;
  bad["features"][0]["ops"][1].erase("min");
  EXPECT_THAT(Message(SpecFromJson(bad).status()), HasSubstr("transform JSON"));
}

}  // namespace
}  // namespace kiln::transform
