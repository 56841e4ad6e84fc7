#include "kiln/serving/model_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::serving {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ModelConfigTest, YamlWithEveryPolicyAndLabels) {
  auto c = ParseServerConfig(R"(
models:
  - name: clicks
    base_path: /srv/clicks
    version_policy: {latest: 2}
    version_labels: {stable: 3, canary: 4}
  - name: risk
    base_path: /srv/risk
    version_policy: all
  - name: digits
    base_path: /srv/digits
    version_policy: {specific: [5, 3, 5]}
    version_labels: {stable: 3}
  - {name: plain, base_path: /srv/plain}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->models.size(), 4u);
  EXPECT_EQ(c->models[0].policy.latest, 2);
  EXPECT_EQ(c->models[0].labels, (std::map<std::string, int64_t>{{"canary", 4}, {"stable", 3}}));
  EXPECT_EQ(c->models[1].policy.kind, VersionPolicy::Kind::kAll);
  EXPECT_EQ(c->models[2].policy.kind, VersionPolicy::Kind::kSpecific);
  EXPECT_THAT(c->models[2].policy.versions, ElementsAre(3, 5));  // sorted, distinct
  EXPECT_EQ(c->models[3].policy, VersionPolicy{});               // latest 1
}

// The file TF Serving's --model_config_file takes gives the same configuration.
TEST(ModelConfigTest, TfServingTextProtoEqualsYaml) {
  auto proto = ParseServerConfig(R"(
# TF Serving's format
model_config_list {
  config {
    name: 'clicks'
    base_path: '/srv/clicks'
    model_platform: 'kiln'
    model_version_policy { latest { num_versions: 2 } }
    version_labels { key: 'stable' value: 3 }
    version_labels { key: 'canary' value: 4 }
  }
  config {
    name: 'digits'
    base_path: '/srv/digits'
    model_version_policy { specific { versions: 3 versions: 5 } }
  }
  config { name: 'risk' base_path: '/srv/risk' model_version_policy { all {} } }
}
)");
  ASSERT_TRUE(proto.ok()) << proto.status();
  auto yaml = ParseServerConfig(R"(
models:
  - {name: clicks, base_path: /srv/clicks, version_policy: {latest: 2},
     version_labels: {stable: 3, canary: 4}}
  - {name: digits, base_path: /srv/digits, version_policy: {specific: [3, 5]}}
  - {name: risk, base_path: /srv/risk, version_policy: all}
)");
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  EXPECT_EQ(*proto, *yaml);
}

// The text proto took the negative versions YAML refuses (fuzz/serving_config_fuzzer checks
// that a config written back as YAML reads the same).
TEST(ModelConfigTest, TextProtoVersionsAreAtLeastZeroAsInYaml) {
  auto specific = ParseServerConfig(
      "model_config_list { config { name: 'a' base_path: '/x' "
      "model_version_policy { specific { versions: 2 versions: -3 } } } }");
  EXPECT_EQ(specific.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(specific.status().message(),
            "model 'a': specific version -3; a version is a number >= 0");
  auto label = ParseServerConfig(
      "model_config_list { config { name: 'a' base_path: '/x' "
      "version_labels { key: 'stable' value: 1 } version_labels { key: 'old' value: -1 } } }");
  EXPECT_EQ(label.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(label.status().message(),
            "model 'a': label 'old' names version -1; a version is a number >= 0");
  EXPECT_THAT(
      std::string(ParseServerConfig("models: [{name: a, base_path: /x, version_labels: {old: -1}}]")
                      .status()
                      .message()),
      HasSubstr("a version is a number >= 0"));
  // Version 0 is a version in both.
  auto zero = ParseServerConfig(
      "model_config_list { config { name: 'a' base_path: '/x' "
      "model_version_policy { specific { versions: 0 } } version_labels { key: 'z' value: 0 } } }");
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_THAT(zero->models[0].policy.versions, ElementsAre(0));
  EXPECT_EQ(zero->models[0].labels.at("z"), 0);
}

TEST(ModelConfigTest, ErrorsNameWhatIsWrong) {
  const std::pair<const char*, const char*> cases[] = {
      {"models: [{name: a}]", "model 'a' has no base_path"},
      {"models: [{name: a, base_path: /x}, {name: a, base_path: /y}]", "configured twice"},
      {"models: [{name: ../etc, base_path: /x}]", "model name '../etc' is not"},
      {"models: [{name: a, base_path: /x, version_labels: {'a/b': 1}}]", "label 'a/b' is not"},
      {"models: [{name: a, base_path: /x, policy: all}]", "unknown model key 'policy'"},
      {"models: [{name: a, base_path: /x, version_policy: {latest: 0}}]", "at least 1 version"},
      {"models: [{name: a, base_path: /x, version_policy: newest}]", "version_policy is"},
      {"models: [{name: a, base_path: /x, version_policy: {specific: [1]}, "
       "version_labels: {stable: 2}}]",
       "label 'stable' names version 2, which the version policy does not serve (1)"},
      {"model: []", "expected `models:`"},
      {"models: []\nextra: 1", "unknown key 'extra'"},
      {"model_config_list { config { name: 'a' base_path: '/x' bogus: 1 } }", "line 1"},
      {"model_config_list { config { name: 'a' base_path: '/x' model_platform: 'tensorflow' } }",
       "model_platform 'tensorflow'"},
  };
  for (const auto& [text, message] : cases) {
    auto c = ParseServerConfig(text);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(message)) << text;
  }
}

TEST(ModelConfigTest, TrafficAndRollback) {
  const char* kYaml = R"(
models:
  - name: clicks
    base_path: /srv/clicks
    version_labels: {stable: 6, canary: 7}
    traffic:
      split: {stable: 90, canary: 10.5}
      sticky_header: X-User-Id
    rollback:
      canary: canary
      stable: stable
      window_seconds: 30
      min_requests: 50
      max_error_rate_increase: 0.05
      max_p99_latency_ratio: 1.5
      webhook: http://127.0.0.1:9000/alert
  - name: risk
    base_path: /srv/risk
    traffic: {split: {'3': 1, '4': 3}}
    rollback: {canary: '4', stable: '3'}
  - {name: plain, base_path: /srv/plain}
)";
  auto c = ParseServerConfig(kYaml);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->models.size(), 3u);
  const ModelConfig& clicks = c->models[0];
  ASSERT_TRUE(clicks.traffic.has_value());
  EXPECT_EQ(clicks.traffic->split,
            (std::map<std::string, double>{{"canary", 10.5}, {"stable", 90}}));
  EXPECT_EQ(clicks.traffic->sticky_header, "x-user-id");  // lowercased
  ASSERT_TRUE(clicks.rollback.has_value());
  EXPECT_EQ(*clicks.rollback, (RollbackConfig{.canary = "canary",
                                              .stable = "stable",
                                              .window_seconds = 30,
                                              .min_requests = 50,
                                              .max_error_rate_increase = 0.05,
                                              .max_p99_latency_ratio = 1.5,
                                              .webhook = "http://127.0.0.1:9000/alert"}));
  EXPECT_EQ(*SplitKeyVersion(clicks, "canary"), 7);
  EXPECT_EQ(*SplitKeyVersion(clicks, "12"), 12);

  const ModelConfig& risk = c->models[1];
  EXPECT_EQ(risk.traffic->split, (std::map<std::string, double>{{"3", 1}, {"4", 3}}));
  EXPECT_EQ(risk.traffic->sticky_header, "");
  EXPECT_EQ(*risk.rollback, (RollbackConfig{.canary = "4", .stable = "3"}));  // defaults
  EXPECT_EQ(risk.rollback->window_seconds, 60);
  EXPECT_EQ(risk.rollback->min_requests, 100);
  EXPECT_EQ(risk.rollback->max_error_rate_increase, 0.02);
  EXPECT_EQ(risk.rollback->max_p99_latency_ratio, 0);
  EXPECT_FALSE(c->models[2].traffic.has_value());
  EXPECT_FALSE(c->models[2].rollback.has_value());

  // Equality (reload diffs) sees the new sections.
  auto again = ParseServerConfig(kYaml);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*c, *again);
  again->models[0].traffic->split["canary"] = 20;
  EXPECT_NE(*c, *again);
  again = ParseServerConfig(kYaml);
  again->models[1].rollback->min_requests = 7;
  EXPECT_NE(*c, *again);
}

TEST(ModelConfigTest, TrafficErrorsNameModelAndKey) {
  const std::string m =
      "models: [{name: clicks, base_path: /x, version_labels: {stable: 6, "
      "canary: 7}, ";
  const std::pair<std::string, const char*> cases[] = {
      {m + "traffic: {split: {stable: 90, canary: 0}}}]",
       "model 'clicks': traffic split weight of 'canary' must be > 0, not 0"},
      {m + "traffic: {split: {stable: 90, canary: -1}}}]",
       "model 'clicks': traffic split weight of 'canary' must be > 0, not -1"},
      {m + "traffic: {split: {stable: 90, canary: lots}}}]",
       "model 'clicks': traffic split weight of 'canary' is a number"},
      {m + "traffic: {split: {stable: 90, canary: .inf}}}]",
       "traffic split weight of 'canary' is a number"},
      {m + "traffic: {split: {stable: 90, shadow: 10}}}]",
       "model 'clicks': traffic split key 'shadow' is neither a label of the model (canary, "
       "stable) nor a version number"},
      {m + "traffic: {split: {stable: 90, '-3': 10}}}]", "traffic split key '-3' is neither"},
      {m + "traffic: {split: {}}}]", "model 'clicks': traffic split maps labels"},
      {m + "traffic: {sticky_header: x-user}}]", "model 'clicks': traffic needs a split"},
      {m + "traffic: {split: {stable: 1}, sticky_header: 'x user'}}]",
       "sticky_header 'x user' is not a header name"},
      {m + "traffic: {split: {stable: 1}, weights: {}}}]", "unknown traffic key 'weights'"},
      {m + "rollback: {canary: canary, stable: stable}}]",
       "model 'clicks': rollback needs a traffic split"},
      {m + "traffic: {split: {stable: 90, canary: 10}}, rollback: {canary: canary}}]",
       "model 'clicks': rollback needs both canary and stable"},
      {m + "traffic: {split: {stable: 90, '8': 10}}, rollback: {canary: canary, stable: "
           "stable}}]",
       "model 'clicks': rollback canary 'canary' is not a key of the traffic split"},
      {m + "traffic: {split: {stable: 90, canary: 10}}, rollback: {canary: canary, stable: "
           "'6'}}]",
       "model 'clicks': rollback stable '6' is not a key of the traffic split"},
      {m + "traffic: {split: {stable: 90, canary: 10}}, rollback: {canary: canary, stable: "
           "canary}}]",
       "canary and stable are the same key 'canary'"},
      {m + "traffic: {split: {stable: 80, canary: 10, '5': 10}}, rollback: {canary: canary, "
           "stable: stable}}]",
       "needs a traffic split of exactly its canary and stable keys; the split has 3 keys"},
      {m + "traffic: {split: {stable: 9, canary: 1}}, rollback: {canary: canary, stable: "
           "stable, window_seconds: 0}}]",
       "model 'clicks': rollback window_seconds is 1..86400"},
      {m + "traffic: {split: {stable: 9, canary: 1}}, rollback: {canary: canary, stable: "
           "stable, min_requests: 0}}]",
       "rollback min_requests is >= 1"},
      {m + "traffic: {split: {stable: 9, canary: 1}}, rollback: {canary: canary, stable: "
           "stable, max_error_rate_increase: 2}}]",
       "rollback max_error_rate_increase is 0..1"},
      {m + "traffic: {split: {stable: 9, canary: 1}}, rollback: {canary: canary, stable: "
           "stable, max_p99_latency_ratio: 0}}]",
       "rollback max_p99_latency_ratio is > 0"},
      {m + "traffic: {split: {stable: 9, canary: 1}}, rollback: {canary: canary, stable: "
           "stable, webhook: 'https://alerts/x'}}]",
       "model 'clicks': rollback webhook: URL 'https://alerts/x': only http:// URLs"},
      {m + "traffic: {split: {stable: 9, canary: 1}}, rollback: {canary: canary, stable: "
           "stable, window: 5}}]",
       "unknown rollback key 'window'"},
      {"models: [{name: d, base_path: /x, version_policy: {specific: [3]}, traffic: {split: "
       "{'3': 1, '4': 1}}}]",
       "model 'd': traffic split key '4' names version 4, which the version policy does not "
       "serve (3)"},
  };
  for (const auto& [text, message] : cases) {
    auto c = ParseServerConfig(text);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(message)) << text;
  }
}

TEST(VersionPolicyTest, Select) {
  const std::vector<int64_t> found = {7, 1, 3, 12};
  EXPECT_THAT(VersionPolicy{}.Select(found), ElementsAre(12));
  VersionPolicy two;
  two.latest = 2;
  EXPECT_THAT(two.Select(found), ElementsAre(7, 12));
  two.latest = 9;
  EXPECT_THAT(two.Select(found), ElementsAre(1, 3, 7, 12));
  VersionPolicy all{.kind = VersionPolicy::Kind::kAll};
  EXPECT_THAT(all.Select(found), ElementsAre(1, 3, 7, 12));
  VersionPolicy specific{.kind = VersionPolicy::Kind::kSpecific, .versions = {3, 4, 12}};
  EXPECT_THAT(specific.Select(found), ElementsAre(3, 12));
  EXPECT_THAT(VersionPolicy{}.Select({}), ElementsAre());
}

}  // namespace
}  // namespace kiln::serving
