// Loading tensorflow.metadata DatasetFeatureStatisticsList protos from the places kiln,
// TFDV and TFX put them, and choosing the dataset (split) to validate. Free functions;
// thread-safe when the Env is.
#ifndef KILN_VALIDATION_STATISTICS_IO_H_
#define KILN_VALIDATION_STATISTICS_IO_H_

#include <string>
#include <string_view>

#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "tensorflow_metadata/proto/v0/statistics.pb.h"

namespace kiln::validation {

// File names looked for, in this order, when a statistics path is a directory.
// "FeatureStats.pb" is what TFX's StatisticsGen writes into each Split-* directory.
inline constexpr const char* kStatisticsFileNames[] = {
    "statistics.pb", "statistics.json", "statistics.pbtxt", "FeatureStats.pb", "stats.tfrecord"};

// The statistics file `path` names: `path` itself when it is a file, otherwise the first
// of kStatisticsFileNames inside the directory. kNotFound names what was looked for.
absl::StatusOr<std::string> ResolveStatisticsFile(Env* env, const std::string& path);

// True when `path` holds statistics rather than raw data: a directory holding one of
// kStatisticsFileNames, a .pb / .pbtxt / .tfrecord file named like statistics, or a .json
// file whose content parses as a DatasetFeatureStatisticsList with at least one dataset.
bool IsStatisticsPath(Env* env, const std::string& path);

// Loads statistics from a directory (see above) or a file:
//  - *.json:   protobuf JSON mapping (what `kiln stats` and Facets write);
//  - *.pbtxt / *.txt: text format;
//  - anything else: binary. A TFRecord whose first record holds the list (what
//    tfdv.generate_statistics_* writes) is recognised by its framing CRC.
// Errors: kNotFound for a missing path, kDataLoss naming the file when it cannot be
// parsed, kInvalidArgument when the list holds no dataset.
absl::StatusOr<tensorflow::metadata::v0::DatasetFeatureStatisticsList> LoadStatistics(
    Env* env, const std::string& path);

// Picks one dataset from `list`: the one named `split` when given; otherwise the only
// dataset, or the one named "all". kNotFound (listing the names) when `split` is absent;
// kInvalidArgument when several datasets leave the choice open.
absl::StatusOr<tensorflow::metadata::v0::DatasetFeatureStatistics> SelectDataset(
    const tensorflow::metadata::v0::DatasetFeatureStatisticsList& list, std::string_view split);

}  // namespace kiln::validation

#endif  // KILN_VALIDATION_STATISTICS_IO_H_
