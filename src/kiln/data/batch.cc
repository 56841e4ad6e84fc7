#include "kiln/data/batch.h"

#include <string>

#include "kiln/base/str.h"

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

std::string FirstValueText(const Column& c, size_t row) {
  const size_t i = c.offsets[row];
  switch (c.type) {
    case ValueType::kInt:
      return StrCat(c.ints[i]);
    case ValueType::kFloat:
      return StrCat(c.floats[i]);
    default:
      return std::string(c.str(i));
  }
}

int Batch::FindColumn(std::string_view name) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i].name == name) return static_cast<int>(i);
  return -1;
}

bool SameColumns(const Batch& a, const Batch& b) {
  if (a.columns.size() != b.columns.size()) return false;
  for (size_t i = 0; i < a.columns.size(); ++i) {
    if (a.columns[i].name != b.columns[i].name || a.columns[i].type != b.columns[i].type)
      return false;
  }
  return true;
}

namespace {

// Rows [begin, end) of `from` onto `to` (same type), copying each value array in one go.
void AppendColumnRows(const Column& from, size_t begin, size_t end, Column* to) {
  to->present.insert(to->present.end(), from.present.begin() + begin, from.present.begin() + end);
  const uint32_t vbegin = from.offsets[begin], vend = from.offsets[end];
  const uint32_t vbase = to->offsets.back();
  for (size_t r = begin + 1; r <= end; ++r) to->offsets.push_back(vbase + from.offsets[r] - vbegin);
  switch (to->type) {
    case ValueType::kInt:
      to->ints.insert(to->ints.end(), from.ints.begin() + vbegin, from.ints.begin() + vend);
      break;
    case ValueType::kFloat:
      to->floats.insert(to->floats.end(), from.floats.begin() + vbegin, from.floats.begin() + vend);
      break;
    case ValueType::kString: {
      const uint32_t sbegin = from.str_offsets[vbegin], send = from.str_offsets[vend];
      const uint32_t sbase = static_cast<uint32_t>(to->str_data.size());
      to->str_data.append(from.str_data, sbegin, send - sbegin);
      for (uint32_t i = vbegin + 1; i <= vend; ++i)
        to->str_offsets.push_back(sbase + from.str_offsets[i] - sbegin);
      break;
    }
  }
}

}  // namespace

absl::Status AppendRows(const Batch& from, size_t begin, size_t end, Batch* to) {
  if (begin > end || end > from.num_rows) {
    return absl::InvalidArgumentError(
        StrCat("AppendRows: rows [", begin, ", ", end, ") are outside a batch of ", from.num_rows));
  }
  if (to->num_rows == 0 && to->columns.empty()) {
    for (const Column& c : from.columns) {
      Column& nc = to->columns.emplace_back();
      nc.name = c.name;
      nc.type = c.type;
    }
  } else if (!SameColumns(from, *to)) {
    std::vector<std::string> want, got;
    for (const Column& c : to->columns) want.push_back(StrCat(c.name, ":", ValueTypeName(c.type)));
    for (const Column& c : from.columns) got.push_back(StrCat(c.name, ":", ValueTypeName(c.type)));
    return absl::InvalidArgumentError(StrCat("AppendRows: columns differ: [", StrJoin(got, ", "),
                                             "] onto [", StrJoin(want, ", "), "]"));
  }
  for (size_t c = 0; c < from.columns.size(); ++c)
    AppendColumnRows(from.columns[c], begin, end, &to->columns[c]);
  const bool keep_positions =
      to->row_positions.size() == to->num_rows && from.row_positions.size() == from.num_rows;
  const bool keep_tags =
      to->row_tags.size() == to->num_rows && from.row_tags.size() == from.num_rows;
  if (keep_positions) {
    to->row_positions.insert(to->row_positions.end(), from.row_positions.begin() + begin,
                             from.row_positions.begin() + end);
  } else {
    to->row_positions.clear();
  }
  if (keep_tags) {
    to->row_tags.insert(to->row_tags.end(), from.row_tags.begin() + begin,
                        from.row_tags.begin() + end);
  } else {
    to->row_tags.clear();
  }
  to->num_rows += end - begin;
  return absl::OkStatus();
}

}  // namespace kiln::data
