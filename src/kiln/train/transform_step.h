// `kiln transform` as a library: TFX Transform as a step of its own. It fits a train
// config's `transform:` section on exactly the rows `kiln train` would fit it on (the same
// reading, split and label filtering: trainer.h's ReadTrainingRows and ExtractLabels) and
// writes the fitted transform where `kiln train --transform` reads it back.
//
// Output directory:
//   transform.json          the fitted transform, byte for byte what a bundle stores
//                           (FittedTransform::ToJson; it holds the spec it was fitted from)
//   transform_summary.json  per output column: name, kind, cardinality, ops with their
//                           fitted statistics; the spec's SHA-256, rows, data fingerprint
//
// A fitted transform fits a train config when its stored spec equals the config's
// (EffectiveTransformSpec: the label excluded, tree defaults for gbdt) and the data has
// the columns it reads: CheckTransformSpec and CheckTransformColumns say what differs.
// Thread-safe: free functions without shared state.
#ifndef KILN_TRAIN_TRANSFORM_STEP_H_
#define KILN_TRAIN_TRANSFORM_STEP_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "kiln/base/env.h"
#include "kiln/data/batch.h"
#include "kiln/train/train_config.h"
#include "kiln/transform/transform.h"

namespace kiln::train {

inline constexpr char kTransformFile[] = "transform.json";
inline constexpr char kTransformSummaryFile[] = "transform_summary.json";
inline constexpr char kTransformSummaryFormat[] = "kiln.transform_summary";

struct TransformStepRequest {
  std::string data;  // as TrainRequest::data
  TrainConfig config;
  // The split whose rows fit the transform (RowSelection::train_split): "train" is where
  // `kiln train` fits it; empty: every row of `data` (train's rows under --eval-data).
  std::string split = "train";
  // Column types replacing the data's own (a schema.pbtxt's), as RowSelection.
  data::TableSchema type_overrides;
};

struct TransformStepResult {
  transform::FittedTransform fitted;
  transform::Json summary;  // transform_summary.json
  std::string data_fingerprint;
  uint64_t rows = 0;          // rows the analyzers saw
  uint64_t dropped_rows = 0;  // rows of the split without a usable label, left out
};

// Reads, splits and fits as Train does. Errors: those of ReadTrainingRows, ExtractLabels
// (a config whose labels do not fit its task is refused here as in train) and fitting.
absl::StatusOr<TransformStepResult> FitTransformStep(Env* env, const TransformStepRequest& request);

// Writes DIR/transform.json and DIR/transform_summary.json, each atomically (the summary
// first, so a transform.json is never newer than its summary), creating DIR.
absl::Status WriteTransformStep(Env* env, const std::string& dir,
                                const TransformStepResult& result);

// SHA-256 (hex) of a spec as Train fits it, tree_defaults included.
std::string TransformSpecSha256(const transform::TransformSpec& spec);

// The output columns of `fitted` in TransformedBatch order (dense, then categorical): name,
// kind ("dense" / "categorical"), cardinality (null for dense), the input's type and its ops
// with their fitted statistics (fill value, mean and std, min and max, boundaries,
// vocabulary size and first tokens); crosses name their features.
transform::Json TransformOutputsSummary(const transform::FittedTransform& fitted);

// A table of the outputs for people: one line per output column.
std::string FormatTransformSummary(const transform::FittedTransform& fitted);

// Loads `path`: a directory holding transform.json (`kiln transform`'s output, or an
// unencrypted model bundle) or the file itself. Errors: kNotFound, and FromJson's
// (kInvalidArgument for what is not a fitted transform, kFailedPrecondition for a pii salt
// that is unset or differs).
absl::StatusOr<transform::FittedTransform> LoadFittedTransform(Env* env, const std::string& path);

// kFailedPrecondition naming every difference (`where` prefixes the message) unless the
// spec `fitted` was fitted from is EffectiveTransformSpec(config): the same features with
// the same ops, crosses, defaults and excluded columns (in any order), and for a feature the
// spec does not list, the default ops of config's model type (gbdt's differ).
absl::Status CheckTransformSpec(const TrainConfig& config, const transform::FittedTransform& fitted,
                                std::string_view where);

// kFailedPrecondition naming every problem unless data with `schema` is what `fitted` can
// transform as a fit on it would: every column it reads is there, as text or as a number
// as when fitted; the spec's listed and excluded columns are there; and, when the spec
// gives unlisted columns the defaults, no column it neither transforms nor excludes.
absl::Status CheckTransformColumns(const data::TableSchema& schema,
                                   const transform::FittedTransform& fitted,
                                   std::string_view where);

}  // namespace kiln::train

#endif  // KILN_TRAIN_TRANSFORM_STEP_H_
