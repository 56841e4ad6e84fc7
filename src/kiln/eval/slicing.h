// Slicing: which slices of the evaluation rows each row belongs to (TFMA's slicing specs).
//
// Slice names: "overall" (every row); "FEATURE=VALUE" per value of a feature; for a cross
// "A=x,B=y"; for numeric buckets "FEATURE=[lo,hi)" with "-inf" and "inf" at the ends.
// A missing value (an absent feature, an empty list, a NaN) is the value "(missing)".
// Values print as they read: integers in decimal, other numbers in shortest round-trip
// form, strings as they are. A row with several values of a feature (a tf.Example list)
// is in the slice of each; in a cross, in every combination.
//
// Order: overall, then each spec's slices in spec order; within a spec by value (buckets
// in order, numbers by value, then strings bytewise, then (missing)), the first feature
// first. Not thread-safe.
#ifndef KILN_EVAL_SLICING_H_
#define KILN_EVAL_SLICING_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/data/batch.h"
#include "kiln/eval/eval_config.h"

namespace kiln::eval {

inline constexpr const char* kOverallSlice = "overall";
inline constexpr const char* kMissingValue = "(missing)";

struct Slice {
  std::string name;
  std::string spec;            // the spec's key ("user_type,device"); "" for overall
  std::vector<uint32_t> rows;  // ascending indices of the evaluated rows
};

class Slicer {
 public:
  explicit Slicer(std::vector<SliceSpec> specs);

  // Adds the rows of `batch` whose `keep` entry is non-zero, numbering them from
  // `first_row` in order. Errors: kInvalidArgument for bucket boundaries on a string column.
  absl::Status Add(const data::Batch& batch, std::span<const uint8_t> keep, uint32_t first_row);

  // The slices of the `total_rows` rows added. Errors: kInvalidArgument naming a sliced
  // feature that no batch had as a column.
  absl::StatusOr<std::vector<Slice>> Finish(uint32_t total_rows) const;

 private:
  // One feature's value in a row, ordered as slices are reported.
  struct Part {
    int kind = 0;  // 0 number or bucket index, 1 string, 2 missing
    double number = 0;
    std::string text;
    bool operator<(const Part& o) const {
      if (kind != o.kind) return kind < o.kind;
      if (number != o.number) return number < o.number;
      return text < o.text;
    }
    bool operator==(const Part& o) const {
      return kind == o.kind && number == o.number && text == o.text;
    }
  };
  using Key = std::vector<Part>;

  absl::StatusOr<std::vector<Part>> Parts(const data::Column* column,
                                          const SliceDimension& dimension, size_t row) const;
  static std::string PartName(const Part& part, const SliceDimension& dimension);

  std::vector<SliceSpec> specs_;
  std::vector<std::map<Key, std::vector<uint32_t>>> slices_;  // per spec
  std::map<std::string, bool> seen_;                          // sliced feature -> seen
};

}  // namespace kiln::eval

#endif  // KILN_EVAL_SLICING_H_
