// The model manager on real bundles (gbdt, trained here in milliseconds): version policies,
// availability-preserving transitions, load failures, labels, polling.
#include "kiln/serving/manager.h"

#include <filesystem>
#include <fstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/model/push.h"
#include "kiln/testing/temp_dir.h"
#include "kiln/train/trainer.h"

namespace kiln::serving {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // y = 1 exactly when x > 5: every version learns it; `bias` shifts the data so that
    // versions differ in what they predict.
    std::string csv = "x,y\n";
    for (int i = 0; i < 200; ++i) csv += StrCat(i % 11, ",", i % 11 > 5 ? 1 : 0, "\n");
    data_ = tmp_.Write("data.csv", csv);
    base_ = tmp_.File("models/clicks");
  }

  // Trains version `v` into the base path with `rounds` boosting rounds.
  void Publish(int64_t v, int rounds = 3) {
    train::TrainRequest req;
    req.data = data_;
    req.config.label = "y";
    req.config.model_type = "gbdt";
    req.config.model_params = {{"type", "gbdt"}, {"num_rounds", rounds}};
    req.config.checkpoint_every = 0;
    req.out_dir = JoinPath(base_, StrCat(v));
    auto r = train::Train(Env::Default(), req);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  ServerConfig Config(VersionPolicy policy = {}, std::map<std::string, int64_t> labels = {}) {
    ServerConfig c;
    c.models.push_back({"clicks", base_, std::move(policy), std::move(labels)});
    return c;
  }

  static std::vector<std::pair<int64_t, VersionState>> States(const ModelManager& m) {
    std::vector<std::pair<int64_t, VersionState>> out;
    auto status = m.Status("clicks");
    EXPECT_TRUE(status.ok());
    if (!status.ok()) return out;
    for (const VersionStatus& s : *status) out.emplace_back(s.version, s.state);
    return out;
  }

  kiln::testing::TempDir tmp_;
  std::string data_, base_;
};

TEST_F(ManagerTest, ServesTheLatestVersionAndSwapsWhenANewOneAppears) {
  Publish(1);
  Publish(2);
  std::filesystem::create_directories(base_ + "/3.kiln-staging-99");  // ignored
  std::filesystem::create_directories(base_ + "/4");                  // no manifest: ignored
  ModelManager m(Env::Default());
  m.SetConfig(Config());
  EXPECT_THAT(model::ScanVersions(base_), ElementsAre(1, 2));
  auto v2 = m.Find("clicks");
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ((*v2)->warmup_rows(), 10u);  // loading ran the warm-up rows
  EXPECT_TRUE(absl::IsNotFound(m.Find("clicks", 1).status()));
  EXPECT_THAT(States(m), ElementsAre(std::pair{int64_t{2}, VersionState::kAvailable}));

  Publish(5);
  m.Poll();
  auto v5 = m.Find("clicks");
  ASSERT_TRUE(v5.ok());
  EXPECT_NE(v5->get(), v2->get());
  EXPECT_TRUE(m.Find("clicks", 5).ok());
  EXPECT_TRUE(absl::IsNotFound(m.Find("clicks", 2).status()));
  EXPECT_THAT(States(m), ElementsAre(std::pair{int64_t{2}, VersionState::kEnd},
                                     std::pair{int64_t{5}, VersionState::kAvailable}));
  // A request that still holds version 2 can finish with it.
  data::Batch batch;
  data::Column x;
  x.name = "x";
  x.type = data::ValueType::kInt;
  x.AddInt(9);
  batch.columns.push_back(x);
  batch.num_rows = 1;
  std::vector<float> scores;
  ASSERT_TRUE((*v2)->Predict(batch, &scores).ok());
  EXPECT_GT(scores[0], 0.5f);
}

TEST_F(ManagerTest, AFailedNewVersionLeavesTheServedOneAndShowsItsError) {
  Publish(1);
  ModelManager m(Env::Default());
  m.SetConfig(Config());
  auto v1 = m.Find("clicks");
  ASSERT_TRUE(v1.ok());
  Publish(2);
  // Version 2's weights changed after publication: its checksum no longer matches.
  {
    std::fstream f(base_ + "/2/model/xgboost.json", std::ios::in | std::ios::out);
    f.seekp(50);
    f.put('#');
  }
  m.Poll();
  auto now = m.Find("clicks");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->get(), v1->get());  // still version 1
  auto status = m.Status("clicks");
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 2u);
  EXPECT_EQ((*status)[0].state, VersionState::kAvailable);
  EXPECT_EQ((*status)[1].state, VersionState::kEnd);
  EXPECT_EQ((*status)[1].error.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string((*status)[1].error.message()), HasSubstr("SHA-256"));

  // Not retried while the bundle is unchanged; a republished version 2 loads.
  m.Poll();
  EXPECT_EQ(m.Find("clicks")->get(), v1->get());
  std::filesystem::remove_all(base_ + "/2");
  Publish(2);
  m.Poll();
  EXPECT_TRUE(m.Find("clicks", 2).ok());
  EXPECT_TRUE(absl::IsNotFound(m.Find("clicks", 1).status()));
}

TEST_F(ManagerTest, PoliciesLabelsAndUnknownNames) {
  Publish(1);
  Publish(2);
  Publish(3);
  ModelManager m(Env::Default());
  m.SetConfig(Config({.kind = VersionPolicy::Kind::kSpecific, .versions = {1, 3, 4}},
                     {{"stable", 1}, {"canary", 3}}));
  EXPECT_TRUE(m.Find("clicks", 1).ok());
  EXPECT_TRUE(absl::IsNotFound(m.Find("clicks", 2).status()));
  EXPECT_EQ(m.Find("clicks", std::nullopt, "stable")->get(), m.Find("clicks", 1)->get());
  EXPECT_EQ(m.Find("clicks", std::nullopt, "canary")->get(), m.Find("clicks", 3)->get());
  EXPECT_EQ(m.Find("clicks")->get(), m.Find("clicks", 3)->get());  // highest available
  EXPECT_THAT(std::string(m.Find("clicks", std::nullopt, "beta").status().message()),
              HasSubstr("has no label 'beta'"));
  EXPECT_TRUE(absl::IsNotFound(m.Find("other").status()));
  auto status = m.Status("clicks");
  ASSERT_EQ(status->size(), 3u);
  EXPECT_EQ((*status)[2].version, 4);
  EXPECT_EQ((*status)[2].state, VersionState::kStart);
  EXPECT_THAT(std::string((*status)[2].error.message()), HasSubstr("no version 4 under"));

  // All versions; then the model leaves the configuration.
  m.SetConfig(Config({.kind = VersionPolicy::Kind::kAll}));
  for (int64_t v : {1, 2, 3}) EXPECT_TRUE(m.Find("clicks", v).ok()) << v;
  m.SetConfig(ServerConfig{});
  EXPECT_TRUE(absl::IsNotFound(m.Find("clicks").status()));
  EXPECT_TRUE(m.Models().empty());
}

TEST_F(ManagerTest, EmptyBasePathIsUnavailableUntilAVersionAppearsWhilePolling) {
  ModelManager m(Env::Default());
  m.SetConfig(Config());
  EXPECT_TRUE(absl::IsUnavailable(m.Find("clicks").status()));
  m.StartPolling(std::chrono::milliseconds(20));
  Publish(1);
  bool ready = false;
  for (int i = 0; i < 250 && !ready; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ready = m.Find("clicks").ok();
  }
  m.Stop();
  EXPECT_TRUE(ready);
}

}  // namespace
}  // namespace kiln::serving
