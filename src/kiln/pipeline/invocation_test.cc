#include "kiln/pipeline/invocation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kiln/base/str.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::pipeline {
namespace {

using kiln::testing::TempDir;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Pair;

const FlagCatalog& Catalog() {
  static const FlagCatalog* const c = new FlagCatalog{
      {"import", {{{"out", true}, {"splits", true}, {"overwrite", false}, {"metadata", true}}}},
      {"schema", {{{"out", true}, {"stats", true}, {"split", true}, {"metadata", true}}}},
      {"train",
       {{{"out", true},
         {"config", true},
         {"data", true},
         {"eval-data", true},
         {"metadata", true}}}},
      // A command that does not record itself.
      {"push", {{{"model", true}, {"to", true}, {"blessing", true}, {"force", false}}}},
  };
  return *c;
}

class InvocationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("train.yaml", "model: {type: gbdt}\n");
    dir_.Write("step.py", "print('hi')\n");
    dir_.Write("data/x.csv", "a,b\n1,2\n");
    auto p = ParsePipeline(StrCat(R"(pipeline: p
components:
  - {name: import, kind: import, args: {data: data/x.csv, splits: "train:8,eval:2", overwrite: true}}
  - {name: schema, kind: schema, args: {stats: some/stats}}
  - name: train
    kind: train
    inputs: {data: import.out}
    args: {config: train.yaml, eval_data: data/x.csv}
  - {name: push, kind: push, inputs: {model: train.out}, args: {to: serving, force: false}}
  - name: step
    kind: command
    command: [sh, step.py, --flag]
    inputs: {model: train.out}
    outputs: [report, extra_stuff]
    env: {SEED: "7"}
)"),
                           dir_.File("pipeline.yaml"), &Catalog());
    ASSERT_TRUE(p.ok()) << p.status();
    p_ = std::move(*p);
    ctx_.catalog = &Catalog();
    ctx_.metadata_url = "sqlite:/m.sqlite";
    ctx_.run_id = "r1";
    ctx_.run_dir = "/runs/r1";
    ctx_.path_env = "/nonexistent:/bin";
  }

  Invocation Build(const std::string& name, const std::map<std::string, std::string>& inputs) {
    const Component& c = p_.components[p_.Find(name)];
    auto inv = BuildInvocation(p_, c, inputs, OutputsOf(c, ctx_.run_dir), ctx_);
    EXPECT_TRUE(inv.ok()) << inv.status();
    return inv.ok() ? *inv : Invocation{};
  }

  std::string Key(const std::string& name, const std::map<std::string, std::string>& input_fps,
                  const std::string& executable = "") {
    Fingerprinter fp(Env::Default());
    auto k = CacheKey(p_, p_.components[p_.Find(name)], input_fps, executable, &fp);
    EXPECT_TRUE(k.ok()) << k.status();
    return k.ok() ? *k : "";
  }

  TempDir dir_;
  Pipeline p_;
  InvocationContext ctx_;
};

TEST_F(InvocationTest, BuiltInKindsBecomeKilnCommandLines) {
  Invocation imp = Build("import", {});
  EXPECT_EQ(imp.executable, "/proc/self/exe");
  EXPECT_THAT(imp.argv,
              ElementsAre("kiln", "import", "data/x.csv", "--overwrite", "--splits=train:8,eval:2",
                          "--out=/runs/r1/import/.staging/out", "--metadata=sqlite:/m.sqlite"));
  EXPECT_TRUE(imp.records_itself);

  Invocation train = Build("train", {{"data", "/runs/r0/import/out"}});
  EXPECT_THAT(train.argv,
              ElementsAre("kiln", "train", "--data=/runs/r0/import/out", "--eval-data=data/x.csv",
                          "--config=train.yaml", "--out=/runs/r1/train/.staging/out",
                          "--metadata=sqlite:/m.sqlite"));
  EXPECT_THAT(train.env, Contains(Pair("KILN_INPUT_DATA", "/runs/r0/import/out")));
  EXPECT_THAT(train.env, Contains(Pair("KILN_COMPONENT", "train")));

  Invocation push = Build("push", {{"model", "/runs/r1/train/out"}});
  EXPECT_THAT(push.argv, ElementsAre("kiln", "push", "--model=/runs/r1/train/out", "--to=serving"));
  EXPECT_FALSE(push.records_itself);  // its command takes no --metadata here
}

TEST_F(InvocationTest, FileOutputsAreNamedInsideTheirDirectory) {
  const Component& schema = p_.components[p_.Find("schema")];
  std::vector<OutputPaths> outs = OutputsOf(schema, "/runs/r1");
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_EQ(outs[0].staging_dir, "/runs/r1/schema/.staging/out");
  EXPECT_EQ(outs[0].staging_path, "/runs/r1/schema/.staging/out/schema.pbtxt");
  EXPECT_EQ(outs[0].final_dir, "/runs/r1/schema/out");
  EXPECT_EQ(outs[0].final_path, "/runs/r1/schema/out/schema.pbtxt");
  EXPECT_EQ(outs[0].artifact_type, "Schema");
  EXPECT_TRUE(outs[0].precreate);
  Invocation inv = Build("schema", {});
  EXPECT_THAT(inv.argv, ElementsAre("kiln", "schema", "infer", "--stats=some/stats",
                                    "--out=/runs/r1/schema/.staging/out/schema.pbtxt",
                                    "--metadata=sqlite:/m.sqlite"));
}

TEST_F(InvocationTest, CommandsGetTheEnvironmentContract) {
  Invocation inv = Build("step", {{"model", "/runs/r1/train/out"}});
  EXPECT_EQ(inv.executable, "/bin/sh");  // found on PATH, skipping a missing directory
  EXPECT_THAT(inv.argv, ElementsAre("sh", "step.py", "--flag"));
  EXPECT_FALSE(inv.records_itself);
  std::map<std::string, std::string> env(inv.env.begin(), inv.env.end());
  EXPECT_EQ(env.at("KILN_INPUT_MODEL"), "/runs/r1/train/out");
  EXPECT_EQ(env.at("KILN_OUTPUT_REPORT"), "/runs/r1/step/.staging/report");
  EXPECT_EQ(env.at("KILN_OUTPUT_EXTRA_STUFF"), "/runs/r1/step/.staging/extra_stuff");
  EXPECT_EQ(env.at("KILN_PIPELINE"), "p");
  EXPECT_EQ(env.at("KILN_RUN_ID"), "r1");
  EXPECT_EQ(env.at("KILN_RUN_DIR"), "/runs/r1");
  EXPECT_EQ(env.at("KILN_COMPONENT"), "step");
  EXPECT_EQ(env.at("SEED"), "7");
  const std::vector<OutputPaths> outs = OutputsOf(p_.components[p_.Find("step")], "/runs/r1");
  EXPECT_TRUE(outs[0].precreate);
  EXPECT_EQ(outs[0].artifact_type, "Artifact");
}

TEST_F(InvocationTest, MissingExecutableIsNotFound) {
  Component c = p_.components[p_.Find("step")];
  c.command[0] = "no-such-program-kiln";
  auto inv = BuildInvocation(p_, c, {}, {}, ctx_);
  EXPECT_EQ(inv.status().code(), absl::StatusCode::kNotFound);
  c.command[0] = "./missing.sh";
  EXPECT_EQ(BuildInvocation(p_, c, {}, {}, ctx_).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(InvocationTest, CacheKeyIsStableAndFollowsWhatDecidesTheOutput) {
  const std::map<std::string, std::string> in = {{"data", "fp1"}};
  const std::string key = Key("train", in);
  EXPECT_EQ(key.size(), 64u);
  EXPECT_EQ(key, Key("train", in));
  EXPECT_NE(key, Key("train", {{"data", "fp2"}}));  // input content
  // The content of a file an arg names (train.yaml), not just its name.
  dir_.Write("train.yaml", "model: {type: gbdt, num_rounds: 3}\n");
  const std::string edited = Key("train", in);
  EXPECT_NE(key, edited);
  dir_.Write("train.yaml", "model: {type: gbdt}\n");
  EXPECT_EQ(key, Key("train", in));
  // An arg's value.
  p_.components[p_.Find("train")].args.at("eval_data").values = {"data/y.csv"};
  EXPECT_NE(key, Key("train", in));
}

TEST_F(InvocationTest, DestinationsAreNotFingerprinted) {
  const std::map<std::string, std::string> in = {{"model", "m"}};
  const std::string before = Key("push", in);
  dir_.Write("serving/1/model.bin", "pushed");  // what push itself writes
  EXPECT_EQ(before, Key("push", in));
}

TEST_F(InvocationTest, CommandKeyCoversScriptsExecutableAndEnv) {
  const std::map<std::string, std::string> in = {{"model", "m"}};
  const std::string key = Key("step", in, "/bin/sh");
  EXPECT_EQ(key, Key("step", in, "/bin/sh"));
  dir_.Write("step.py", "print('changed')\n");
  EXPECT_NE(key, Key("step", in, "/bin/sh"));
  dir_.Write("step.py", "print('hi')\n");
  EXPECT_EQ(key, Key("step", in, "/bin/sh"));
  const std::string other_exe = dir_.Write("fake-sh", "#!/bin/true\n");
  EXPECT_NE(key, Key("step", in, other_exe));
  p_.components[p_.Find("step")].env["SEED"] = "8";
  EXPECT_NE(key, Key("step", in, "/bin/sh"));
}

TEST_F(InvocationTest, PatternArgsAreFingerprintedByTheFilesTheyMatch) {
  Pipeline p = p_;
  Component& imp = p.components[p.Find("import")];
  imp.args.at("data").values = {"spans/span-{SPAN}/x.csv"};
  dir_.Write("spans/span-1/x.csv", "a\n1\n");
  Fingerprinter fp(Env::Default());
  auto key1 = CacheKey(p, imp, {}, "", &fp);
  ASSERT_TRUE(key1.ok()) << key1.status();
  dir_.Write("spans/span-2/x.csv", "a\n2\n");  // a new span arrives
  Fingerprinter fp2(Env::Default());
  auto key2 = CacheKey(p, imp, {}, "", &fp2);
  ASSERT_TRUE(key2.ok()) << key2.status();
  EXPECT_NE(*key1, *key2);
  std::string recipe;
  Fingerprinter fp3(Env::Default());
  ASSERT_TRUE(CacheKey(p, imp, {}, "", &fp3, &recipe).ok());
  EXPECT_THAT(recipe, ::testing::HasSubstr("span 2"));
}

}  // namespace
}  // namespace kiln::pipeline
