#include "kiln/train/import_model.h"

#include <yaml-cpp/yaml.h>

#include "kiln/base/build_info.h"
#include "kiln/base/sha256.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/model/bundle.h"
#include "kiln/model/model.h"
#include "kiln/transform/transform.h"

namespace kiln::train {
namespace {

struct Signature {
  model::Task task = model::Task::kBinary;
  std::vector<std::string> classes;
  std::vector<std::string> inputs;
};

absl::StatusOr<Signature> ParseSignature(const std::string& text) {
  Signature s;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap() || !root["task"] || !root["inputs"] || !root["inputs"].IsSequence()) {
      return absl::InvalidArgumentError(
          "the signature needs `task: binary|multiclass|regression` and `inputs: [names...]`");
    }
    KILN_ASSIGN_OR_RETURN(s.task, model::ParseTask(root["task"].Scalar()));
    for (const auto& n : root["inputs"]) s.inputs.push_back(n.Scalar());
    if (root["classes"]) {
      for (const auto& n : root["classes"]) s.classes.push_back(n.Scalar());
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("signature: ", e.what()));
  }
  if (s.inputs.empty()) return absl::InvalidArgumentError("signature: no inputs");
  if (s.task == model::Task::kBinary && s.classes.empty()) s.classes = {"0", "1"};
  if (s.task == model::Task::kBinary && s.classes.size() != 2) {
    return absl::InvalidArgumentError("signature: a binary model has two classes");
  }
  if (s.task == model::Task::kMulticlass && s.classes.size() < 2) {
    return absl::InvalidArgumentError(
        "signature: a multiclass model needs `classes:` (one name per output, in order)");
  }
  return s;
}

}  // namespace

absl::Status ImportModel(Env* env, const ImportModelRequest& req) {
  KILN_ASSIGN_OR_RETURN(Signature sig, ParseSignature(req.signature_yaml));
  KILN_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(env, req.model_file));
  auto json = model::XgboostModelAsJson(bytes, sig.inputs.size());
  if (!json.ok()) {
    return absl::Status(json.status().code(),
                        StrCat(req.model_file, ": ", json.status().message()));
  }

  // The inputs pass through unchanged, in the model's column order.
  transform::TransformSpec spec;
  spec.defaults = false;
  data::TableSchema schema;
  for (const std::string& name : sig.inputs) {
    spec.features.push_back({name, {transform::Op{}}});
    schema.push_back({name, data::ValueType::kFloat});
  }
  KILN_ASSIGN_OR_RETURN(auto fitter, transform::TransformFitter::Create(spec, schema));
  KILN_ASSIGN_OR_RETURN(transform::FittedTransform fitted, fitter->Finish());

  model::BundleWriteOptions bo;
  bo.overwrite = req.overwrite;
  bo.key = req.key;
  KILN_ASSIGN_OR_RETURN(auto writer, model::BundleWriter::Create(env, req.out_dir, bo));
  KILN_RETURN_IF_ERROR(writer->AddFile("transform.json", fitted.ToJson()));
  KILN_RETURN_IF_ERROR(writer->AddFile("model/xgboost.json", *json));
  model::BundleManifest m;
  m.backend = "xgboost";
  m.model_type = "gbdt";
  nlohmann::json inputs = nlohmann::json::array();
  for (const std::string& name : sig.inputs) {
    inputs.push_back({{"name", name}, {"dtype", "float64"}, {"shape", {-1}}});
  }
  m.signature = {{"inputs", inputs}};
  m.config = {{"task", std::string(model::TaskName(sig.task))},
              {"classes", sig.classes},
              {"imported_from", req.model_file}};
  m.provenance = {{"imported_file_sha256", Sha256Hex(bytes)},
                  {"kiln_version", std::string(KilnVersion())},
                  {"git_sha", std::string(GitSha())}};
  return writer->Finish(std::move(m));
}

}  // namespace kiln::train
