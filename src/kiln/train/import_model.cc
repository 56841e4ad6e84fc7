#include "kiln/train/import_model.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "kiln/base/build_info.h"
#include "kiln/base/publish_dir.h"
#include "kiln/base/sha256.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/model/bundle.h"
#include "kiln/model/model.h"
#include "kiln/train/json_rows.h"
#include "kiln/train/predictor.h"
#include "kiln/transform/transform.h"

namespace kiln::train {
namespace {

struct Signature {
  model::Task task = model::Task::kBinary;
  std::vector<std::string> classes;
  std::vector<std::string> inputs;
  std::string output;  // TorchScript: probabilities | logits ("" = not given)
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
    if (root["output"]) {
      s.output = root["output"].Scalar();
      if (s.output != "probabilities" && s.output != "logits") {
        return absl::InvalidArgumentError(
            StrCat("signature: output is '", s.output, "'; expected probabilities or logits"));
      }
    }
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
  // torch.jit.save writes a zip archive; XGBoost JSON and UBJSON start with '{'.
  const bool torchscript = bytes.compare(0, 4, "PK\x03\x04") == 0;
  std::string model_path, model_bytes;
  if (torchscript) {
    model_path = "model/model.pt";
    model_bytes = bytes;
  } else {
    if (!sig.output.empty()) {
      return absl::InvalidArgumentError(
          "signature: `output` applies to TorchScript models; an XGBoost model's objective "
          "says what it outputs");
    }
    auto json = model::XgboostModelAsJson(bytes, sig.inputs.size());
    if (!json.ok()) {
      return absl::Status(json.status().code(),
                          StrCat(req.model_file, ": ", json.status().message()));
    }
    model_path = "model/xgboost.json";
    model_bytes = std::move(*json);
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

  model::BundleManifest m;
  m.backend = torchscript ? "torch" : "xgboost";
  m.model_type = torchscript ? "torchscript" : "gbdt";
  nlohmann::json inputs = nlohmann::json::array();
  for (const std::string& name : sig.inputs) {
    inputs.push_back({{"name", name}, {"dtype", "float64"}, {"shape", {-1}}});
  }
  m.signature = {{"inputs", inputs}};
  m.config = {{"task", std::string(model::TaskName(sig.task))},
              {"classes", sig.classes},
              {"imported_from", req.model_file}};
  if (torchscript) {
    m.config["torchscript"] = {{"output", sig.output.empty() ? "probabilities" : sig.output}};
  }
  m.provenance = {{"imported_file_sha256", Sha256Hex(bytes)},
                  {"kiln_version", std::string(KilnVersion())},
                  {"git_sha", std::string(GitSha())}};
  auto write = [&](const std::string& dir, bool overwrite) -> absl::Status {
    model::BundleWriteOptions bo;
    bo.overwrite = overwrite;
    bo.key = req.key;
    KILN_ASSIGN_OR_RETURN(auto writer, model::BundleWriter::Create(env, dir, bo));
    KILN_RETURN_IF_ERROR(writer->AddFile("transform.json", fitted.ToJson()));
    KILN_RETURN_IF_ERROR(writer->AddFile(model_path, model_bytes));
    return writer->Finish(m);
  };
  if (torchscript) {
    // Nothing tells what a TorchScript program computes until it runs: load the bundle in
    // a scratch directory and score two rows of zeros, so a model kiln cannot run (not
    // TorchScript, another input width, an output of the wrong shape) is refused before
    // anything is published.
    const std::string check_target = StrCat(req.out_dir, ".kiln-check");
    RecoverFromDeadWriters(check_target);
    const std::string scratch = StagingDirFor(check_target);
    struct Cleanup {
      std::string path;
      ~Cleanup() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
      }
    } cleanup{scratch};
    KILN_RETURN_IF_ERROR(write(scratch, true));
    auto check = [&]() -> absl::Status {
      KILN_ASSIGN_OR_RETURN(auto predictor, Predictor::Load(env, scratch, req.key));
      nlohmann::json zeros = nlohmann::json::array();
      for (int r = 0; r < 2; ++r) {
        nlohmann::json row = nlohmann::json::object();
        for (const std::string& name : sig.inputs) row[name] = 0.0;
        zeros.push_back(row);
      }
      KILN_ASSIGN_OR_RETURN(data::Batch batch, RowsFromJson(zeros, predictor->inputs()));
      std::vector<float> scores;
      return predictor->Predict(batch, &scores);
    };
    if (absl::Status st = check(); !st.ok()) {
      std::string message(st.message());
      if (message.rfind(scratch + ": ", 0) == 0) message.erase(0, scratch.size() + 2);
      return absl::Status(st.code(), StrCat(req.model_file, ": ", message));
    }
  }
  return write(req.out_dir, req.overwrite);
}

}  // namespace kiln::train
