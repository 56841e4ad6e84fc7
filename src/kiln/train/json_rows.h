// Raw rows as JSON objects, {"age": 39, "country": "US", "tags": ["a", "b"]}: the form
// serving requests (TF Serving's and KServe's "instances") and the model bundle's warm-up
// rows take. Converted to a Batch with the columns of a model's signature inputs, so they
// go through the same Predictor as files do.
#ifndef KILN_TRAIN_JSON_ROWS_H_
#define KILN_TRAIN_JSON_ROWS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/data/batch.h"
#include "kiln/model/bundle.h"
#include "nlohmann/json.hpp"

namespace kiln::train {

// The raw input features of a bundle's signature, in order, with their types (dtype
// int64 → INT, float32/float64 → FLOAT, string → STRING). Errors: kDataLoss for a
// signature without inputs or with an unknown dtype.
absl::StatusOr<data::TableSchema> SignatureInputs(const model::BundleManifest& manifest);

// One Batch row per object of `rows` (an array). A feature absent from an object, or
// null, is missing; a scalar is a one-value list; an array is a list of values. INT
// takes integers; FLOAT any number; STRING strings. Keys that are not inputs are ignored.
// Errors: kInvalidArgument naming the row and feature (a value of the wrong type, a row
// that is not an object, nested arrays).
absl::StatusOr<data::Batch> RowsFromJson(const nlohmann::json& rows,
                                         const data::TableSchema& inputs);

// Row `row` of `batch` as such an object, with the features of `inputs` that are present.
// Round-trips through RowsFromJson exactly (numbers are written in shortest round-trip
// form), but for non-finite floats, which JSON cannot hold: a scalar one is left out
// (missing), one in a list dropped from the list.
nlohmann::json RowToJson(const data::Batch& batch, size_t row, const data::TableSchema& inputs);

}  // namespace kiln::train

#endif  // KILN_TRAIN_JSON_ROWS_H_
