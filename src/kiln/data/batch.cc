#include "kiln/data/batch.h"

namespace kiln::data {

std::string_view ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kInt:
      return "INT";
    case ValueType::kFloat:
      return "FLOAT";
    case ValueType::kString:
      return "STRING";
  }
  return "UNKNOWN";
}

void Column::Clear() {
  present.clear();
  offsets.assign(1, 0);
  ints.clear();
  floats.clear();
  str_data.clear();
  str_offsets.assign(1, 0);
}

void Column::AppendRowFrom(const Column& other, size_t row) {
  if (!other.is_present(row)) {
    AddMissing();
    return;
  }
  uint32_t begin = other.offsets[row], end = other.offsets[row + 1];
  for (uint32_t i = begin; i < end; ++i) {
    switch (type) {
      case ValueType::kInt:
        ints.push_back(other.ints[i]);
        break;
      case ValueType::kFloat:
        floats.push_back(other.floats[i]);
        break;
      case ValueType::kString:
        PushString(other.str(i));
        break;
    }
  }
  EndRow(end - begin);
}

void Batch::Clear() {
  num_rows = 0;
  columns.clear();
  row_positions.clear();
  source.clear();
}

int Batch::FindColumn(std::string_view name) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i].name == name) return static_cast<int>(i);
  return -1;
}

}  // namespace kiln::data
