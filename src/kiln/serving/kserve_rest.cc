#include "kiln/serving/kserve_rest.h"

#include <charconv>

#include "kiln/base/build_info.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/train/json_rows.h"
#include "nlohmann/json.hpp"

namespace kiln::serving {
namespace {

using Json = nlohmann::json;

HttpResponse Reply(int status, const Json& body) { return JsonResponse(status, body); }
HttpResponse Error(const absl::Status& s) { return ErrorResponse(s); }

std::string Datatype(const std::string& dtype) {
  if (dtype == "int64") return "INT64";
  if (dtype == "float32") return "FP32";
  if (dtype == "float64") return "FP64";
  if (dtype == "string") return "BYTES";
  return "BYTES";
}

Json Tensors(const Json& list) {
  Json out = Json::array();
  if (!list.is_array()) return out;
  for (const Json& t : list) {
    out.push_back({{"name", t.value("name", "")},
                   {"datatype", Datatype(t.value("dtype", ""))},
                   {"shape", t.value("shape", Json::array({-1}))}});
  }
  return out;
}

// Flattens nested lists (row-major data may come nested; at most [N, 1] deep here).
absl::Status Flatten(const Json& v, Json* out, int depth = 0) {
  if (!v.is_array()) {
    out->push_back(v);
    return absl::OkStatus();
  }
  if (depth >= 2) return absl::InvalidArgumentError("tensor data nested deeper than its shape");
  for (const Json& e : v) KILN_RETURN_IF_ERROR(Flatten(e, out, depth + 1));
  return absl::OkStatus();
}

HttpResponse Infer(const ModelManager& m, const std::string& model, std::optional<int64_t> version,
                   const std::string& body) {
  auto predictor = m.Find(model, version);
  if (!predictor.ok()) return Error(predictor.status());
  Json request = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded() || !request.is_object() || !request.contains("inputs") ||
      !request["inputs"].is_array()) {
    return Error(absl::InvalidArgumentError(
        "the request body must be a JSON object with an \"inputs\" list of tensors"));
  }
  // Columns of N values each, then rows for the signature's features.
  Json columns = Json::object();
  int64_t rows = -1;
  for (const Json& t : request["inputs"]) {
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("data") ||
        !t.contains("shape") || !t["shape"].is_array()) {
      return Error(absl::InvalidArgumentError("each input needs name, shape, datatype and data"));
    }
    const std::string name = t["name"].get<std::string>();
    const Json& shape = t["shape"];
    if (shape.empty() || shape.size() > 2 || !shape[0].is_number_integer() ||
        (shape.size() == 2 && shape[1] != 1)) {
      return Error(absl::InvalidArgumentError(
          StrCat("input '", name, "': shape ", shape.dump(), "; kiln takes [N] or [N, 1]")));
    }
    Json flat = Json::array();
    if (absl::Status st = Flatten(t["data"], &flat); !st.ok()) return Error(st);
    const int64_t n = shape[0].get<int64_t>();
    if (n < 0 || static_cast<int64_t>(flat.size()) != n) {
      return Error(absl::InvalidArgumentError(
          StrCat("input '", name, "': shape ", shape.dump(), " but ", flat.size(), " values")));
    }
    if (rows >= 0 && n != rows) {
      return Error(absl::InvalidArgumentError(
          StrCat("input '", name, "' has ", n, " rows; the others ", rows)));
    }
    rows = n;
    columns[name] = std::move(flat);
  }
  Json instances = Json::array();
  for (int64_t i = 0; i < std::max<int64_t>(rows, 0); ++i) {
    Json row = Json::object();
    for (const auto& [name, col] : columns.items()) row[name] = col[i];
    instances.push_back(std::move(row));
  }
  auto batch = train::RowsFromJson(instances, (*predictor)->inputs());
  if (!batch.ok()) return Error(batch.status());
  std::vector<float> scores;
  if (absl::Status st = (*predictor)->Predict(*batch, &scores); !st.ok()) return Error(st);
  const size_t n = batch->num_rows;
  const size_t k = n == 0 ? 0 : scores.size() / n;
  Json outputs = Json::array();
  const std::vector<int64_t> ids = ClassIds((*predictor)->task(), scores, n);
  switch ((*predictor)->task()) {
    case model::Task::kBinary:
      outputs.push_back(
          {{"name", "scores"}, {"datatype", "FP32"}, {"shape", {n}}, {"data", scores}});
      outputs.push_back(
          {{"name", "class_ids"}, {"datatype", "INT64"}, {"shape", {n}}, {"data", ids}});
      break;
    case model::Task::kMulticlass:
      outputs.push_back(
          {{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {n, k}}, {"data", scores}});
      outputs.push_back(
          {{"name", "class_ids"}, {"datatype", "INT64"}, {"shape", {n}}, {"data", ids}});
      break;
    case model::Task::kRegression:
      outputs.push_back(
          {{"name", "predictions"}, {"datatype", "FP32"}, {"shape", {n}}, {"data", scores}});
      break;
  }
  // Only the outputs asked for, when the request names some.
  if (request.contains("outputs") && request["outputs"].is_array() && !request["outputs"].empty()) {
    Json wanted = Json::array();
    for (const Json& o : request["outputs"]) {
      const std::string name = o.is_object() ? o.value("name", "") : "";
      auto it = std::find_if(outputs.begin(), outputs.end(),
                             [&](const Json& t) { return t["name"] == name; });
      if (it == outputs.end()) {
        return Error(absl::InvalidArgumentError(StrCat("the model has no output '", name, "'")));
      }
      wanted.push_back(*it);
    }
    outputs = std::move(wanted);
  }
  auto served_version = version;
  if (!served_version) {
    auto status = m.Status(model);
    if (status.ok()) {
      for (const VersionStatus& s : *status) {
        if (s.state == VersionState::kAvailable) served_version = s.version;
      }
    }
  }
  Json reply = {{"model_name", model}, {"outputs", outputs}};
  if (served_version) reply["model_version"] = StrCat(*served_version);
  if (request.contains("id") && request["id"].is_string()) reply["id"] = request["id"];
  return Reply(200, reply);
}

}  // namespace

HttpResponse HandleKserveRest(const ModelManager& m, const HttpRequest& request) {
  std::string_view path = request.target;
  if (size_t q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  const bool get = request.method == "GET";
  if (path == "/v2/health/live") return Reply(get ? 200 : 405, Json::object());
  if (path == "/v2/health/ready") {
    bool ready = true;
    for (const std::string& name : m.Models()) ready = ready && m.Find(name).ok();
    return Reply(ready ? 200 : 503, Json::object());
  }
  if (path == "/v2" || path == "/v2/") {
    return Reply(
        200,
        {{"name", "kiln"}, {"version", std::string(KilnVersion())}, {"extensions", Json::array()}});
  }
  constexpr std::string_view kModels = "/v2/models/";
  if (path.rfind(kModels, 0) != 0) {
    return Error(absl::NotFoundError(StrCat("no such endpoint: ", path)));
  }
  std::vector<std::string_view> parts = SplitPath(path.substr(kModels.size()));
  std::string verb;
  if (parts.size() > 1 && (parts.back() == "ready" || parts.back() == "infer")) {
    verb = parts.back();
    parts.pop_back();
  }
  if (parts.empty() || (parts.size() != 1 && parts.size() != 3) ||
      (parts.size() == 3 && parts[1] != "versions")) {
    return Error(absl::InvalidArgumentError(
        "malformed path; expected /v2/models/NAME[/versions/V][/ready|/infer]"));
  }
  const std::string model(parts[0]);
  if (absl::Status st = ValidateName("model name", model); !st.ok()) return Error(st);
  std::optional<int64_t> version;
  if (parts.size() == 3) {
    auto v = ParseVersion(parts[2]);
    if (!v.ok()) return Error(v.status());
    version = *v;
  }
  if (verb == "infer") {
    if (request.method != "POST") return Error(absl::UnimplementedError("infer takes POST"));
    return Infer(m, model, version, request.body);
  }
  auto predictor = m.Find(model, version);
  if (verb == "ready") {
    if (!predictor.ok() && absl::IsNotFound(predictor.status()) && !m.Status(model).ok()) {
      return Error(predictor.status());
    }
    return Reply(predictor.ok() ? 200 : 503, Json::object());
  }
  if (!predictor.ok()) return Error(predictor.status());
  Json versions = Json::array();
  if (auto status = m.Status(model); status.ok()) {
    for (const VersionStatus& s : *status) {
      if (s.state == VersionState::kAvailable) versions.push_back(StrCat(s.version));
    }
  }
  const model::BundleManifest& manifest = (*predictor)->manifest();
  return Reply(200, {{"name", model},
                     {"versions", versions},
                     {"platform", StrCat("kiln_", manifest.backend)},
                     {"inputs", Tensors(manifest.signature.value("inputs", Json::array()))},
                     {"outputs", Tensors(manifest.signature.value("outputs", Json::array()))}});
}

}  // namespace kiln::serving
