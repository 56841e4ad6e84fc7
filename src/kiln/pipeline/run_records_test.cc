#include "kiln/pipeline/run_records.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "kiln/base/str.h"
#include "kiln/metadata/open_store.h"
#include "kiln/metadata/recorder.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::pipeline {
namespace {

namespace md = metadata;
using kiln::testing::TempDir;

// What a kiln command run by the runner does: record its own execution, outputs in the
// component's staging directory.
class RunRecordsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = StrCat("sqlite:", dir_.File("meta.sqlite"));
    auto store = md::OpenStore(url_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  int64_t CommandRecords(const std::string& type, const std::string& output_uri,
                         const std::vector<std::pair<std::string, int64_t>>& inputs = {}) {
    md::Recorder recorder(store_.get());
    md::ExecutionRecord r;
    r.type = type;
    r.parameters = {{"model.num_rounds", int64_t{5}}};
    r.inputs = inputs;
    if (!output_uri.empty()) {
      md::Artifact a{.type = "Model", .uri = output_uri};
      a.properties = {{"model_type", std::string("gbdt")}};
      r.outputs = {{"model", a}};
    }
    auto rec = recorder.Record(r);
    EXPECT_TRUE(rec.ok()) << rec.status();
    return rec.ok() ? rec->execution_id : 0;
  }

  TempDir dir_;
  std::string url_;
  std::unique_ptr<md::MetadataStore> store_;
};

TEST_F(RunRecordsTest, CompletesTheCommandsOwnRecord) {
  auto records = RunRecords::Open(url_, "p", "run-1");
  ASSERT_TRUE(records.ok()) << records.status();
  const int64_t own = CommandRecords("Trainer", "/runs/run-1/train/.staging/out");
  // Another Trainer execution, not ours (outside our staging directory).
  CommandRecords("Trainer", "/elsewhere/model");

  RunRecords::Completion c;
  c.component = "train";
  c.execution_type = "Trainer";
  c.cache_key = "k1";
  c.attempts = 2;
  c.started_ms = 0;
  c.adopt = true;
  c.staging_root = "/runs/run-1/train/.staging";
  c.outputs = {{"out", "Model", "/runs/run-1/train/.staging/out", "/runs/run-1/train/out", "fp"}};
  auto id = (*records)->RecordCompleted(c);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, own);  // the same execution: one record per component

  auto e = store_->GetExecution(own);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(std::get<int64_t>(e->custom_properties.at("model.num_rounds")), 5);  // its own
  EXPECT_EQ(std::get<std::string>(e->custom_properties.at(kCacheKeyProperty)), "k1");
  EXPECT_EQ(std::get<int64_t>(e->custom_properties.at("attempts")), 2);
  EXPECT_EQ(std::get<std::string>(e->custom_properties.at("output.out")), "/runs/run-1/train/out");
  md::Query q;
  q.type = "Model";
  auto models = store_->GetArtifacts(q);
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[0].uri, "/runs/run-1/train/out");  // moved out of staging
  EXPECT_EQ(std::get<std::string>((*models)[0].properties.at("model_type")), "gbdt");
  EXPECT_EQ(std::get<std::string>((*models)[0].custom_properties.at("content_fingerprint")), "fp");
  auto contexts = store_->GetContextsOfExecution(own);
  ASSERT_TRUE(contexts.ok());
  std::vector<std::string> names;
  for (const auto& ctx : *contexts) names.push_back(StrCat(ctx.type, ":", ctx.name));
  std::sort(names.begin(), names.end());
  EXPECT_THAT(names,
              ::testing::ElementsAre("component:p.train", "pipeline:p", "pipeline_run:run-1"));

  // Found by its key, verified by the caller's check of each output.
  auto hit =
      (*records)->FindCached("k1", {"out"}, [](const std::string& uri, const std::string& fp) {
        return uri == "/runs/run-1/train/out" && fp == "fp";
      });
  ASSERT_TRUE(hit.ok());
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ((*hit)->execution_id, own);
  EXPECT_EQ((*hit)->run, "run-1");
  auto stale = (*records)->FindCached("k1", {"out"},
                                      [](const std::string&, const std::string&) { return false; });
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->has_value());
  auto other_key = (*records)->FindCached(
      "k2", {"out"}, [](const std::string&, const std::string&) { return true; });
  ASSERT_TRUE(other_key.ok());
  EXPECT_FALSE(other_key->has_value());
}

TEST_F(RunRecordsTest, CommandWithoutOutputsIsFoundByWhatItRead) {
  auto records = RunRecords::Open(url_, "p", "run-1");
  ASSERT_TRUE(records.ok());
  md::Recorder recorder(store_.get());
  auto model = recorder.RegisterExternal({.type = "Model", .uri = "/runs/run-1/train/out"});
  ASSERT_TRUE(model.ok());
  const int64_t push = CommandRecords("Pusher", "", {{"model", *model}});
  RunRecords::Completion c;
  c.component = "push";
  c.execution_type = "Pusher";
  c.cache_key = "kp";
  c.adopt = true;
  c.staging_root = "/runs/run-1/push/.staging";
  c.inputs = {{"model", "/runs/run-1/train/out", "Model"}};
  auto id = (*records)->RecordCompleted(c);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, push);
}

TEST_F(RunRecordsTest, RecordsItselfWhenTheCommandRecordedNothing) {
  auto records = RunRecords::Open(url_, "p", "run-1");
  ASSERT_TRUE(records.ok());
  RunRecords::Completion c;
  c.component = "evaluate";
  c.execution_type = "Evaluator";
  c.cache_key = "ke";
  c.exit_code = 3;
  c.adopt = true;  // it could have, but did not
  c.staging_root = "/runs/run-1/evaluate/.staging";
  c.parameters = {{"arg.config", std::string("eval.yaml")}};
  c.outputs = {{"out", "ModelBlessing", "/s", "/runs/run-1/evaluate/out", "fpe"}};
  auto id = (*records)->RecordCompleted(c);
  ASSERT_TRUE(id.ok()) << id.status();
  auto e = store_->GetExecution(*id);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->type, "Evaluator");
  EXPECT_EQ(std::get<int64_t>(e->custom_properties.at("exit_code")), 3);
  EXPECT_EQ(std::get<std::string>(e->custom_properties.at("arg.config")), "eval.yaml");
  auto hit = (*records)->FindCached("ke", {"out"},
                                    [](const std::string&, const std::string&) { return true; });
  ASSERT_TRUE(hit.ok() && hit->has_value());
  EXPECT_EQ((*hit)->exit_code, 3);
  EXPECT_EQ((*hit)->outputs.at("out").uri, "/runs/run-1/evaluate/out");

  // Failures are recorded but never found by the cache.
  c.cache_key = "kf";
  auto failed = (*records)->RecordFailed(c, "exit 1");
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(store_->GetExecution(*failed)->state, md::ExecutionState::kFailed);
  auto none =
      (*records)->FindCached("kf", {}, [](const std::string&, const std::string&) { return true; });
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto ids = (*records)->ContextIds();
  EXPECT_NE(ids.first, 0);
  EXPECT_NE(ids.second, 0);
}

}  // namespace
}  // namespace kiln::pipeline
