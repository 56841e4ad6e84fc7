#include "kiln/pipeline/runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "kiln/base/str.h"
#include "kiln/metadata/open_store.h"
#include "kiln/pipeline/run_records.h"
#include "kiln/testing/temp_dir.h"
#include "nlohmann/json.hpp"

namespace kiln::pipeline {
namespace {

using kiln::testing::ReadAll;
using kiln::testing::TempDir;
using ::testing::HasSubstr;

// Runs pipelines of `command:` components (shell scripts) against a fresh SQLite store.
class RunnerTest : public ::testing::Test {
 protected:
  Pipeline Load(const std::string& yaml) {
    const std::string file = dir_.Write("pipeline.yaml", yaml);
    auto p = LoadPipeline(Env::Default(), file, &catalog_);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : Pipeline{};
  }

  RunResult Run(const Pipeline& p, int parallel = 2, const std::string& run_id = "") {
    RunOptions o;
    o.metadata_url = StrCat("sqlite:", dir_.File("meta.sqlite"));
    o.catalog = &catalog_;
    o.parallel = parallel;
    o.run_id = run_id;
    o.kill_grace_seconds = 1;
    auto r = RunPipeline(p, o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RunResult{};
  }

  static std::vector<std::string> States(const RunResult& r) {
    std::vector<std::string> out;
    for (const ComponentResult& c : r.components) out.emplace_back(StateName(c.state));
    return out;
  }

  std::unique_ptr<metadata::MetadataStore> Store() {
    auto s = metadata::OpenStore(StrCat("sqlite:", dir_.File("meta.sqlite")));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  TempDir dir_;
  FlagCatalog catalog_;
};

constexpr char kTwoSteps[] = R"(pipeline: two
components:
  - name: make
    kind: command
    command: [sh, make.sh]
    outputs: [data]
  - name: use
    kind: command
    command: [sh, use.sh]
    inputs: {in: make.data}
    outputs: {report: Report}
)";

TEST_F(RunnerTest, RunsInOrderThenReusesEverything) {
  dir_.Write("make.sh", "echo made; echo 42 > \"$KILN_OUTPUT_DATA/n.txt\"\n");
  dir_.Write("use.sh",
             "n=$(cat \"$KILN_INPUT_IN/n.txt\"); echo \"$KILN_COMPONENT $KILN_RUN_ID $n\" > "
             "\"$KILN_OUTPUT_REPORT/r.txt\"\n");
  Pipeline p = Load(kTwoSteps);
  RunResult first = Run(p, 2, "run-1");
  EXPECT_EQ(first.state, "succeeded");
  EXPECT_EQ(first.ExitCode(), 0);
  EXPECT_THAT(States(first), ::testing::ElementsAre("ran", "ran"));
  const std::string run_dir = dir_.File("runs/two/run-1");
  EXPECT_EQ(first.run_dir, run_dir);
  EXPECT_EQ(ReadAll(run_dir + "/make/data/n.txt"), "42\n");
  EXPECT_EQ(ReadAll(run_dir + "/use/report/r.txt"), "use run-1 42\n");
  EXPECT_EQ(first.components[1].outputs.at("report"), run_dir + "/use/report");
  EXPECT_THAT(ReadAll(run_dir + "/make/log.txt"), HasSubstr("\nmade\n"));
  EXPECT_FALSE(std::filesystem::exists(run_dir + "/make/.staging"));
  const std::string recipe = ReadAll(run_dir + "/use/cache_key.txt");
  EXPECT_EQ(recipe.substr(0, 65), first.components[1].cache_key + "\n");
  EXPECT_THAT(recipe, HasSubstr("\ncomponent \"use\"\n"));
  EXPECT_THAT(recipe, HasSubstr("\ninput \"in\" content "));
  EXPECT_THAT(recipe, HasSubstr("\ncommand \"use.sh\" content "));
  EXPECT_EQ(first.components[0].attempts, 1);
  EXPECT_EQ(first.components[0].exit_code, 0);

  auto json = nlohmann::json::parse(ReadAll(run_dir + "/run.json"));
  EXPECT_EQ(json["state"], "succeeded");
  EXPECT_EQ(json["components"][1]["state"], "ran");
  EXPECT_EQ(json["components"][1]["outputs"]["report"], run_dir + "/use/report");

  RunResult second = Run(p, 2, "run-2");
  EXPECT_EQ(second.state, "succeeded");
  EXPECT_THAT(States(second), ::testing::ElementsAre("cached", "cached"));
  EXPECT_EQ(second.components[1].outputs.at("report"), run_dir + "/use/report");
  EXPECT_THAT(second.components[0].note, HasSubstr("of run run-1"));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("runs/two/run-2/make")));

  // Editing the second script re-runs only it, on the first run's data.
  dir_.Write("use.sh",
             "n=$(cat \"$KILN_INPUT_IN/n.txt\"); echo \"v2 $n\" > \"$KILN_OUTPUT_REPORT/r.txt\"\n");
  RunResult third = Run(p, 2, "run-3");
  EXPECT_THAT(States(third), ::testing::ElementsAre("cached", "ran"));
  EXPECT_EQ(ReadAll(dir_.File("runs/two/run-3/use/report/r.txt")), "v2 42\n");

  // Changed outputs are not trusted: the producer runs again, and so does its consumer
  // (its input's content changed back to what the producer writes).
  dir_.Write("runs/two/run-1/make/data/n.txt", "tampered\n");
  RunResult fourth = Run(p, 2, "run-4");
  EXPECT_THAT(States(fourth), ::testing::ElementsAre("ran", "cached"));

  // --no-cache runs everything.
  Pipeline again = p;
  RunOptions o;
  o.metadata_url = StrCat("sqlite:", dir_.File("meta.sqlite"));
  o.catalog = &catalog_;
  o.use_cache = false;
  auto fifth = RunPipeline(again, o);
  ASSERT_TRUE(fifth.ok());
  EXPECT_THAT(States(*fifth), ::testing::ElementsAre("ran", "ran"));
}

TEST_F(RunnerTest, RecordsEveryComponentInThePipelineAndRunContexts) {
  dir_.Write("make.sh", "echo 1 > \"$KILN_OUTPUT_DATA/n.txt\"\n");
  dir_.Write("use.sh", "cp \"$KILN_INPUT_IN/n.txt\" \"$KILN_OUTPUT_REPORT/\"\n");
  Pipeline p = Load(kTwoSteps);
  RunResult first = Run(p, 2, "rec-1");
  RunResult second = Run(p, 2, "rec-2");
  ASSERT_NE(first.run_context_id, 0);
  ASSERT_NE(second.run_context_id, 0);
  EXPECT_EQ(first.pipeline_context_id, second.pipeline_context_id);
  auto store = Store();
  metadata::Query q;
  q.context_id = first.run_context_id;
  auto ran = store->GetExecutions(q);
  ASSERT_TRUE(ran.ok());
  ASSERT_EQ(ran->size(), 2u);
  EXPECT_EQ((*ran)[0].type, "Command");
  EXPECT_EQ((*ran)[0].state, metadata::ExecutionState::kComplete);
  EXPECT_EQ(std::get<std::string>((*ran)[0].custom_properties.at("component")), "make");
  EXPECT_EQ(std::get<std::string>((*ran)[1].custom_properties.at(kCacheKeyProperty)),
            first.components[1].cache_key);
  // use's execution read make's output artifact.
  auto events = store->GetEventsByExecutionIds({(*ran)[1].id});
  ASSERT_TRUE(events.ok());
  int inputs = 0;
  for (const auto& e : *events) {
    if (e.type != metadata::EventType::kInput) continue;
    ++inputs;
    auto a = store->GetArtifact(e.artifact_id);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->uri, first.components[0].outputs.at("data"));
    EXPECT_EQ(a->type, "Artifact");
  }
  EXPECT_EQ(inputs, 1);

  q.context_id = second.run_context_id;
  auto cached = store->GetExecutions(q);
  ASSERT_TRUE(cached.ok());
  ASSERT_EQ(cached->size(), 2u);
  EXPECT_EQ((*cached)[0].state, metadata::ExecutionState::kCached);
  EXPECT_EQ(std::get<int64_t>((*cached)[0].custom_properties.at(kCachedFromProperty)),
            (*ran)[0].id);
  q.context_id = first.pipeline_context_id;
  EXPECT_EQ(store->GetExecutions(q)->size(), 4u);
}

TEST_F(RunnerTest, RetriesRetryableFailuresWithBackoff) {
  // Exit 75 on the first attempt, succeed on the second.
  dir_.Write("flaky.sh",
             "echo attempt $KILN_ATTEMPT\nif [ \"$KILN_ATTEMPT\" = 1 ]; then exit 75; fi\n"
             "echo ok > \"$KILN_OUTPUT_OUT/x\"\n");
  Pipeline p = Load(R"(pipeline: flaky
components:
  - {name: f, kind: command, command: [sh, flaky.sh], outputs: [out], retries: 2,
     retry_backoff_seconds: 0.05}
)");
  RunResult r = Run(p);
  EXPECT_EQ(r.state, "succeeded");
  ASSERT_EQ(r.components.size(), 1u);
  EXPECT_EQ(r.components[0].state, ComponentState::kRan);
  EXPECT_EQ(r.components[0].attempts, 2);
  const std::string log = ReadAll(r.components[0].log);
  EXPECT_THAT(log, HasSubstr("attempt 1\n"));
  EXPECT_THAT(log, HasSubstr("=== kiln run: exit 75 after"));
  EXPECT_THAT(log, HasSubstr("=== kiln run: retryable; attempt 2 in 0.05 s"));
  EXPECT_THAT(log, HasSubstr("attempt 2\n"));
  EXPECT_EQ(ReadAll(r.components[0].outputs.at("out") + "/x"), "ok\n");
}

TEST_F(RunnerTest, RetriesRunOutThenTheComponentFails) {
  dir_.Write("down.sh", "exit 75\n");
  Pipeline p = Load(R"(pipeline: down
components:
  - {name: f, kind: command, command: [sh, down.sh], retries: 1, retry_backoff_seconds: 0}
)");
  RunResult r = Run(p);
  EXPECT_EQ(r.state, "failed");
  EXPECT_EQ(r.ExitCode(), 1);
  EXPECT_EQ(r.components[0].attempts, 2);
  EXPECT_THAT(r.components[0].note, HasSubstr("exit 75 (2 attempts)"));
}

TEST_F(RunnerTest, NonRetryableFailureSkipsDownstreamOnly) {
  dir_.Write("bad.sh", "echo broken >&2; exit 2\n");
  dir_.Write("ok.sh", "true\n");
  Pipeline p = Load(R"(pipeline: fail
components:
  - {name: bad, kind: command, command: [sh, bad.sh], outputs: [o], retries: 3}
  - {name: after_bad, kind: command, command: [sh, ok.sh], inputs: {x: bad.o}}
  - {name: independent, kind: command, command: [sh, ok.sh]}
)");
  RunResult r = Run(p, 1);
  EXPECT_EQ(r.state, "failed");
  EXPECT_THAT(States(r), ::testing::ElementsAre("failed", "skipped", "ran"));
  EXPECT_EQ(r.components[0].attempts, 1);  // exit 2 is never retried
  EXPECT_EQ(r.components[0].exit_code, 2);
  EXPECT_THAT(r.components[0].note, HasSubstr("exit 2: bad usage or input; see "));
  EXPECT_EQ(r.components[1].note, "bad failed");
  EXPECT_THAT(ReadAll(r.components[0].log), HasSubstr("broken\n"));
  // Recorded as failed, never reused.
  auto store = Store();
  metadata::Query q;
  q.type = "Command";
  auto all = store->GetExecutions(q);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].state, metadata::ExecutionState::kFailed);
  EXPECT_FALSE((*all)[0].custom_properties.count(kCacheKeyProperty));
}

TEST_F(RunnerTest, FindingsStopTheRunUnlessToldToContinue) {
  dir_.Write("check.sh", "echo 'ERROR anomaly' > \"$KILN_OUTPUT_REPORT/a.txt\"; exit 3\n");
  dir_.Write("ok.sh", "true\n");
  const std::string yaml = R"(pipeline: gate
components:
  - {name: check, kind: command, command: [sh, check.sh], outputs: [report]%s}
  - {name: train, kind: command, command: [sh, ok.sh], after: [check]}
)";
  std::string stop = yaml;
  stop.replace(stop.find("%s"), 2, "");
  RunResult r = Run(Load(stop));
  EXPECT_EQ(r.state, "stopped");
  EXPECT_EQ(r.stopped_by, "check");
  EXPECT_EQ(r.ExitCode(), 3);
  EXPECT_THAT(States(r), ::testing::ElementsAre("ran", "skipped"));
  EXPECT_TRUE(r.components[0].findings);
  EXPECT_EQ(r.components[1].note, "the run stopped at check");
  // The findings are cached like any result: the same data stops the run again.
  RunResult again = Run(Load(stop));
  EXPECT_EQ(again.state, "stopped");
  EXPECT_THAT(States(again), ::testing::ElementsAre("cached", "skipped"));

  std::string go_on = yaml;
  go_on.replace(go_on.find("%s"), 2, ", on_findings: continue");
  RunResult c = Run(Load(go_on));
  EXPECT_EQ(c.state, "succeeded");
  EXPECT_THAT(States(c), ::testing::ElementsAre("cached", "ran"));
  EXPECT_TRUE(c.components[0].findings);
}

TEST_F(RunnerTest, IndependentComponentsRunAtTheSameTime) {
  // Each waits (up to 20 s) for the other's marker: both finish only if they overlap.
  dir_.Write("meet.sh",
             "touch \"$KILN_RUN_DIR/$1\"; i=0; while [ ! -e \"$KILN_RUN_DIR/$2\" ]; do "
             "i=$((i+1)); [ $i -gt 2000 ] && exit 1; sleep 0.01; done\n");
  Pipeline p = Load(R"(pipeline: par
components:
  - {name: a, kind: command, command: [sh, meet.sh, a, b]}
  - {name: b, kind: command, command: [sh, meet.sh, b, a]}
)");
  RunResult r = Run(p, 2);
  EXPECT_EQ(r.state, "succeeded");
  EXPECT_THAT(States(r), ::testing::ElementsAre("ran", "ran"));
}

TEST_F(RunnerTest, TimeoutKillsTheProcessGroup) {
  dir_.Write("slow.sh", "sleep 30 & wait\n");
  Pipeline p = Load(R"(pipeline: slow
components:
  - {name: s, kind: command, command: [sh, slow.sh], timeout_seconds: 0.2}
)");
  const auto t0 = std::chrono::steady_clock::now();
  RunResult r = Run(p);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(r.state, "failed");
  EXPECT_THAT(r.components[0].note, HasSubstr("timed out after 0.2 s"));
}

TEST_F(RunnerTest, MissingExecutableFailsTheComponent) {
  Pipeline p = Load(R"(pipeline: nope
components:
  - {name: n, kind: command, command: [./no-such-script.sh]}
)");
  RunResult r = Run(p);
  EXPECT_EQ(r.state, "failed");
  EXPECT_THAT(r.components[0].note, HasSubstr("is not an executable file"));
}

TEST_F(RunnerTest, BadRunIdIsRejected) {
  Pipeline p = Load("pipeline: p\ncomponents:\n  - {name: a, kind: command, command: [true]}\n");
  RunOptions o;
  o.catalog = &catalog_;
  o.metadata_url = StrCat("sqlite:", dir_.File("meta.sqlite"));
  o.run_id = "../escape";
  EXPECT_EQ(RunPipeline(p, o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RunnerTest, SummaryTableAlignsColumns) {
  RunResult r;
  r.components = {{.name = "import",
                   .kind = "import",
                   .state = ComponentState::kRan,
                   .seconds = 1.234,
                   .attempts = 1},
                  {.name = "t",
                   .kind = "train",
                   .state = ComponentState::kSkipped,
                   .note = "the run stopped at v"}};
  EXPECT_EQ(SummaryTable(r),
            "component  kind    state    seconds  attempts  note\n"
            "import     import  ran         1.23         1\n"
            "t          train   skipped        -         0  the run stopped at v\n");
}

}  // namespace
}  // namespace kiln::pipeline
