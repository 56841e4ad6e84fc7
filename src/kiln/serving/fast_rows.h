// The rows of a TF Serving v1 :predict body, {"instances": [...]} (rows) or
// {"inputs": {...}} (columns), and the body of its answer: the request hot path of the
// v1 REST API. Rows are read with simdjson when the body is of the plain kind clients
// send (objects of scalars and lists of scalars); anything else ({"b64": ...} values,
// nested lists, malformed or wrongly typed bodies) goes the general nlohmann::json way,
// which words every error. Both ways give the same rows. Thread-safe (pure functions;
// the fast path keeps one parser per thread).
#ifndef KILN_SERVING_FAST_ROWS_H_
#define KILN_SERVING_FAST_ROWS_H_

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/data/batch.h"
#include "kiln/model/model.h"
#include "nlohmann/json.hpp"

namespace kiln::serving {

struct PredictRows {
  data::Batch batch;     // one column per signature input, as train::RowsFromJson makes
  bool columns = false;  // the body was {"inputs": {...}} (the answer is then columns too)
};

// The rows of `body` against `inputs` into `out`, through the fast path when it takes the
// body and the general path otherwise. `out`'s storage is reused (what it held is
// replaced; keep one per thread to spare a request its allocations); on an error its
// contents are unspecified. Errors (kInvalidArgument): a body that is not a JSON object,
// an unknown signature_name, not exactly one of "instances" and "inputs", columns that
// are not lists of one length, bad base64, values nested too deeply, and those of
// train::RowsFromJson.
absl::Status ParsePredictRows(std::string_view body, const data::TableSchema& inputs,
                              PredictRows* out);

// Frees the storage of `rows` when it takes more than 64 KiB, so that a thread keeping
// one for reuse keeps little between requests.
void ShrinkPredictRows(PredictRows* rows);

// A PredictRows for one request that outlives its thread's turn (it waits in a batch
// queue): taken from a process-wide pool of at most 1,024 and returned to it, shrunk, when
// the last reference goes, so its storage serves request after request as a thread's own
// would. Thread-safe.
std::shared_ptr<PredictRows> PooledPredictRows();

// The general path alone (nlohmann::json; {"b64": ...} values are decoded). Errors as
// ParsePredictRows.
absl::StatusOr<PredictRows> PredictRowsFromJson(std::string_view body,
                                                const data::TableSchema& inputs);

// The fast path alone (simdjson): true with the rows in `out` (as ParsePredictRows), or
// false, `out` unspecified, when the body is not one it takes (every body the general
// path rejects is among those). When it takes one, its rows are the general path's.
bool FastPredictRows(std::string_view body, const data::TableSchema& inputs, PredictRows* out);

// Replaces every {"b64": "..."} object in `v` with the bytes it encodes. Errors
// (kInvalidArgument): a b64 value that is not a string of valid base64, and values
// nested more than 16 deep (the walk is recursive).
absl::Status DecodeB64Values(nlohmann::json* v);

// The answer to a :predict of `rows` rows with `scores` as Predictor::Predict gives them,
// byte for byte what nlohmann::json::dump makes of it (floats in its shortest round-trip
// form). Rows: {"predictions": [per row: {"class_ids", "scores"} (binary),
// {"class_ids", "probabilities"} (multiclass), or the value (regression)]}. Columns:
// {"outputs": {"class_ids": [...], "scores" or "probabilities": [...]}}, or for
// regression {"outputs": [...]}.
std::string PredictResponseBody(model::Task task, const std::vector<float>& scores, size_t rows,
                                bool columns);

}  // namespace kiln::serving

#endif  // KILN_SERVING_FAST_ROWS_H_
