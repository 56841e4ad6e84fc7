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
