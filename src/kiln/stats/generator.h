// The statistics generator (TFX StatisticsGen / TFDV generate_statistics): one pass over
// a data source on all cores, producing tensorflow_metadata's DatasetFeatureStatistics.
// Every per-feature accumulator is mergeable, so threads (and shards) combine exactly
// as one sequential pass would, up to the stated sketch errors:
//  - counts, mean, std_dev, min, max, num_zeros, NaN/inf counts: exact (floating point);
//  - median and quantiles: KLL sketch, rank error within KllSketch::RankErrorBound();
//  - unique and top values: exact up to StatsOptions::max_exact_unique distinct values,
//    then HyperLogLog and a heavy-hitter sketch.
#ifndef KILN_STATS_GENERATOR_H_
#define KILN_STATS_GENERATOR_H_

#include <string>

#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "kiln/data/input.h"
#include "kiln/data/source.h"
#include "tensorflow_metadata/proto/v0/statistics.pb.h"

namespace kiln::stats {

struct StatsOptions {
  int num_histogram_buckets = 10;            // equal-width histogram (TFDV default 10)
  int num_quantiles_histogram_buckets = 10;  // quantiles histogram (TFDV default 10)
  int num_top_values = 20;                   // top_values kept (TFDV default 20)
  int num_rank_histogram_buckets = 20;       // rank histogram entries
  // (an upper bound: wide tables share a fixed budget of exact values across features)
  size_t max_exact_unique = 1 << 16;  // distinct values counted exactly per feature
  // Distinct values up to which every value's count is recorded in the custom statistic
  // "kiln_value_counts" (used by validation for domain checks and L-infinity drift).
  size_t value_counts_cap = 1000;
  int kll_k = 200;               // quantile sketch accuracy
  int threads = 0;               // 0: one per core
  Progress* progress = nullptr;  // told of every block read; may be null
};

// Computes statistics of everything `input` holds (for a dataset artifact, of the split
// named in input.split, or all splits). `name` becomes DatasetFeatureStatistics.name.
// Bad rows are handled as `read.bad_rows` says and counted in `bad`.
absl::StatusOr<tensorflow::metadata::v0::DatasetFeatureStatistics> ComputeStatistics(
    Env* env, const data::InputSet& input, const data::ReadOptions& read,
    const StatsOptions& options, data::BadRowSink* bad, const std::string& name = "all");

// Writes DIR/statistics.pb (binary) and DIR/statistics.json (proto3 JSON mapping),
// each atomically.
absl::Status WriteStatistics(Env* env, const std::string& dir,
                             const tensorflow::metadata::v0::DatasetFeatureStatisticsList& stats);

// A readable table of the statistics, one line per feature.
std::string FormatStatisticsTable(const tensorflow::metadata::v0::DatasetFeatureStatistics& ds);

}  // namespace kiln::stats

#endif  // KILN_STATS_GENERATOR_H_
