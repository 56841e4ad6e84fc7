// `kiln train` as a library: read the data, split it, fit the transform on the train
// split, train the model, evaluate it on the eval split, and write the model bundle with
// TensorBoard logs in MODEL_DIR/logs.
#ifndef KILN_TRAIN_TRAINER_H_
#define KILN_TRAIN_TRAINER_H_

#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/base/env.h"
#include "kiln/data/batch.h"
#include "kiln/model/model.h"
#include "kiln/train/train_config.h"

namespace kiln::train {

// Where a run is, for a progress display: after every step (mini-batch or boosting round).
struct TrainProgress {
  int64_t step = 0;
  int64_t total_steps = 0;  // at most; early stopping may end the run sooner
  double loss = NAN;        // the last step's training loss (NaN: the model reports none)
  model::Metrics eval;      // the latest evaluation (empty before the first)
};

struct TrainRequest {
  std::string data;  // a CSV/JSONL/TFRecord file, glob or span pattern, or a kiln dataset
  // Rows to evaluate on instead of a split of `data` (then all of `data` trains).
  std::string eval_data;
  TrainConfig config;
  std::string out_dir;
  bool overwrite = false;
  std::optional<std::string> key;  // seal the bundle with AES-256-GCM
  // Checkpoints (every config.checkpoint_every steps, file `checkpoint`) and the run's
  // TensorBoard logs stay here until the bundle is published; then it is removed. A run
  // killed on the way leaves it behind, and the next run with the same data and config
  // continues from its checkpoint. Empty: OUT_DIR.ckpt beside the bundle.
  std::string checkpoint_dir;
  // false: discard a checkpoint found there and start over. (A checkpoint of other data
  // or another config is an error unless this is false.)
  bool resume = true;
  std::function<void(const TrainProgress&)> on_progress;
  // Data-parallel training across processes (libtorch models; model::TrainOptions): every
  // process runs the same request but for `rank`. Rank 0 writes the checkpoints, logs and
  // bundle; the others write nothing.
  int world_size = 1;
  int rank = 0;
  std::string rendezvous;  // HOST:PORT or file:PATH
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
  int64_t resumed_from_step = -1;  // the checkpoint's step when the run resumed
  // Wall seconds of each phase, in order: read (and fingerprint) the data, fit and apply
  // the transform, train (with evaluations and final scoring), write the bundle.
  std::vector<std::pair<std::string, double>> phase_seconds;
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
