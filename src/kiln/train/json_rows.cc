#include "kiln/train/json_rows.h"

#include <cmath>

#include "kiln/base/str.h"

namespace kiln::train {
namespace {

// Appends one value of `v` to `col` (not ending the row). Errors name the problem only;
// the caller adds where.
absl::Status PushValue(const nlohmann::json& v, data::Column* col) {
  switch (col->type) {
    case data::ValueType::kInt:
      if (v.is_number_integer()) {
        if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{INT64_MAX}) {
          return absl::InvalidArgumentError("the integer is out of the int64 range");
        }
        col->ints.push_back(v.get<int64_t>());
        return absl::OkStatus();
      }
      return absl::InvalidArgumentError(StrCat("expected an integer (int64), got ", v.type_name(),
                                               v.is_number_float() ? " (a float)" : ""));
    case data::ValueType::kFloat:
      if (v.is_number()) {
        col->floats.push_back(v.get<double>());
        return absl::OkStatus();
      }
      return absl::InvalidArgumentError(StrCat("expected a number, got ", v.type_name()));
    case data::ValueType::kString:
      if (v.is_string()) {
        col->PushString(v.get_ref<const std::string&>());
        return absl::OkStatus();
      }
      return absl::InvalidArgumentError(StrCat("expected a string, got ", v.type_name()));
  }
  return absl::InternalError("unknown column type");
}

}  // namespace

absl::StatusOr<data::TableSchema> SignatureInputs(const model::BundleManifest& manifest) {
  data::TableSchema out;
  const nlohmann::json& sig = manifest.signature;
  if (!sig.is_object() || !sig.contains("inputs") || !sig["inputs"].is_array() ||
      sig["inputs"].empty()) {
    return absl::DataLossError("the bundle's signature lists no inputs");
  }
  for (const nlohmann::json& in : sig["inputs"]) {
    if (!in.is_object() || !in.contains("name") || !in["name"].is_string() ||
        !in.contains("dtype") || !in["dtype"].is_string()) {
      return absl::DataLossError("a signature input without a name or dtype");
    }
    const std::string dtype = in["dtype"].get<std::string>();
    data::ValueType t;
    if (dtype == "int64") {
      t = data::ValueType::kInt;
    } else if (dtype == "float32" || dtype == "float64") {
      t = data::ValueType::kFloat;
    } else if (dtype == "string") {
      t = data::ValueType::kString;
    } else {
      return absl::DataLossError(StrCat("signature input '", in["name"].get<std::string>(),
                                        "' has the unknown dtype '", dtype, "'"));
    }
    out.push_back({in["name"].get<std::string>(), t});
  }
  return out;
}

absl::StatusOr<data::Batch> RowsFromJson(const nlohmann::json& rows,
                                         const data::TableSchema& inputs) {
  if (!rows.is_array()) {
    return absl::InvalidArgumentError(StrCat("expected an array of rows, got ", rows.type_name()));
  }
  data::Batch b;
  for (const data::ColumnSpec& spec : inputs) {
    data::Column c;
    c.name = spec.name;
    c.type = spec.type;
    b.columns.push_back(std::move(c));
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    const nlohmann::json& row = rows[r];
    if (!row.is_object()) {
      return absl::InvalidArgumentError(
          StrCat("row ", r, ": expected an object of features, got ", row.type_name()));
    }
    for (data::Column& col : b.columns) {
      auto it = row.find(col.name);
      if (it == row.end() || it->is_null()) {
        col.AddMissing();
        continue;
      }
      absl::Status st;
      uint32_t n = 0;
      if (it->is_array()) {
        for (const nlohmann::json& v : *it) {
          if (v.is_array() || v.is_object()) {
            st = absl::InvalidArgumentError("lists of lists are not supported");
          } else {
            st = PushValue(v, &col);
          }
          if (!st.ok()) break;
          ++n;
        }
      } else {
        st = PushValue(*it, &col);
        n = 1;
      }
      if (!st.ok()) {
        return absl::InvalidArgumentError(
            StrCat("row ", r, ", feature '", col.name, "': ", st.message()));
      }
      col.EndRow(n);
    }
    ++b.num_rows;
  }
  return b;
}

nlohmann::json RowToJson(const data::Batch& batch, size_t row, const data::TableSchema& inputs) {
  nlohmann::json out = nlohmann::json::object();
  for (const data::ColumnSpec& spec : inputs) {
    const int idx = batch.FindColumn(spec.name);
    if (idx < 0) continue;
    const data::Column& c = batch.columns[idx];
    if (!c.is_present(row)) continue;
    auto value = [&](size_t i) -> nlohmann::json {
      switch (c.type) {
        case data::ValueType::kInt:
          return c.ints[i];
        case data::ValueType::kFloat:
          // JSON has no NaN or infinity: such a value is left out (read back as missing).
          return std::isfinite(c.floats[i]) ? nlohmann::json(c.floats[i]) : nlohmann::json();
        case data::ValueType::kString:
          return std::string(c.str(i));
      }
      return nullptr;
    };
    const uint32_t from = c.offsets[row], n = c.value_count(row);
    if (n == 1) {
      nlohmann::json v = value(from);
      if (!v.is_null()) out[spec.name] = std::move(v);
    } else {
      nlohmann::json list = nlohmann::json::array();
      for (uint32_t i = 0; i < n; ++i) {
        nlohmann::json v = value(from + i);
        if (!v.is_null()) list.push_back(std::move(v));  // NaN and infinities left out
      }
      out[spec.name] = std::move(list);
    }
  }
  return out;
}

}  // namespace kiln::train
