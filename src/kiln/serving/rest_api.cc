#include "kiln/serving/rest_api.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <future>
#include <memory>
#include <optional>

#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/serving/fast_rows.h"
#include "kiln/serving/kserve_rest.h"
#include "kiln/train/json_rows.h"
#include "nlohmann/json.hpp"

namespace kiln::serving {

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return v;
    }
  }
  return {};
}
namespace {

using Json = nlohmann::json;

HttpResponse Error(const absl::Status& status) { return ErrorResponse(status); }
HttpResponse Ok(const Json& body) { return JsonResponse(200, body); }

// /v1/models/NAME[/versions/V | /labels/L][/metadata | :predict]
struct Route {
  std::string model;
  std::optional<int64_t> version;
  std::string label;
  std::string action;  // "", "metadata", "predict", or another ":verb"
};

absl::StatusOr<Route> ParseRoute(std::string_view path) {
  constexpr std::string_view kPrefix = "/v1/models/";
  if (path.rfind(kPrefix, 0) != 0) {
    return absl::NotFoundError(StrCat("no such endpoint: ", path));
  }
  path.remove_prefix(kPrefix.size());
  Route r;
  if (size_t colon = path.rfind(':'); colon != std::string_view::npos) {
    r.action = std::string(path.substr(colon + 1));
    path = path.substr(0, colon);
  }
  std::vector<std::string_view> parts = SplitPath(path);
  if (!parts.empty() && parts.back() == "metadata" && r.action.empty()) {
    r.action = "metadata";
    parts.pop_back();
  }
  if (parts.empty() || parts.size() == 2 || parts.size() > 3) {
    return absl::InvalidArgumentError(
        StrCat("malformed path; expected /v1/models/NAME[/versions/V|/labels/L]"
               "[/metadata|:predict]"));
  }
  r.model = std::string(parts[0]);
  KILN_RETURN_IF_ERROR(ValidateName("model name", r.model));
  if (parts.size() == 3) {
    if (parts[1] == "versions") {
      KILN_ASSIGN_OR_RETURN(r.version, ParseVersion(parts[2]));
    } else if (parts[1] == "labels") {
      r.label = std::string(parts[2]);
      KILN_RETURN_IF_ERROR(ValidateName("label", r.label));
    } else {
      return absl::InvalidArgumentError(
          StrCat("expected versions or labels, got '", parts[1], "'"));
    }
  }
  return r;
}

std::string ErrorCodeName(absl::StatusCode code) {
  std::string name = absl::StatusCodeToString(code);  // e.g. "INVALID_ARGUMENT"
  return name;
}

HttpResponse StatusResponse(const ModelManager& m, const Route& r) {
  auto status = m.Status(r.model);
  if (!status.ok()) return Error(status.status());
  std::optional<int64_t> only = r.version;
  if (!r.label.empty()) {
    auto resolved = m.LabelVersion(r.model, r.label);
    if (!resolved.ok()) return Error(resolved.status());
    only = *resolved;
  }
  Json list = Json::array();
  for (const VersionStatus& s : *status) {
    if (only && s.version != *only) continue;
    list.push_back({{"version", StrCat(s.version)},
                    {"state", std::string(VersionStateName(s.state))},
                    {"status",
                     {{"error_code", ErrorCodeName(s.error.code())},
                      {"error_message", std::string(s.error.message())}}}});
  }
  if (only && list.empty()) {
    return Error(absl::NotFoundError(StrCat("model '", r.model, "' has no version ", *only)));
  }
  return Ok({{"model_version_status", list}});
}

std::string TfDtype(const std::string& dtype) {
  if (dtype == "int64") return "DT_INT64";
  if (dtype == "float32") return "DT_FLOAT";
  if (dtype == "float64") return "DT_DOUBLE";
  if (dtype == "string") return "DT_STRING";
  return "DT_INVALID";
}

Json Tensors(const Json& list) {
  Json out = Json::object();
  if (!list.is_array()) return out;
  for (const Json& t : list) {
    Json dims = Json::array();
    for (const Json& d : t.value("shape", Json::array())) {
      dims.push_back({{"size", StrCat(d.is_number_integer() ? d.get<int64_t>() : -1)}});
    }
    const std::string name = t.value("name", "");
    out[name] = {{"name", name},
                 {"dtype", TfDtype(t.value("dtype", ""))},
                 {"tensor_shape", {{"dim", dims}}}};
  }
  return out;
}

InferTarget Target(const Route& r, const HttpRequest& request) {
  return {r.model, r.version, r.label,
          [&request](std::string_view name) { return std::string(request.Header(name)); }};
}

// The rows of one predict request, with storage used before (a batch of a few rows is
// otherwise some five allocations per input). Without batching a request is scored
// before RunAsync returns, so one PredictRows per thread will do; with batching a request
// holds its rows until its batch has run, and they come from a pool.
std::shared_ptr<PredictRows> RowsFor(const InferenceService& s) {
  if (s.batching()) return PooledPredictRows();
  thread_local PredictRows rows;
  return std::shared_ptr<PredictRows>(&rows, [](PredictRows* r) { ShrinkPredictRows(r); });
}

void Predict(const InferenceService& s, const Route& r, const HttpRequest& http,
             const HttpReply& reply) {
  auto resolved = s.Resolve(Target(r, http));
  if (!resolved.ok()) return reply(Error(resolved.status()));
  std::shared_ptr<PredictRows> rows = RowsFor(s);
  const model::Task task = resolved->predictor->task();
  if (absl::Status st = ParsePredictRows(http.body, resolved->predictor->inputs(), rows.get());
      !st.ok()) {
    return reply(Error(st));
  }
  std::shared_ptr<const data::Batch> batch(rows, &rows->batch);
  s.RunAsync(*resolved, std::move(batch),
             [rows = std::move(rows), task, version = resolved->version, reply](
                 absl::Status st, std::vector<float> scores) {
               if (!st.ok()) return reply(Error(st));
               HttpResponse out;
               out.body = PredictResponseBody(task, scores, rows->batch.num_rows, rows->columns);
               out.model_version = version;
               reply(std::move(out));
             });
}

// :classify and :regress take {"examples": [{feature: value, ...}, ...]} (optionally with
// "context": features every example shares) and answer {"result": ...}: per example the
// [class, score] pairs, or the regression value.
void ClassifyOrRegress(const InferenceService& s, const Route& r, const HttpRequest& http,
                       bool classify, const HttpReply& reply) {
  const std::string& body = http.body;
  auto resolved = s.Resolve(Target(r, http));
  if (!resolved.ok()) return reply(Error(resolved.status()));
  const train::Predictor& predictor = *resolved->predictor;
  const model::Task task = predictor.task();
  if (classify == (task == model::Task::kRegression)) {
    return reply(Error(absl::InvalidArgumentError(
        StrCat("model '", r.model, "' is a ", model::TaskName(task), " model; use ",
               task == model::Task::kRegression ? ":regress" : ":classify", " or :predict"))));
  }
  Json request = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded() || !request.is_object() || !request.contains("examples") ||
      !request["examples"].is_array()) {
    return reply(
        Error(absl::InvalidArgumentError("the request needs \"examples\": a list of objects")));
  }
  Json examples = std::move(request["examples"]);
  if (request.contains("context")) {
    if (!request["context"].is_object()) {
      return reply(Error(absl::InvalidArgumentError("\"context\" must be an object of features")));
    }
    for (Json& e : examples) {
      if (!e.is_object()) continue;  // RowsFromJson names the bad row
      for (const auto& [k, v] : request["context"].items()) {
        if (!e.contains(k)) e[k] = v;
      }
    }
  }
  if (absl::Status st = DecodeB64Values(&examples); !st.ok()) return reply(Error(st));
  auto batch = train::RowsFromJson(examples, predictor.inputs());
  if (!batch.ok()) return reply(Error(batch.status()));
  const size_t n = batch->num_rows;
  s.RunAsync(*resolved, std::make_shared<const data::Batch>(*std::move(batch)),
             [predictor = resolved->predictor, version = resolved->version, task, n, classify,
              reply](absl::Status st, std::vector<float> scores) {
               if (!st.ok()) return reply(Error(st));
               Json result = Json::array();
               const std::vector<std::string>& classes = predictor->classes();
               for (size_t i = 0; i < n; ++i) {
                 if (!classify) {
                   result.push_back(scores[i]);
                 } else if (task == model::Task::kBinary) {
                   result.push_back(Json::array({Json::array({classes.at(0), 1 - scores[i]}),
                                                 Json::array({classes.at(1), scores[i]})}));
                 } else {
                   Json pairs = Json::array();
                   const size_t k = classes.size();
                   for (size_t c = 0; c < k; ++c) {
                     pairs.push_back(Json::array({classes[c], scores[i * k + c]}));
                   }
                   result.push_back(std::move(pairs));
                 }
               }
               HttpResponse out = Ok({{"result", result}});
               out.model_version = version;
               reply(std::move(out));
             });
}

HttpResponse Metadata(const ModelManager& m, const Route& r) {
  auto predictor = m.Find(r.model, r.version, r.label);
  if (!predictor.ok()) return Error(predictor.status());
  const model::BundleManifest& manifest = (*predictor)->manifest();
  Json outputs = manifest.signature.value("outputs", Json::array());
  Json sig = {{"inputs", Tensors(manifest.signature.value("inputs", Json::array()))},
              {"outputs", Tensors(outputs)},
              {"method_name", "tensorflow/serving/predict"}};
  Json spec = {{"name", r.model}, {"signature_name", ""}};
  if (r.version) spec["version"] = StrCat(*r.version);
  return Ok({{"model_spec", spec},
             {"metadata",
              {{"signature_def", {{"signature_def", {{"serving_default", sig}}}}},
               {"kiln",
                {{"model_type", manifest.model_type},
                 {"backend", manifest.backend},
                 {"task", std::string(model::TaskName((*predictor)->task()))},
                 {"classes", (*predictor)->classes()}}}}}});
}

// A v1 request whose path parsed.
void DispatchV1(const InferenceService& s, const HttpRequest& request, const Route& route,
                const HttpReply& reply) {
  const ModelManager& m = s.manager();
  const bool reads = route.action.empty() || route.action == "metadata";
  const bool known =
      reads || route.action == "predict" || route.action == "classify" || route.action == "regress";
  if (!known) {
    return reply(Error(absl::UnimplementedError(StrCat(
        "unsupported method :", route.action, " (kiln serves :predict, :classify, :regress)"))));
  }
  const char* method = reads ? "GET" : "POST";
  if (request.method != method) {
    return reply(Error(
        absl::UnimplementedError(StrCat(request.method, " is not supported here; use ", method))));
  }
  if (route.action.empty()) return reply(StatusResponse(m, route));
  if (route.action == "metadata") return reply(Metadata(m, route));
  if (route.action == "predict") return Predict(s, route, request, reply);
  ClassifyOrRegress(s, route, request, route.action == "classify", reply);
}

}  // namespace

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  for (size_t start = 0; start <= path.size();) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

absl::StatusOr<int64_t> ParseVersion(std::string_view text) {
  int64_t v = 0;
  auto res = std::from_chars(text.data(), text.data() + text.size(), v);
  if (res.ec != std::errc() || res.ptr != text.data() + text.size() || v < 0) {
    return absl::InvalidArgumentError(StrCat("version '", text, "' is not a number"));
  }
  return v;
}

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

HttpResponse ErrorResponse(const absl::Status& status) {
  return JsonResponse(HttpStatusFor(status), {{"error", std::string(status.message())}});
}

std::vector<int64_t> ClassIds(model::Task task, const std::vector<float>& scores, size_t rows) {
  std::vector<int64_t> ids;
  if (task == model::Task::kRegression || rows == 0) return ids;
  const size_t k = scores.size() / rows;
  for (size_t i = 0; i < rows; ++i) {
    if (task == model::Task::kBinary) {
      ids.push_back(scores[i] >= 0.5f ? 1 : 0);
      continue;
    }
    const float* row = scores.data() + i * k;
    ids.push_back(std::max_element(row, row + k) - row);
  }
  return ids;
}

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

RestApi::RestApi(const InferenceService* service)
    : service_(service), manager_(&service->manager()) {
  metrics_.DeclareCounter("kiln_requests_total",
                          "Requests answered, by model, version (the one that answered, else the "
                          "one asked for), API and HTTP status.");
  metrics_.DeclareHistogram("kiln_request_duration_seconds",
                            "Time from a parsed request to its response, by model and API.",
                            {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                             0.25, 0.5, 1, 2.5, 5});
  metrics_.DeclareGauge("kiln_model_versions_available", "Versions being served, by model.");
  metrics_.DeclareGauge("kiln_model_version_load_failures",
                        "Versions that failed to load (and are not served), by model.");
}

HttpResponse AwaitReply(const std::function<void(HttpReply)>& start) {
  std::promise<HttpResponse> answer;
  std::future<HttpResponse> response = answer.get_future();
  start([&answer](HttpResponse r) { answer.set_value(std::move(r)); });
  return response.get();
}

HttpResponse RestApi::Handle(const HttpRequest& request) const {
  return AwaitReply([&](HttpReply reply) { HandleAsync(request, std::move(reply)); });
}

void RestApi::HandleAsync(HttpRequest request, HttpReply reply) const {
  std::string_view path = request.target;
  if (size_t q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  if (path == "/metrics" || path == "/monitoring/prometheus/metrics") {
    for (const std::string& name : manager_->Models()) {
      auto status = manager_->Status(name);
      if (!status.ok()) continue;
      int available = 0, failed = 0;
      for (const VersionStatus& s : *status) {
        available += s.state == VersionState::kAvailable;
        failed += s.state == VersionState::kEnd && !s.error.ok();
      }
      metrics_.Set("kiln_model_versions_available", {{"model", name}}, available);
      metrics_.Set("kiln_model_version_load_failures", {{"model", name}}, failed);
    }
    HttpResponse r;
    r.body = metrics_.Expose() + service_->ExposeMetrics();
    r.content_type = "text/plain; version=0.0.4";
    return reply(std::move(r));
  }
  // The server's floor for benchmarks: HTTP in and out, no model.
  if (path == "/kiln/noop") return reply(HttpResponse{.status = 200, .body = "{}"});
  // Traffic splits, canary windows and rollbacks: all models, or one.
  if (path == "/kiln/traffic") return reply(JsonResponse(200, service_->TrafficJson()));
  if (path.rfind("/kiln/traffic/", 0) == 0) {
    const std::string model(path.substr(std::string_view("/kiln/traffic/").size()));
    if (absl::Status st = ValidateName("model name", model); !st.ok()) {
      return reply(ErrorResponse(st));
    }
    Json t = service_->TrafficJson(model);
    if (t.empty()) {
      return reply(ErrorResponse(
          absl::NotFoundError(StrCat("model '", model, "' has no traffic split configured"))));
    }
    return reply(JsonResponse(200, t));
  }
  // The path is parsed once, for dispatch and for the metric labels (kept to a bounded
  // set of values: unparsed paths and unknown verbs get "" / "other").
  const bool v2 = path == "/v2" || path.rfind("/v2/", 0) == 0;
  std::string model, version = "latest", api;
  absl::StatusOr<Route> route = absl::NotFoundError("");
  if (v2) {
    const std::vector<std::string_view> p = SplitPath(path);  // "", "v2", "models", M, ...
    api = p.back() == "infer" ? "v2_infer" : "v2_other";
    if (p.size() >= 4 && p[2] == "models" && ValidateName("model", p[3]).ok()) model = p[3];
    if (p.size() >= 6 && p[4] == "versions" && ParseVersion(p[5]).ok()) version = p[5];
  } else {
    route = ParseRoute(path);
    api = "v1_other";
    if (route.ok()) {
      model = route->model;
      if (route->version) version = StrCat(*route->version);
      if (!route->label.empty()) version = "label:" + route->label;
      for (const char* a : {"", "metadata", "predict", "classify", "regress"}) {
        if (route->action == a) api = StrCat("v1_", *a ? a : "status");
      }
    }
  }
  // Counted when answered, on whichever thread answers.
  HttpReply counted = [this, model = std::move(model), version = std::move(version),
                       api = std::move(api), start = std::chrono::steady_clock::now(),
                       reply = std::move(reply)](HttpResponse r) {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // Answered by a model: the version that answered (a traffic split picks it).
    const std::string v = r.model_version >= 0 ? StrCat(r.model_version) : version;
    metrics_.Add("kiln_requests_total",
                 {{"model", model}, {"version", v}, {"api", api}, {"code", StrCat(r.status)}});
    metrics_.Observe("kiln_request_duration_seconds", {{"model", model}, {"api", api}}, secs);
    reply(std::move(r));
  };
  if (v2) return HandleKserveRestAsync(*service_, request, counted);
  if (!route.ok()) return counted(Error(route.status()));
  DispatchV1(*service_, request, *route, counted);
}

}  // namespace kiln::serving
