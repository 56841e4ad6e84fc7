// Presenting validation results: a readable text report for the terminal and the files
// `kiln validate` writes (anomalies.pbtxt, anomalies.json, drift_skew.json). Free
// functions; thread-safe when the Env is.
#ifndef KILN_VALIDATION_REPORT_H_
#define KILN_VALIDATION_REPORT_H_

#include <string>
#include <vector>

#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "kiln/validation/validator.h"

namespace kiln::validation {

// A multi-line report: one block per anomaly (feature, severity, each reason with its
// type and description), then one line per drift/skew comparison with its measurements,
// KL divergence and verdict. Says "No anomalies found." when there is nothing to report.
std::string FormatReport(const ValidationResult& result);

// Anomalies as text format (what TFDV's write_anomalies_text writes).
std::string AnomaliesToText(const tensorflow::metadata::v0::Anomalies& anomalies);

// Anomalies in the protobuf JSON mapping (proto field names, indented).
// Errors: kInternal if protobuf refuses to serialize.
absl::StatusOr<std::string> AnomaliesToJson(const tensorflow::metadata::v0::Anomalies& anomalies);

// The comparisons as a JSON array of objects
//   {"feature", "kind": "drift"|"skew", "measurements": [{"type", "value", "threshold"}],
//    "kl_divergence" (bits, or null), "anomalous": bool, "note"}.
std::string ComparisonsToJson(const std::vector<FeatureComparison>& comparisons);

// Writes DIR/anomalies.pbtxt, DIR/anomalies.json and DIR/drift_skew.json atomically,
// creating DIR if needed.
absl::Status WriteValidationOutputs(Env* env, const std::string& dir,
                                    const ValidationResult& result);

}  // namespace kiln::validation

#endif  // KILN_VALIDATION_REPORT_H_
