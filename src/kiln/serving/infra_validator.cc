#include "kiln/serving/infra_validator.h"

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <system_error>
#include <thread>

#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/serving/http_server.h"
#include "kiln/serving/inference.h"
#include "kiln/serving/manager.h"
#include "kiln/serving/rest_api.h"
#include "kiln/serving/webhook.h"

namespace kiln::serving {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr const char* kModel = "candidate";
constexpr size_t kMaxReported = 5;  // failing requests described one by one

// A base path holding the bundle as version 1 (a symbolic link), removed on destruction.
class TempBasePath {
 public:
  static absl::StatusOr<std::unique_ptr<TempBasePath>> Create(const std::string& bundle_dir) {
    std::error_code ec;
    std::string tmpl = (fs::temp_directory_path(ec) / "kiln-infra-XXXXXX").string();
    if (ec || mkdtemp(tmpl.data()) == nullptr) {
      return absl::InternalError("cannot create a temporary directory for the server");
    }
    auto base = std::unique_ptr<TempBasePath>(new TempBasePath(tmpl));
    fs::create_directory_symlink(fs::absolute(bundle_dir, ec), fs::path(tmpl) / "1", ec);
    if (ec) return absl::InternalError(StrCat("cannot link the bundle: ", ec.message()));
    return base;
  }
  ~TempBasePath() {
    std::error_code ec;
    fs::remove_all(path_, ec);  // the link, not what it points to
  }
  const std::string& path() const { return path_; }

 private:
  explicit TempBasePath(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Why `prediction` is not a usable answer, or "" when every number in it is finite.
// (A NaN or infinite score comes out of JSON as null.)
std::string Unusable(const Json& v) {
  if (v.is_null()) return "a score is NaN or infinite";
  if (v.is_number_float() && !std::isfinite(v.get<double>())) return "a score is not finite";
  if (v.is_array() || v.is_object()) {
    for (const Json& x : v) {
      if (std::string why = Unusable(x); !why.empty()) return why;
    }
  }
  return "";
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

Json InfraBlessingJson(const InfraValidationResult& r, const std::string& model) {
  return {{"blessed", r.blessed},
          {"status", r.blessed ? "INFRA_BLESSED" : "INFRA_NOT_BLESSED"},
          {"failing_checks", r.failing_checks},
          {"model", model},
          {"requests", r.requests},
          {"failed_requests", r.failed_requests},
          {"load_ms", r.load_ms},
          {"p50_ms", r.p50_ms},
          {"p99_ms", r.p99_ms}};
}

absl::StatusOr<InfraValidationResult> InfraValidate(Env* env, const std::string& bundle_dir,
                                                    const InfraValidationOptions& options) {
  if (options.requests < 1 || !(options.max_p99_ms > 0)) {
    return absl::InvalidArgumentError("infra validation needs requests >= 1 and max_p99_ms > 0");
  }
  InfraValidationResult result;
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<TempBasePath> base, TempBasePath::Create(bundle_dir));

  // Loaded as the server loads a version: checksums, key, warm-up rows.
  ModelManager manager(env, ManagerOptions{.key = options.key});
  const auto load_start = std::chrono::steady_clock::now();
  ServerConfig config;
  config.models.push_back({kModel, base->path(), {}, {}});
  manager.SetConfig(config);
  std::shared_ptr<const train::Predictor> predictor;
  for (;;) {
    auto found = manager.Find(kModel);
    if (found.ok()) {
      predictor = *found;
      break;
    }
    auto status = manager.Status(kModel);
    if (status.ok() && !status->empty() && status->back().state == VersionState::kEnd) {
      result.failing_checks.push_back(
          StrCat("the model does not load: ", status->back().error.message()));
      return result;
    }
    if (MsSince(load_start) > static_cast<double>(options.load_timeout.count())) {
      result.failing_checks.push_back(
          StrCat("the model did not load within ", options.load_timeout.count(), " ms"));
      return result;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    manager.Poll();
  }
  result.load_ms = MsSince(load_start);

  InferenceService service(&manager);
  RestApi api(&service);
  HttpServerOptions http;
  http.host = "127.0.0.1";
  http.port = 0;
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<HttpServer> server,
                        HttpServer::StartAsync(http, [&api](HttpRequest r, HttpReply reply) {
                          api.HandleAsync(std::move(r), std::move(reply));
                        }));
  const std::string url =
      StrCat("http://127.0.0.1:", server->port(), "/v1/models/", kModel, ":predict");

  std::vector<Json> rows;
  for (const Json& r : predictor->warmup_inputs()) rows.push_back(r);
  rows.insert(rows.end(), options.rows.begin(), options.rows.end());
  if (rows.empty()) {
    result.failing_checks.push_back("no rows to send: the bundle has no warm-up rows; give data");
    return result;
  }
  const int64_t n = std::max<int64_t>(options.requests, static_cast<int64_t>(rows.size()));
  std::vector<double> latencies;
  std::vector<std::string> failures;
  for (int64_t i = 0; i < n; ++i) {
    const std::string body = Json{{"instances", Json::array({rows[i % rows.size()]})}}.dump();
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<HttpResult> answer = HttpPostJson(url, body, std::chrono::seconds(30));
    latencies.push_back(MsSince(start));
    ++result.requests;
    std::string why;
    if (!answer.ok()) {
      why = std::string(answer.status().message());
    } else if (answer->status != 200) {
      why = StrCat("answered ", answer->status, ": ", answer->body);
    } else {
      const Json reply = Json::parse(answer->body, nullptr, /*allow_exceptions=*/false);
      if (!reply.is_object() || !reply.contains("predictions") ||
          !reply["predictions"].is_array() || reply["predictions"].size() != 1) {
        why = StrCat("not one prediction for one row: ", answer->body);
      } else {
        why = Unusable(reply["predictions"][0]);
      }
    }
    if (!why.empty()) {
      ++result.failed_requests;
      if (failures.size() < kMaxReported) {
        failures.push_back(StrCat("row ", i % rows.size(), ": ", why));
      }
    }
  }
  server->Shutdown(std::chrono::seconds(5));
  manager.Stop();
  result.p50_ms = Percentile(latencies, 0.50);
  result.p99_ms = Percentile(latencies, 0.99);
  if (result.failed_requests > 0) {
    result.failing_checks.push_back(StrCat(result.failed_requests, " of ", result.requests,
                                           " requests failed (", StrJoin(failures, "; "), ")"));
  }
  if (result.p99_ms > options.max_p99_ms) {
    result.failing_checks.push_back(StrCat("p99 latency ", result.p99_ms,
                                           " ms is over the bound of ", options.max_p99_ms, " ms"));
  }
  result.blessed = result.failing_checks.empty();
  return result;
}

}  // namespace kiln::serving
