// Columnar in-memory rows. A Batch holds a few thousand rows as one Column per feature;
// readers produce Batches, statistics and writers consume them.
//
// Value model (the tf.Example one): in each row a feature is either missing, or present
// with a list of zero or more values of the column's type. Scalar sources (CSV) give
// lists of exactly one value. Not thread-safe; a Batch is owned by one thread at a time.
#ifndef KILN_DATA_BATCH_H_
#define KILN_DATA_BATCH_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace kiln::data {

// Numbers match tensorflow_metadata's FeatureNameStatistics.Type INT/FLOAT/STRING.
enum class ValueType : uint8_t { kInt = 0, kFloat = 1, kString = 2 };

std::string_view ValueTypeName(ValueType t);  // "INT", "FLOAT", "STRING"
// The wider of two types: INT < FLOAT < STRING.
inline ValueType WiderType(ValueType a, ValueType b) { return a > b ? a : b; }

struct Column {
  std::string name;
  ValueType type = ValueType::kInt;
  std::vector<uint8_t> present;  // per row: 1 when the feature is present
  // rows+1 entries; row r owns values [offsets[r], offsets[r+1]).
  std::vector<uint32_t> offsets{0};
  std::vector<int64_t> ints;             // when type == kInt
  std::vector<double> floats;            // when type == kFloat
  std::string str_data;                  // when type == kString: value i is
  std::vector<uint32_t> str_offsets{0};  //   str_data[str_offsets[i], str_offsets[i+1])

  size_t num_rows() const { return present.size(); }
  size_t num_values() const { return offsets.back(); }
  std::string_view str(size_t i) const {
    return std::string_view(str_data).substr(str_offsets[i], str_offsets[i + 1] - str_offsets[i]);
  }
  bool is_present(size_t row) const { return present[row] != 0; }
  uint32_t value_count(size_t row) const { return offsets[row + 1] - offsets[row]; }

  void Clear();
  // Row builders: each call appends one row.
  void AddMissing() {
    present.push_back(0);
    offsets.push_back(offsets.back());
  }
  void AddInt(int64_t v) {
    ints.push_back(v);
    EndRow(1);
  }
  void AddFloat(double v) {
    floats.push_back(v);
    EndRow(1);
  }
  void AddString(std::string_view v) {
    PushString(v);
    EndRow(1);
  }
  // List rows: push values with PushX, then EndRow(number pushed).
  void PushString(std::string_view v) {
    str_data.append(v);
    str_offsets.push_back(static_cast<uint32_t>(str_data.size()));
  }
  void EndRow(uint32_t n) {
    present.push_back(1);
    offsets.push_back(offsets.back() + n);
  }
  // Appends row `row` of `other` (same type) to this column.
  void AppendRowFrom(const Column& other, size_t row);
};

struct Batch {
  size_t num_rows = 0;
  std::vector<Column> columns;
  // Source position of each row (1-based line for text formats, record index for
  // TFRecord); empty when the source has none. Used to name bad rows.
  std::vector<uint64_t> row_positions;
  std::string source;        // file the rows came from
  uint64_t block_index = 0;  // which block of the source (set by ForEachBatchParallel)
  // Per-row integers a pipeline stage may attach (e.g. the split each row goes to).
  std::vector<int> row_tags;

  void Clear();
  // Index of the column named `name`, or -1.
  int FindColumn(std::string_view name) const;
};

// Name and type of a column, as fixed by inference or a schema.
struct ColumnSpec {
  std::string name;
  ValueType type;
  bool operator==(const ColumnSpec&) const = default;
};
using TableSchema = std::vector<ColumnSpec>;

// The first value of `row` in `c` as text: integers in decimal, floats in shortest
// round-trip form, strings as they are. The row must have a value. This is how labels and
// keys are read as class names (trainer, evaluator).
std::string FirstValueText(const Column& c, size_t row);

// True when `a` and `b` have the same column names and types, in the same order.
bool SameColumns(const Batch& a, const Batch& b);

// Appends rows [begin, end) of `from` to `to`. A `to` with no rows and no columns takes
// `from`'s columns; otherwise both must have the same columns (SameColumns). row_positions
// and row_tags are kept only while both batches carry them for every row, else `to`'s are
// cleared; `source` and `block_index` are left alone.
// Errors (with `to` unchanged): kInvalidArgument for different columns or a bad range.
absl::Status AppendRows(const Batch& from, size_t begin, size_t end, Batch* to);
// All rows of `from`.
inline absl::Status AppendRows(const Batch& from, Batch* to) {
  return AppendRows(from, 0, from.num_rows, to);
}

}  // namespace kiln::data

#endif  // KILN_DATA_BATCH_H_
