#include "kiln/serving/kserve_rest.h"

#include <algorithm>
#include <charconv>
#include <memory>
#include <optional>

#include "kiln/base/build_info.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/serving/tensors.h"
#include "nlohmann/json.hpp"

namespace kiln::serving {
namespace {

using Json = nlohmann::json;

// The binary tensor data extension's header: the length of the JSON part of the body.
constexpr std::string_view kHeaderLength = "Inference-Header-Content-Length";

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

// The parameter `key` of a request, input or output's "parameters" object; null when
// there is none. Errors: "parameters" that is not an object.
absl::StatusOr<Json> Parameter(const Json& owner, std::string_view key, std::string_view who) {
  auto params = owner.find("parameters");
  if (params == owner.end()) return Json();
  if (!params->is_object()) {
    return absl::InvalidArgumentError(StrCat(who, ": \"parameters\" must be an object"));
  }
  auto value = params->find(key);
  return value == params->end() ? Json() : *value;
}

// A boolean parameter; nullopt when absent.
absl::StatusOr<std::optional<bool>> BoolParameter(const Json& owner, std::string_view key,
                                                  std::string_view who) {
  KILN_ASSIGN_OR_RETURN(const Json value, Parameter(owner, key, who));
  if (value.is_null()) return std::nullopt;
  if (!value.is_boolean()) {
    return absl::InvalidArgumentError(
        StrCat(who, ": parameter ", key, " must be true or false, not ", value.dump()));
  }
  return value.get<bool>();
}

// The request body split by the binary tensor data extension: the JSON request, and the
// binary data of the inputs after it.
struct Body {
  std::string_view json;
  std::string_view binary;
  bool split = false;  // the request carried Inference-Header-Content-Length
};

absl::StatusOr<Body> SplitBody(const HttpRequest& http) {
  const std::string_view body = http.body;
  const std::string_view value = http.Header(kHeaderLength);
  if (value.empty()) return Body{body, {}, false};
  uint64_t n = 0;
  auto res = std::from_chars(value.data(), value.data() + value.size(), n);
  if (res.ec != std::errc() || res.ptr != value.data() + value.size()) {
    return absl::InvalidArgumentError(
        StrCat(kHeaderLength, " '", value, "' is not a byte count of the JSON request"));
  }
  if (n > body.size()) {
    return absl::InvalidArgumentError(
        StrCat(kHeaderLength, " is ", n, " but the body has only ", body.size(), " bytes"));
  }
  return Body{body.substr(0, n), body.substr(n), true};
}

// Values from "data": flat or nested (row-major); a null value is missing.
absl::Status ValuesFromJson(const Json& data, InputTensor* t) {
  InputTensor& out = *t;
  Json flat = Json::array();
  KILN_RETURN_IF_ERROR(Flatten(data, &flat));
  const TensorValues kind = ValuesOf(out.datatype);
  if (kind == TensorValues::kUnsupported) return absl::OkStatus();  // TensorsToBatch names it
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
  return absl::OkStatus();
}

// One tensor of a request, {"name", "shape", "datatype"} and either "data" or, by the
// binary tensor data extension, "parameters": {"binary_data_size": S}: its values are the
// next S bytes of `binary`, which advances past them.
absl::StatusOr<InputTensor> TensorFromJson(const Json& t, const Body& body,
                                           std::string_view* binary) {
  if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("shape") ||
      !t["shape"].is_array() || !t.contains("datatype") || !t["datatype"].is_string()) {
    return absl::InvalidArgumentError(
        "each input needs name, shape, datatype and data (or parameters.binary_data_size)");
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
  const std::string who = StrCat("input '", out.name, "'");
  KILN_ASSIGN_OR_RETURN(const Json size, Parameter(t, "binary_data_size", who));
  if (size.is_null()) {
    if (!t.contains("data")) {
      return absl::InvalidArgumentError(
          StrCat(who, " has neither data nor parameters.binary_data_size"));
    }
    KILN_RETURN_IF_ERROR(ValuesFromJson(t["data"], &out));
    return out;
  }
  if (t.contains("data")) {
    return absl::InvalidArgumentError(
        StrCat(who, " has both data and binary_data_size; give its values one way"));
  }
  if (!size.is_number_unsigned()) {  // nlohmann's type for integers >= 0
    return absl::InvalidArgumentError(
        StrCat(who, ": binary_data_size must be a byte count, not ", size.dump()));
  }
  const uint64_t n = size.get<uint64_t>();
  if (!body.split) {
    return absl::InvalidArgumentError(
        StrCat(who, " has binary_data_size ", n, ", but the request has no ", kHeaderLength,
               " header to say where the JSON ends and the binary data begins"));
  }
  if (n > binary->size()) {
    return absl::InvalidArgumentError(StrCat(who, ": binary_data_size ", n,
                                             " runs past the end of the body (", binary->size(),
                                             " bytes of binary data are left for it)"));
  }
  if (absl::Status st = DecodeRawContents(binary->substr(0, n), &out); !st.ok()) {
    return absl::InvalidArgumentError(
        StrCat(st.message(), " (the binary data of binary_data_size ", n, ")"));
  }
  binary->remove_prefix(n);
  return out;
}

// The request's outputs, each with whether it goes back as binary data (its own
// "binary_data" parameter, else the request's "binary_data_output"); all of the model's
// when the request names none.
absl::StatusOr<std::vector<std::pair<OutputTensor, bool>>> RequestedOutputs(
    const Json& request, std::vector<OutputTensor> outputs) {
  KILN_ASSIGN_OR_RETURN(const std::optional<bool> binary_data_output,
                        BoolParameter(request, "binary_data_output", "the request"));
  const bool all_binary = binary_data_output.value_or(false);
  std::vector<std::string> wanted;
  std::vector<bool> binary;
  if (request.contains("outputs") && request["outputs"].is_array()) {
    for (const Json& o : request["outputs"]) {
      wanted.push_back(o.is_object() ? o.value("name", "") : "");
      KILN_ASSIGN_OR_RETURN(
          const std::optional<bool> flag,
          BoolParameter(o, "binary_data", StrCat("output '", wanted.back(), "'")));
      binary.push_back(flag.value_or(all_binary));
    }
  }
  KILN_ASSIGN_OR_RETURN(std::vector<OutputTensor> selected,
                        SelectOutputs(std::move(outputs), wanted));
  std::vector<std::pair<OutputTensor, bool>> out;
  for (size_t i = 0; i < selected.size(); ++i) {
    out.emplace_back(std::move(selected[i]), wanted.empty() ? all_binary : binary[i]);
  }
  return out;
}

// The answer to an infer request, from the outputs of its rows.
HttpResponse InferResponse(const Json& request, const std::string& model, int64_t version,
                           std::vector<OutputTensor> outputs_of_rows) {
  auto selected = RequestedOutputs(request, std::move(outputs_of_rows));
  if (!selected.ok()) return Error(selected.status());
  Json outputs = Json::array();
  std::string binary_out;  // the binary outputs' data, in output order
  for (const auto& [t, as_binary] : *selected) {
    Json o = {{"name", t.name}, {"datatype", t.datatype}, {"shape", t.shape}};
    if (as_binary) {
      const std::string raw = RawContents(t);
      o["parameters"] = {{"binary_data_size", raw.size()}};
      binary_out += raw;
    } else {
      o["data"] = t.datatype == "FP32" ? Json(t.fp32) : Json(t.int64);
    }
    outputs.push_back(std::move(o));
  }
  Json reply = {{"model_name", model}, {"outputs", outputs}};
  reply["model_version"] = StrCat(version);
  if (request.contains("id") && request["id"].is_string()) reply["id"] = request["id"];
  HttpResponse ok = Reply(200, reply);
  ok.model_version = version;
  const bool any_binary =
      std::any_of(selected->begin(), selected->end(), [](const auto& o) { return o.second; });
  if (any_binary) {
    ok.headers.emplace_back(std::string(kHeaderLength), StrCat(ok.body.size()));
    ok.content_type = "application/octet-stream";
    ok.body += binary_out;
  }
  return ok;
}

void Infer(const InferenceService& s, const std::string& model, std::optional<int64_t> version,
           const HttpRequest& http, const HttpReply& reply) {
  auto resolved = s.Resolve({model, version, "", [&http](std::string_view name) {
                               return std::string(http.Header(name));
                             }});
  if (!resolved.ok()) return reply(Error(resolved.status()));
  const train::Predictor& predictor = *resolved->predictor;
  auto body = SplitBody(http);
  if (!body.ok()) return reply(Error(body.status()));
  Json request = Json::parse(body->json, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded() || !request.is_object() || !request.contains("inputs") ||
      !request["inputs"].is_array()) {
    return reply(Error(absl::InvalidArgumentError(
        body->split
            ? StrCat("the first ", body->json.size(), " bytes of the body (", kHeaderLength,
                     ") must be a JSON object with an \"inputs\" list of tensors")
            : "the request body must be a JSON object with an \"inputs\" list of tensors")));
  }
  std::vector<InputTensor> tensors;
  std::string_view binary = body->binary;
  for (const Json& t : request["inputs"]) {
    auto tensor = TensorFromJson(t, *body, &binary);
    if (!tensor.ok()) return reply(Error(tensor.status()));
    tensors.push_back(*std::move(tensor));
  }
  if (!binary.empty()) {
    return reply(Error(absl::InvalidArgumentError(
        StrCat(binary.size(), " bytes of the body's ", body->binary.size(),
               " bytes of binary data belong to no input; the inputs' binary_data_size must add "
               "up to the body after the JSON request"))));
  }
  auto batch = TensorsToBatch(tensors, predictor.inputs());
  if (!batch.ok()) return reply(Error(batch.status()));
  const size_t rows = batch->num_rows;
  auto shared_request = std::make_shared<const Json>(std::move(request));
  s.RunAsync(*resolved, std::make_shared<const data::Batch>(*std::move(batch)),
             [request = std::move(shared_request), task = predictor.task(), rows, model,
              version = resolved->version, reply](absl::Status st, std::vector<float> scores) {
               if (!st.ok()) return reply(Error(st));
               reply(InferResponse(*request, model, version, OutputTensors(task, scores, rows)));
             });
}

}  // namespace

HttpResponse HandleKserveRest(const InferenceService& s, const HttpRequest& request) {
  return AwaitReply([&](HttpReply reply) { HandleKserveRestAsync(s, request, reply); });
}

void HandleKserveRestAsync(const InferenceService& s, const HttpRequest& request,
                           const HttpReply& reply) {
  const ModelManager& m = s.manager();
  std::string_view path = request.target;
  if (size_t q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  const bool get = request.method == "GET";
  if (path == "/v2/health/live") return reply(Reply(get ? 200 : 405, Json::object()));
  if (path == "/v2/health/ready") {
    bool ready = true;
    for (const std::string& name : m.Models()) ready = ready && m.Find(name).ok();
    return reply(Reply(ready ? 200 : 503, Json::object()));
  }
  if (path == "/v2" || path == "/v2/") {
    return reply(Reply(200, {{"name", "kiln"},
                             {"version", std::string(KilnVersion())},
                             {"extensions", Json::array({"binary_tensor_data"})}}));
  }
  constexpr std::string_view kModels = "/v2/models/";
  if (path.rfind(kModels, 0) != 0) {
    return reply(Error(absl::NotFoundError(StrCat("no such endpoint: ", path))));
  }
  std::vector<std::string_view> parts = SplitPath(path.substr(kModels.size()));
  std::string verb;
  if (parts.size() > 1 && (parts.back() == "ready" || parts.back() == "infer")) {
    verb = parts.back();
    parts.pop_back();
  }
  if (parts.empty() || (parts.size() != 1 && parts.size() != 3) ||
      (parts.size() == 3 && parts[1] != "versions")) {
    return reply(Error(absl::InvalidArgumentError(
        "malformed path; expected /v2/models/NAME[/versions/V][/ready|/infer]")));
  }
  const std::string model(parts[0]);
  if (absl::Status st = ValidateName("model name", model); !st.ok()) return reply(Error(st));
  std::optional<int64_t> version;
  if (parts.size() == 3) {
    auto v = ParseVersion(parts[2]);
    if (!v.ok()) return reply(Error(v.status()));
    version = *v;
  }
  if (verb == "infer") {
    if (request.method != "POST") return reply(Error(absl::UnimplementedError("infer takes POST")));
    return Infer(s, model, version, request, reply);
  }
  auto predictor = m.Find(model, version);
  if (verb == "ready") {
    if (!predictor.ok() && absl::IsNotFound(predictor.status()) && !m.Status(model).ok()) {
      return reply(Error(predictor.status()));
    }
    return reply(Reply(predictor.ok() ? 200 : 503, Json::object()));
  }
  if (!predictor.ok()) return reply(Error(predictor.status()));
  Json versions = Json::array();
  if (auto status = m.Status(model); status.ok()) {
    for (const VersionStatus& s : *status) {
      if (s.state == VersionState::kAvailable) versions.push_back(StrCat(s.version));
    }
  }
  const model::BundleManifest& manifest = (*predictor)->manifest();
  return reply(
      Reply(200, {{"name", model},
                  {"versions", versions},
                  {"platform", StrCat("kiln_", manifest.backend)},
                  {"inputs", Tensors(manifest.signature.value("inputs", Json::array()))},
                  {"outputs", Tensors(manifest.signature.value("outputs", Json::array()))}}));
}

}  // namespace kiln::serving
