// libFuzzer target: arbitrary request targets through `kiln ui`: the JSON API (UiApi::Handle
// on a small store with a run, a model, statistics and a lineage edge, built once in
// /dev/shm) and the static file server (ServeStatic on a web directory with an index.html
// and a secret file beside it). Every answer must be one of the documented statuses, JSON
// answers must parse, and no path may reach outside the web directory. Nothing may crash.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "kiln/metadata/open_store.h"
#include "kiln/metadata/recorder.h"
#include "kiln/ui/ui_api.h"
#include "kiln/ui/ui_server.h"
#include "kiln/ui/url.h"
#include "nlohmann/json.hpp"

namespace {

namespace md = kiln::metadata;

void Require(bool ok) {
  if (!ok) std::abort();
}

void Write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

struct World {
  std::string dir;
  std::string web;
  std::unique_ptr<md::MetadataStore> store;
  std::unique_ptr<kiln::ui::UiApi> api;
};

World* Make() {
  auto* w = new World;
  w->dir = "/dev/shm/kiln-ui-fuzz-" + std::to_string(getpid());
  std::filesystem::remove_all(w->dir);
  const std::string run_dir = w->dir + "/runs/r1";
  Write(run_dir + "/run.json",
        R"({"pipeline": "p", "run_id": "r1", "state": "succeeded", "components": [)"
        R"({"name": "train", "kind": "train", "state": "ran", "upstream": [], "outputs": {}}]})");
  Write(run_dir + "/train/log.txt", "epoch 1\n");
  Write(w->dir + "/stats/statistics.json",
        R"({"datasets": [{"name": "train", "num_examples": 3,)"
        R"( "features": [{"name": "x", "type": "INT", "num_stats": {"mean": 1.5}}]}]})");
  w->web = w->dir + "/web";
  Write(w->web + "/index.html", "<!doctype html>");
  Write(w->web + "/assets/app.js", "1");
  Write(w->dir + "/secret.txt", "outside");
  auto store = md::OpenStore("sqlite:" + w->dir + "/meta.sqlite");
  Require(store.ok());
  w->store = std::move(*store);
  md::Recorder recorder(w->store.get());
  md::ExecutionRecord stats;
  stats.type = "StatisticsGen";
  stats.pipeline = "p";
  stats.run = "r1";
  stats.outputs = {
      {"statistics", md::Artifact{.type = "ExampleStatistics", .uri = w->dir + "/stats"}}};
  auto s = recorder.Record(stats);
  Require(s.ok());
  md::ExecutionRecord train;
  train.type = "Trainer";
  train.pipeline = "p";
  train.run = "r1";
  train.parameters = {{"model.learning_rate", 0.1}};
  train.inputs = {{"examples", s->output_ids[0]}};
  train.outputs = {{"model", md::Artifact{.type = "Model", .uri = run_dir + "/train/out"}}};
  Require(recorder.Record(train).ok());
  w->api = std::make_unique<kiln::ui::UiApi>(w->store.get(), kiln::ui::UiApiOptions{});
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* const w = Make();
  const std::string raw(reinterpret_cast<const char*>(data), size);
  (void)kiln::ui::PercentDecode(raw, true);
  (void)kiln::ui::ParseQuery(raw);

  const std::string target = "/api/" + raw;
  const kiln::ui::UiResponse r = w->api->Handle("GET", target);
  Require(r.status == 200 || r.status == 400 || r.status == 404 || r.status == 500);
  if (r.content_type == "application/json") {
    Require(nlohmann::json::accept(r.body));
  }

  const kiln::ui::UiResponse s = kiln::ui::ServeStatic(w->web, "/" + raw);
  Require(s.status == 200 || s.status == 400 || s.status == 404);
  // A 200 is one of the web directory's two files, never the secret beside it.
  if (s.status == 200) Require(s.body == "<!doctype html>" || s.body == "1");
  return 0;
}
