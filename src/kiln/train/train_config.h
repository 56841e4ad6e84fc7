// train.yaml: what `kiln train` fits. Only `label`, `task` and `model.type` are required:
//
//   label: income_over_50k         # the column to predict
//   task: binary                   # binary | multiclass | regression
//   positive_class: ">50K"         # binary only; default "1" if present, else the second
//                                  # label value in sorted order
//   model:
//     type: gbdt                   # see `kiln train --help` for the registered types
//     num_rounds: 300              # everything else here is the model's own params
//   transform: {...}               # docs/transform.md; default: median fill + z-score for
//                                  # numbers, vocabulary for strings
//   training:
//     seed: 42
//     threads: 0                   # 0: all cores
//     eval_every: 1                # steps (boosting rounds / mini-batches)
//     early_stopping: {metric: auc, patience: 20}   # patience 0: off
//     checkpoint_every: 1000       # steps; 0: off (see `kiln train --help` on resuming)
//     split: "train:2,eval:1"      # for inputs that are not imported datasets
//     class_weights: {"1": 3.0}    # binary/multiclass: weight per label value
#ifndef KILN_TRAIN_TRAIN_CONFIG_H_
#define KILN_TRAIN_TRAIN_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "kiln/model/model.h"
#include "kiln/transform/transform_spec.h"
#include "nlohmann/json.hpp"

namespace kiln::train {

struct TrainConfig {
  std::string label;
  model::Task task = model::Task::kBinary;
  std::optional<std::string> positive_class;
  std::string model_type;
  nlohmann::json model_params = nlohmann::json::object();  // the whole `model:` map
  transform::TransformSpec transform;
  uint64_t seed = 42;
  int threads = 0;
  int eval_every = 1;
  std::string early_stopping_metric;  // "" = the task's primary metric
  int patience = 0;
  int64_t checkpoint_every = 1000;
  std::string split = "train:2,eval:1";
  std::map<std::string, double> class_weights;
};

// Errors: kInvalidArgument naming the key and what is valid.
absl::StatusOr<TrainConfig> ParseTrainConfig(std::string_view yaml);
// The config as JSON, stored in the bundle so a model says how it was trained.
nlohmann::json TrainConfigToJson(const TrainConfig& config);

}  // namespace kiln::train

#endif  // KILN_TRAIN_TRAIN_CONFIG_H_
