#include "kiln/metadata/recorder.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/build_info.h"
#include "kiln/metadata/open_store.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::metadata {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = OpenStore("sqlite:" + dir_.File("m.sqlite"));
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  kiln::testing::TempDir dir_;
  std::unique_ptr<MetadataStore> store_;
};

TEST_F(RecorderTest, RecordsExecutionWithProvenanceContextsAndTypedOutputs) {
  Recorder rec(store_.get());
  Artifact raw{.type = "RawData", .uri = "/data/span-3"};
  raw.properties = {{"span", int64_t{3}}};
  auto raw_id = rec.RegisterExternal(raw);
  ASSERT_TRUE(raw_id.ok()) << raw_id.status();
  // Registering the same data again finds the same node.
  EXPECT_EQ(*rec.RegisterExternal(raw), *raw_id);
  raw.properties["span"] = int64_t{4};
  EXPECT_NE(*rec.RegisterExternal(raw), *raw_id);

  ExecutionRecord r;
  r.type = "Import";
  r.pipeline = "ctr";
  r.run = "2026-11-25";
  r.parameters = {{"split", std::string("2:1")}};
  r.inputs = {{"data", *raw_id}};
  Artifact ex{.type = "Examples", .uri = "/ds"};
  ex.properties = {{"fingerprint", std::string("sha256:00")}, {"rows", int64_t{10}}};
  Artifact stats{.type = "Statistics", .uri = "/stats"};
  r.outputs = {{"examples", ex}, {"statistics", stats}};
  auto done = rec.Record(r);
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->output_ids.size(), 2u);

  auto e = store_->GetExecution(done->execution_id);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->type, "Import");
  EXPECT_EQ(e->state, ExecutionState::kComplete);
  EXPECT_EQ(e->custom_properties.at("split"), Value(std::string("2:1")));
  EXPECT_EQ(e->custom_properties.at("kiln_version"), Value(std::string(KilnVersion())));
  EXPECT_EQ(e->custom_properties.at("git_sha"), Value(std::string(GitSha())));
  EXPECT_TRUE(e->custom_properties.count("env.host"));
  EXPECT_TRUE(e->custom_properties.count("env.os"));

  // Output properties became the type's declared properties.
  auto type = store_->GetType(TypeKind::kArtifact, "Examples");
  ASSERT_TRUE(type.ok());
  EXPECT_EQ(type->properties.at("fingerprint"), PropertyType::kString);
  EXPECT_EQ(type->properties.at("rows"), PropertyType::kInt);
  auto examples = store_->GetArtifact(done->output_ids[0]);
  EXPECT_EQ(examples->properties.at("rows"), Value(int64_t{10}));

  auto contexts = store_->GetContextsOfExecution(done->execution_id);
  ASSERT_TRUE(contexts.ok());
  std::vector<std::string> names;
  for (const Context& c : *contexts) names.push_back(c.type + ":" + c.name);
  EXPECT_THAT(names,
              ElementsAre("pipeline:ctr", "component:ctr.Import", "pipeline_run:2026-11-25"));

  auto events = store_->GetEventsByExecutionIds({done->execution_id});
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].path, "data");
  EXPECT_EQ((*events)[0].type, EventType::kInput);
  EXPECT_EQ((*events)[2].path, "statistics");

  // A later type change of a property is refused with the first-recorded type named.
  ex.properties["rows"] = 10.5;
  r.outputs = {{"examples", ex}};
  auto bad = rec.Record(r);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("'rows' was first recorded as INT"));

  // New properties extend the type.
  ex.properties["rows"] = int64_t{11};
  ex.properties["span"] = int64_t{3};
  r.outputs = {{"examples", ex}};
  auto extended = rec.Record(r);
  ASSERT_TRUE(extended.ok()) << extended.status();
  EXPECT_EQ(store_->GetType(TypeKind::kArtifact, "Examples")->properties.size(), 3u);
}

TEST_F(RecorderTest, Errors) {
  Recorder rec(store_.get());
  ExecutionRecord r;
  EXPECT_EQ(rec.Record(r).status().code(), absl::StatusCode::kInvalidArgument);
  r.type = "Trainer";
  r.inputs = {{"examples", 12345}};
  EXPECT_EQ(rec.Record(r).status().code(), absl::StatusCode::kNotFound);
  r.inputs.clear();
  r.run = "r1";
  EXPECT_THAT(rec.Record(r).status().message(), HasSubstr("needs a pipeline"));
  EXPECT_TRUE(store_->GetExecutions()->empty());
}

}  // namespace
}  // namespace kiln::metadata
