#include "kiln/ui/ui_api.h"

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/metadata/open_store.h"
#include "kiln/metadata/recorder.h"
#include "kiln/observe/event_writer.h"
#include "kiln/serving/http_server.h"
#include "kiln/serving/webhook.h"
#include "kiln/testing/temp_dir.h"
#include "kiln/ui/ui_server.h"
#include "kiln/validation/testing_stats.h"
#include "nlohmann/json.hpp"

namespace kiln::ui {
namespace {

namespace md = ::kiln::metadata;
namespace tfmd = ::tensorflow::metadata::v0;
using ::kiln::validation::testing::Dataset;
using ::kiln::validation::testing::FeatureBuilder;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::json;

// The store's clock, set by the test so that create times are known.
class ClockEnv : public EnvWrapper {
 public:
  ClockEnv() : EnvWrapper(Env::Default()) {}
  int64_t NowMicros() override { return now_ms * 1000; }
  int64_t now_ms = 1000;
};

// A store with two pipelines and the files their artifacts point to:
//   clicks/r1 (succeeded): stats (a1) -> validate (a2); train (a3, with TensorBoard
//     logs) -> evaluate (a4, blessed) -> push v1 (a5); a cache hit of train; a forced
//     push v2 (a6) without a blessing
//   clicks/r2 (running): stats (a7), drifted from r1's
//   legacy/old: recorded before runs had run_dir on their context; train (a8)
class UiApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    md::StoreOptions o;
    o.env = &clock_;
    auto s = md::OpenStore("sqlite:" + dir_.File("m.sqlite"), o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    Build();
  }

  std::string Path(const std::string& rel) const { return dir_.File(rel); }

  int64_t Record(int64_t time_ms, md::ExecutionRecord r) {
    clock_.now_ms = time_ms;
    auto done = md::Recorder(store_.get()).Record(r);
    EXPECT_TRUE(done.ok()) << done.status();
    return done.ok() ? done->execution_id : 0;
  }

  // The runner's own properties on a run's context.
  void SetRunContext(const std::string& run, const md::Properties& props) {
    md::Query q;
    q.type = "pipeline_run";
    q.name = run;
    auto found = store_->GetContexts(q);
    ASSERT_TRUE(found.ok() && found->size() == 1);
    md::Context c = (*found)[0];
    for (const auto& [k, v] : props) c.custom_properties[k] = v;
    ASSERT_TRUE(store_->PutContexts({c}).ok());
  }

  static tfmd::DatasetFeatureStatisticsList StatsA() {
    FeatureBuilder x = FeatureBuilder::Float("x");
    x.Present(4, 0).Range(0, 2).Histogram({{0, 1, 4}, {1, 2, 0}});
    x.Histogram({{0, 0.5, 2}, {0.5, 1, 2}}, 0, tfmd::Histogram::QUANTILES);
    tfmd::FeatureNameStatistics xs = x;
    xs.mutable_num_stats()->set_mean(0.5);
    xs.mutable_num_stats()->set_std_dev(0.25);
    xs.mutable_num_stats()->set_median(0.5);
    xs.mutable_num_stats()->set_num_zeros(1);
    tfmd::FeatureNameStatistics color =
        FeatureBuilder::String("color").Present(4, 0).Values({{"red", 3}, {"blue", 1}});
    color.mutable_string_stats()->set_avg_length(3.5);
    tfmd::DatasetFeatureStatisticsList list;
    *list.add_datasets() = Dataset(4, {color, xs}, "train");
    *list.add_datasets() =
        Dataset(2, {FeatureBuilder::String("color").Present(1, 1).Values({{"red", 1}})}, "eval");
    return list;
  }

  static tfmd::DatasetFeatureStatisticsList StatsB() {
    tfmd::DatasetFeatureStatisticsList list;
    *list.add_datasets() =
        Dataset(4,
                {FeatureBuilder::String("color").Present(4, 0).Values({{"red", 1}, {"blue", 3}}),
                 FeatureBuilder::Float("x").Present(4, 0).Histogram({{0, 1, 0}, {1, 2, 4}}),
                 FeatureBuilder::Int("only_b").Present(4, 0).Histogram({{0, 1, 4}})},
                "train");
    return list;
  }

  void WriteEvents() {
    observe::EventWriter::Options o;
    o.hostname = "test";
    auto w = observe::EventWriter::Create(Env::Default(), Path("runs/r1/train/out/logs"), o);
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->AddScalar("loss", 2, 0.25f, 101.0).ok());  // out of step order
    ASSERT_TRUE((*w)->AddScalar("loss", 1, 0.5f, 100.0).ok());
    ASSERT_TRUE((*w)->AddScalar("auc", 2, 0.75f, 101.0).ok());
    const float weights[] = {1, 2, 3};
    ASSERT_TRUE((*w)->AddHistogram("weights", 2, weights, 101.0).ok());  // not a scalar
    ASSERT_TRUE((*w)->Close().ok());
    auto e = observe::EventWriter::Create(Env::Default(), Path("runs/r1/train/out/logs/eval"), o);
    ASSERT_TRUE(e.ok()) << e.status();
    ASSERT_TRUE((*e)->AddScalar("auc", 2, 0.5f, 102.0).ok());
    ASSERT_TRUE((*e)->Close().ok());
  }

  void Build() {
    // Files.
    std::string stats_pb;
    ASSERT_TRUE(StatsA().SerializeToString(&stats_pb));
    dir_.Write("runs/r1/stats/out/statistics.pb", stats_pb);
    std::string stats_json;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(StatsB(), &stats_json).ok());
    dir_.Write("runs/r2/stats/out/statistics.json", stats_json);
    dir_.Write("runs/r1/validate/out/anomalies.json", kAnomalies);
    dir_.Write("runs/r1/evaluate/out/evaluation.json", R"({"blessed": true, "checks": []})");
    dir_.Write("runs/r1/evaluate/out/blessing.json", R"({"blessed": true, "status": "BLESSED"})");
    dir_.Write("runs/r1/train/log.txt", "epoch 1\nepoch 2\ndone\n");
    WriteEvents();
    dir_.Write("runs/r1/run.json", RunJsonR1());
    dir_.Write("runs/r2/run.json", R"({"pipeline": "clicks", "run_id": "r2", "state": "running",
      "seconds": 0.5, "components": [{"name": "stats", "state": "ran"},
                                     {"name": "train", "state": "pending"}]})");
    dir_.Write("legacy/runs/old/run.json", R"({"pipeline": "legacy", "run_id": "old",
      "state": "succeeded", "seconds": 1.5, "components": [{"name": "train", "state": "ran"}]})");

    // Records, as `kiln run` and the commands it runs make them.
    const md::Properties runner = {{"component", std::string("x")},
                                   {"run", std::string("r1")},
                                   {"exit_code", int64_t{0}},
                                   {"attempts", int64_t{1}},
                                   {"cache_key", std::string("k")}};
    md::ExecutionRecord stats{.type = "StatisticsGen", .pipeline = "clicks", .run = "r1"};
    stats.component = "stats";
    stats.outputs = {{"statistics",
                      md::Artifact{.type = "ExampleStatistics", .uri = Path("runs/r1/stats/out")}}};
    Record(1000, stats);  // e1, a1
    SetRunContext("r1", {{"pipeline", std::string("clicks")},
                         {"run_dir", Path("runs/r1")},
                         {"state", std::string("succeeded")},
                         {"started_ms", int64_t{990}}});
    md::ExecutionRecord validate{.type = "ExampleValidator", .pipeline = "clicks", .run = "r1"};
    validate.component = "validate";
    validate.inputs = {{"statistics", 1}};
    validate.outputs = {{"anomalies", md::Artifact{.type = "ExampleAnomalies",
                                                   .uri = Path("runs/r1/validate/out")}}};
    Record(1100, validate);  // e2, a2
    md::ExecutionRecord train{.type = "Trainer", .pipeline = "clicks", .run = "r1"};
    train.component = "train";
    train.parameters = runner;
    train.parameters["model.learning_rate"] = 0.1;
    train.parameters["model.epochs"] = int64_t{3};
    train.parameters["model_type"] = std::string("linear");
    train.parameters["seed"] = int64_t{7};
    train.parameters["output.model"] = Path("runs/r1/train/out");
    md::Artifact model{.type = "Model", .uri = Path("runs/r1/train/out")};
    model.properties = {{"model_type", std::string("linear")}};
    model.custom_properties = {{"eval.auc", 0.75}, {"eval.log_loss", 0.5}, {"other", 1.0}};
    train.outputs = {{"model", model}};
    Record(1200, train);  // e3, a3
    md::ExecutionRecord evaluate{.type = "Evaluator", .pipeline = "clicks", .run = "r1"};
    evaluate.component = "evaluate";
    evaluate.inputs = {{"model", 3}};
    evaluate.outputs = {
        {"blessing", md::Artifact{.type = "ModelBlessing", .uri = Path("runs/r1/evaluate/out")}}};
    Record(1300, evaluate);  // e4, a4
    md::ExecutionRecord push{.type = "Pusher", .pipeline = "clicks", .run = "r1"};
    push.component = "push";
    push.parameters = {
        {"destination", Path("serving/clicks")}, {"version", int64_t{1}}, {"forced", false}};
    push.inputs = {{"model", 3}, {"blessing", 4}};
    push.outputs = {
        {"pushed_model", md::Artifact{.type = "PushedModel", .uri = Path("serving/clicks/1")}}};
    Record(1400, push);  // e5, a5
    // A cache hit of train: no parameters of its own, not an entry of /api/training.
    clock_.now_ms = 1450;
    md::Execution hit{.type = "Trainer", .state = md::ExecutionState::kCached};
    hit.custom_properties = {{"cached_from", int64_t{3}}, {"run", std::string("r1")}};
    ASSERT_TRUE(store_->PutExecutions({hit}).ok());  // e6
    md::ExecutionRecord forced{.type = "Pusher"};
    forced.parameters = {
        {"destination", Path("serving/clicks")}, {"version", int64_t{2}}, {"forced", true}};
    forced.inputs = {{"model", 3}};
    forced.outputs = {
        {"pushed_model", md::Artifact{.type = "PushedModel", .uri = Path("serving/clicks/2")}}};
    Record(1500, forced);  // e7, a6

    md::ExecutionRecord stats2{.type = "StatisticsGen", .pipeline = "clicks", .run = "r2"};
    stats2.component = "stats";
    stats2.outputs = {{"statistics", md::Artifact{.type = "ExampleStatistics",
                                                  .uri = Path("runs/r2/stats/out")}}};
    Record(2000, stats2);  // e8, a7
    SetRunContext("r2", {{"pipeline", std::string("clicks")},
                         {"run_dir", Path("runs/r2")},
                         {"state", std::string("running")},
                         {"started_ms", int64_t{1990}}});

    md::ExecutionRecord old{.type = "Trainer", .pipeline = "legacy", .run = "old"};
    old.component = "train";
    old.parameters = {{"component", std::string("train")},
                      {"output.model", Path("legacy/runs/old/train/out")},
                      {"output.model.fingerprint", std::string("f")},
                      {"model.learning_rate", 0.2}};
    old.outputs = {
        {"model", md::Artifact{.type = "Model", .uri = Path("legacy/runs/old/train/out")}}};
    Record(3000, old);  // e9, a8
    SetRunContext("old",
                  {{"pipeline", std::string("legacy")}, {"state", std::string("succeeded")}});
  }

  std::string RunJsonR1() const {
    return R"({
  "pipeline": "clicks", "run_id": "r1", "state": "succeeded", "seconds": 4.25,
  "components": [
    {"name": "stats", "kind": "stats", "state": "ran", "upstream": []},
    {"name": "validate", "kind": "validate", "state": "ran", "upstream": ["stats"]},
    {"name": "train", "kind": "train", "state": "cached", "upstream": ["validate"]},
    {"name": "evaluate", "kind": "evaluate", "state": "ran", "upstream": ["train"]},
    {"name": "push", "kind": "push", "state": "ran", "upstream": ["evaluate"]}]
}
)";
  }

  UiApi& Api() {
    if (!api_) api_ = std::make_unique<UiApi>(store_.get(), options_);
    return *api_;
  }

  // GET `target`, expecting `status` and JSON.
  Json Get(const std::string& target, int status = 200) {
    UiResponse r = Api().Handle("GET", target);
    EXPECT_EQ(r.status, status) << target << ": " << r.body;
    EXPECT_EQ(r.content_type, "application/json") << target;
    Json j = Json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << target << ": " << r.body;
    return j;
  }
  // The error message of a GET expected to fail with `status`.
  std::string Error(const std::string& target, int status) {
    Json j = Get(target, status);
    EXPECT_TRUE(j.is_object() && j.size() == 1 && j.contains("error")) << j.dump();
    return j.value("error", "");
  }

  md::Execution Execution(int64_t id) { return *store_->GetExecution(id); }
  std::string StringProp(int64_t execution, const std::string& key) {
    return std::get<std::string>(Execution(execution).custom_properties.at(key));
  }

  static constexpr char kAnomalies[] =
      R"({"anomaly_info": {"x": {"severity": "ERROR", "short_description": "Out of range"}}})";

  kiln::testing::TempDir dir_;
  ClockEnv clock_;
  std::unique_ptr<md::MetadataStore> store_;
  UiApiOptions options_;
  std::unique_ptr<UiApi> api_;
};

TEST_F(UiApiTest, SummaryCountsPipelinesRunsModelsAndArtifacts) {
  EXPECT_EQ(Get("/api/summary"), (Json{{"store", "sqlite:" + Path("m.sqlite")},
                                       {"pipelines", 2},
                                       {"runs", 3},
                                       {"models", 2},
                                       {"artifacts", 8}}));
}

TEST_F(UiApiTest, RunsNewestFirstWithComponentCountsAndALegacyRunDir) {
  const Json old{{"pipeline", "legacy"},
                 {"run_id", "old"},
                 {"state", "succeeded"},
                 {"started_ms", 3000},  // no started_ms: the context's creation
                 {"seconds", 1.5},
                 {"run_dir", Path("legacy/runs/old")},  // from train's output path
                 {"components", {{"ran", 1}}}};
  const Json r2{{"pipeline", "clicks"},
                {"run_id", "r2"},
                {"state", "running"},
                {"started_ms", 1990},
                {"seconds", 0.5},
                {"run_dir", Path("runs/r2")},
                {"components", {{"ran", 1}, {"pending", 1}}}};
  const Json r1{{"pipeline", "clicks"},
                {"run_id", "r1"},
                {"state", "succeeded"},
                {"started_ms", 990},
                {"seconds", 4.25},
                {"run_dir", Path("runs/r1")},
                {"components", {{"ran", 4}, {"cached", 1}}}};
  EXPECT_EQ(Get("/api/runs"), Json::array({old, r2, r1}));
  EXPECT_EQ(Get("/api/runs?pipeline=clicks"), Json::array({r2, r1}));
  EXPECT_EQ(Get("/api/runs?pipeline=nope"), Json::array());
}

TEST_F(UiApiTest, RunStateComesFromRunJsonOverTheContext) {
  // run.json is rewritten after every component: it is the fresher of the two.
  dir_.Write("runs/r2/run.json",
             R"({"pipeline": "clicks", "run_id": "r2", "state": "failed", "components": []})");
  Json runs = Get("/api/runs?pipeline=clicks");
  EXPECT_EQ(runs[0]["state"], "failed");
  EXPECT_EQ(runs[0]["seconds"], nullptr);
  EXPECT_EQ(runs[0]["components"], Json::object());
}

TEST_F(UiApiTest, RunDetailIsRunJsonAsWritten) {
  UiResponse r = Api().Handle("GET", "/api/runs/clicks/r1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, RunJsonR1());
  EXPECT_THAT(Error("/api/runs/clicks/nope", 404), HasSubstr("no run 'nope' of pipeline 'clicks'"));
  EXPECT_THAT(Error("/api/runs/legacy/r1", 404), HasSubstr("no run 'r1' of pipeline 'legacy'"));
}

TEST_F(UiApiTest, RunWithoutRunJsonYetIsReportedFromItsContext) {
  clock_.now_ms = 5000;
  md::Context c{.type = "pipeline_run", .name = "r3"};
  c.custom_properties = {{"pipeline", std::string("clicks")},
                         {"run_dir", Path("runs/r3")},
                         {"state", std::string("running")},
                         {"started_ms", int64_t{4990}}};
  ASSERT_TRUE(store_->PutContexts({c}).ok());
  EXPECT_EQ(Get("/api/runs/clicks/r3"), (Json{{"pipeline", "clicks"},
                                              {"run_id", "r3"},
                                              {"run_dir", Path("runs/r3")},
                                              {"state", "running"},
                                              {"components", Json::array()}}));
  EXPECT_EQ(Get("/api/runs?pipeline=clicks")[0], (Json{{"pipeline", "clicks"},
                                                       {"run_id", "r3"},
                                                       {"state", "running"},
                                                       {"started_ms", 4990},
                                                       {"seconds", nullptr},
                                                       {"run_dir", Path("runs/r3")},
                                                       {"components", Json::object()}}));
}

TEST_F(UiApiTest, ComponentLogIsPlainText) {
  UiResponse r = Api().Handle("GET", "/api/runs/clicks/r1/log/train");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, "epoch 1\nepoch 2\ndone\n");
}

TEST_F(UiApiTest, ComponentLogIsItsTail) {
  options_.log_tail_bytes = 8;
  UiResponse r = Api().Handle("GET", "/api/runs/clicks/r1/log/train");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, " 2\ndone\n");
  // A large log: exactly the last bytes.
  std::string big(300 << 10, 'a');
  big.replace(big.size() - 4, 4, "end\n");
  dir_.Write("runs/r1/train/log.txt", big);
  options_.log_tail_bytes = 256 << 10;
  api_.reset();
  r = Api().Handle("GET", "/api/runs/clicks/r1/log/train");
  EXPECT_EQ(r.body.size(), size_t{256} << 10);
  EXPECT_EQ(r.body, big.substr(big.size() - (256 << 10)));
}

TEST_F(UiApiTest, ComponentLogErrors) {
  EXPECT_THAT(Error("/api/runs/clicks/r1/log/nope", 404),
              HasSubstr("run 'r1' has no component 'nope'"));
  EXPECT_THAT(Error("/api/runs/clicks/r1/log/validate", 404),
              HasSubstr("no log for component 'validate'"));
  EXPECT_THAT(Error("/api/runs/clicks/r1/log/..", 400), HasSubstr("bad component '..'"));
  EXPECT_THAT(Error("/api/runs/clicks/r1/log/%2e%2e", 400), HasSubstr("bad component '..'"));
  EXPECT_THAT(Error("/api/runs/clicks/r1/log/a%2Fb", 400), HasSubstr("bad component 'a/b'"));
  EXPECT_THAT(Error("/api/runs/clicks/nope/log/train", 404), HasSubstr("no run 'nope'"));
}

TEST_F(UiApiTest, ArtifactsNewestFirstByTypeAndLimit) {
  Json model3{{"id", 3},
              {"type", "Model"},
              {"uri", Path("runs/r1/train/out")},
              {"create_time_ms", 1200},
              {"properties", {{"model_type", "linear"}}},
              {"custom_properties", {{"eval.auc", 0.75}, {"eval.log_loss", 0.5}, {"other", 1.0}}},
              {"name", nullptr},
              {"state", "LIVE"},
              {"update_time_ms", 1200}};
  Json models = Get("/api/artifacts?type=Model");
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0]["id"], 8);
  EXPECT_EQ(models[1], model3);

  std::vector<int> ids;
  for (const Json& a : Get("/api/artifacts?limit=3")) ids.push_back(a["id"]);
  EXPECT_EQ(ids, (std::vector<int>{8, 7, 6}));
  EXPECT_EQ(Get("/api/artifacts").size(), 8u);
  EXPECT_EQ(Get("/api/artifacts?type=Nope"), Json::array());
  EXPECT_THAT(Error("/api/artifacts?limit=0", 400), HasSubstr("bad limit '0'"));
  EXPECT_THAT(Error("/api/artifacts?limit=x", 400), HasSubstr("bad limit 'x'"));
}

TEST_F(UiApiTest, ArtifactDetailWithProducerAndContexts) {
  Json j = Get("/api/artifacts/2");
  EXPECT_EQ(j["artifact"]["id"], 2);
  EXPECT_EQ(j["artifact"]["type"], "ExampleAnomalies");
  EXPECT_EQ(j["artifact"]["uri"], Path("runs/r1/validate/out"));
  EXPECT_EQ(j["produced_by"]["id"], 2);
  EXPECT_EQ(j["produced_by"]["type"], "ExampleValidator");
  EXPECT_EQ(j["produced_by"]["state"], "COMPLETE");
  EXPECT_EQ(j["produced_by"]["role"], "anomalies");
  EXPECT_EQ(j["produced_by"]["create_time_ms"], 1100);
  std::set<std::string> contexts;
  for (const Json& c : j["contexts"])
    contexts.insert(c["type"].get<std::string>() + ":" + c["name"].get<std::string>());
  EXPECT_EQ(contexts, (std::set<std::string>{"pipeline:clicks", "pipeline_run:r1",
                                             "component:clicks.validate"}));
  // An artifact no execution produced.
  clock_.now_ms = 4000;
  auto raw = md::Recorder(store_.get())
                 .RegisterExternal(md::Artifact{.type = "RawData", .uri = "/data/x.csv"});
  ASSERT_TRUE(raw.ok());
  j = Get("/api/artifacts/" + std::to_string(*raw));
  EXPECT_EQ(j["produced_by"], nullptr);
  EXPECT_EQ(j["contexts"], Json::array());

  EXPECT_THAT(Error("/api/artifacts/999", 404), HasSubstr("no artifact 999"));
  EXPECT_THAT(Error("/api/artifacts/0", 400), HasSubstr("bad artifact id '0'"));
  EXPECT_THAT(Error("/api/artifacts/-1", 400), HasSubstr("bad artifact id '-1'"));
  EXPECT_THAT(Error("/api/artifacts/7x", 400), HasSubstr("bad artifact id '7x'"));
  EXPECT_THAT(Error("/api/artifacts/99999999999999999999", 400), HasSubstr("bad artifact id"));
}

TEST_F(UiApiTest, StatisticsMadeReadable) {
  const Json color{
      {"name", "color"},
      {"type", "STRING"},
      {"num_missing", 0},
      {"missing_pct", 0.0},
      {"string",
       {{"unique", 2},
        {"avg_length", 3.5},
        {"top_values",
         {{{"value", "red"}, {"frequency", 3.0}}, {{"value", "blue"}, {"frequency", 1.0}}}}}}};
  const Json x{{"name", "x"},
               {"type", "FLOAT"},
               {"num_missing", 0},
               {"missing_pct", 0.0},
               {"numeric",
                {{"mean", 0.5},
                 {"std_dev", 0.25},
                 {"min", 0.0},
                 {"median", 0.5},
                 {"max", 2.0},
                 {"num_zeros", 1},
                 {"histogram",
                  {{{"low", 0.0}, {"high", 1.0}, {"count", 4.0}},
                   {{"low", 1.0}, {"high", 2.0}, {"count", 0.0}}}},
                 {"quantiles",
                  {{{"low", 0.0}, {"high", 0.5}, {"count", 2.0}},
                   {{"low", 0.5}, {"high", 1.0}, {"count", 2.0}}}}}}};
  const Json eval_color{{"name", "color"},
                        {"type", "STRING"},
                        {"num_missing", 1},
                        {"missing_pct", 50.0},
                        {"string",
                         {{"unique", 1},
                          {"avg_length", 0.0},
                          {"top_values", Json::array({{{"value", "red"}, {"frequency", 1.0}}})}}}};
  EXPECT_EQ(
      Get("/api/statistics/1"),
      (Json{{"datasets",
             {{{"name", "train"}, {"num_examples", 4}, {"features", {color, x}}},
              {{"name", "eval"}, {"num_examples", 2}, {"features", Json::array({eval_color})}}}}}));
  // statistics.json (r2) reads the same way.
  EXPECT_EQ(Get("/api/statistics/7")["datasets"][0]["features"][2]["name"], "only_b");

  EXPECT_THAT(Error("/api/statistics/3", 400), HasSubstr("artifact 3 is a Model, not a "
                                                         "ExampleStatistics"));
  EXPECT_THAT(Error("/api/statistics/999", 404), HasSubstr("no artifact 999"));
  std::filesystem::remove(Path("runs/r1/stats/out/statistics.pb"));
  EXPECT_THAT(Error("/api/statistics/1", 404), HasSubstr("artifact 1: no statistics at"));
}

TEST_F(UiApiTest, DriftUsesValidatesDistances) {
  const Json expected{
      {"split", "train"},
      {"features",
       {{{"name", "color"}, {"type", "STRING"}, {"measure", "L_infinity"}, {"score", 0.5}},
        {{"name", "x"}, {"type", "FLOAT"}, {"measure", "jensen_shannon"}, {"score", 1.0}},
        {{"name", "only_b"},
         {"type", "INT"},
         {"measure", "jensen_shannon"},
         {"score", nullptr},
         {"note", "not in a"}}}}};
  EXPECT_EQ(Get("/api/drift?a=1&b=7"), expected);
  EXPECT_EQ(Get("/api/drift?a=1&b=7&split=train"), expected);
  // The same statistics: no drift.
  Json same = Get("/api/drift?a=1&b=1&split=eval");
  EXPECT_EQ(same, (Json{{"split", "eval"},
                        {"features", Json::array({{{"name", "color"},
                                                   {"type", "STRING"},
                                                   {"measure", "L_infinity"},
                                                   {"score", 0.0}}})}}));

  EXPECT_THAT(Error("/api/drift?a=1", 400), HasSubstr("drift needs ?a=ID&b=ID"));
  EXPECT_THAT(Error("/api/drift?a=x&b=7", 400), HasSubstr("bad artifact id a 'x'"));
  EXPECT_THAT(Error("/api/drift?a=1&b=3", 400), HasSubstr("artifact 3 is a Model"));
  EXPECT_THAT(Error("/api/drift?a=1&b=999", 404), HasSubstr("no artifact 999"));
  EXPECT_EQ(Get("/api/drift?a=1&b=7&split=eval", 404).size(), 1u);
}

TEST_F(UiApiTest, AnomaliesAsWritten) {
  EXPECT_EQ(Get("/api/anomalies/2"), Json::parse(kAnomalies));
  EXPECT_THAT(Error("/api/anomalies/1", 400), HasSubstr("not a ExampleAnomalies"));
  std::filesystem::remove(Path("runs/r1/validate/out/anomalies.json"));
  EXPECT_THAT(Error("/api/anomalies/2", 404), HasSubstr("no anomalies.json at"));
}

TEST_F(UiApiTest, TrainingListsTrainerExecutionsWithHyperparametersAndMetrics) {
  EXPECT_EQ(Get("/api/training"),
            Json::array({Json{{"execution_id", 9},
                              {"run", "old"},
                              {"pipeline", "legacy"},
                              {"model_id", 8},
                              {"model_uri", Path("legacy/runs/old/train/out")},
                              {"hyperparameters", {{"model.learning_rate", 0.2}}},
                              {"metrics", Json::object()},
                              {"state", "COMPLETE"},
                              {"create_time_ms", 3000}},
                         Json{{"execution_id", 3},
                              {"run", "r1"},
                              {"pipeline", "clicks"},
                              {"model_id", 3},
                              {"model_uri", Path("runs/r1/train/out")},
                              {"hyperparameters",
                               {{"model.learning_rate", 0.1},
                                {"model.epochs", 3},
                                {"model_type", "linear"},
                                {"seed", 7}}},
                              {"metrics", {{"auc", 0.75}, {"log_loss", 0.5}}},
                              {"state", "COMPLETE"},
                              {"create_time_ms", 1200}}}));
}

TEST_F(UiApiTest, ScalarsFromTheModelsEventFiles) {
  EXPECT_EQ(Get("/api/training/3/scalars"),
            (Json{{"auc", Json::array({Json::array({2, 101.0, 0.75})})},
                  {"loss", {{1, 100.0, 0.5}, {2, 101.0, 0.25}}},
                  {"eval/auc", Json::array({Json::array({2, 102.0, 0.5})})}}));
  EXPECT_EQ(Get("/api/training/8/scalars"), Json::object());  // no logs
  // A torn last record (a file being written) keeps what came before it.
  std::string file;
  for (const auto& e : std::filesystem::directory_iterator(Path("runs/r1/train/out/logs/eval"))) {
    file = e.path().string();
  }
  std::string bytes = kiln::testing::ReadAll(file);
  dir_.Write(file.substr(dir_.path().size() + 1), bytes + bytes.substr(0, 10));
  EXPECT_EQ(Get("/api/training/3/scalars")["eval/auc"],
            Json::array({Json::array({2, 102.0, 0.5})}));

  EXPECT_THAT(Error("/api/training/1/scalars", 400), HasSubstr("not a Model"));
  EXPECT_THAT(Error("/api/training/999/scalars", 404), HasSubstr("no artifact 999"));
  EXPECT_THAT(Error("/api/training/x/scalars", 400), HasSubstr("bad model id 'x'"));
}

TEST_F(UiApiTest, ModelsArePushDestinationsWithTheirVersions) {
  EXPECT_EQ(Get("/api/models"), Json::array({Json{{"name", "clicks"},
                                                  {"base_path", Path("serving/clicks")},
                                                  {"versions",
                                                   {{{"version", 2},
                                                     {"model_id", 3},
                                                     {"model_uri", Path("runs/r1/train/out")},
                                                     {"pushed_ms", 1500},
                                                     {"user", StringProp(7, "env.user")},
                                                     {"host", StringProp(7, "env.host")},
                                                     {"forced", true},
                                                     {"blessing_id", nullptr},
                                                     {"blessed", nullptr},
                                                     {"execution_id", 7}},
                                                    {{"version", 1},
                                                     {"model_id", 3},
                                                     {"model_uri", Path("runs/r1/train/out")},
                                                     {"pushed_ms", 1400},
                                                     {"user", StringProp(5, "env.user")},
                                                     {"host", StringProp(5, "env.host")},
                                                     {"forced", false},
                                                     {"blessing_id", 4},
                                                     {"blessed", true},
                                                     {"execution_id", 5}}}}}}));
}

TEST_F(UiApiTest, EvaluationAndBlessing) {
  EXPECT_EQ(Get("/api/evaluations/4"),
            (Json{{"evaluation", {{"blessed", true}, {"checks", Json::array()}}},
                  {"blessing", {{"blessed", true}, {"status", "BLESSED"}}}}));
  std::filesystem::remove(Path("runs/r1/evaluate/out/evaluation.json"));
  EXPECT_EQ(Get("/api/evaluations/4")["evaluation"], nullptr);
  std::filesystem::remove(Path("runs/r1/evaluate/out/blessing.json"));
  EXPECT_THAT(Error("/api/evaluations/4", 404), HasSubstr("no evaluation.json or blessing.json"));
  EXPECT_THAT(Error("/api/evaluations/3", 400), HasSubstr("not a ModelBlessing"));
}

TEST_F(UiApiTest, LineageAroundAnArtifact) {
  Json j = Get("/api/lineage/1?hops=1");
  std::set<int> artifacts, executions;
  for (const Json& a : j["artifacts"]) artifacts.insert(a["id"].get<int>());
  for (const Json& e : j["executions"]) executions.insert(e["id"].get<int>());
  EXPECT_EQ(artifacts, (std::set<int>{1, 2}));
  EXPECT_EQ(executions, (std::set<int>{1, 2}));
  std::set<std::string> events;
  for (const Json& e : j["events"]) {
    EXPECT_EQ(e.size(), 4u);
    events.insert(StrCat(e["artifact_id"].get<int>(), " ", e["execution_id"].get<int>(), " ",
                         e["type"].get<std::string>(), " ", e["path"].get<std::string>()));
  }
  EXPECT_EQ(events, (std::set<std::string>{"1 1 OUTPUT statistics", "1 2 INPUT statistics",
                                           "2 2 OUTPUT anomalies"}));
  // Further out: the model's push reaches its blessing and both pushed versions.
  artifacts.clear();
  const Json wider = Get("/api/lineage/3?hops=2");
  for (const Json& a : wider["artifacts"]) {
    artifacts.insert(a["id"].get<int>());
  }
  EXPECT_EQ(artifacts, (std::set<int>{3, 4, 5, 6}));

  EXPECT_THAT(Error("/api/lineage/999", 404), HasSubstr("no artifact 999"));
  EXPECT_THAT(Error("/api/lineage/1?hops=-1", 400), HasSubstr("bad hops '-1'"));
  EXPECT_THAT(Error("/api/lineage/1?hops=21", 400), HasSubstr("bad hops '21'"));
}

TEST_F(UiApiTest, RequestErrors) {
  EXPECT_THAT(Error("/api/nope", 404), HasSubstr("no such endpoint: /api/nope"));
  EXPECT_THAT(Error("/api/runs/a/b/c", 404), HasSubstr("no such endpoint"));
  EXPECT_THAT(Error("/api/artifacts?type=%zz", 400), HasSubstr("bad %-escape"));
  UiResponse r = Api().Handle("POST", "/api/summary");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(Json::parse(r.body), (Json{{"error", "POST is not supported: the API is GET only"}}));
  // A trailing slash is the same endpoint.
  EXPECT_EQ(Get("/api/summary/")["runs"], 3);
  EXPECT_TRUE(UiApi::IsApiTarget("/api/runs?x=1"));
  EXPECT_TRUE(UiApi::IsApiTarget("/api"));
  EXPECT_FALSE(UiApi::IsApiTarget("/apix"));
  EXPECT_FALSE(UiApi::IsApiTarget("/index.html?/api/"));
}

TEST_F(UiApiTest, ServingNotConfigured) {
  EXPECT_EQ(Get("/api/serving"), (Json{{"configured", false}}));
}

TEST_F(UiApiTest, ServingProxiesStatusAndTrafficOfKilnServe) {
  const Json traffic{{"model", "clicks"},
                     {"split", Json::array({{{"key", "stable"}, {"version", 1}, {"share", 1.0}}})},
                     {"rolled_back", Json::array({{{"version", 2}, {"reason", "errors"}}})}};
  const Json status{{"model_version_status", Json::array({{{"version", "1"},
                                                           {"state", "AVAILABLE"},
                                                           {"status", {{"error_code", "OK"}}}}})}};
  auto fake =
      serving::HttpServer::Start({.port = 0, .threads = 1}, [&](const serving::HttpRequest& r) {
        if (r.target == "/kiln/traffic") {
          return serving::JsonResponse(200, {{"models", Json::array({traffic})}});
        }
        if (r.target == "/v1/models/clicks") return serving::JsonResponse(200, status);
        return serving::JsonResponse(404, {{"error", "no model"}});
      });
  ASSERT_TRUE(fake.ok()) << fake.status();
  const std::string url = StrCat("http://127.0.0.1:", (*fake)->port());
  options_.serving_url = url + "/";
  EXPECT_EQ(
      Get("/api/serving"),
      (Json{{"configured", true},
            {"url", url},
            {"models",
             Json::array({{{"name", "clicks"}, {"status", status}, {"traffic", traffic}}})}}));

  // Gone: said so, with 200 (the dashboard shows it in place).
  (*fake)->Shutdown(std::chrono::milliseconds(0));
  fake->reset();
  api_.reset();
  options_.serving_timeout = std::chrono::milliseconds(500);
  Json down = Get("/api/serving");
  EXPECT_EQ(down["configured"], true);
  EXPECT_EQ(down["url"], url);
  EXPECT_THAT(down["error"].get<std::string>(),
              StartsWith(StrCat("kiln serve at ", url, " cannot be reached: ")));
  EXPECT_FALSE(down.contains("models"));
}

// ---------------------------------------------------------------------------------------
// Static files and the server.

class StaticTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("web/index.html", "<html>app</html>");
    web_ = dir_.File("web");
    dir_.Write("web/assets/app-1.js", "console.log(1)");
    dir_.Write("web/assets/app.css", "body{}");
    dir_.Write("secret.txt", "secret");
    std::filesystem::create_symlink(dir_.File("secret.txt"), dir_.File("web/link.txt"));
  }
  kiln::testing::TempDir dir_;
  std::string web_;
};

TEST_F(StaticTest, ServesFilesWithTheirContentTypes) {
  UiResponse r = ServeStatic(web_, "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(r.body, "<html>app</html>");
  EXPECT_EQ(ServeStatic(web_, "/index.html?x=1#/runs").body, "<html>app</html>");
  r = ServeStatic(web_, "/assets/app-1.js");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(r.body, "console.log(1)");
  EXPECT_EQ(ServeStatic(web_, "/assets//./app.css").content_type, "text/css; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("a/b.SVG"), "image/svg+xml");
  EXPECT_EQ(ContentTypeFor("a.json"), "application/json");
  EXPECT_EQ(ContentTypeFor("a.woff2"), "font/woff2");
  EXPECT_EQ(ContentTypeFor("dir.d/file"), "application/octet-stream");
}

TEST_F(StaticTest, RefusesTraversalAndAnswers404ForWhatIsNotThere) {
  EXPECT_EQ(ServeStatic(web_, "/../secret.txt").status, 400);
  EXPECT_EQ(ServeStatic(web_, "/assets/../../secret.txt").status, 400);
  EXPECT_EQ(ServeStatic(web_, "/%2e%2e/secret.txt").status, 400);
  EXPECT_EQ(ServeStatic(web_, "/..%2fsecret.txt").status, 400);
  EXPECT_EQ(ServeStatic(web_, "/%zz").status, 400);
  EXPECT_EQ(ServeStatic(web_, "/a%00b").status, 400);
  // A symbolic link out of the directory resolves outside it.
  UiResponse r = ServeStatic(web_, "/link.txt");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
  EXPECT_EQ(ServeStatic(web_, "/nope.js").status, 404);
  EXPECT_EQ(ServeStatic(web_, "/assets").status, 404);  // a directory
}

TEST_F(StaticTest, MissingWebAppSaysSo) {
  UiResponse r = ServeStatic(dir_.File("nowhere"), "/");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_THAT(r.body, HasSubstr("the web app is not installed"));
  EXPECT_THAT(r.body, HasSubstr(dir_.File("nowhere")));
  EXPECT_THAT(r.body, HasSubstr("/api/summary"));
}

TEST_F(UiApiTest, HttpRoundTripThroughTheServer) {
  dir_.Write("web/index.html", "<html>app</html>");
  auto server = StartUiServer(&Api(), {.port = 0, .web_dir = Path("web"), .threads = 1});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string base = StrCat("http://127.0.0.1:", (*server)->port());
  const auto timeout = std::chrono::seconds(5);

  auto summary = serving::HttpGet(base + "/api/summary", timeout);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->status, 200);
  EXPECT_EQ(Json::parse(summary->body)["artifacts"], 8);

  auto missing = serving::HttpGet(base + "/api/artifacts/999", timeout);
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(Json::parse(missing->body), (Json{{"error", "no artifact 999"}}));

  auto page = serving::HttpGet(base + "/", timeout);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->body, "<html>app</html>");

  auto traversal = serving::HttpGet(base + "/%2e%2e/m.sqlite", timeout);
  ASSERT_TRUE(traversal.ok());
  EXPECT_EQ(traversal->status, 400);

  auto post = serving::HttpPostJson(base + "/", "{}", timeout);
  ASSERT_TRUE(post.ok());
  EXPECT_EQ(post->status, 405);
  (*server)->Shutdown(std::chrono::seconds(1));
}

}  // namespace
}  // namespace kiln::ui
