#include "kiln/serving/kserve_rest.h"

#include <charconv>

#include "kiln/base/build_info.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/serving/tensors.h"
#include "nlohmann/json.hpp"

namespace kiln::serving {
namespace {

using Json = nlohmann::json;

HttpResponse Reply(int status, const Json& body) { return JsonResponse(status, body); }
HttpResponse Error(const absl::Status& s) { return ErrorResponse(s); }

Json Tensors(const Json& list) {
  Json out = Json::array();
  for (const TensorMetadata& t : SignatureTensors(list)) {
    out.push_back({{"name", t.name}, {"datatype", t.datatype}, {"shape", t.shape}});
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

// One tensor of a request, {"name", "shape", "datatype", "data"}, its data flat or nested
// (row-major); a null value is missing.
absl::StatusOr<InputTensor> TensorFromJson(const Json& t) {
  if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("data") ||
      !t.contains("shape") || !t["shape"].is_array() || !t.contains("datatype") ||
      !t["datatype"].is_string()) {
    return absl::InvalidArgumentError("each input needs name, shape, datatype and data");
  }
  InputTensor out;
  out.name = t["name"].get<std::string>();
  out.datatype = t["datatype"].get<std::string>();
  for (const Json& d : t["shape"]) {
    if (!d.is_number_integer()) {
      return absl::InvalidArgumentError(StrCat("input '", out.name, "': shape ", t["shape"].dump(),
                                               " is not a list of integers"));
    }
    out.shape.push_back(d.get<int64_t>());
  }
  Json flat = Json::array();
  KILN_RETURN_IF_ERROR(Flatten(t["data"], &flat));
  const TensorValues kind = ValuesOf(out.datatype);
  if (kind == TensorValues::kUnsupported) return out;  // TensorsToBatch names the datatype
  for (size_t i = 0; i < flat.size(); ++i) {
    const Json& v = flat[i];
    const bool null = v.is_null();
    if (null) {
      out.missing.resize(flat.size());
      out.missing[i] = 1;
    }
    bool ok = null;
    switch (kind) {
      case TensorValues::kInts:
        if (out.datatype == "BOOL" ? v.is_boolean() : v.is_number_integer()) {
          if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{INT64_MAX}) {
            return absl::InvalidArgumentError(StrCat("input '", out.name, "': value ", i,
                                                     " is beyond the int64 range kiln takes"));
          }
          ok = true;
        }
        out.ints.push_back(ok && !null ? v.get<int64_t>() : 0);
        break;
      case TensorValues::kFloats:
        ok = ok || v.is_number();
        out.floats.push_back(ok && !null ? v.get<double>() : 0);
        break;
      case TensorValues::kBytes:
        ok = ok || v.is_string();
        out.bytes.push_back(ok && !null ? v.get<std::string>() : "");
        break;
      case TensorValues::kUnsupported:
        break;
    }
    if (!ok) {
      return absl::InvalidArgumentError(StrCat("input '", out.name, "': value ", i, " is ",
                                               v.is_number_float() ? "a float" : v.type_name(),
                                               ", not ", out.datatype));
    }
  }
  return out;
}

HttpResponse Infer(const InferenceService& s, const std::string& model,
                   std::optional<int64_t> version, const HttpRequest& http) {
  const std::string& body = http.body;
  auto resolved = s.Resolve({model, version, "", [&http](std::string_view name) {
                               return std::string(http.Header(name));
                             }});
  if (!resolved.ok()) return Error(resolved.status());
  const auto* predictor = &resolved->predictor;
  Json request = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded() || !request.is_object() || !request.contains("inputs") ||
      !request["inputs"].is_array()) {
    return Error(absl::InvalidArgumentError(
        "the request body must be a JSON object with an \"inputs\" list of tensors"));
  }
  std::vector<InputTensor> tensors;
  for (const Json& t : request["inputs"]) {
    auto tensor = TensorFromJson(t);
    if (!tensor.ok()) return Error(tensor.status());
    tensors.push_back(*std::move(tensor));
  }
  auto batch = TensorsToBatch(tensors, (*predictor)->inputs());
  if (!batch.ok()) return Error(batch.status());
  std::vector<float> scores;
  if (absl::Status st = s.Run(*resolved, *batch, &scores); !st.ok()) return Error(st);
  // Only the outputs asked for, when the request names some.
  std::vector<std::string> wanted;
  if (request.contains("outputs") && request["outputs"].is_array()) {
    for (const Json& o : request["outputs"]) {
      wanted.push_back(o.is_object() ? o.value("name", "") : "");
    }
  }
  auto selected =
      SelectOutputs(OutputTensors((*predictor)->task(), scores, batch->num_rows), wanted);
  if (!selected.ok()) return Error(selected.status());
  Json outputs = Json::array();
  for (const OutputTensor& t : *selected) {
    outputs.push_back({{"name", t.name},
                       {"datatype", t.datatype},
                       {"shape", t.shape},
                       {"data", t.datatype == "FP32" ? Json(t.fp32) : Json(t.int64)}});
  }
  Json reply = {{"model_name", model}, {"outputs", outputs}};
  reply["model_version"] = StrCat(resolved->version);
  if (request.contains("id") && request["id"].is_string()) reply["id"] = request["id"];
  HttpResponse ok = Reply(200, reply);
  ok.model_version = resolved->version;
  return ok;
}

}  // namespace

HttpResponse HandleKserveRest(const InferenceService& s, const HttpRequest& request) {
  const ModelManager& m = s.manager();
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
    return Infer(s, model, version, request);
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
