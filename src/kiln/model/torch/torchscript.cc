// `torchscript`: a model trained elsewhere and saved with torch.jit.save, imported with
// `kiln import-model`. It is not trained by kiln, only loaded and run. Its forward takes one
// float32 tensor [rows, inputs] (the signature's inputs in order, passed through the
// transform unchanged) and returns, by task:
//   binary      [rows] or [rows, 1]: P(positive); or [rows, 2]: both classes
//   multiclass  [rows, classes]
//   regression  [rows] or [rows, 1]
// `config.torchscript.output` says whether those are probabilities (the default) or
// logits (then kiln applies sigmoid / softmax). Bundle file: model/model.pt (the zip
// torch.jit.save wrote, unchanged).
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/model/model.h"

namespace kiln::model {
namespace {

constexpr const char* kScriptFile = "model/model.pt";

// The useful line of a libtorch error: the interpreter's message after its two
// tracebacks ("RuntimeError: The size of tensor a (29) must match ..."), else the first.
std::string Reason(const std::exception& e) {
  std::string what = e.what();
  constexpr std::string_view kTail = "RuntimeError: ";
  if (size_t at = what.rfind(kTail); at != std::string::npos) what.erase(0, at + kTail.size());
  if (size_t eol = what.find('\n'); eol != std::string::npos) what.resize(eol);
  return what;
}

class ScriptModel : public Model {
 public:
  ScriptModel(std::string bytes, torch::jit::Module module, Task task, int num_classes, bool logits)
      : bytes_(std::move(bytes)),
        module_(std::move(module)),
        task_(task),
        num_classes_(num_classes),
        logits_(logits) {
    module_.eval();
  }

  std::string_view type() const override { return "torchscript"; }
  std::string_view backend() const override { return "torch"; }

  absl::Status Predict(const transform::TransformedBatch& x,
                       std::vector<float>* out) const override {
    out->clear();
    const int64_t rows = static_cast<int64_t>(x.num_rows);
    if (rows == 0) return absl::OkStatus();
    if (x.num_categorical != 0) {
      return absl::InvalidArgumentError("a TorchScript model takes numeric inputs only");
    }
    try {
      torch::NoGradGuard no_grad;
      torch::Tensor in =
          torch::from_blob(const_cast<float*>(x.dense.data()),
                           {rows, static_cast<int64_t>(x.dense_dim)}, torch::kFloat32);
      // A missing input (NaN from the pass-through transform) is 0, as for kiln's own
      // neural models.
      if (std::any_of(x.dense.begin(), x.dense.end(), [](float v) { return std::isnan(v); })) {
        in = in.masked_fill(in.isnan(), 0.0);
      }
      torch::IValue result = module_.forward({in});
      if (!result.isTensor()) {
        return absl::InvalidArgumentError(
            StrCat("the TorchScript model returned a ", result.tagKind(), ", not a tensor"));
      }
      torch::Tensor y = result.toTensor().to(torch::kFloat32);
      KILN_ASSIGN_OR_RETURN(y, Shape(y, rows));
      y = y.contiguous();
      const float* p = y.data_ptr<float>();
      out->assign(p, p + y.numel());
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(StrCat("running the TorchScript model: ", Reason(e)));
    }
    return absl::OkStatus();
  }

  absl::Status Save(BundleWriter* writer) const override {
    return writer->AddFile(kScriptFile, bytes_);
  }

 private:
  // The model's output as Model::Predict's scores, or an error naming the shape.
  absl::StatusOr<torch::Tensor> Shape(torch::Tensor y, int64_t rows) const {
    const auto bad = [&](std::string_view want) {
      return absl::InvalidArgumentError(
          StrCat("the TorchScript model returned shape [", StrJoin(y.sizes().vec(), ", "), "] for ",
                 rows, " rows; a ", TaskName(task_), " model returns ", want));
    };
    if (y.dim() == 0 || y.size(0) != rows) return bad("one row per input row");
    switch (task_) {
      case Task::kBinary:
        if (y.dim() == 2 && y.size(1) == 2) {
          return (logits_ ? torch::softmax(y, 1) : y).select(1, 1);
        }
        if (y.dim() == 2 && y.size(1) == 1) y = y.squeeze(1);
        if (y.dim() != 1) return bad("[rows], [rows, 1] or [rows, 2]");
        return logits_ ? torch::sigmoid(y) : y;
      case Task::kMulticlass:
        if (y.dim() != 2 || y.size(1) != num_classes_) {
          return bad(StrCat("[rows, ", num_classes_, "] (one column per class)"));
        }
        return logits_ ? torch::softmax(y, 1) : y;
      case Task::kRegression:
        if (y.dim() == 2 && y.size(1) == 1) y = y.squeeze(1);
        if (y.dim() != 1) return bad("[rows] or [rows, 1]");
        return y;
    }
    return y;
  }

  std::string bytes_;
  mutable torch::jit::Module module_;  // forward() is not const; Predict does not modify it
  Task task_;
  int num_classes_;
  bool logits_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> LoadTorchScript(const Bundle& bundle, Task task,
                                                       int num_classes) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, bundle.ReadFile(kScriptFile));
  const nlohmann::json& manifest_config = bundle.manifest().config;
  std::string output = "probabilities";
  if (manifest_config.is_object() && manifest_config.contains("torchscript")) {
    const nlohmann::json& config = manifest_config["torchscript"];
    if (!config.is_object() || (config.contains("output") && !config["output"].is_string())) {
      return absl::DataLossError("config.torchscript must be {output: probabilities|logits}");
    }
    if (config.contains("output")) output = config["output"].get<std::string>();
  }
  if (output != "probabilities" && output != "logits") {
    return absl::DataLossError(
        StrCat("config.torchscript.output is '", output, "'; expected probabilities or logits"));
  }
  try {
    std::istringstream in(bytes);
    torch::jit::Module module = torch::jit::load(in);
    return std::unique_ptr<Model>(new ScriptModel(std::move(bytes), std::move(module), task,
                                                  num_classes, output == "logits"));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        StrCat(kScriptFile, " is not a TorchScript model libtorch can load: ", Reason(e)));
  }
}

}  // namespace kiln::model
