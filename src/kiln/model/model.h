// Models: what turns transformed features into predictions. Each model type registers a
// trainer and a loader under its name ("gbdt", "linear", ...); the trainer fits it on
// transformed rows, the loader rebuilds it from a model bundle. Callers go through
// TrainModel / LoadModel and never name a backend.
#ifndef KILN_MODEL_MODEL_H_
#define KILN_MODEL_MODEL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/model/bundle.h"
#include "kiln/transform/transform.h"
#include "nlohmann/json.hpp"

namespace kiln::model {

enum class Task { kBinary, kMulticlass, kRegression };
std::string_view TaskName(Task t);  // "binary", "multiclass", "regression"
absl::StatusOr<Task> ParseTask(std::string_view name);

// Rows a model learns from: transformed features and one label per row (binary: 0/1;
// multiclass: the class index; regression: the target), with optional weights.
struct Examples {
  const transform::TransformedBatch* x = nullptr;
  std::vector<float> labels;
  std::vector<float> weights;  // empty: all 1
  size_t size() const { return labels.size(); }
};

// Metric values at one evaluation, e.g. {"auc": 0.99, "log_loss": 0.1}.
using Metrics = std::map<std::string, double>;

struct TrainOptions {
  Task task = Task::kBinary;
  int num_classes = 2;    // multiclass only
  nlohmann::json params;  // the config's `model:` section (type included)
  uint64_t seed = 42;
  int threads = 0;  // 0: all cores
  // Evaluation on the eval rows every `eval_every` steps (boosting rounds or
  // mini-batches); early stopping when `early_stopping_metric` has not improved for
  // `patience` evaluations (0: never stop early).
  int eval_every = 1;
  std::string early_stopping_metric;  // "" = the task's primary metric
  int patience = 0;
  // Called after every evaluation (e.g. to write TensorBoard scalars).
  std::function<void(int64_t step, const Metrics& eval)> on_eval;
  // Called after every training step with its mean training loss (models that train in
  // steps with a loss; gbdt does not call it).
  std::function<void(int64_t step, double loss)> on_loss;
  // Called with the values of a weight tensor (tag e.g. "weights/hidden0.weight"), e.g.
  // at the end of every epoch; `values` is valid during the call only.
  std::function<void(const std::string& tag, int64_t step, std::span<const float> values)>
      on_histogram;
  // Called after every step with the steps done and the steps the run will take at most
  // (early stopping may end it sooner), e.g. for a progress bar.
  std::function<void(int64_t step, int64_t total_steps)> on_step;

  // Checkpoints. Every `checkpoint_every` steps (0: never) the whole training state
  // (weights, optimizer state, random generators, position in the data, early-stopping
  // state) goes to `on_checkpoint` as opaque bytes; an error it returns ends training.
  // With `resume_from` set to such bytes, training continues from that state instead of
  // starting over: given the same options and rows, the run ends where an uninterrupted
  // one would. Errors: kDataLoss for bytes that are not a checkpoint of this model type.
  int64_t checkpoint_every = 0;
  std::function<absl::Status(int64_t step, std::string bytes)> on_checkpoint;
  std::string resume_from;

  // Data-parallel training (the libtorch models): this process is `rank` of `world_size`
  // processes meeting at `rendezvous` (HOST:PORT or file:PATH). Each trains on its shard
  // of every epoch's shuffled rows with gradients averaged across the group, so all end
  // with the same weights. Every process must be given the same rows and options. Rank
  // 0's `resume_from` is used by all.
  int world_size = 1;
  int rank = 0;
  std::string rendezvous;
  // What identifies the run (data and config); the group's processes must agree on it.
  std::string run_id;

  // When set, a model that has the final model's scores of the train and eval rows at
  // hand (gbdt: XGBoost's prediction cache) stores them here, as Predict would give them,
  // saving the caller a prediction pass; otherwise they are left empty.
  std::vector<float>* final_train_scores = nullptr;
  std::vector<float>* final_eval_scores = nullptr;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string_view type() const = 0;
  virtual std::string_view backend() const = 0;
  // Scores per row, row-major: binary 1 value (P(positive)); multiclass num_classes
  // probabilities; regression 1 prediction.
  virtual absl::Status Predict(const transform::TransformedBatch& x,
                               std::vector<float>* out) const = 0;
  // Writes the model's files into the bundle being built (under "model/").
  virtual absl::Status Save(BundleWriter* writer) const = 0;
  // What training chose (e.g. the best boosting round), recorded in the bundle config.
  virtual nlohmann::json Summary() const { return nlohmann::json::object(); }
};

using TrainFn = std::function<absl::StatusOr<std::unique_ptr<Model>>(
    const TrainOptions& options, const transform::OutputSignature& signature, const Examples& train,
    const Examples& eval)>;
using LoadFn = std::function<absl::StatusOr<std::unique_ptr<Model>>(const Bundle& bundle, Task task,
                                                                    int num_classes)>;

// Registers a model type (call from a static initializer in the model's .cc). `train`
// is null for a type that is only imported and loaded (torchscript).
bool RegisterModelType(const std::string& name, TrainFn train, LoadFn load);
// The names of the types kiln trains, sorted.
std::vector<std::string> ModelTypes();

// Errors: kInvalidArgument for an unknown type (listing the known ones) or bad params.
absl::StatusOr<std::unique_ptr<Model>> TrainModel(const std::string& type,
                                                  const TrainOptions& options,
                                                  const transform::OutputSignature& signature,
                                                  const Examples& train, const Examples& eval);
absl::StatusOr<std::unique_ptr<Model>> LoadModel(const Bundle& bundle, Task task, int num_classes);

// Metrics of predictions `scores` (as Model::Predict) against `labels`: binary auc,
// log_loss, accuracy (at 0.5); multiclass accuracy, log_loss; regression rmse, mae, r2.
Metrics ComputeMetrics(Task task, int num_classes, const std::vector<float>& scores,
                       const std::vector<float>& labels);
// The metric early stopping and model selection use by default, and whether higher is
// better: auc for binary, log_loss for multiclass, rmse for regression.
std::string PrimaryMetric(Task task);
bool HigherIsBetter(std::string_view metric);

// An XGBoost model saved elsewhere (JSON or UBJ), checked by loading it, as the JSON the
// gbdt model stores. Errors: kInvalidArgument when XGBoost cannot load it, or when it
// uses more than `num_inputs` features.
absl::StatusOr<std::string> XgboostModelAsJson(std::string_view bytes, size_t num_inputs);

// Area under the ROC curve, ties counted half (the Mann-Whitney statistic). NaN when
// only one class is present.
double BinaryAuc(const std::vector<float>& scores, const std::vector<float>& labels);

}  // namespace kiln::model

#endif  // KILN_MODEL_MODEL_H_
