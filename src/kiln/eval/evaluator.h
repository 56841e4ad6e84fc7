// The Evaluator (TFX Evaluator / TFMA): scores rows with a candidate model bundle (and
// optionally a baseline, on the same rows), computes metrics overall and per slice,
// compares the two with bootstrap confidence intervals, applies the config's thresholds
// and decides the blessing.
//
//   EvalRequest req = ...;
//   KILN_ASSIGN_OR_RETURN(EvalResult r, Evaluate(env, req));
//   KILN_RETURN_IF_ERROR(WriteEvaluation(env, out_dir, r));  // evaluation.json, blessing.json
//   std::fputs(FormatReport(r).c_str(), stdout);
//
// Rows stream through both models in batches (the data layer's readers: CSV, JSON Lines,
// TFRecord, datasets, globs, spans); what metrics need of each row (scores, label, weight,
// query, slices) is kept. Rows without a label are left out and counted. Thread safety:
// the functions are thread-compatible; they share no state.
#ifndef KILN_EVAL_EVALUATOR_H_
#define KILN_EVAL_EVALUATOR_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/base/env.h"
#include "kiln/base/progress.h"
#include "kiln/eval/checks.h"
#include "kiln/eval/eval_config.h"
#include "kiln/eval/metrics.h"
#include "kiln/model/model.h"
#include "nlohmann/json.hpp"

namespace kiln::eval {

inline constexpr const char* kEvaluationFile = "evaluation.json";
inline constexpr const char* kBlessingFile = "blessing.json";

struct EvalRequest {
  std::string model;     // the candidate's bundle directory
  std::string baseline;  // the baseline's bundle directory; "" for none
  std::string data;      // a file, glob, span pattern or dataset (data::ResolveInput)
  std::string split;     // datasets: the split to read ("" = all rows)
  EvalConfig config;
  std::optional<std::string> key;  // for encrypted bundles
  Progress* progress = nullptr;    // told the bytes read, when set
};

struct EvalResult {
  model::Task task = model::Task::kBinary;
  std::string label;
  std::vector<std::string> classes;
  std::vector<std::string> metric_names;  // in report order
  uint64_t rows = 0;                      // rows evaluated
  uint64_t rows_without_label = 0;        // left out
  bool has_baseline = false;
  std::vector<SliceResult> slices;  // "overall" first
  std::vector<CheckResult> checks;
  bool blessed = false;
  nlohmann::json evaluation;  // what evaluation.json holds
  nlohmann::json blessing;    // what blessing.json holds
};

// Errors: those of train::Predictor::Load for either bundle; kFailedPrecondition when the
// baseline's task or classes differ from the candidate's; kInvalidArgument for a label,
// weight, query key or slicing column the data lacks, a label that is not one of the
// model's classes (naming file and line), a missing or negative weight, or a config that
// does not fit the model (see RunChecks); those of the data layer's readers.
absl::StatusOr<EvalResult> Evaluate(Env* env, const EvalRequest& request);

// Writes DIR/evaluation.json, then DIR/blessing.json, each atomically (creating DIR).
absl::Status WriteEvaluation(Env* env, const std::string& dir, const EvalResult& result);

// A readable summary: a metrics table per slice (and the differences to the baseline),
// the failing checks, and the verdict.
std::string FormatReport(const EvalResult& result);

}  // namespace kiln::eval

#endif  // KILN_EVAL_EVALUATOR_H_
