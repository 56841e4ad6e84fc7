// Deterministic hash-based assignment of rows to named splits (train/eval/...), as TFX
// ExampleGen does it: a row's split depends only on its content (or on one partition
// feature), never on its position, the column order or the machine. The hashes are part of
// kiln's on-disk contract: changing them moves rows between splits of re-imported data.
// Thread-safe (SplitAssigner is immutable).
#ifndef KILN_DATA_SPLIT_H_
#define KILN_DATA_SPLIT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/base/status.h"
#include "kiln/data/batch.h"

namespace kiln::data {

struct SplitConfig {
  // Split names and their relative weights, in output order.
  std::vector<std::pair<std::string, int>> splits = {{"train", 2}, {"eval", 1}};
  // When set, rows are assigned by this feature's value(s) alone, so all rows sharing a value
  // (e.g. one user) land in the same split.
  std::string partition_feature;
};

// Parses "train:2,eval:1" (spaces around items allowed). Names are 1-64 characters of
// [A-Za-z0-9_-] (they become directory names); weights are positive integers; names are
// unique. Errors: kInvalidArgument naming the bad item.
absl::StatusOr<SplitConfig> ParseSplitConfig(std::string_view spec);
// The inverse of ParseSplitConfig (splits only).
std::string SplitConfigToString(const SplitConfig& config);

// Canonical hash of row `row` of `batch`: the present features in name order, each by name,
// value count and values. Missing features contribute nothing, so a column absent from the
// batch and a missing value are the same, while a present-but-empty list is not. Values
// are hashed by their text form (integers in decimal, floats in shortest round-trip form,
// strings as bytes), so a column widened from INT to FLOAT or STRING keeps its hashes
// for the values it could already hold.
uint64_t RowContentHash(const Batch& batch, size_t row);
// Hash of one feature's value(s) in a row; `column` may be null (feature missing).
uint64_t FeatureValueHash(const Column* column, size_t row);

class SplitAssigner {
 public:
  // Errors: kInvalidArgument for an empty config, non-positive weights or duplicate names.
  static absl::StatusOr<SplitAssigner> Create(SplitConfig config);

  const SplitConfig& config() const { return config_; }
  int num_splits() const { return static_cast<int>(config_.splits.size()); }
  int total_weight() const { return total_weight_; }

  // The split index for a row hash: bucket = hash % total_weight, and split i owns the
  // buckets [sum of weights before i, that + weight_i).
  int SplitForHash(uint64_t hash) const;
  // Split index of every row of `batch` into `out` (resized to batch.num_rows).
  void Assign(const Batch& batch, std::vector<int>* out) const;

 private:
  explicit SplitAssigner(SplitConfig config);
  SplitConfig config_;
  int total_weight_ = 0;
};

}  // namespace kiln::data

#endif  // KILN_DATA_SPLIT_H_
