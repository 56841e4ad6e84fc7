// Anomaly detection (ExampleValidator): checks the statistics of one dataset against a
// tensorflow.metadata Schema, and optionally against the previous span (drift) and the
// serving data (skew), producing a tensorflow.metadata Anomalies proto that reads like
// tfdv.validate_statistics' output. Pure function; thread-safe.
#ifndef KILN_VALIDATION_VALIDATOR_H_
#define KILN_VALIDATION_VALIDATOR_H_

#include <optional>
#include <string>
#include <vector>

#include "kiln/base/status.h"
#include "kiln/validation/comparator.h"
#include "tensorflow_metadata/proto/v0/anomalies.pb.h"
#include "tensorflow_metadata/proto/v0/schema.pb.h"
#include "tensorflow_metadata/proto/v0/statistics.pb.h"

namespace kiln::validation {

struct ValidationOptions {
  // Statistics of the previous span, for the schema's drift comparators. Default none.
  const tensorflow::metadata::v0::DatasetFeatureStatistics* previous = nullptr;
  // Statistics of serving data, for the schema's skew comparators. Default none.
  const tensorflow::metadata::v0::DatasetFeatureStatistics* serving = nullptr;
  // When set, every feature is compared with this threshold, both for drift and skew
  // (see CompareOptions::threshold). Default: the schema's comparators only.
  std::optional<double> drift_threshold;
};

struct ValidationResult {
  tensorflow::metadata::v0::Anomalies anomalies;
  // Every drift and skew comparison made, including those under their threshold (the
  // KL divergence is reported from here; Anomalies has no field for it).
  std::vector<FeatureComparison> comparisons;
};

// Validates `stats` against `schema`. Anomalies are keyed by feature name (TFDV's
// serialized path: the plain name unless it holds '.', '(', ')' or '\''), every one with
// severity ERROR as TFDV's default, one Reason per finding; several findings give the
// short description "Multiple errors" and the descriptions joined by spaces. Checks:
//   dataset:  DATASET_LOW_NUM_EXAMPLES / DATASET_HIGH_NUM_EXAMPLES (dataset_constraints
//             min/max_examples_count), COMPARATOR_LOW/HIGH_NUM_EXAMPLES
//             (num_examples_drift_comparator vs. the previous span);
//             no examples at all sets data_missing and checks nothing else (as TFDV).
//   columns:  SCHEMA_MISSING_COLUMN (required by presence, absent from the statistics),
//             SCHEMA_NEW_COLUMN (in the statistics, not in the schema).
//   presence: FEATURE_TYPE_NOT_PRESENT, FEATURE_TYPE_LOW_NUMBER_PRESENT,
//             FEATURE_TYPE_LOW_FRACTION_PRESENT.
//   values:   FEATURE_TYPE_LOW_NUMBER_VALUES / FEATURE_TYPE_HIGH_NUMBER_VALUES
//             (value_count), INVALID_FEATURE_SHAPE (shape).
//   type:     INT_TYPE_NOT_INT_STRING, FLOAT_TYPE_STRING_NOT_FLOAT (string data for a
//             numeric feature, or for a BYTES feature with an int/float domain, that does
//             not parse as numbers: kiln_non_int_count / kiln_non_float_count, else the
//             value list), UNEXPECTED_DATA_TYPE (other mismatches; INT data is accepted
//             for a FLOAT feature).
//   domains:  INT_TYPE_SMALL_INT / INT_TYPE_BIG_INT, FLOAT_TYPE_SMALL_FLOAT /
//             FLOAT_TYPE_BIG_FLOAT, FLOAT_TYPE_HAS_NAN, FLOAT_TYPE_HAS_INF,
//             ENUM_TYPE_UNEXPECTED_STRING_VALUES (honouring
//             distribution_constraints.min_domain_mass), INVALID_SCHEMA_SPECIFICATION
//             (a domain name that is not declared), FEATURE_TYPE_LOW_UNIQUE /
//             FEATURE_TYPE_HIGH_UNIQUE (unique_constraints).
//   drift/skew: COMPARATOR_L_INFTY_HIGH, COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
//             COMPARATOR_CONTROL_DATA_MISSING, with drift_skew_info measurements.
// Deprecated schema features are skipped. Environments are ignored, and so are the
// children of STRUCT features (kiln's data is flat).
// Errors: kInvalidArgument when the schema names a feature twice.
absl::StatusOr<ValidationResult> ValidateStatistics(
    const tensorflow::metadata::v0::DatasetFeatureStatistics& stats,
    const tensorflow::metadata::v0::Schema& schema, const ValidationOptions& options = {});

// True when `anomalies` reports any problem (an anomaly or missing data).
bool HasAnomalies(const tensorflow::metadata::v0::Anomalies& anomalies);

}  // namespace kiln::validation

#endif  // KILN_VALIDATION_VALIDATOR_H_
