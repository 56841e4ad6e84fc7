#include "kiln/serving/fast_rows.h"

#include <openssl/evp.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/base/string_map.h"
#include "kiln/data/simdjson_quiet.h"
#include "kiln/serving/rest_api.h"
#include "kiln/train/json_rows.h"

namespace kiln::serving {
namespace {

using Json = nlohmann::json;
using simdjson::dom::element;
using simdjson::dom::element_type;

absl::Status DecodeB64(Json* v, int depth) {
  if (depth > 16) return absl::InvalidArgumentError("values nested too deeply");
  if (v->is_array()) {
    for (Json& e : *v) KILN_RETURN_IF_ERROR(DecodeB64(&e, depth + 1));
    return absl::OkStatus();
  }
  if (!v->is_object()) return absl::OkStatus();
  if (v->size() == 1 && v->contains("b64")) {
    const Json& b = (*v)["b64"];
    if (!b.is_string()) return absl::InvalidArgumentError("a b64 value must be a string");
    const std::string& text = b.get_ref<const std::string&>();
    std::string out(3 * (text.size() / 4) + 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
    if (n < 0 || text.size() % 4 != 0) {
      return absl::InvalidArgumentError("a b64 value is not valid base64");
    }
    size_t len = static_cast<size_t>(n);
    for (size_t i = text.size(); i > 0 && text[i - 1] == '=' && len > 0; --i) --len;
    out.resize(len);
    *v = Json(out);  // may not be UTF-8: only used as bytes
    return absl::OkStatus();
  }
  for (auto& [k, e] : v->items()) KILN_RETURN_IF_ERROR(DecodeB64(&e, depth + 1));
  return absl::OkStatus();
}

// ---- The fast path. It declines (returns false) rather than words an error:
// whatever it declines, the general path judges, so the two cannot disagree on errors.
// It declines every value the general path would treat specially before RowsFromJson
// sees it (objects, which may be {"b64": ...}; lists of lists, which may be nested too
// deeply; any object with a "b64" key, which nlohmann may see as {"b64": ...} once it
// has kept the last of duplicate keys) and duplicate keys of interest.

// A scalar or a list of scalars: what a feature value may be.
bool IsPlainValue(element v) {
  switch (v.type()) {
    case element_type::OBJECT:
      return false;
    case element_type::ARRAY: {
      // Held in a variable: a range-for over value_unsafe() would outlive the result.
      const simdjson::dom::array list = v.get_array().value_unsafe();
      for (element e : list) {
        const element_type t = e.type();
        if (t == element_type::ARRAY || t == element_type::OBJECT) return false;
      }
      return true;
    }
    default:
      return true;
  }
}

// Appends the scalar `v` to `col` as train::RowsFromJson does, or declines a wrong type.
bool PushScalar(element v, data::Column* col) {
  switch (col->type) {
    case data::ValueType::kInt:
      if (v.type() == element_type::INT64) {
        col->ints.push_back(v.get_int64().value_unsafe());
        return true;
      }
      return false;  // UINT64 (above the int64 range), a float, ...
    case data::ValueType::kFloat:
      switch (v.type()) {
        case element_type::INT64:
          col->floats.push_back(static_cast<double>(v.get_int64().value_unsafe()));
          return true;
        case element_type::UINT64:
          col->floats.push_back(static_cast<double>(v.get_uint64().value_unsafe()));
          return true;
        case element_type::DOUBLE:
          col->floats.push_back(v.get_double().value_unsafe());
          return true;
        default:
          return false;
      }
    case data::ValueType::kString:
      if (v.type() == element_type::STRING) {
        col->PushString(v.get_string().value_unsafe());
        return true;
      }
      return false;
  }
  return false;
}

// Appends one row's value of a feature (null: missing; a scalar; a list of scalars).
bool PushValue(element v, data::Column* col) {
  switch (v.type()) {
    case element_type::NULL_VALUE:
      col->AddMissing();
      return true;
    case element_type::OBJECT:
      return false;
    case element_type::ARRAY: {
      const simdjson::dom::array list = v.get_array().value_unsafe();
      uint32_t n = 0;
      for (element e : list) {
        // A null, list or object in a list is the general path's error (or b64).
        if (!PushScalar(e, col)) return false;
        ++n;
      }
      col->EndRow(n);
      return true;
    }
    default:
      if (!PushScalar(v, col)) return false;
      col->EndRow(1);
      return true;
  }
}

// Which signature input a key names. Keys usually come in the signature's order, so the
// input after the last one found is tried first, then a hash index of the names.
class InputIndex {
 public:
  // The calling thread's index of `inputs`, rebuilt only when they are not the ones it
  // saw last (request after request brings the same model's).
  static InputIndex* For(const data::TableSchema& inputs) {
    thread_local InputIndex last;
    if (last.inputs_ != inputs) last.Build(inputs);
    last.next_ = 0;
    return &last;
  }
  // Whether no two inputs share a name (RowsFromJson gives such a name's value to each of
  // its columns; Find names one).
  bool distinct() const { return distinct_; }
  // -1 when `key` is not an input.
  int Find(std::string_view key) {
    if (next_ < inputs_.size() && inputs_[next_].name == key) return static_cast<int>(next_++);
    auto it = index_.find(key);
    if (it == index_.end()) return -1;
    next_ = static_cast<size_t>(it->second) + 1;
    return it->second;
  }
  void Restart() { next_ = 0; }

 private:
  void Build(const data::TableSchema& inputs) {
    inputs_ = inputs;
    index_.clear();
    distinct_ = true;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      distinct_ &= index_.try_emplace(inputs_[i].name, static_cast<int>(i)).second;
    }
  }

  data::TableSchema inputs_;  // a copy: index_ points into it
  absl::flat_hash_map<std::string_view, int, StringHash, StringEq> index_;
  bool distinct_ = true;
  size_t next_ = 0;
};

// The bytes `c`'s storage takes.
size_t StorageBytes(const data::Column& c) {
  return c.present.capacity() +
         sizeof(uint32_t) * (c.offsets.capacity() + c.str_offsets.capacity()) +
         sizeof(int64_t) * c.ints.capacity() + sizeof(double) * c.floats.capacity() +
         c.str_data.capacity();
}

// Rows whose storage takes at most this much are kept for reuse.
constexpr size_t kKeptBytes = size_t{64} << 10;

// Makes `b` a batch of no rows with the columns of `inputs`, as RowsFromJson starts one,
// keeping its storage when it has those columns already and the storage is small.
void ResetBatch(const data::TableSchema& inputs, data::Batch* b) {
  bool keep = b->columns.size() == inputs.size();
  size_t bytes = 0;
  for (size_t i = 0; keep && i < inputs.size(); ++i) {
    const data::Column& c = b->columns[i];
    keep = c.name == inputs[i].name && c.type == inputs[i].type;
    bytes += StorageBytes(c);
  }
  keep = keep && bytes <= kKeptBytes;
  if (keep) {
    for (data::Column& c : b->columns) c.Clear();
    b->num_rows = 0;
    b->row_positions.clear();
    b->source.clear();
    b->block_index = 0;
    b->row_tags.clear();
    return;
  }
  *b = data::Batch();
  b->columns.reserve(inputs.size());
  for (const data::ColumnSpec& spec : inputs) {
    data::Column c;
    c.name = spec.name;
    c.type = spec.type;
    b->columns.push_back(std::move(c));
  }
}

// {"instances": [{feature: value, ...}, ...]}.
bool FastRows(simdjson::dom::array rows, const data::TableSchema& inputs, InputIndex* index,
              data::Batch* b) {
  // Per input: the row whose value it holds (+1), and the value.
  std::vector<size_t> stamp(inputs.size(), 0);
  std::vector<element> value(inputs.size());
  for (element row : rows) {
    simdjson::dom::object obj;
    if (row.get_object().get(obj)) return false;
    const size_t mark = b->num_rows + 1;
    index->Restart();
    for (simdjson::dom::key_value_pair field : obj) {
      if (field.key == "b64") return false;  // the row may be {"b64": ...}
      const int i = index->Find(field.key);
      if (i < 0) {
        if (!IsPlainValue(field.value)) return false;  // ignored, but b64-decoded first
        continue;
      }
      if (stamp[i] == mark) return false;  // a duplicate key
      stamp[i] = mark;
      value[i] = field.value;
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      data::Column& col = b->columns[i];
      if (stamp[i] != mark) {
        col.AddMissing();
      } else if (!PushValue(value[i], &col)) {
        return false;
      }
    }
    ++b->num_rows;
  }
  return true;
}

// {"inputs": {feature: [value per row], ...}}: every list of one length.
bool FastColumns(simdjson::dom::object columns, const data::TableSchema& inputs, InputIndex* index,
                 data::Batch* b) {
  std::vector<bool> seen(inputs.size(), false);
  std::vector<simdjson::dom::array> lists(inputs.size());
  size_t rows = 0, fields = 0;
  for (simdjson::dom::key_value_pair field : columns) {
    if (field.key == "b64") return false;  // "inputs" may be {"b64": ...}
    simdjson::dom::array list;
    if (field.value.get_array().get(list)) return false;
    size_t n = 0;
    const int i = index->Find(field.key);
    for (element e : list) {
      if (i < 0 && !IsPlainValue(e)) return false;  // ignored, but b64-decoded first
      ++n;
    }
    if (fields > 0 && n != rows) return false;
    rows = n;
    ++fields;
    if (i < 0) continue;
    if (seen[i]) return false;  // a duplicate key
    seen[i] = true;
    lists[i] = list;
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    data::Column& col = b->columns[i];
    col.present.reserve(rows);
    col.offsets.reserve(rows + 1);
    if (!seen[i]) {
      for (size_t r = 0; r < rows; ++r) col.AddMissing();
      continue;
    }
    for (element v : lists[i]) {
      if (!PushValue(v, &col)) return false;
    }
  }
  b->num_rows = rows;
  return true;
}

// Bodies up to this size are parsed by a parser kept per thread (its buffers take some
// 15 bytes per byte of body: at most ~250 KB a thread, and the server may run hundreds
// of threads); a bigger one gets a parser of its own.
constexpr size_t kReusedParserBytes = size_t{16} << 10;

// ---- The response.

void AppendFloat(std::string* out, float v) {
  // As nlohmann::json holds a float (a double) and dumps it: non-finite as null, else
  // its shortest round-trip digits (Grisu2) in its layout.
  const double d = v;
  if (!std::isfinite(d)) {
    out->append("null");
    return;
  }
  char buf[64];
  char* end = nlohmann::detail::to_chars(buf, buf + sizeof(buf), d);
  out->append(buf, end);
}

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

void AppendFloats(std::string* out, const float* v, size_t n) {
  out->push_back('[');
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out->push_back(',');
    AppendFloat(out, v[i]);
  }
  out->push_back(']');
}

}  // namespace

absl::Status DecodeB64Values(nlohmann::json* v) { return DecodeB64(v, 0); }

absl::StatusOr<PredictRows> PredictRowsFromJson(std::string_view body,
                                                const data::TableSchema& inputs) {
  Json request = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded() || !request.is_object()) {
    return absl::InvalidArgumentError("the request body is not a JSON object");
  }
  if (request.contains("signature_name")) {
    const Json& s = request["signature_name"];
    if (!s.is_string() || (s != "serving_default" && s != "")) {
      return absl::InvalidArgumentError(
          "unknown signature_name; kiln models have one signature, serving_default");
    }
  }
  const bool rows = request.contains("instances");
  if (rows == request.contains("inputs")) {
    return absl::InvalidArgumentError(
        "the request needs exactly one of \"instances\" (rows) and \"inputs\" (columns)");
  }
  // Moved, not copied: copying a deeply nested value recurses.
  Json data = std::move(rows ? request["instances"] : request["inputs"]);
  KILN_RETURN_IF_ERROR(DecodeB64Values(&data));
  Json instances = Json::array();
  if (rows) {
    instances = std::move(data);
  } else {
    // Columns {"f": [v0, v1, ...], ...}: every column as long as the others.
    if (!data.is_object()) {
      return absl::InvalidArgumentError("\"inputs\" must map feature names to lists");
    }
    size_t n = 0;
    bool first = true;
    for (const auto& [name, col] : data.items()) {
      if (!col.is_array()) {
        return absl::InvalidArgumentError(StrCat("input '", name, "' is not a list"));
      }
      if (!first && col.size() != n) {
        return absl::InvalidArgumentError(
            StrCat("input '", name, "' has ", col.size(), " values; the others ", n));
      }
      n = col.size();
      first = false;
    }
    for (size_t i = 0; i < n; ++i) {
      Json row = Json::object();
      for (const auto& [name, col] : data.items()) row[name] = col[i];
      instances.push_back(std::move(row));
    }
  }
  KILN_ASSIGN_OR_RETURN(data::Batch batch, train::RowsFromJson(instances, inputs));
  return PredictRows{std::move(batch), !rows};
}

bool FastPredictRows(std::string_view body, const data::TableSchema& inputs, PredictRows* out) {
  thread_local simdjson::dom::parser reused;
  std::optional<simdjson::dom::parser> own;
  simdjson::dom::parser* parser = &reused;
  if (body.size() > kReusedParserBytes) parser = &own.emplace();
  // Too deep (over 1024 levels), malformed, or not UTF-8: the general path says which.
  simdjson::dom::object request;
  if (parser->parse(body.data(), body.size(), /*realloc_if_needed=*/true).get(request)) {
    return false;
  }
  std::optional<element> signature, instances, columns;
  for (simdjson::dom::key_value_pair field : request) {
    std::optional<element>* slot = field.key == "instances"        ? &instances
                                   : field.key == "inputs"         ? &columns
                                   : field.key == "signature_name" ? &signature
                                                                   : nullptr;
    if (slot == nullptr) continue;
    if (slot->has_value()) return false;  // a duplicate key
    *slot = field.value;
  }
  if (signature) {
    std::string_view name;
    if (signature->get_string().get(name) || (name != "serving_default" && !name.empty())) {
      return false;
    }
  }
  if (instances.has_value() == columns.has_value()) return false;
  InputIndex* index = InputIndex::For(inputs);
  if (!index->distinct()) return false;
  ResetBatch(inputs, &out->batch);
  out->columns = columns.has_value();
  if (instances) {
    simdjson::dom::array rows;
    return !instances->get_array().get(rows) && FastRows(rows, inputs, index, &out->batch);
  }
  simdjson::dom::object by_name;
  return !columns->get_object().get(by_name) && FastColumns(by_name, inputs, index, &out->batch);
}

absl::Status ParsePredictRows(std::string_view body, const data::TableSchema& inputs,
                              PredictRows* out) {
  if (FastPredictRows(body, inputs, out)) return absl::OkStatus();
  KILN_ASSIGN_OR_RETURN(*out, PredictRowsFromJson(body, inputs));
  return absl::OkStatus();
}

std::shared_ptr<PredictRows> PooledPredictRows() {
  constexpr size_t kMaxPooled = 1024;
  struct Pool {
    std::mutex mu;
    std::vector<std::unique_ptr<PredictRows>> free;  // guarded by mu
  };
  static Pool* const pool = new Pool;  // never destroyed: rows may come back at exit
  std::unique_ptr<PredictRows> rows;
  {
    std::lock_guard<std::mutex> l(pool->mu);
    if (!pool->free.empty()) {
      rows = std::move(pool->free.back());
      pool->free.pop_back();
    }
  }
  if (rows == nullptr) rows = std::make_unique<PredictRows>();
  return std::shared_ptr<PredictRows>(rows.release(), [](PredictRows* r) {
    ShrinkPredictRows(r);
    std::unique_ptr<PredictRows> back(r);
    std::lock_guard<std::mutex> l(pool->mu);
    if (pool->free.size() < kMaxPooled) pool->free.push_back(std::move(back));
  });
}

void ShrinkPredictRows(PredictRows* rows) {
  size_t bytes = 0;
  for (const data::Column& c : rows->batch.columns) bytes += StorageBytes(c);
  if (bytes > kKeptBytes) rows->batch = data::Batch();
}

std::string PredictResponseBody(model::Task task, const std::vector<float>& scores, size_t rows,
                                bool columns) {
  const size_t k = rows == 0 ? 0 : scores.size() / rows;
  const std::vector<int64_t> ids = ClassIds(task, scores, rows);
  std::string out;
  out.reserve(32 + rows * (task == model::Task::kMulticlass ? 24 * k + 32 : 48));
  if (task == model::Task::kRegression) {
    out.append(columns ? "{\"outputs\":" : "{\"predictions\":");
    AppendFloats(&out, scores.data(), rows);
    out.push_back('}');
    return out;
  }
  // The keys in nlohmann's (sorted) order: class_ids, then probabilities or scores.
  const bool binary = task == model::Task::kBinary;
  const char* name = binary ? "\"scores\":" : "\"probabilities\":";
  auto append_value = [&](size_t i) {
    if (binary) {
      AppendFloat(&out, scores[i]);
    } else {
      AppendFloats(&out, scores.data() + i * k, k);
    }
  };
  if (columns) {
    out.append("{\"outputs\":{");
    if (rows > 0) {  // no rows: an empty object
      out.append("\"class_ids\":[");
      for (size_t i = 0; i < rows; ++i) {
        if (i > 0) out.push_back(',');
        AppendInt(&out, ids[i]);
      }
      out.append("],");
      out.append(name);
      out.push_back('[');
      for (size_t i = 0; i < rows; ++i) {
        if (i > 0) out.push_back(',');
        append_value(i);
      }
      out.push_back(']');
    }
    out.append("}}");
    return out;
  }
  out.append("{\"predictions\":[");
  for (size_t i = 0; i < rows; ++i) {
    if (i > 0) out.push_back(',');
    out.append("{\"class_ids\":");
    AppendInt(&out, ids[i]);
    out.push_back(',');
    out.append(name);
    append_value(i);
    out.push_back('}');
  }
  out.append("]}");
  return out;
}

}  // namespace kiln::serving
