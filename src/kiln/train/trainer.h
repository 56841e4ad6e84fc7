// `kiln train` as a library: read the data, split it, fit the transform on the train
// split, train the model, evaluate it on the eval split, and write the model bundle with
// TensorBoard logs in MODEL_DIR/logs.
#ifndef KILN_TRAIN_TRAINER_H_
#define KILN_TRAIN_TRAINER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/base/env.h"
#include "kiln/data/batch.h"
#include "kiln/model/model.h"
#include "kiln/train/train_config.h"

namespace kiln::train {

struct TrainRequest {
  std::string data;  // a CSV/JSONL/TFRecord file, glob or span pattern, or a kiln dataset
  // Rows to evaluate on instead of a split of `data` (then all of `data` trains).
  std::string eval_data;
  TrainConfig config;
  std::string out_dir;
  bool overwrite = false;
  std::optional<std::string> key;  // seal the bundle with AES-256-GCM
};

struct TrainResult {
  model::Metrics eval;   // final metrics on the eval split
  model::Metrics train;  // and on the train split
  uint64_t train_rows = 0;
  uint64_t eval_rows = 0;
  uint64_t dropped_rows = 0;         // rows without a label
  std::vector<std::string> classes;  // binary: [negative, positive]; multiclass: by index
  std::string data_fingerprint;      // the dataset's, or SHA-256 of the raw files
  std::vector<std::string> warnings;
};

// Errors: kInvalidArgument (config, label column missing, a task the labels do not fit),
// kNotFound (data), and those of reading, transforming and training.
absl::StatusOr<TrainResult> Train(Env* env, const TrainRequest& request);

// Reads every row of `data` (split `split` of a dataset when non-empty) into one batch with
// the columns of `schema` (inferred from the data when empty).
absl::StatusOr<data::Batch> ReadAllRows(Env* env, const std::string& data, const std::string& split,
                                        data::TableSchema* schema);

}  // namespace kiln::train

#endif  // KILN_TRAIN_TRAINER_H_
