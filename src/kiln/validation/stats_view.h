// Read-only helpers over tensorflow.metadata statistics protos: the numbers validation
// needs (presence, value counts, the distinct values with their counts, histograms,
// kiln's custom stats) found wherever the generator put them. Stateless free functions;
// thread-safe as long as the protos are not modified concurrently.
#ifndef KILN_VALIDATION_STATS_VIEW_H_
#define KILN_VALIDATION_STATS_VIEW_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "tensorflow_metadata/proto/v0/schema.pb.h"
#include "tensorflow_metadata/proto/v0/statistics.pb.h"

namespace kiln::validation {

namespace tfmd = ::tensorflow::metadata::v0;

// Names of the custom statistics kiln's generator adds (see src/kiln/stats/).
inline constexpr std::string_view kNumInfStat = "num_inf";
inline constexpr std::string_view kNonIntCountStat = "kiln_non_int_count";
inline constexpr std::string_view kNonFloatCountStat = "kiln_non_float_count";
inline constexpr std::string_view kValueCountsStat = "kiln_value_counts";

// The feature's name: `name`, or its `path` serialized the way TFDV does (steps joined
// by '.', a step holding '.', '(', ')' or '\'' quoted in single quotes).
std::string FeatureName(const tfmd::FeatureNameStatistics& feature);

// Serializes a one-step path the way TFDV's Path::Serialize does.
std::string SerializePathStep(std::string_view step);

// The feature called `name` in `dataset`, or null.
const tfmd::FeatureNameStatistics* FindFeature(const tfmd::DatasetFeatureStatistics& dataset,
                                               std::string_view name);

// The schema feature called `name`, or null.
const tfmd::Feature* FindSchemaFeature(const tfmd::Schema& schema, std::string_view name);

// The common statistics of whichever stats oneof is set (a default instance if none).
const tfmd::CommonStatistics& Common(const tfmd::FeatureNameStatistics& feature);

// True when the feature carries no statistics at all (TFDV ignores such entries).
bool HasNoStats(const tfmd::FeatureNameStatistics& feature);

// Total number of values over all examples; falls back to non_missing * avg when the
// generator left tot_num_values unset (as TFDV does).
double TotalValueCount(const tfmd::FeatureNameStatistics& feature);

// Value of the numeric custom statistic `name`, if present.
std::optional<double> CustomNum(const tfmd::FeatureNameStatistics& feature, std::string_view name);

// The distinct values of a string (or categorical) feature with their counts.
struct ValueCounts {
  std::map<std::string, double> counts;
  // True when `counts` lists every distinct value: it came from kiln_value_counts, or
  // its size equals string_stats.unique.
  bool complete = false;
};

// The best list of values available: the kiln_value_counts custom stat (every value),
// else string_stats.rank_histogram (TFDV's source), else string_stats.top_values.
// nullopt when the feature has none of them.
std::optional<ValueCounts> GetValueCounts(const tfmd::FeatureNameStatistics& feature);

// The histogram of `type` in num_stats, if present.
std::optional<tfmd::Histogram> GetHistogram(const tfmd::FeatureNameStatistics& feature,
                                            tfmd::Histogram::HistogramType type);

// Number of NaN values: the largest num_nan over the numeric histograms.
double NumNan(const tfmd::FeatureNameStatistics& feature);

// Maps a statistics type to the schema type (STRING and BYTES → BYTES).
tfmd::FeatureType SchemaTypeOf(tfmd::FeatureNameStatistics::Type type);

// True when `feature` is deprecated in the schema (deprecated flag or a lifecycle stage
// TFDV ignores: PLANNED, ALPHA, DEPRECATED, DEBUG_ONLY, DISABLED).
bool IsDeprecated(const tfmd::Feature& feature);

// The string domain a feature uses: its inline string_domain, or the schema-level domain
// its `domain` field names. Null when it has neither or the name is unknown.
const tfmd::StringDomain* GetStringDomain(const tfmd::Schema& schema, const tfmd::Feature& feature);

}  // namespace kiln::validation

#endif  // KILN_VALIDATION_STATS_VIEW_H_
