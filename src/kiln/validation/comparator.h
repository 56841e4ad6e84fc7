// Drift (current vs. previous span) and skew (training vs. serving) comparisons of
// per-feature distributions, driven by the schema's drift_comparator / skew_comparator
// the way TFDV's validate_statistics does. Pure function; thread-safe.
#ifndef KILN_VALIDATION_COMPARATOR_H_
#define KILN_VALIDATION_COMPARATOR_H_

#include <optional>
#include <string>
#include <vector>

#include "tensorflow_metadata/proto/v0/anomalies.pb.h"
#include "tensorflow_metadata/proto/v0/schema.pb.h"
#include "tensorflow_metadata/proto/v0/statistics.pb.h"

namespace kiln::validation {

enum class ComparisonKind {
  kDrift,  // schema drift_comparator; control = previous span
  kSkew,   // schema skew_comparator; control = serving data
};

struct CompareOptions {
  // When set, replaces every feature's comparator of the compared kind: categorical
  // features (BYTES, or INT/FLOAT whose domain is_categorical) get an L-infinity
  // threshold, the others a Jensen-Shannon threshold, both this value. Unset (default):
  // the schema's comparators are used as written.
  std::optional<double> threshold;
};

// The outcome for one feature.
struct FeatureComparison {
  std::string feature;
  ComparisonKind kind = ComparisonKind::kDrift;
  // L_INFTY and/or JENSEN_SHANNON_DIVERGENCE measurements with their thresholds, in that
  // order (TFDV's DriftSkewInfo.Measurement).
  std::vector<tensorflow::metadata::v0::DriftSkewInfo::Measurement> measurements;
  // KL(current || control) in bits over the same buckets as the measurements (see
  // KullbackLeibler); unset when nothing was measured.
  std::optional<double> kl_divergence;
  // Anomalies: a measurement above its threshold (COMPARATOR_L_INFTY_HIGH,
  // COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH) or the feature missing from the control
  // data (COMPARATOR_CONTROL_DATA_MISSING).
  std::vector<tensorflow::metadata::v0::AnomalyInfo::Reason> reasons;
  // Why a requested measurement could not be made (e.g. no value counts for an INT
  // feature); empty otherwise.
  std::string note;
};

// Compares `current` with `control` for every non-deprecated schema feature that has a
// comparator of `kind` (or every one, with options.threshold) and is present in
// `current`. Categorical distances use the complete value counts when the generator
// recorded them (kiln_value_counts), else the top values; numeric divergences use the
// STANDARD histograms (QUANTILES when the comparator's source asks for them). Features
// without a comparator are not listed.
std::vector<FeatureComparison> Compare(
    const tensorflow::metadata::v0::DatasetFeatureStatistics& current,
    const tensorflow::metadata::v0::DatasetFeatureStatistics& control,
    const tensorflow::metadata::v0::Schema& schema, ComparisonKind kind,
    const CompareOptions& options = {});

}  // namespace kiln::validation

#endif  // KILN_VALIDATION_COMPARATOR_H_
