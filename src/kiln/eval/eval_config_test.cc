#include "kiln/eval/eval_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::eval {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(EvalConfig, ParsesEveryKey) {
  auto c = ParseEvalConfig(R"(
label: clicked
weight: w
decision_threshold: 0.3
top_k: 5
ranking: {query_key: session, k: [10, 5, 10]}
slicing:
  - feature: user_type
  - features: [user_type, {feature: price, boundaries: [10, 20.5]}]
  - feature: price
    boundaries: [10, 20]
thresholds:
  - metric: auc
    slices: [overall, user_type, "user_type=new"]
    lower: 0.7
    upper: 1
    change: {absolute: -0.01, relative: 0.02, direction: lower_is_better}
    min_examples: 50
  - metric: log_loss
    slices: all
    upper: 0.5
bootstrap: {samples: 0, seed: 7, confidence: 0.9}
)",
                           "eval.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->label, "clicked");
  EXPECT_EQ(c->weight, "w");
  EXPECT_EQ(c->decision_threshold, 0.3);
  EXPECT_EQ(c->top_k, 5);
  ASSERT_TRUE(c->ranking.has_value());
  EXPECT_EQ(c->ranking->query_key, "session");
  EXPECT_THAT(c->ranking->k, ElementsAre(5, 10));
  ASSERT_EQ(c->slicing.size(), 3u);
  EXPECT_EQ(c->slicing[0].Key(), "user_type");
  EXPECT_EQ(c->slicing[1].Key(), "user_type,price");
  EXPECT_THAT(c->slicing[1].dimensions[1].boundaries, ElementsAre(10, 20.5));
  EXPECT_THAT(c->slicing[2].dimensions[0].boundaries, ElementsAre(10, 20));
  ASSERT_EQ(c->thresholds.size(), 2u);
  const MetricThreshold& t = c->thresholds[0];
  EXPECT_EQ(t.metric, "auc");
  EXPECT_THAT(t.slices, ElementsAre("overall", "user_type", "user_type=new"));
  EXPECT_EQ(*t.lower, 0.7);
  EXPECT_EQ(*t.upper, 1);
  EXPECT_EQ(*t.change->absolute, -0.01);
  EXPECT_EQ(*t.change->relative, 0.02);
  EXPECT_EQ(t.change->direction, -1);
  EXPECT_EQ(t.min_examples, 50u);
  EXPECT_EQ(t.line, 13);
  EXPECT_THAT(c->thresholds[1].slices, ElementsAre("all"));
  EXPECT_FALSE(c->thresholds[1].change.has_value());
  EXPECT_EQ(c->bootstrap.samples, 0);
  EXPECT_EQ(c->bootstrap.seed, 7u);
  EXPECT_EQ(c->bootstrap.confidence, 0.9);
}

TEST(EvalConfig, DefaultsAndEmptyConfig) {
  auto c = ParseEvalConfig("", "eval.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->label, "");
  EXPECT_EQ(c->decision_threshold, 0.5);
  EXPECT_EQ(c->top_k, 3);
  EXPECT_EQ(c->bootstrap.samples, 200);
  EXPECT_EQ(c->bootstrap.seed, 42u);
  EXPECT_EQ(c->bootstrap.confidence, 0.95);
  auto t = ParseEvalConfig("thresholds:\n  - {metric: auc, lower: 0.5}\n", "e.yaml");
  ASSERT_TRUE(t.ok());
  EXPECT_THAT(t->thresholds[0].slices, ElementsAre("overall"));
  auto r = ParseEvalConfig("ranking: {query_key: q}\n", "e.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->ranking->k, ElementsAre(10));
}

std::string Error(const std::string& yaml) {
  auto c = ParseEvalConfig(yaml, "eval.yaml");
  EXPECT_FALSE(c.ok()) << yaml;
  if (c.ok()) return "";
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(c.status().message());
}

TEST(EvalConfig, UnknownKeysNameTheKeyAndLine) {
  EXPECT_EQ(Error("label: y\n\ntreshold: 0.5\n"),
            "eval.yaml line 3: unknown key 'treshold' in the eval config; keys: label, weight, "
            "decision_threshold, top_k, ranking, slicing, thresholds, bootstrap");
  EXPECT_THAT(Error("thresholds:\n  - metric: auc\n    lowr: 0.5\n"),
              HasSubstr("eval.yaml line 3: unknown key 'lowr' in a threshold"));
  EXPECT_THAT(Error("thresholds:\n  - metric: auc\n    change: {abs: 0.1}\n"),
              HasSubstr("line 3: unknown key 'abs' in change; keys: absolute, relative, "
                        "direction"));
  EXPECT_THAT(Error("bootstrap:\n  sample: 10\n"),
              HasSubstr("line 2: unknown key 'sample' in bootstrap"));
  EXPECT_THAT(Error("slicing:\n  - feature: a\n    bounds: [1]\n"),
              HasSubstr("line 3: unknown key 'bounds' in a slicing spec"));
  EXPECT_THAT(Error("ranking: {query_key: q, cutoff: 3}\n"),
              HasSubstr("unknown key 'cutoff' in ranking"));
}

TEST(EvalConfig, BadValues) {
  EXPECT_THAT(Error("decision_threshold: 1.5\n"),
              HasSubstr("line 1: decision_threshold must be in [0, 1]"));
  EXPECT_THAT(Error("top_k: 0\n"), HasSubstr("top_k must be an integer in [1,"));
  EXPECT_THAT(Error("slicing:\n  - feature: p\n    boundaries: [3, 1]\n"),
              HasSubstr("line 3: boundaries must be strictly ascending"));
  EXPECT_THAT(Error("slicing:\n  - feature: a\n  - feature: a\n"),
              HasSubstr("line 3: slicing spec 'a' appears twice"));
  EXPECT_THAT(Error("slicing:\n  - features: [a, a]\n"), HasSubstr("'a' appears twice"));
  EXPECT_THAT(Error("slicing:\n  - {}\n"), HasSubstr("needs `feature: COLUMN`"));
  EXPECT_THAT(Error("thresholds:\n  - metric: auc\n"),
              HasSubstr("line 2: threshold on auc checks nothing"));
  EXPECT_THAT(Error("thresholds:\n  - {lower: 0.5}\n"), HasSubstr("needs `metric: NAME`"));
  EXPECT_THAT(Error("thresholds:\n  - {metric: auc, lower: 0.9, upper: 0.5}\n"),
              HasSubstr("lower 0.9 is above upper 0.5"));
  EXPECT_THAT(Error("thresholds:\n  - {metric: auc, change: {direction: higher_is_better}}\n"),
              HasSubstr("change needs `absolute` and/or `relative`"));
  EXPECT_THAT(Error("thresholds:\n  - {metric: auc, change: {absolute: 0, direction: up}}\n"),
              HasSubstr("direction must be higher_is_better or lower_is_better"));
  EXPECT_THAT(Error("thresholds:\n  - {metric: auc, lower: high}\n"),
              HasSubstr("lower must be a number"));
  EXPECT_THAT(Error("thresholds:\n  - {metric: auc, lower: 0.5, slices: [device]}\n"),
              HasSubstr("slice 'device' is not sliced by any slicing spec; use overall, all"));
  EXPECT_THAT(Error("bootstrap: {confidence: 95}\n"), HasSubstr("confidence must be in (0, 1)"));
  EXPECT_THAT(Error("bootstrap: {samples: -1}\n"), HasSubstr("samples must be an integer"));
  EXPECT_THAT(Error("label: [a, b]\n"), HasSubstr("label must be a non-empty string"));
  EXPECT_THAT(Error("- a\n- b\n"), HasSubstr("the eval config must be a map"));
  EXPECT_THAT(Error("label: {\n"), HasSubstr("eval.yaml is not valid YAML"));
}

}  // namespace
}  // namespace kiln::eval
