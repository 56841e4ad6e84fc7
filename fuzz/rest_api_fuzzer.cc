// libFuzzer target: arbitrary bytes as an HTTP request to kiln serve's REST handlers (TF
// Serving v1 and KServe v2): the first line is the path, the rest the body, sent as POST
// and as GET, against a real gbdt model trained once at start-up. Every answer must be a
// JSON object with a status from TF Serving's list; nothing may crash.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "kiln/serving/manager.h"
#include "kiln/serving/rest_api.h"
#include "kiln/train/trainer.h"
#include "nlohmann/json.hpp"

namespace {

kiln::serving::ModelManager* manager = nullptr;
kiln::serving::InferenceService* service = nullptr;

void Setup() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("kiln-rest-fuzz-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string csv = "x,s,y\n";
  for (int i = 0; i < 100; ++i) {
    csv += std::to_string(i % 9) + "," + (i % 3 ? "a" : "b") + "," + (i % 9 > 4 ? "1" : "0") + "\n";
  }
  kiln::Env* env = kiln::Env::Default();
  if (!kiln::WriteFileAtomically(env, (dir / "d.csv").string(), csv).ok()) std::abort();
  kiln::train::TrainRequest req;
  req.data = (dir / "d.csv").string();
  req.config.label = "y";
  req.config.model_type = "gbdt";
  req.config.model_params = {{"type", "gbdt"}, {"num_rounds", 2}};
  req.config.checkpoint_every = 0;
  req.out_dir = (dir / "m" / "1").string();
  if (!kiln::train::Train(env, req).ok()) std::abort();
  manager = new kiln::serving::ModelManager(env);
  kiln::serving::ServerConfig config;
  config.models.push_back({"m", (dir / "m").string(), {}, {{"stable", 1}}});
  manager->SetConfig(config);
  if (!manager->Find("m").ok()) std::abort();
  service = new kiln::serving::InferenceService(manager);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (manager == nullptr) Setup();
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t eol = text.find('\n');
  kiln::serving::HttpRequest req;
  req.target = text.substr(0, eol);
  req.body = eol == std::string::npos ? "" : text.substr(eol + 1);
  const kiln::serving::RestApi api(service);
  for (const char* method : {"POST", "GET"}) {
    req.method = method;
    const kiln::serving::HttpResponse r = api.Handle(req);
    const nlohmann::json body = nlohmann::json::parse(r.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) std::abort();
    if (r.status != 200 && r.status != 400 && r.status != 404 && r.status != 405 &&
        r.status != 500 && r.status != 501 && r.status != 503) {
      std::abort();
    }
  }
  return 0;
}
