// `kiln import-model`: wraps a model trained elsewhere in a kiln bundle, so teams that
// train in Python still get kiln's prediction, evaluation, pushing and serving. The model's
// inputs are raw numeric features passed through unchanged (a missing value reaches an
// XGBoost model as missing, a TorchScript model as 0).
//
// The model file is XGBoost JSON or UBJ (Booster.save_model), or TorchScript
// (torch.jit.save; see src/kiln/model/torch/torchscript.cc for the tensors it must take
// and return). A TorchScript model is run once on two rows of zeros before the bundle is
// published, so one kiln cannot run is refused at import.
//
// Signature YAML:
//   task: binary                 # binary | multiclass | regression
//   classes: [benign, malignant] # optional: binary [negative, positive]; multiclass by index
//   inputs: [mean_radius, mean_texture, ...]   # the model's features, in its column order
//   output: logits               # TorchScript only: probabilities (default) | logits
#ifndef KILN_TRAIN_IMPORT_MODEL_H_
#define KILN_TRAIN_IMPORT_MODEL_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "kiln/base/env.h"

namespace kiln::train {

struct ImportModelRequest {
  std::string model_file;      // XGBoost JSON/UBJ or TorchScript
  std::string signature_yaml;  // the signature document's text
  std::string out_dir;
  bool overwrite = false;
  std::optional<std::string> key;
};

// Errors: kInvalidArgument (signature; a file XGBoost cannot load, with its message).
absl::Status ImportModel(Env* env, const ImportModelRequest& request);

}  // namespace kiln::train

#endif  // KILN_TRAIN_IMPORT_MODEL_H_
