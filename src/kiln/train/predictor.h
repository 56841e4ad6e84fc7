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
#include "kiln/model/bundle.h"
#include "kiln/model/model.h"
#include "kiln/transform/transform.h"

namespace kiln::train {

class Predictor {
 public:
  // Opens and verifies the bundle at `dir`. Errors: those of Bundle::Open, and
  // kFailedPrecondition for a bundle kiln cannot run (unknown model type).
  static absl::StatusOr<std::unique_ptr<Predictor>> Load(Env* env, const std::string& dir,
                                                         std::optional<std::string> key = {});

  model::Task task() const { return task_; }
  // Binary: [negative, positive]; multiclass: by class index; regression: empty.
  const std::vector<std::string>& classes() const { return classes_; }
  // Scores per row as Model::Predict (binary P(positive); multiclass one probability per
  // class; regression the prediction). Thread-safe.
  absl::Status Predict(const data::Batch& raw, std::vector<float>* scores) const;
  const model::BundleManifest& manifest() const { return bundle_->manifest(); }

 private:
  Predictor() = default;
  std::unique_ptr<model::Bundle> bundle_;
  transform::FittedTransform transform_;
  std::unique_ptr<model::Model> model_;
  model::Task task_ = model::Task::kBinary;
  std::vector<std::string> classes_;
};

// Streams `data` through the predictor into `out` (.csv or .jsonl, written atomically),
// keeping input row order. Columns: binary `score`; multiclass `class` and `prob_<class>`
// per class; regression `prediction`. Returns the number of rows written.
absl::StatusOr<uint64_t> PredictFile(Env* env, const Predictor& predictor, const std::string& data,
                                     const std::string& out);

}  // namespace kiln::train

#endif  // KILN_TRAIN_PREDICTOR_H_
