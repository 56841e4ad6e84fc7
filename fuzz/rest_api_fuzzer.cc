// libFuzzer target: arbitrary bytes as an HTTP request to kiln serve's REST handlers (TF
// Serving v1 and KServe v2): the first line is the path, then any header lines
// ("Name: value", e.g. Inference-Header-Content-Length for KServe's binary tensor data),
// then the body; sent as POST and as GET, against a real gbdt model trained once at
// start-up. Every answer must have a status from TF Serving's list and be a JSON object, or
// (binary outputs) a JSON object of the length Inference-Header-Content-Length gives
// followed by exactly the bytes its outputs' binary_data_size add up to, or (the metrics
// paths) Prometheus text; nothing may crash.
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

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

// A header line: a token of letters, digits and '-' starting with a letter, then ": ".
bool IsHeaderLine(std::string_view line) {
  const size_t colon = line.find(": ");
  if (colon == std::string_view::npos || colon == 0 ||
      !std::isalpha(static_cast<unsigned char>(line[0])))
    return false;
  for (char c : line.substr(0, colon)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

// A binary answer: Inference-Header-Content-Length bytes of JSON whose outputs account
// for the rest of the body.
void CheckBinaryAnswer(const kiln::serving::HttpResponse& r, const std::string& length) {
  if (r.status != 200 || r.content_type != "application/octet-stream") std::abort();
  size_t n = 0;
  auto res = std::from_chars(length.data(), length.data() + length.size(), n);
  if (res.ec != std::errc() || res.ptr != length.data() + length.size() || n > r.body.size()) {
    std::abort();
  }
  const nlohmann::json head = nlohmann::json::parse(r.body.substr(0, n), nullptr, false);
  if (head.is_discarded() || !head.is_object() || !head["outputs"].is_array()) std::abort();
  size_t binary = 0;
  for (const nlohmann::json& o : head["outputs"]) {
    if (!o.contains("parameters")) {
      if (!o.contains("data")) std::abort();
      continue;
    }
    if (o.contains("data")) std::abort();
    binary += o["parameters"]["binary_data_size"].get<size_t>();
  }
  if (binary != r.body.size() - n) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (manager == nullptr) Setup();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  kiln::serving::HttpRequest req;
  size_t eol = text.find('\n');
  req.target = std::string(text.substr(0, eol));
  size_t pos = eol == std::string_view::npos ? text.size() : eol + 1;
  while (pos < text.size()) {
    eol = text.find('\n', pos);
    const std::string_view line =
        text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    if (!IsHeaderLine(line)) break;
    const size_t colon = line.find(": ");
    req.headers.emplace_back(std::string(line.substr(0, colon)),
                             std::string(line.substr(colon + 2)));
    pos = eol == std::string_view::npos ? text.size() : eol + 1;
  }
  req.body = std::string(text.substr(pos));
  const kiln::serving::RestApi api(service);
  for (const char* method : {"POST", "GET"}) {
    req.method = method;
    const kiln::serving::HttpResponse r = api.Handle(req);
    if (r.status != 200 && r.status != 400 && r.status != 404 && r.status != 405 &&
        r.status != 500 && r.status != 501 && r.status != 503) {
      std::abort();
    }
    std::string length;
    for (const auto& [name, value] : r.headers) {
      if (name != "Inference-Header-Content-Length") std::abort();  // the only one sent
      length = value;
    }
    if (!r.headers.empty()) {
      CheckBinaryAnswer(r, length);
      continue;
    }
    const std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
    if (path == "/metrics" || path == "/monitoring/prometheus/metrics") {
      if (r.status != 200 || r.content_type.rfind("text/plain", 0) != 0) std::abort();
      continue;  // Prometheus text
    }
    const nlohmann::json body = nlohmann::json::parse(r.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) std::abort();
  }
  return 0;
}
