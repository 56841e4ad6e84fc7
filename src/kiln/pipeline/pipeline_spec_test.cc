#include "kiln/pipeline/pipeline_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kiln/base/str.h"

namespace kiln::pipeline {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The flags of a few commands, as `kiln run` reads them from the real parser.
const FlagCatalog& Catalog() {
  static const FlagCatalog* const c = new FlagCatalog{
      {"import",
       {{{"out", true},
         {"splits", true},
         {"overwrite", false},
         {"metadata", true},
         {"no-metadata", false},
         {"null-tokens", true}}}},
      {"stats", {{{"out", true}, {"schema", true}, {"metadata", true}}}},
      {"schema", {{{"out", true}, {"stats", true}, {"split", true}, {"metadata", true}}}},
      {"validate", {{{"out", true}, {"schema", true}, {"previous", true}, {"metadata", true}}}},
      {"train",
       {{{"out", true},
         {"config", true},
         {"data", true},
         {"eval-data", true},
         {"checkpoint-dir", true},
         {"metadata", true}}}},
      {"push", {{{"model", true}, {"to", true}, {"blessing", true}, {"force", false}}}},
  };
  return *c;
}

absl::StatusOr<Pipeline> Parse(std::string_view yaml) {
  return ParsePipeline(yaml, "/work/p/pipeline.yaml", &Catalog());
}

std::string Error(std::string_view yaml) {
  auto p = Parse(yaml);
  EXPECT_FALSE(p.ok()) << "parsed: " << yaml;
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(p.status().message());
}

constexpr char kGood[] = R"(pipeline: clicks
root: runs/clicks
metadata: sqlite:runs/meta.sqlite
components:
  - name: import
    kind: import
    args: {data: "data/span-{SPAN}/x.csv", splits: "train:8,eval:2", overwrite: false}
  - name: stats
    kind: stats
    inputs: {data: import.out}
  - name: schema
    kind: schema
    inputs: {stats: stats}
    args: {split: train}
  - name: validate
    kind: validate
    inputs: {data: stats.out, schema: schema.out}
    on_findings: continue
  - name: train
    kind: train
    inputs: {data: import.out}
    args: {config: train.yaml, eval-data: data/eval.csv}
    after: [validate]
    retries: 2
    retry_backoff_seconds: 0.5
    timeout_seconds: 60
  - name: mine
    kind: command
    command: [python3, mine.py, --fast]
    inputs: {data: import.out}
    outputs: {model: Model, report: Report}
    env: {SEED: "7"}
    cache: false
)";

TEST(PipelineSpecTest, ParsesEveryField) {
  auto p = Parse(kGood);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "clicks");
  EXPECT_EQ(p->dir, "/work/p");
  EXPECT_EQ(p->root, "/work/p/runs/clicks");
  EXPECT_EQ(p->metadata, "sqlite:/work/p/runs/meta.sqlite");
  ASSERT_EQ(p->components.size(), 6u);
  const Component& import = p->components[0];
  EXPECT_EQ(import.line, 5);
  EXPECT_THAT(import.args.at("data").values, ElementsAre("data/span-{SPAN}/x.csv"));
  EXPECT_TRUE(import.args.at("overwrite").is_flag);
  EXPECT_THAT(import.args.at("overwrite").values, ElementsAre("false"));
  ASSERT_EQ(import.outputs.size(), 1u);
  EXPECT_EQ(import.outputs[0].name, "out");
  EXPECT_EQ(import.outputs[0].artifact_type, "Examples");

  const Component& schema = p->components[2];
  ASSERT_EQ(schema.inputs.size(), 1u);
  EXPECT_EQ(schema.inputs[0].component, "stats");
  EXPECT_EQ(schema.inputs[0].output, "");  // the only output

  const Component& validate = p->components[3];
  EXPECT_EQ(validate.on_findings, OnFindings::kContinue);
  ASSERT_EQ(validate.inputs.size(), 2u);
  EXPECT_EQ(validate.inputs[0].name, "data");  // sorted by name
  EXPECT_EQ(validate.inputs[1].name, "schema");

  const Component& train = p->components[4];
  EXPECT_EQ(train.retries, 2);
  EXPECT_DOUBLE_EQ(train.retry_backoff_seconds, 0.5);
  EXPECT_DOUBLE_EQ(train.timeout_seconds, 60);
  EXPECT_THAT(train.after, ElementsAre("validate"));
  EXPECT_TRUE(train.args.count("eval_data"));  // dashes and underscores are one key

  const Component& mine = p->components[5];
  EXPECT_THAT(mine.command, ElementsAre("python3", "mine.py", "--fast"));
  ASSERT_EQ(mine.outputs.size(), 2u);
  EXPECT_EQ(mine.outputs[0].name, "model");
  EXPECT_EQ(mine.outputs[0].artifact_type, "Model");
  EXPECT_EQ(mine.env.at("SEED"), "7");
  EXPECT_FALSE(mine.cache);
}

TEST(PipelineSpecTest, DefaultsRootAndLeavesMetadataEmpty) {
  auto p = Parse("pipeline: p\ncomponents:\n  - {name: a, kind: command, command: [true]}\n");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->root, "/work/p/runs/p");
  EXPECT_EQ(p->metadata, "");
  const Component& a = p->components[0];
  EXPECT_EQ(a.retries, 0);
  EXPECT_DOUBLE_EQ(a.retry_backoff_seconds, 1);
  EXPECT_EQ(a.on_findings, OnFindings::kStop);
  EXPECT_TRUE(a.cache);
  EXPECT_TRUE(a.outputs.empty());
}

TEST(PipelineSpecTest, DagOrderAndParallelGroups) {
  auto p = Parse(kGood);
  ASSERT_TRUE(p.ok()) << p.status();
  // Whenever several are ready, the first in the file goes first.
  EXPECT_THAT(p->dag.order, ElementsAre(0, 1, 2, 3, 4, 5));
  ASSERT_EQ(p->dag.levels.size(), 5u);
  EXPECT_THAT(p->dag.levels[0], ElementsAre(0));
  EXPECT_THAT(p->dag.levels[1], ElementsAre(1, 5));
  EXPECT_THAT(p->dag.levels[2], ElementsAre(2));
  EXPECT_THAT(p->dag.levels[3], ElementsAre(3));
  EXPECT_THAT(p->dag.levels[4], ElementsAre(4));
  EXPECT_THAT(p->dag.upstream[3], ElementsAre(1, 2));
  EXPECT_THAT(p->dag.upstream[4], ElementsAre(0, 3));
  EXPECT_THAT(p->dag.downstream[0], ElementsAre(1, 4, 5));
}

TEST(PipelineSpecTest, IndependentComponentsShareALevelInFileOrder) {
  auto p = Parse(R"(pipeline: p
components:
  - {name: c, kind: command, command: [true], inputs: {x: a.o}}
  - {name: a, kind: command, command: [true], outputs: [o]}
  - {name: b, kind: command, command: [true], outputs: [o]}
  - {name: d, kind: command, command: [true], inputs: {x: a.o, y: b.o}}
)");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->dag.order, ElementsAre(1, 0, 2, 3));
  ASSERT_EQ(p->dag.levels.size(), 2u);
  EXPECT_THAT(p->dag.levels[0], ElementsAre(1, 2));
  EXPECT_THAT(p->dag.levels[1], ElementsAre(0, 3));
}

TEST(PipelineSpecTest, CycleIsAnErrorNamingItsComponents) {
  const std::string e = Error(R"(pipeline: p
components:
  - {name: a, kind: command, command: [true], outputs: [o], inputs: {x: c.o}}
  - {name: b, kind: command, command: [true], outputs: [o], inputs: {x: a.o}}
  - {name: c, kind: command, command: [true], outputs: [o], after: [b]}
)");
  EXPECT_THAT(e, HasSubstr("/work/p/pipeline.yaml:3:"));
  EXPECT_THAT(e, HasSubstr("components form a cycle: a -> b -> c -> a"));
}

TEST(PipelineSpecTest, TwoComponentCycleThroughAfter) {
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: a, kind: command, command: [true], after: [b]}
  - {name: b, kind: command, command: [true], after: [a]}
)"),
              HasSubstr("cycle: a -> b -> a"));
}

TEST(PipelineSpecTest, ReferenceErrorsNameTheLine) {
  EXPECT_EQ(Error(R"(pipeline: p
components:
  - name: a
    kind: command
    command: [true]
    inputs: {x: nope.out}
)"),
            "/work/p/pipeline.yaml:6: component 'a': input 'x' names unknown component 'nope'");
  EXPECT_EQ(Error(R"(pipeline: p
components:
  - {name: a, kind: command, command: [true], outputs: [o]}
  - name: b
    kind: command
    command: [true]
    inputs:
      x: a.other
)"),
            "/work/p/pipeline.yaml:8: component 'b': input 'x': component 'a' has no output "
            "'other'; outputs: o");
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: a, kind: command, command: [true], outputs: [o, p]}
  - {name: b, kind: command, command: [true], inputs: {x: a}}
)"),
              HasSubstr("input 'x': name one of a's outputs (o, p) as a.OUTPUT"));
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: a, kind: command, command: [true], inputs: {x: data/file.csv}}
)"),
              HasSubstr("is not a reference COMPONENT.OUTPUT (a file path belongs under args:)"));
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: a, kind: command, command: [true], after: [zz]}
)"),
              HasSubstr("component 'a': after: unknown component 'zz'"));
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: a, kind: command, command: [true], outputs: [o], inputs: {x: a.o}}
)"),
              HasSubstr("component 'a': reads its own output"));
}

TEST(PipelineSpecTest, UnknownKeysAndKindsAreErrors) {
  EXPECT_EQ(Error("pipeline: p\ncron: daily\ncomponents: []\n"),
            "/work/p/pipeline.yaml:2: unknown key 'cron'; keys: pipeline, root, metadata, "
            "components, alerts, schedule");
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - name: a
    kind: command
    command: [true]
    retry: 3
)"),
              HasSubstr(":6: component 'a': unknown key 'retry'; keys: name, kind, inputs"));
  EXPECT_EQ(Error("pipeline: p\ncomponents:\n  - {name: a, kind: trainer}\n"),
            "/work/p/pipeline.yaml:3: component 'a': unknown kind 'trainer'; kinds: import, "
            "stats, schema, validate, transform, train, evaluate, infra_validate, push, command");
  // A kind whose command this binary lacks (the catalog has no evaluate).
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: e, kind: evaluate, args: {config: e.yaml, model: m, data: d}}
)"),
              HasSubstr("kind 'evaluate' needs `kiln evaluate`, which this kiln does not have"));
}

TEST(PipelineSpecTest, ArgsAreCheckedAgainstTheCommandsFlags) {
  EXPECT_EQ(Error(R"(pipeline: p
components:
  - name: t
    kind: train
    args: {data: d.csv, config: t.yaml, rounds: 5}
)"),
            "/work/p/pipeline.yaml:5: component 't': kiln train has no --rounds; args: "
            "checkpoint_dir, config, data, eval_data, transform");
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: i, kind: import, args: {data: d.csv, out: x}}
)"),
              HasSubstr("component 'i': args: --out is set by kiln run"));
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: i, kind: import, args: {data: d.csv, overwrite: sometimes}}
)"),
              HasSubstr("args.overwrite is true or false (--overwrite takes no value)"));
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: i, kind: import, args: {data: d.csv, splits: {a: 1}}}
)"),
              HasSubstr("args.splits is a single value"));
  auto p = Parse(R"(pipeline: p
components:
  - {name: i, kind: import, args: {data: d.csv, null_tokens: [NA, "-"]}}
)");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->components[0].args.at("null_tokens").values, ElementsAre("NA", "-"));
}

TEST(PipelineSpecTest, InputsOfKinds) {
  EXPECT_THAT(Error("pipeline: p\ncomponents:\n  - {name: s, kind: stats}\n"),
              HasSubstr("component 's': kind stats needs 'data': a reference under inputs: or "
                        "a path under args:"));
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: i, kind: import, args: {data: d.csv}}
  - {name: s, kind: stats, inputs: {data: i.out, model: i.out}}
)"),
              HasSubstr("component 's': kind stats has no input 'model'; inputs: data, schema"));
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: i, kind: import, args: {data: d.csv}}
  - {name: s, kind: stats, inputs: {data: i.out}, args: {data: x.csv}}
)"),
              HasSubstr("'data' is given under both inputs: and args:"));
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: t, kind: train, args: {data: d.csv}}
)"),
              HasSubstr("component 't': kind train needs args.config"));
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: i, kind: import, args: {data: d.csv}, outputs: [x]}
)"),
              HasSubstr("kind import declares its own outputs"));
}

TEST(PipelineSpecTest, ReferencesAreCheckedAgainstWhatAKindReads) {
  EXPECT_EQ(Error(R"(pipeline: p
components:
  - {name: i, kind: import, args: {data: d.csv}}
  - {name: s, kind: schema, inputs: {stats: i}}
)"),
            "/work/p/pipeline.yaml:4: component 's': input 'stats' takes ExampleStatistics, but "
            "i.out is Examples");
  // A command's output of kiln's type is checked; one of its own type is the user's call.
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: c, kind: command, command: [x], outputs: {m: Model}}
  - {name: v, kind: validate, inputs: {data: c.m}, args: {schema: s.pbtxt}}
)"),
              HasSubstr("input 'data' takes Examples or ExampleStatistics, but c.m is Model"));
  EXPECT_TRUE(Parse(R"(pipeline: p
components:
  - {name: c, kind: command, command: [x], outputs: {rows: MyRows}}
  - {name: s, kind: stats, inputs: {data: c.rows}}
)")
                  .ok());
}

TEST(PipelineSpecTest, ComponentFieldErrors) {
  EXPECT_THAT(Error("pipeline: p\ncomponents:\n  - {name: a, kind: command}\n"),
              HasSubstr("a command component needs command: [EXECUTABLE, ...]"));
  EXPECT_THAT(Error("pipeline: p\ncomponents:\n  - {name: a, kind: command, command: x.sh}\n"),
              HasSubstr("command is a list: [a, b]"));
  EXPECT_THAT(
      Error("pipeline: p\ncomponents:\n  - {name: a, kind: command, command: [x], args: {}}\n"),
      HasSubstr("args is for kiln's kinds"));
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: a, kind: command, command: [x], retries: -1}
)"),
              HasSubstr("retries is a number in [0, 100]"));
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: a, kind: command, command: [x], retries: 1.5}
)"),
              HasSubstr("retries is a whole number"));
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: a, kind: command, command: [x], on_findings: ignore}
)"),
              HasSubstr("on_findings is stop or continue, not 'ignore'"));
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: a, kind: command, command: [x]}
  - {name: a, kind: command, command: [y]}
)"),
              HasSubstr(":4: component 'a' is declared twice"));
  EXPECT_THAT(Error("pipeline: p\ncomponents:\n  - {name: a.b, kind: command, command: [x]}\n"),
              HasSubstr("a component name is letters, digits"));
  EXPECT_THAT(Error("pipeline: p\ncomponents:\n  - {kind: command, command: [x]}\n"),
              HasSubstr(":3: a component needs a name"));
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - {name: a, kind: command, command: [x], outputs: [o, o]}
)"),
              HasSubstr("output 'o' twice"));
}

TEST(PipelineSpecTest, FileLevelErrors) {
  EXPECT_THAT(Error("pipeline: p\ncomponents: [\n"), HasSubstr("not valid YAML"));
  EXPECT_EQ(Error("- a\n- b\n"),
            "/work/p/pipeline.yaml:1: a pipeline file is a YAML map {pipeline, components}");
  EXPECT_THAT(Error("components:\n  - {name: a, kind: command, command: [x]}\n"),
              HasSubstr("no pipeline: name the pipeline"));
  EXPECT_THAT(Error("pipeline: p\ncomponents: []\n"), HasSubstr("components is a non-empty list"));
  EXPECT_THAT(Error("pipeline: p q\ncomponents: []\n"), HasSubstr("pipeline is a name"));
}

TEST(PipelineSpecTest, WithoutACatalogArgsAreNotChecked) {
  auto p = ParsePipeline(R"(pipeline: p
components:
  - {name: t, kind: train, args: {data: d.csv, config: t.yaml, anything: 5}}
)",
                         "p.yaml", nullptr);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->components[0].args.at("anything").is_flag);
}

TEST(PipelineSpecTest, ArgKeysAndFlags) {
  EXPECT_EQ(ArgKey("eval-data"), "eval_data");
  EXPECT_EQ(FlagFor("eval_data"), "--eval-data");
}

}  // namespace
}  // namespace kiln::pipeline

namespace kiln::pipeline {
namespace {

constexpr char kHistory[] = R"(pipeline: p
components:
  - name: stats
    kind: stats
    args: {data: x.csv}
  - name: schema
    kind: schema
    inputs: {stats: stats}
  - name: validate
    kind: validate
    inputs: {data: stats.out, schema: schema, previous: stats.out@previous}
    on_drift: %s
)";

TEST(PipelineSpecTest, PreviousReferencesAndOnDrift) {
  for (auto [word, want] : {std::pair{"hold", OnDrift::kHold}, std::pair{"stop", OnDrift::kStop},
                            std::pair{"continue", OnDrift::kContinue}}) {
    std::string yaml = kHistory;
    yaml.replace(yaml.find("%s"), 2, word);
    auto p = Parse(yaml);
    ASSERT_TRUE(p.ok()) << p.status();
    const Component& v = p->components[2];
    EXPECT_EQ(v.on_drift, want);
    ASSERT_EQ(v.inputs.size(), 3u);
    EXPECT_EQ(v.inputs[1].name, "previous");
    EXPECT_EQ(v.inputs[1].component, "stats");
    EXPECT_EQ(v.inputs[1].output, "out");
    EXPECT_TRUE(v.inputs[1].previous);
    EXPECT_FALSE(v.inputs[0].previous);
    // The reference still orders validate after stats.
    EXPECT_THAT(p->dag.upstream[2], ElementsAre(0, 1));
  }
  std::string yaml = kHistory;
  yaml.replace(yaml.find("%s"), 2, "later");
  EXPECT_EQ(Error(yaml),
            "/work/p/pipeline.yaml:12: component 'validate': on_drift is hold, stop or continue, "
            "not 'later'");
  yaml = kHistory;
  yaml.replace(yaml.find("@previous"), 9, "@yesterday");
  yaml.replace(yaml.find("%s"), 2, "hold");
  EXPECT_EQ(Error(yaml),
            "/work/p/pipeline.yaml:11: component 'validate': input 'previous': '@yesterday' is "
            "not a qualifier; the only one is @previous");
  // A required input cannot come from an earlier run: there is none the first time.
  yaml = kHistory;
  yaml.replace(yaml.find("schema: schema,"), 15, "schema: schema@previous,");
  yaml.replace(yaml.find("%s"), 2, "hold");
  EXPECT_EQ(Error(yaml),
            "/work/p/pipeline.yaml:11: component 'validate': input 'schema' is required, and "
            "schema@previous has nothing on a first run");
  EXPECT_THAT(Error(R"(pipeline: p
components:
  - name: stats
    kind: stats
    args: {data: x.csv}
    on_drift: hold
)"),
              HasSubstr("on_drift is for kind: validate"));
}

}  // namespace
}  // namespace kiln::pipeline
