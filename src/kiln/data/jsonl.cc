#include "kiln/data/jsonl.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "kiln/base/str.h"
#include "kiln/base/string_map.h"
#include "kiln/data/simdjson_quiet.h"
#include "kiln/data/text_blocks.h"

namespace kiln::data {

void WidenColumn(Column* col, ValueType to) {
  if (to <= col->type) return;
  if (col->type == ValueType::kInt && to == ValueType::kFloat) {
    col->floats.assign(col->ints.begin(), col->ints.end());
    col->ints.clear();
  } else {
    // Numbers to their text.
    col->str_data.clear();
    col->str_offsets.assign(1, 0);
    if (col->type == ValueType::kInt) {
      for (int64_t v : col->ints) col->PushString(std::to_string(v));
    } else {
      for (double v : col->floats) col->PushString(kiln::StrCat(v));
    }
    col->ints.clear();
    col->floats.clear();
  }
  col->type = to;
}

namespace {

// The kind a JSON scalar maps to, or nullopt for null.
enum class Kind { kNull, kInt, kFloat, kString, kBad };

Kind ScalarKind(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::NULL_VALUE:
      return Kind::kNull;
    case simdjson::dom::element_type::BOOL:
    case simdjson::dom::element_type::INT64:
      return Kind::kInt;
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
      return Kind::kFloat;
    case simdjson::dom::element_type::STRING:
      return Kind::kString;
    default:
      return Kind::kBad;
  }
}

ValueType KindType(Kind k) {
  return k == Kind::kInt ? ValueType::kInt
                         : (k == Kind::kFloat ? ValueType::kFloat : ValueType::kString);
}

// Index just past the last line feed in data[0..n), or 0.
size_t LastLineEnd(const char* d, size_t n) {
  const void* nl = memrchr(d, '\n', n);
  return nl ? static_cast<const char*>(nl) - d + 1 : 0;
}

class JsonlSource : public BlockSource {
 public:
  JsonlSource(Env* env, std::vector<std::string> files, ReadOptions options)
      : files_(std::move(files)),
        options_(std::move(options)),
        cutter_(env, options_.block_bytes, &LastLineEnd) {
    for (const auto& spec : options_.type_overrides) fixed_[spec.name] = spec.type;
  }

  absl::StatusOr<bool> NextBlock(RawBlock* block) override {
    for (;;) {
      if (!cutter_.is_open()) {
        if (next_file_ >= files_.size()) return false;
        KILN_RETURN_IF_ERROR(cutter_.Open(files_[next_file_++]));
      }
      KILN_ASSIGN_OR_RETURN(bool got, cutter_.Next(block));
      if (got) return true;
    }
  }

  absl::Status Decode(const RawBlock& block, Batch* out, BadRowSink* bad) const override;

 private:
  std::vector<std::string> files_;
  ReadOptions options_;
  StringMap<ValueType> fixed_;
  size_t next_file_ = 0;
  TextBlockCutter cutter_;
};

// Reads every value of a JSON document with the on-demand parser, which can say where it
// stopped; used only to place an error that the DOM parser already found.
simdjson::error_code WalkValue(simdjson::ondemand::value v, int depth) {
  if (depth > 64) return simdjson::DEPTH_ERROR;
  simdjson::ondemand::json_type type;
  if (auto e = v.type().get(type)) return e;
  switch (type) {
    case simdjson::ondemand::json_type::object: {
      simdjson::ondemand::object o;
      if (auto e = v.get_object().get(o)) return e;
      for (auto field : o) {
        simdjson::ondemand::value fv;
        if (auto e = field.value().get(fv)) return e;
        if (auto e = WalkValue(fv, depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case simdjson::ondemand::json_type::array: {
      simdjson::ondemand::array a;
      if (auto e = v.get_array().get(a)) return e;
      for (auto item : a) {
        simdjson::ondemand::value iv;
        if (auto e = item.get(iv)) return e;
        if (auto e = WalkValue(iv, depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case simdjson::ondemand::json_type::number: {
      simdjson::ondemand::number n;
      return v.get_number().get(n);
    }
    case simdjson::ondemand::json_type::string: {
      std::string_view s;
      return v.get_string().get(s);
    }
    case simdjson::ondemand::json_type::boolean: {
      bool b;
      return v.get_bool().get(b);
    }
    case simdjson::ondemand::json_type::null:
      return simdjson::SUCCESS;
  }
  return simdjson::SUCCESS;
}

// " at column N" (1-based byte column) where a malformed line stops parsing, or "" when
// the parser cannot tell.
std::string ErrorColumn(std::string_view line) {
  thread_local simdjson::ondemand::parser parser;
  simdjson::padded_string padded(line);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc)) return "";
  simdjson::ondemand::value root;
  simdjson::error_code e = doc.get_value().get(root);
  if (!e) e = WalkValue(root, 0);
  if (!e) return "";
  const char* at = nullptr;
  if (doc.current_location().get(at) || at == nullptr) return "";
  size_t column = static_cast<size_t>(at - padded.data()) + 1;
  if (column > line.size() + 1) return "";
  return kiln::StrCat(" at column ", column);
}

// Checks one object and returns an error message, or "" when the row is good.
std::string CheckRow(simdjson::dom::object obj, const StringMap<ValueType>& fixed,
                     StringViewSet* keys) {
  keys->clear();
  for (auto field : obj) {
    std::string_view key = field.key;
    if (!keys->insert(key).second) return kiln::StrCat("field '", key, "': duplicate key");
    Kind kind;
    if (field.value.is_array()) {
      kind = Kind::kNull;
      simdjson::dom::array arr;
      if (field.value.get_array().get(arr)) return "internal: array expected";
      for (simdjson::dom::element v : arr) {
        Kind k = ScalarKind(v);
        if (k == Kind::kBad || k == Kind::kNull) {
          return kiln::StrCat("field '", key,
                              "': arrays may hold only numbers, strings and booleans");
        }
        if (kind == Kind::kNull)
          kind = k;
        else if (k != kind)
          kind = (k == Kind::kString || kind == Kind::kString) ? Kind::kString : Kind::kFloat;
      }
    } else {
      kind = ScalarKind(field.value);
      if (kind == Kind::kBad) {
        return kiln::StrCat("field '", key,
                            "': nested objects are not supported; flatten it into "
                            "top-level fields");
      }
    }
    auto it = fixed.find(key);
    if (it != fixed.end() && kind != Kind::kNull) {
      ValueType want = it->second;
      ValueType got = KindType(kind);
      if (want != ValueType::kString && got > want) {
        return kiln::StrCat("field '", key, "': ", ValueTypeName(got), " value where the schema ",
                            "requires ", ValueTypeName(want));
      }
    }
  }
  return "";
}

void AppendScalar(Column* col, simdjson::dom::element v) {
  Kind k = ScalarKind(v);
  ValueType t = KindType(k);
  if (t > col->type) WidenColumn(col, t);
  switch (col->type) {
    case ValueType::kInt:
      col->ints.push_back(v.is_bool() ? (v.get_bool().value_unsafe() ? 1 : 0)
                                      : v.get_int64().value_unsafe());
      break;
    case ValueType::kFloat:
      if (v.is_bool())
        col->floats.push_back(v.get_bool().value_unsafe() ? 1.0 : 0.0);
      else if (v.is_int64())
        col->floats.push_back(static_cast<double>(v.get_int64().value_unsafe()));
      else if (v.is_uint64())
        col->floats.push_back(static_cast<double>(v.get_uint64().value_unsafe()));
      else
        col->floats.push_back(v.get_double().value_unsafe());
      break;
    case ValueType::kString:
      if (k == Kind::kString) {
        col->PushString(v.get_string().value_unsafe());
      } else if (v.is_bool()) {
        col->PushString(v.get_bool().value_unsafe() ? "1" : "0");
      } else if (v.is_int64()) {
        col->PushString(std::to_string(v.get_int64().value_unsafe()));
      } else if (v.is_uint64()) {
        col->PushString(std::to_string(v.get_uint64().value_unsafe()));
      } else {
        col->PushString(kiln::StrCat(v.get_double().value_unsafe()));
      }
      break;
  }
}

absl::Status JsonlSource::Decode(const RawBlock& block, Batch* out, BadRowSink* bad) const {
  out->Clear();
  out->source = block.file;
  thread_local simdjson::dom::parser parser;
  simdjson::padded_string padded(block.data);
  const char* base = padded.data();
  const size_t n = block.data.size();
  StringMap<size_t> index;
  StringViewSet keys;
  std::vector<size_t> last_row;  // per column: the last row that set it
  uint64_t line = block.first_line;
  size_t pos = 0;
  size_t row = 0;
  while (pos < n) {
    const void* nl = std::memchr(base + pos, '\n', n - pos);
    size_t end = nl ? static_cast<const char*>(nl) - base : n;
    size_t next = nl ? end + 1 : n;
    std::string_view text(base + pos, end - pos);
    uint64_t this_line = line;
    ++line;
    size_t line_pos = pos;
    pos = next;
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ' || text.back() == '\t'))
      text.remove_suffix(1);
    if (text.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank line

    simdjson::dom::element doc;
    auto error = parser.parse(text.data(), text.size(), false).get(doc);
    std::string message;
    if (error) {
      message =
          kiln::StrCat("invalid JSON", ErrorColumn(text), ": ", simdjson::error_message(error));
    } else if (!doc.is_object()) {
      message = "expected a JSON object on each line";
    } else {
      simdjson::dom::object obj;
      message = doc.get_object().get(obj) ? "expected a JSON object on each line"
                                          : CheckRow(obj, fixed_, &keys);
    }
    if (!message.empty()) {
      KILN_RETURN_IF_ERROR(bad->Add({block.file, this_line, std::move(message),
                                     std::string(base + line_pos, next - line_pos)}));
      continue;
    }
    simdjson::dom::object obj;
    if (doc.get_object().get(obj)) continue;  // checked above
    for (auto field : obj) {
      if (field.value.is_null()) continue;
      std::string_view key = field.key;
      auto [it, inserted] = index.try_emplace(key, out->columns.size());
      if (inserted) {
        out->columns.emplace_back();
        Column& col = out->columns.back();
        col.name = std::string(key);
        auto f = fixed_.find(key);
        col.type = f == fixed_.end() ? ValueType::kInt : f->second;
        for (size_t r = 0; r < row; ++r) col.AddMissing();
        last_row.push_back(SIZE_MAX);
      }
      Column& col = out->columns[it->second];
      last_row[it->second] = row;
      if (field.value.is_array()) {
        uint32_t count = 0;
        simdjson::dom::array arr;
        if (field.value.get_array().get(arr)) continue;
        for (simdjson::dom::element v : arr) {
          AppendScalar(&col, v);
          ++count;
        }
        col.EndRow(count);
      } else {
        AppendScalar(&col, field.value);
        col.EndRow(1);
      }
    }
    for (size_t c = 0; c < out->columns.size(); ++c) {
      if (last_row[c] != row) out->columns[c].AddMissing();
    }
    out->row_positions.push_back(this_line);
    ++row;
  }
  out->num_rows = row;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlockSource>> OpenJsonlSource(Env* env,
                                                             std::vector<std::string> files,
                                                             const ReadOptions& options) {
  if (files.empty()) return absl::InvalidArgumentError("no JSON Lines files given");
  return std::unique_ptr<BlockSource>(new JsonlSource(env, std::move(files), options));
}

}  // namespace kiln::data
