#include "kiln/eval/slicing.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::eval {

Slicer::Slicer(std::vector<SliceSpec> specs) : specs_(std::move(specs)), slices_(specs_.size()) {
  for (const SliceSpec& s : specs_) {
    for (const SliceDimension& d : s.dimensions) seen_[d.feature] = false;
  }
}

absl::StatusOr<std::vector<Slicer::Part>> Slicer::Parts(const data::Column* column,
                                                        const SliceDimension& dim,
                                                        size_t row) const {
  std::vector<Part> parts;
  if (column != nullptr && column->is_present(row)) {
    const bool bucketed = !dim.boundaries.empty();
    if (bucketed && column->type == data::ValueType::kString) {
      return absl::InvalidArgumentError(
          StrCat("slicing feature '", dim.feature,
                 "' has bucket boundaries but is a string column; buckets need numbers"));
    }
    for (uint32_t i = column->offsets[row]; i < column->offsets[row + 1]; ++i) {
      Part p;
      if (column->type == data::ValueType::kString) {
        p.kind = 1;
        p.text = std::string(column->str(i));
      } else {
        const double v = column->type == data::ValueType::kInt
                             ? static_cast<double>(column->ints[i])
                             : column->floats[i];
        if (std::isnan(v)) continue;
        if (bucketed) {
          p.number = static_cast<double>(
              std::upper_bound(dim.boundaries.begin(), dim.boundaries.end(), v) -
              dim.boundaries.begin());
        } else {
          p.number = v;
          // Integers print as integers; keep an int64 exact in the name.
          p.text = column->type == data::ValueType::kInt ? StrCat(column->ints[i]) : StrCat(v);
        }
      }
      parts.push_back(std::move(p));
    }
  }
  std::sort(parts.begin(), parts.end());
  parts.erase(std::unique(parts.begin(), parts.end()), parts.end());
  if (parts.empty()) parts.push_back(Part{2, 0, ""});
  return parts;
}

std::string Slicer::PartName(const Part& p, const SliceDimension& dim) {
  if (p.kind == 2) return kMissingValue;
  if (p.kind == 1 || dim.boundaries.empty()) return p.text;
  const size_t b = static_cast<size_t>(p.number);
  const std::string lo = b == 0 ? "-inf" : StrCat(dim.boundaries[b - 1]);
  const std::string hi = b == dim.boundaries.size() ? "inf" : StrCat(dim.boundaries[b]);
  return StrCat("[", lo, ",", hi, ")");
}

absl::Status Slicer::Add(const data::Batch& batch, std::span<const uint8_t> keep,
                         uint32_t first_row) {
  for (auto& [feature, seen] : seen_) seen = seen || batch.FindColumn(feature) >= 0;
  for (size_t s = 0; s < specs_.size(); ++s) {
    const std::vector<SliceDimension>& dims = specs_[s].dimensions;
    std::vector<const data::Column*> columns;
    for (const SliceDimension& d : dims) {
      const int idx = batch.FindColumn(d.feature);
      columns.push_back(idx < 0 ? nullptr : &batch.columns[idx]);
    }
    uint32_t out_row = first_row;
    std::vector<std::vector<Part>> parts(dims.size());
    for (size_t r = 0; r < batch.num_rows; ++r) {
      if (!keep[r]) continue;
      for (size_t d = 0; d < dims.size(); ++d) {
        KILN_ASSIGN_OR_RETURN(parts[d], Parts(columns[d], dims[d], r));
      }
      // Every combination of the row's values (one per feature for scalar columns).
      std::vector<size_t> at(dims.size(), 0);
      for (;;) {
        Key key;
        for (size_t d = 0; d < dims.size(); ++d) key.push_back(parts[d][at[d]]);
        slices_[s][std::move(key)].push_back(out_row);
        size_t d = dims.size();
        while (d > 0 && ++at[d - 1] == parts[d - 1].size()) at[--d] = 0;
        if (d == 0) break;
      }
      ++out_row;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Slice>> Slicer::Finish(uint32_t total_rows) const {
  for (const auto& [feature, seen] : seen_) {
    if (!seen) {
      return absl::InvalidArgumentError(
          StrCat("slicing feature '", feature, "' is not a column of the data"));
    }
  }
  std::vector<Slice> out;
  Slice overall;
  overall.name = kOverallSlice;
  overall.rows.resize(total_rows);
  for (uint32_t i = 0; i < total_rows; ++i) overall.rows[i] = i;
  out.push_back(std::move(overall));
  for (size_t s = 0; s < specs_.size(); ++s) {
    for (const auto& [key, rows] : slices_[s]) {
      Slice slice;
      slice.spec = specs_[s].Key();
      for (size_t d = 0; d < key.size(); ++d) {
        const SliceDimension& dim = specs_[s].dimensions[d];
        StrAppend(&slice.name, d == 0 ? "" : ",", dim.feature, "=", PartName(key[d], dim));
      }
      slice.rows = rows;
      out.push_back(std::move(slice));
    }
  }
  return out;
}

}  // namespace kiln::eval
