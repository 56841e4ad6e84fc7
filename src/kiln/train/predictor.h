// A loaded model bundle ready to predict: its fitted transform and model, behind one call
// from raw rows to scores. Used by `kiln predict` (TFX BulkInferrer) and later by the
// server, so both run exactly the training-time transform.
#ifndef KILN_TRAIN_PREDICTOR_H_
#define KILN_TRAIN_PREDICTOR_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/data/batch.h"
#include "kiln/data/input.h"
#include "kiln/data/source.h"
#include "kiln/model/bundle.h"
#include "kiln/model/model.h"
#include "kiln/train/json_rows.h"
#include "kiln/transform/transform.h"

namespace kiln::train {

class Predictor {
 public:
  // Opens and verifies the bundle at `dir`, then runs its warm-up rows (warmup.jsonl:
  // raw inputs with the scores the model gave them when it was written) and checks the
  // scores agree (within 1e-5 + 1e-4 relative). Errors: those of Bundle::Open, and
  // kFailedPrecondition for a bundle kiln cannot run (unknown model type, or warm-up
  // rows it does not reproduce).
  static absl::StatusOr<std::unique_ptr<Predictor>> Load(Env* env, const std::string& dir,
                                                         std::optional<std::string> key = {});

  model::Task task() const { return task_; }
  // Binary: [negative, positive]; multiclass: by class index; regression: empty.
  const std::vector<std::string>& classes() const { return classes_; }
  // Scores per row as Model::Predict (binary P(positive); multiclass one probability per
  // class; regression the prediction). Thread-safe.
  absl::Status Predict(const data::Batch& raw, std::vector<float>* scores) const;
  const model::BundleManifest& manifest() const { return bundle_->manifest(); }
  // The raw input features the model takes (its signature's inputs).
  const data::TableSchema& inputs() const { return inputs_; }
  size_t warmup_rows() const { return warmup_rows_; }
  // The warm-up rows' raw inputs, as JSON objects of features (what the REST API takes).
  const nlohmann::json& warmup_inputs() const { return warmup_inputs_; }
  // OpenRowsTypedAs with this model's inputs.
  absl::StatusOr<std::unique_ptr<data::BatchReader>> OpenRows(Env* env, const std::string& data,
                                                              data::BadRowSink* bad) const;

 private:
  Predictor() = default;
  absl::Status WarmUp(const std::string& dir);
  std::unique_ptr<model::Bundle> bundle_;
  transform::FittedTransform transform_;
  std::unique_ptr<model::Model> model_;
  model::Task task_ = model::Task::kBinary;
  std::vector<std::string> classes_;
  data::TableSchema inputs_;
  size_t warmup_rows_ = 0;
  nlohmann::json warmup_inputs_ = nlohmann::json::array();
};

// Reads `data` (a file, glob, span directory or dataset) in batches, each column named in
// `inputs` typed as its first schema there declares it (so e.g. "007" stays a string for a
// model that takes strings). Errors: those of data::ResolveInput and data::OpenSource.
absl::StatusOr<std::unique_ptr<data::BatchReader>> OpenRowsTypedAs(
    Env* env, const std::string& data, const data::ResolveOptions& resolve,
    const std::vector<const data::TableSchema*>& inputs, data::BadRowSink* bad);

// Streams `data` through the predictor into `out` (.csv or .jsonl, written atomically),
// keeping input row order. Columns: binary `score`; multiclass `class` and `prob_<class>`
// per class; regression `prediction`. Returns the number of rows written.
absl::StatusOr<uint64_t> PredictFile(Env* env, const Predictor& predictor, const std::string& data,
                                     const std::string& out);

}  // namespace kiln::train

#endif  // KILN_TRAIN_PREDICTOR_H_
