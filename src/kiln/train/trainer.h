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
#include "kiln/transform/transform.h"

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
  // A transform fitted beforehand (`kiln transform`'s output directory or its
  // transform.json) to use instead of fitting one. It must have been fitted from this
  // config's transform section for this model type, and read columns the data has
  // (CheckTransformSpec, CheckTransformColumns). Empty: fit on the train rows.
  std::string transform;
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
// kNotFound (data), kFailedPrecondition (a fitted `transform` made from another spec or
// other columns), and those of reading, transforming and training.
absl::StatusOr<TrainResult> Train(Env* env, const TrainRequest& request);

// The steps of Train before the model, for callers that need the same rows (`kiln
// transform` fits the transform exactly where Train would).

// Which rows train and which evaluate.
struct RowSelection {
  std::string data;  // as TrainRequest::data
  // Non-empty: these rows evaluate and every row of `data` trains (train_split is unused).
  std::string eval_data;
  // The split whose rows train: a split of an imported dataset, or one named in the
  // config's training.split for other inputs (rows assigned by a hash of each row). Empty:
  // every row of `data`.
  std::string train_split = "train";
  // Also read the "eval" split (Train does; fitting a transform does not need it).
  bool with_eval = true;
  // Column types that replace the data's own (from a schema.pbtxt); a name the data lacks
  // is ignored.
  data::TableSchema type_overrides;
};

struct TrainingRows {
  data::TableSchema schema;      // every column read
  data::Batch train;             // the train rows
  data::Batch eval;              // the eval rows; no columns unless read
  std::string data_fingerprint;  // the dataset's, or SHA-256 of the raw files (and eval_data's)
};

// Reads and splits as Train does: an imported dataset's splits (it must have the train
// split, and "eval" when with_eval), else config.split's hash split of the rows. Errors:
// kNotFound (data), kInvalidArgument (a split that does not exist), and those of reading.
absl::StatusOr<TrainingRows> ReadTrainingRows(Env* env, const TrainConfig& config,
                                              const RowSelection& selection);

struct LabelledRows {
  // binary: [negative, positive]; multiclass: by index; regression: empty.
  std::vector<std::string> classes;
  std::string positive;         // binary: the positive class
  model::Examples train, eval;  // labels and weights of the rows kept (x unset)
  uint64_t dropped_rows = 0;    // rows without a usable label, left out
};

// Chooses the classes from the train rows' labels and removes the rows without a usable
// label from rows->train and rows->eval (a class only the eval rows have is unusable too).
// The transform is fitted on the train rows that remain. Errors (kInvalidArgument): no label
// column, labels that do not fit the task, no labelled train row.
absl::StatusOr<LabelledRows> ExtractLabels(const TrainConfig& config, const std::string& data,
                                           TrainingRows* rows);

// The spec Train fits for `config`: its transform section (the label excluded), with the
// tree defaults (unlisted numbers pass through) for gbdt.
transform::TransformSpec EffectiveTransformSpec(const TrainConfig& config);

// Fits EffectiveTransformSpec(config) on rows.train, as Train does.
absl::StatusOr<transform::FittedTransform> FitTransform(const TrainConfig& config,
                                                        const TrainingRows& rows);

// Reads every row of `data` (split `split` of a dataset when non-empty) into one batch with
// the columns of `schema` (inferred from the data when empty).
absl::StatusOr<data::Batch> ReadAllRows(Env* env, const std::string& data, const std::string& split,
                                        data::TableSchema* schema);

}  // namespace kiln::train

#endif  // KILN_TRAIN_TRAINER_H_
