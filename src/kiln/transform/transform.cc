#include "kiln/transform/transform.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "kiln/base/env.h"
#include "kiln/base/hash.h"
#include "kiln/base/str.h"
#include "kiln/base/utf8.h"
#include "kiln/data/csv.h"
#include "kiln/data/dataset.h"
#include "kiln/stats/kll.h"

namespace kiln::transform {

SaltLookup EnvironmentSalts() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

namespace {

constexpr char kSaltCheckMessage[] = "kiln.transform.salt";

// ---- Raw values: read the same way by Fit and Apply --------------------------------------

// Text of a number as a STRING feature sees it: integral values in int64 range in decimal,
// anything else in shortest round-trip form.
std::string_view NumberText(double v, std::string* scratch) {
  char buf[64];
  std::to_chars_result r;
  if (v == std::trunc(v) && v >= -9.2233720368547758e18 && v < 9.2233720368547758e18) {
    r = std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(v));
  } else {
    r = std::to_chars(buf, buf + sizeof(buf), v);
  }
  scratch->assign(buf, r.ptr);
  return *scratch;
}

// The first value of `row` as a number; false when missing. A STRING value that is not a
// number sets *bad.
bool FirstNumber(const data::Column& col, size_t row, double* v, bool* bad) {
  if (!col.is_present(row) || col.value_count(row) == 0) return false;
  const uint32_t i = col.offsets[row];
  switch (col.type) {
    case data::ValueType::kInt:
      *v = static_cast<double>(col.ints[i]);
      break;
    case data::ValueType::kFloat:
      *v = col.floats[i];
      break;
    case data::ValueType::kString:
      if (!data::ParseDouble(col.str(i), v)) {
        *bad = true;
        return false;
      }
      break;
  }
  return std::isfinite(*v);
}

// The first value of `row` as text; false when missing.
bool FirstText(const data::Column& col, size_t row, std::string_view* s, std::string* scratch) {
  if (!col.is_present(row) || col.value_count(row) == 0) return false;
  const uint32_t i = col.offsets[row];
  switch (col.type) {
    case data::ValueType::kString:
      *s = col.str(i);
      return true;
    case data::ValueType::kInt: {
      char buf[32];
      auto r = std::to_chars(buf, buf + sizeof(buf), col.ints[i]);
      scratch->assign(buf, r.ptr);
      *s = *scratch;
      return true;
    }
    case data::ValueType::kFloat:
      if (!std::isfinite(col.floats[i])) return false;
      *s = NumberText(col.floats[i], scratch);
      return true;
  }
  return false;
}

absl::Status BadNumber(const data::Batch& b, const FittedFeature& f, const data::Column& col,
                       size_t row) {
  std::string where = StrCat("row ", row);
  if (row < b.row_positions.size())
    StrAppend(&where, " (", b.source, ":", b.row_positions[row], ")");
  return absl::InvalidArgumentError(StrCat("feature '", f.name, "' (", data::ValueTypeName(f.type),
                                           "), ", where, ": '", col.str(col.offsets[row]),
                                           "' is not a number"));
}

bool IsFittedFill(const Op& op) {
  return op.kind == OpKind::kFill && op.fill != FillMethod::kConstant;
}
bool IsTextChain(const FittedFeature& f) {
  const OpKind k = f.ops.back().op.kind;
  return k == OpKind::kVocabulary || k == OpKind::kHashBuckets || k == OpKind::kPiiSaltedHash;
}

// One numeric op on one value (terminal ops are the caller's). Shared by Apply, by the
// streaming part of Fit and by the fitted statistics' algebra, so all three agree bit for bit.
void StepNumber(const FittedOp& f, double* v, bool* has) {
  switch (f.op.kind) {
    case OpKind::kFill:
      if (!*has) {
        *v = f.value;
        *has = true;
      }
      return;
    case OpKind::kClip:
      if (*has) *v = *v < f.op.clip_min ? f.op.clip_min : (*v > f.op.clip_max ? f.op.clip_max : *v);
      return;
    case OpKind::kLog1p:
      if (*has) *v = std::log1p(*v);
      break;
    case OpKind::kZScore:
      if (*has) *v = f.std > 0 ? (*v - f.mean) / f.std : *v - f.mean;
      break;
    case OpKind::kMinMax:
      if (*has) {
        const double range = f.max - f.min;
        *v = range > 0 ? (*v - f.min) / range : 0.0;
      }
      break;
    default:
      return;
  }
  if (*has && !std::isfinite(*v)) *has = false;
}

int64_t Bucket(const std::vector<double>& boundaries, double v) {
  return std::upper_bound(boundaries.begin(), boundaries.end(), v) - boundaries.begin();
}

int64_t HashBucket(std::string_view s, int64_t n) {
  return static_cast<int64_t>(Hash64(s) % static_cast<uint64_t>(n));
}

uint64_t HmacSha256Prefix(std::string_view key, std::string_view message) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), md, &len);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | md[i];  // little-endian
  return v;
}

std::string SaltCheck(std::string_view salt) {
  uint64_t v = HmacSha256Prefix(salt, kSaltCheckMessage);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    const unsigned b = (v >> (8 * i)) & 0xff;
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

// The text a text chain (fill constants, then vocabulary / hash_buckets / salted hash)
// feeds its last op; false when missing.
bool ChainText(const FittedFeature& f, const data::Column* col, size_t row, std::string_view* s,
               std::string* scratch) {
  bool has = col != nullptr && FirstText(*col, row, s, scratch);
  for (size_t j = 0; j + 1 < f.ops.size() && !has; ++j) {
    if (f.ops[j].op.kind == OpKind::kFill) {
      *s = f.ops[j].text;
      has = true;
    }
  }
  return has;
}

int64_t TextId(const FittedOp& last, bool has, std::string_view s) {
  switch (last.op.kind) {
    case OpKind::kVocabulary: {
      const int64_t v = static_cast<int64_t>(last.tokens.size());
      if (!has) return v + last.op.oov_buckets;
      auto it = last.token_ids.find(s);
      if (it != last.token_ids.end()) return it->second;
      return last.op.oov_buckets == 0 ? v : v + HashBucket(s, last.op.oov_buckets);
    }
    case OpKind::kHashBuckets:
      return has ? HashBucket(s, last.op.buckets) : last.op.buckets;
    case OpKind::kPiiSaltedHash:
      return has ? static_cast<int64_t>(HmacSha256Prefix(last.salt, s) %
                                        static_cast<uint64_t>(last.op.buckets))
                 : last.op.buckets;
    default:
      return -1;
  }
}

bool IsCategorical(const FittedFeature& f) {
  return IsTextChain(f) || f.ops.back().op.kind == OpKind::kBucketize;
}

// Why `f` (the feature `name` in cross `cross`) cannot be crossed; OK when it can.
absl::Status CheckCrossInput(const CrossSpec& cross, std::string_view name,
                             const FittedFeature* f) {
  if (f == nullptr) {
    return absl::InvalidArgumentError(StrCat("cross '", cross.name, "' uses '", name,
                                             "', which is not an output feature (dropped: pii "
                                             "drop, or unlisted with defaults off)"));
  }
  if (!IsCategorical(*f)) {
    return absl::InvalidArgumentError(StrCat("cross '", cross.name, "' uses '", name,
                                             "', which is numeric (", DescribeOp(f->ops.back().op),
                                             ") and has no ids; bucketize it (or hash it) to "
                                             "cross it"));
  }
  return absl::OkStatus();
}

// The output signature as written into the JSON (for readers; FromJson checks it).
Json OutputsToJson(const OutputSignature& sig) {
  Json outputs = Json::array();
  for (const auto* group : {&sig.dense, &sig.categorical}) {
    for (const auto& o : *group) {
      Json j = {{"name", o.name}, {"kind", o.kind == OutputKind::kDense ? "dense" : "categorical"}};
      if (o.kind == OutputKind::kCategorical) {
        j["cardinality"] = o.cardinality;
        j["missing_id"] = o.missing_id;
      }
      outputs.push_back(std::move(j));
    }
  }
  return outputs;
}

float ToFloat(double v) {
  if (v > FLT_MAX) return FLT_MAX;
  if (v < -FLT_MAX) return -FLT_MAX;
  return static_cast<float>(v);
}

using ColumnIndex = absl::flat_hash_map<std::string_view, int, StringHash, StringEq>;

absl::StatusOr<ColumnIndex> IndexColumns(const data::Batch& b) {
  ColumnIndex index;
  index.reserve(b.columns.size());
  for (size_t i = 0; i < b.columns.size(); ++i) {
    const data::Column& c = b.columns[i];
    if (c.num_rows() != b.num_rows || c.offsets.size() != b.num_rows + 1) {
      return absl::InvalidArgumentError(
          StrCat("column '", c.name, "' has ", c.num_rows(), " rows; the batch has ", b.num_rows));
    }
    index.emplace(c.name, static_cast<int>(i));
  }
  return index;
}

const data::Column* Lookup(const data::Batch& b, const ColumnIndex& index, std::string_view name) {
  auto it = index.find(name);
  return it == index.end() ? nullptr : &b.columns[it->second];
}

// ---- JSON helpers -------------------------------------------------------------------------

// Bytes as JSON: a string when valid UTF-8, else {"hex": "..."}, so any bytes round-trip.
Json BytesToJson(std::string_view s) {
  if (IsValidUtf8(s)) return Json(std::string(s));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : s) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 15]);
  }
  return Json{{"hex", hex}};
}

absl::StatusOr<std::string> BytesFromJson(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  const std::string hex = j.at("hex").get<std::string>();
  if (hex.size() % 2 != 0) return absl::InvalidArgumentError("odd-length hex string");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int b = 0;
    auto [p, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, b, 16);
    if (ec != std::errc() || p != hex.data() + i + 2) {
      return absl::InvalidArgumentError(StrCat("bad hex string '", hex, "'"));
    }
    out.push_back(static_cast<char>(b));
  }
  return out;
}

absl::StatusOr<data::ValueType> ParseValueType(std::string_view s) {
  for (auto t : {data::ValueType::kInt, data::ValueType::kFloat, data::ValueType::kString}) {
    if (data::ValueTypeName(t) == s) return t;
  }
  return absl::InvalidArgumentError(StrCat("unknown value type '", s, "'"));
}

// ---- Fit statistics -----------------------------------------------------------------------

// Welford's running mean and sum of squared deviations.
struct Moments {
  uint64_t n = 0;
  double mean = 0;
  double m2 = 0;
  void Add(double x) {
    ++n;
    const double d = x - mean;
    mean += d / static_cast<double>(n);
    m2 += d * (x - mean);
  }
  // k copies of v (Chan et al.'s merge with a zero-variance group).
  void AddCopies(double v, uint64_t k) {
    if (k == 0) return;
    const double nn = static_cast<double>(n) + static_cast<double>(k);
    const double d = v - mean;
    mean += d * (static_cast<double>(k) / nn);
    m2 += d * d * (static_cast<double>(n) * static_cast<double>(k) / nn);
    n += k;
  }
  double Std() const {
    return n == 0 ? 0.0 : std::sqrt(std::max(0.0, m2) / static_cast<double>(n));
  }
};

// What the analyzers gather at one op position while streaming: the values present there.
struct PositionStats {
  size_t op_index = 0;
  Moments moments;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  std::optional<stats::KllSketch> sketch;
  uint64_t missing = 0;  // rows missing there (counted at the cut only)

  void Add(double x) {
    moments.Add(x);
    if (x < min) min = x;
    if (x > max) max = x;
    if (sketch) sketch->Add(x);
  }
};

// A value distribution carried through the ops at Finish: moments, extremes, a sorted
// weighted sample (when a quantile is needed) and the missing count.
struct Summary {
  Moments moments;
  bool moments_valid = true;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  bool has_items = false;
  std::vector<std::pair<double, uint64_t>> items;  // (value, weight), sorted by value
  bool exact = true;
  uint64_t missing = 0;

  static Summary From(const PositionStats& p) {
    Summary s;
    s.moments = p.moments;
    s.min = p.min;
    s.max = p.max;
    s.missing = p.missing;
    if (p.sketch) {
      s.has_items = true;
      s.exact = p.sketch->RankErrorBound() == 0;
      p.sketch->ForEachRetained([&](double v, uint64_t w) { s.items.emplace_back(v, w); });
      std::sort(s.items.begin(), s.items.end());
    }
    return s;
  }
  uint64_t n() const { return moments.n; }

  void AddCopies(double v, uint64_t k) {
    if (k == 0) return;
    moments.AddCopies(v, k);
    if (v < min) min = v;
    if (v > max) max = v;
    if (has_items) {
      auto it = std::upper_bound(items.begin(), items.end(), std::make_pair(v, k));
      items.insert(it, {v, k});
    }
  }
  void Fill(double v) {
    AddCopies(v, missing);
    missing = 0;
  }

  // The ops after the cut: zscore and minmax map moments affinely; every op maps the order
  // statistics through StepNumber itself.
  void Map(const FittedOp& f) {
    if (f.op.kind == OpKind::kZScore) {
      if (f.std > 0) moments.m2 /= f.std * f.std;
    } else if (f.op.kind == OpKind::kMinMax) {
      const double range = f.max - f.min;
      if (range > 0) {
        moments.m2 /= range * range;
      } else {
        moments.m2 = 0;
      }
    } else {
      moments_valid = false;
    }
    if (n() > 0) {
      bool h0 = true, h1 = true, h2 = true;
      StepNumber(f, &moments.mean, &h0);
      StepNumber(f, &min, &h1);
      StepNumber(f, &max, &h2);
    }
    // A value mapped out of the finite range (an overflow) is missing, as in Apply.
    size_t kept = 0;
    for (auto& item : items) {
      bool has = true;
      StepNumber(f, &item.first, &has);
      if (has) {
        items[kept++] = item;
      } else {
        missing += item.second;
      }
    }
    items.resize(kept);
  }

  // The smallest value whose rank (total weight of values <= it) exceeds num/den * n:
  // the value at 0-based position floor(q n) when every weight is 1. NaN when empty.
  double Quantile(uint64_t num, uint64_t den) const {
    if (n() == 0) return std::numeric_limits<double>::quiet_NaN();
    uint64_t total = 0;
    for (const auto& it : items) total += it.second;
    const unsigned __int128 target = static_cast<unsigned __int128>(num) * total;
    unsigned __int128 cum = 0;
    for (const auto& [v, w] : items) {
      cum += w;
      if (cum * den > target) return std::clamp(v, min, max);
    }
    return max;
  }
};

}  // namespace

// ---- FittedTransform ----------------------------------------------------------------------

const FittedFeature* FittedTransform::FindFeature(std::string_view name) const {
  for (const auto& f : features_)
    if (f.name == name) return &f;
  return nullptr;
}

absl::Status FittedTransform::Finalize(const SaltLookup& salts) {
  signature_ = {};
  for (auto& f : features_) {
    const FittedOp& last = f.ops.back();
    f.output = OutputColumn{f.name, OutputKind::kCategorical, 0, -1};
    switch (last.op.kind) {
      case OpKind::kBucketize:
        f.output.missing_id = static_cast<int64_t>(last.boundaries.size()) + 1;
        break;
      case OpKind::kVocabulary:
        f.output.missing_id = static_cast<int64_t>(last.tokens.size()) + last.op.oov_buckets;
        break;
      case OpKind::kHashBuckets:
      case OpKind::kPiiSaltedHash:
        f.output.missing_id = last.op.buckets;
        break;
      default:
        f.output.kind = OutputKind::kDense;
        break;
    }
    if (f.output.kind == OutputKind::kCategorical) {
      f.output.cardinality = f.output.missing_id + 1;
      f.output_index = signature_.categorical.size();
      signature_.categorical.push_back(f.output);
    } else {
      f.output_index = signature_.dense.size();
      signature_.dense.push_back(f.output);
    }
    for (auto& op : f.ops) {
      if (op.op.kind == OpKind::kVocabulary) {
        op.token_ids.clear();
        for (size_t i = 0; i < op.tokens.size(); ++i) {
          if (!op.token_ids.emplace(op.tokens[i], static_cast<int64_t>(i)).second) {
            return absl::InvalidArgumentError(
                StrCat("feature '", f.name, "': vocabulary lists '", op.tokens[i], "' twice"));
          }
        }
      } else if (op.op.kind == OpKind::kPiiSaltedHash) {
        std::optional<std::string> salt = salts ? salts(op.op.salt_env) : std::nullopt;
        if (!salt || salt->empty()) {
          return absl::FailedPreconditionError(StrCat("feature '", f.name,
                                                      "' (pii salted_hash): the salt variable ",
                                                      op.op.salt_env, " is not set"));
        }
        const std::string check = SaltCheck(*salt);
        if (!op.salt_check.empty() && op.salt_check != check) {
          return absl::FailedPreconditionError(
              StrCat("feature '", f.name, "' (pii salted_hash): the salt in ", op.op.salt_env,
                     " is not the one this transform was fitted with"));
        }
        op.salt_check = check;
        op.salt = std::move(*salt);
      } else if (op.op.kind == OpKind::kBucketize) {
        for (size_t i = 0; i < op.boundaries.size(); ++i) {
          if (!std::isfinite(op.boundaries[i]) ||
              (i > 0 && !(op.boundaries[i] > op.boundaries[i - 1]))) {
            return absl::InvalidArgumentError(StrCat(
                "feature '", f.name, "': bucketize boundaries must be finite and increasing"));
          }
        }
      }
    }
  }
  for (auto& c : crosses_) {
    c.inputs.clear();
    for (const auto& name : c.spec.features) {
      const FittedFeature* f = FindFeature(name);
      KILN_RETURN_IF_ERROR(CheckCrossInput(c.spec, name, f));
      c.inputs.push_back(f->output_index);
    }
    if (FindFeature(c.spec.name) != nullptr) {
      return absl::InvalidArgumentError(
          StrCat("cross name '", c.spec.name, "' is also the name of a feature"));
    }
    c.output_index = signature_.categorical.size();
    signature_.categorical.push_back(
        OutputColumn{c.spec.name, OutputKind::kCategorical, c.spec.hash_buckets, -1});
  }
  return absl::OkStatus();
}

absl::Status FittedTransform::Apply(const data::Batch& raw, TransformedBatch* out) const {
  KILN_ASSIGN_OR_RETURN(ColumnIndex index, IndexColumns(raw));
  const size_t n = raw.num_rows;
  const size_t nd = signature_.dense.size(), nc = signature_.categorical.size();
  out->num_rows = n;
  out->dense_dim = nd;
  out->num_categorical = nc;
  out->dense.assign(n * nd, 0.0f);
  out->ids.assign(n * nc, 0);
  // Rows [r0, r1) of one feature. Rows are taken in tiles, every feature of a tile at a
  // time, so the tile's output stays in cache; large batches spread tiles over threads.
  auto apply_feature = [&](const FittedFeature& f, size_t r0, size_t r1,
                           std::string* scratch) -> absl::Status {
    const data::Column* col = Lookup(raw, index, f.name);
    const size_t k = f.output_index;
    if (IsTextChain(f)) {
      const FittedOp& last = f.ops.back();
      for (size_t r = r0; r < r1; ++r) {
        std::string_view s;
        const bool has = ChainText(f, col, r, &s, scratch);
        out->ids[r * nc + k] = TextId(last, has, s);
      }
      return absl::OkStatus();
    }
    const FittedOp& last = f.ops.back();
    const bool bucketize = last.op.kind == OpKind::kBucketize;
    // A passed-through number stays missing (NaN: tree models route it as missing; the
    // neural models read it as 0); a chain without a fill gives 0.
    const float missing =
        last.op.kind == OpKind::kPassthrough ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
    for (size_t r = r0; r < r1; ++r) {
      double v = 0;
      bool bad = false;
      bool has = col != nullptr && FirstNumber(*col, r, &v, &bad);
      if (bad) return BadNumber(raw, f, *col, r);
      for (const FittedOp& op : f.ops) StepNumber(op, &v, &has);
      if (bucketize) {
        out->ids[r * nc + k] = has ? Bucket(last.boundaries, v) : f.output.missing_id;
      } else {
        out->dense[r * nd + k] = has ? ToFloat(v) : missing;
      }
    }
    return absl::OkStatus();
  };
  constexpr size_t kTileRows = 2048;
  const size_t tiles = (n + kTileRows - 1) / kTileRows;
  auto apply_tile = [&](size_t t, std::string* scratch) -> absl::Status {
    const size_t r0 = t * kTileRows, r1 = std::min(n, r0 + kTileRows);
    for (const FittedFeature& f : features_) {
      KILN_RETURN_IF_ERROR(apply_feature(f, r0, r1, scratch));
    }
    return absl::OkStatus();
  };
  constexpr size_t kValuesPerThread = size_t{1} << 20;
  const size_t threads = std::min(
      {static_cast<size_t>(NumCpus()), tiles, n * features_.size() / kValuesPerThread + 1});
  if (threads <= 1) {
    std::string scratch;
    for (size_t t = 0; t < tiles; ++t) KILN_RETURN_IF_ERROR(apply_tile(t, &scratch));
  } else {
    std::vector<absl::Status> status(tiles);
    std::atomic<size_t> next{0};
    std::vector<std::thread> pool;
    for (size_t i = 0; i < threads; ++i) {
      pool.emplace_back([&] {
        std::string scratch;
        for (size_t t; (t = next.fetch_add(1)) < tiles;) status[t] = apply_tile(t, &scratch);
      });
    }
    for (std::thread& t : pool) t.join();
    for (const absl::Status& st : status) KILN_RETURN_IF_ERROR(st);  // the first by row
  }
  std::string key;
  for (const FittedCross& c : crosses_) {
    const uint64_t buckets = static_cast<uint64_t>(c.spec.hash_buckets);
    for (size_t r = 0; r < n; ++r) {
      key.clear();
      for (size_t input : c.inputs) {
        const uint64_t id = static_cast<uint64_t>(out->ids[r * nc + input]);
        for (int b = 0; b < 8; ++b) key.push_back(static_cast<char>((id >> (8 * b)) & 0xff));
      }
      out->ids[r * nc + c.output_index] = static_cast<int64_t>(Hash64(key) % buckets);
    }
  }
  return absl::OkStatus();
}

std::string FittedTransform::ToJson() const {
  Json features = Json::array();
  for (const auto& f : features_) {
    Json ops = Json::array();
    for (const auto& fo : f.ops) {
      Json j = OpToJson(fo.op);
      switch (fo.op.kind) {
        case OpKind::kFill:
          if (f.type == data::ValueType::kString) {
            j["text"] = BytesToJson(fo.text);
          } else {
            j["value"] = fo.value;
          }
          if (fo.op.fill == FillMethod::kMedian) j["exact"] = fo.exact;
          break;
        case OpKind::kZScore:
          j["mean"] = fo.mean;
          j["std"] = fo.std;
          break;
        case OpKind::kMinMax:
          j["min"] = fo.min;
          j["max"] = fo.max;
          break;
        case OpKind::kBucketize:
          j["fitted_boundaries"] = fo.boundaries;
          if (fo.op.quantiles > 0) j["exact"] = fo.exact;
          break;
        case OpKind::kVocabulary: {
          Json tokens = Json::array();
          for (const auto& t : fo.tokens) tokens.push_back(BytesToJson(t));
          j["tokens"] = std::move(tokens);
          j["exact"] = fo.exact;
          break;
        }
        case OpKind::kPiiSaltedHash:
          j["salt_check"] = fo.salt_check;
          break;
        default:
          break;
      }
      ops.push_back(std::move(j));
    }
    features.push_back(
        {{"name", f.name}, {"type", data::ValueTypeName(f.type)}, {"ops", std::move(ops)}});
  }
  Json crosses = Json::array();
  for (const auto& c : crosses_) {
    crosses.push_back({{"name", c.spec.name},
                       {"features", c.spec.features},
                       {"hash_buckets", c.spec.hash_buckets}});
  }
  Json root = {{"format", kTransformFormat},
               {"version", kTransformFormatVersion},
               {"num_rows", num_rows_},
               {"spec", SpecToJson(spec_)},
               {"features", std::move(features)},
               {"crosses", std::move(crosses)},
               {"outputs", OutputsToJson(signature_)},
               {"warnings", warnings_}};
  // Names are bytes; invalid UTF-8 in one (vocabulary tokens are hex-encoded instead) is
  // written as U+FFFD rather than failing.
  return root.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

absl::StatusOr<FittedTransform> FittedTransform::FromJson(std::string_view json,
                                                          const LoadOptions& options) {
  FittedTransform t;
  try {
    const Json root = Json::parse(json);
    if (root.at("format").get<std::string>() != kTransformFormat) {
      return absl::InvalidArgumentError("not a kiln transform (format is not kiln.transform)");
    }
    const int version = root.at("version").get<int>();
    if (version > kTransformFormatVersion) {
      return absl::FailedPreconditionError(StrCat("transform format version ", version,
                                                  " is newer than this kiln (",
                                                  kTransformFormatVersion, "); upgrade kiln"));
    }
    KILN_ASSIGN_OR_RETURN(t.spec_, SpecFromJson(root.at("spec")));
    t.num_rows_ = root.at("num_rows").get<uint64_t>();
    t.warnings_ = root.at("warnings").get<std::vector<std::string>>();
    for (const Json& jf : root.at("features")) {
      FittedFeature f;
      f.name = jf.at("name").get<std::string>();
      KILN_ASSIGN_OR_RETURN(f.type, ParseValueType(jf.at("type").get<std::string>()));
      std::vector<Op> ops;
      for (const Json& jo : jf.at("ops")) {
        FittedOp fo;
        KILN_ASSIGN_OR_RETURN(fo.op, OpFromJson(jo, StrCat("feature '", f.name, "'")));
        switch (fo.op.kind) {
          case OpKind::kFill:
            if (f.type == data::ValueType::kString) {
              KILN_ASSIGN_OR_RETURN(fo.text, BytesFromJson(jo.at("text")));
            } else {
              fo.value = jo.at("value").get<double>();
              NumberText(fo.value, &fo.text);  // what an INT hash chain fills with
            }
            if (fo.op.fill == FillMethod::kMedian) fo.exact = jo.at("exact").get<bool>();
            break;
          case OpKind::kZScore:
            fo.mean = jo.at("mean").get<double>();
            fo.std = jo.at("std").get<double>();
            break;
          case OpKind::kMinMax:
            fo.min = jo.at("min").get<double>();
            fo.max = jo.at("max").get<double>();
            break;
          case OpKind::kBucketize:
            fo.boundaries = jo.at("fitted_boundaries").get<std::vector<double>>();
            if (fo.op.quantiles > 0) fo.exact = jo.at("exact").get<bool>();
            break;
          case OpKind::kVocabulary:
            for (const Json& tok : jo.at("tokens")) {
              KILN_ASSIGN_OR_RETURN(std::string s, BytesFromJson(tok));
              fo.tokens.push_back(std::move(s));
            }
            fo.exact = jo.at("exact").get<bool>();
            break;
          case OpKind::kPiiSaltedHash:
            fo.salt_check = jo.at("salt_check").get<std::string>();
            break;
          default:
            break;
        }
        ops.push_back(fo.op);
        f.ops.push_back(std::move(fo));
      }
      KILN_RETURN_IF_ERROR(ValidateOps(f.name, ops));
      KILN_RETURN_IF_ERROR(ValidateOpsForType(f.name, f.type, ops));
      if (ops.back().kind == OpKind::kPiiDrop) {
        return absl::InvalidArgumentError(StrCat("feature '", f.name, "' is pii: drop"));
      }
      if (t.FindFeature(f.name) != nullptr) {
        return absl::InvalidArgumentError(StrCat("feature '", f.name, "' appears twice"));
      }
      t.features_.push_back(std::move(f));
    }
    for (const Json& jc : root.at("crosses")) {
      FittedCross c;
      c.spec.name = jc.at("name").get<std::string>();
      c.spec.features = jc.at("features").get<std::vector<std::string>>();
      c.spec.hash_buckets = jc.at("hash_buckets").get<int64_t>();
      if (c.spec.hash_buckets < 1 || c.spec.hash_buckets > kMaxBuckets) {
        return absl::InvalidArgumentError(StrCat("cross '", c.spec.name, "': bad hash_buckets"));
      }
      t.crosses_.push_back(std::move(c));
    }
    KILN_RETURN_IF_ERROR(t.Finalize(options.salts));
    if (root.contains("outputs") && root.at("outputs") != OutputsToJson(t.signature_)) {
      return absl::InvalidArgumentError(
          "transform JSON: the outputs listed do not match the fitted features");
    }
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(StrCat("transform JSON: ", e.what()));
  }
  return t;
}

// ---- TransformFitter ----------------------------------------------------------------------

struct TransformFitter::FeatureState {
  size_t feature = 0;  // index into result_.features_
  bool text = false;   // a text chain (only a vocabulary is analyzed there)
  // Numeric chains: ops [0, cut) are applied while streaming; cut is the first zscore,
  // minmax or quantile bucketize (ops.size() when there is none).
  size_t cut = 0;
  std::vector<PositionStats> positions;  // fitted fills before the cut, then the cut
  std::vector<int> position_of;          // op index -> index in positions, or -1
  std::vector<uint64_t> filled;          // op index -> rows first missing at that fitted fill
  std::optional<stats::StringCounter> counter;

  bool active() const { return counter.has_value() || !positions.empty(); }
};

TransformFitter::~TransformFitter() = default;

absl::StatusOr<std::unique_ptr<TransformFitter>> TransformFitter::Create(
    const TransformSpec& spec, const data::TableSchema& schema, const FitOptions& options) {
  std::unique_ptr<TransformFitter> fitter(new TransformFitter());
  fitter->options_ = options;
  FittedTransform& t = fitter->result_;
  t.spec_ = spec;

  std::vector<std::string> columns;
  for (const auto& c : schema) columns.push_back(c.name);
  auto in_schema = [&](std::string_view name) {
    return std::find(columns.begin(), columns.end(), name) != columns.end();
  };
  for (const auto& f : spec.features) {
    if (!in_schema(f.name)) {
      return absl::InvalidArgumentError(
          StrCat("transform spec lists feature '", f.name,
                 "', which is not a column of the data (columns: ", StrJoin(columns, ", "), ")"));
    }
  }
  for (const auto& name : spec.exclude) {
    if (!in_schema(name)) {
      return absl::InvalidArgumentError(
          StrCat("transform spec excludes '", name,
                 "', which is not a column of the data (columns: ", StrJoin(columns, ", "), ")"));
    }
  }
  for (const auto& c : schema) {
    if (spec.IsExcluded(c.name)) continue;
    const FeatureSpec* listed = spec.FindFeature(c.name);
    if (listed == nullptr && !spec.defaults) continue;
    const std::vector<Op> ops =
        listed != nullptr ? listed->ops : DefaultOps(c.type, spec.tree_defaults);
    KILN_RETURN_IF_ERROR(ValidateOps(c.name, ops));
    KILN_RETURN_IF_ERROR(ValidateOpsForType(c.name, c.type, ops));
    if (ops.back().kind == OpKind::kPiiDrop) continue;
    FittedFeature f;
    f.name = c.name;
    f.type = c.type;
    for (const Op& op : ops) {
      FittedOp fo;
      fo.op = op;
      if (op.kind == OpKind::kFill && op.fill == FillMethod::kConstant) {
        if (c.type == data::ValueType::kString) {
          fo.text = op.constant;
        } else {
          data::ParseDouble(op.constant, &fo.value);  // checked by ValidateOpsForType
          NumberText(fo.value, &fo.text);
        }
      } else if (op.kind == OpKind::kBucketize && op.quantiles == 0) {
        fo.boundaries = op.boundaries;
      } else if (op.kind == OpKind::kPiiSaltedHash) {
        std::optional<std::string> salt = options.salts ? options.salts(op.salt_env) : std::nullopt;
        if (!salt || salt->empty()) {
          return absl::FailedPreconditionError(StrCat("feature '", c.name,
                                                      "' (pii salted_hash): the salt variable ",
                                                      op.salt_env, " is not set"));
        }
      }
      f.ops.push_back(std::move(fo));
    }

    auto state = std::make_unique<FeatureState>();
    state->feature = t.features_.size();
    state->text = IsTextChain(f);
    const size_t n_ops = f.ops.size();
    if (state->text) {
      if (f.ops.back().op.kind == OpKind::kVocabulary) {
        stats::StringCounterOptions o = options.vocabulary;
        o.top_capacity = std::max<size_t>(o.top_capacity, 2 * f.ops.back().op.top_k);
        state->counter.emplace(o);
      }
    } else {
      state->cut = n_ops;
      for (size_t j = 0; j < n_ops; ++j) {
        const Op& op = f.ops[j].op;
        if (op.kind == OpKind::kZScore || op.kind == OpKind::kMinMax ||
            (op.kind == OpKind::kBucketize && op.quantiles > 0)) {
          state->cut = j;
          break;
        }
      }
      state->position_of.assign(n_ops, -1);
      state->filled.assign(n_ops, 0);
      const int k = options.kll_k;
      for (size_t j = 0; j < state->cut; ++j) {
        if (!IsFittedFill(f.ops[j].op)) continue;
        state->position_of[j] = static_cast<int>(state->positions.size());
        PositionStats p;
        p.op_index = j;
        if (f.ops[j].op.fill == FillMethod::kMedian) p.sketch.emplace(k);
        state->positions.push_back(std::move(p));
      }
      if (state->cut < n_ops) {
        PositionStats p;
        p.op_index = state->cut;
        for (size_t j = state->cut; j < n_ops; ++j) {
          const Op& op = f.ops[j].op;
          if ((op.kind == OpKind::kFill && op.fill == FillMethod::kMedian) ||
              (op.kind == OpKind::kBucketize && op.quantiles > 0)) {
            p.sketch.emplace(k);
          }
        }
        state->position_of[state->cut] = static_cast<int>(state->positions.size());
        state->positions.push_back(std::move(p));
      }
    }
    t.features_.push_back(std::move(f));
    fitter->states_.push_back(std::move(state));
  }
  for (const auto& c : spec.crosses) {
    for (const auto& name : c.features) {
      if (!in_schema(name)) {
        return absl::InvalidArgumentError(
            StrCat("cross '", c.name, "' uses '", name, "', which is not a column of the data"));
      }
      KILN_RETURN_IF_ERROR(CheckCrossInput(c, name, t.FindFeature(name)));
    }
    FittedCross fc;
    fc.spec = c;
    t.crosses_.push_back(std::move(fc));
  }
  return fitter;
}

absl::Status TransformFitter::Add(const data::Batch& batch) {
  KILN_ASSIGN_OR_RETURN(ColumnIndex index, IndexColumns(batch));
  const size_t n = batch.num_rows;
  std::string scratch;
  for (auto& sp : states_) {
    FeatureState& st = *sp;
    if (!st.active()) continue;
    const FittedFeature& f = result_.features_[st.feature];
    const data::Column* col = Lookup(batch, index, f.name);
    if (st.text) {
      for (size_t r = 0; r < n; ++r) {
        std::string_view s;
        if (ChainText(f, col, r, &s, &scratch)) st.counter->Add(s, Hash64(s));
      }
      continue;
    }
    const bool cut_stats = st.cut < f.ops.size();
    PositionStats* at_cut = cut_stats ? &st.positions.back() : nullptr;
    for (size_t r = 0; r < n; ++r) {
      double v = 0;
      bool bad = false;
      bool has = col != nullptr && FirstNumber(*col, r, &v, &bad);
      if (bad) return BadNumber(batch, f, *col, r);
      bool filled = false;
      for (size_t j = 0; j < st.cut; ++j) {
        const FittedOp& op = f.ops[j];
        if (IsFittedFill(op.op)) {
          if (!has) {
            ++st.filled[j];  // its value is known only at Finish
            filled = true;
            break;
          }
          st.positions[st.position_of[j]].Add(v);
        } else {
          StepNumber(op, &v, &has);
        }
      }
      if (filled || at_cut == nullptr) continue;
      if (has) {
        at_cut->Add(v);
      } else {
        ++at_cut->missing;
      }
    }
  }
  rows_ += n;
  return absl::OkStatus();
}

absl::StatusOr<FittedTransform> TransformFitter::Finish() {
  FittedTransform& t = result_;
  t.num_rows_ = rows_;
  for (auto& sp : states_) {
    FeatureState& st = *sp;
    FittedFeature& f = t.features_[st.feature];
    auto warn = [&](const FittedOp& op, std::string_view what) {
      t.warnings_.push_back(StrCat("feature '", f.name, "', ", DescribeOp(op.op), ": ", what));
    };
    if (st.text) {
      if (!st.counter) continue;
      FittedOp& op = f.ops.back();
      for (auto& [token, count] : st.counter->Top(static_cast<size_t>(op.op.top_k))) {
        if (count < static_cast<uint64_t>(op.op.min_frequency)) break;
        op.tokens.push_back(std::move(token));
      }
      op.exact = st.counter->exact();
      if (!op.exact) {
        warn(op, StrCat("more distinct values than the exact cap; the vocabulary holds the "
                        "heavy hitters (counts may be low by up to ",
                        st.counter->TopCountError(), ")"));
      }
      if (op.tokens.empty()) warn(op, "empty vocabulary (every value is out of vocabulary)");
      continue;
    }
    // Rows that met a fitted fill before the cut: groups of equal values, pushed through
    // the remaining streaming ops with StepNumber, exactly as Apply would.
    struct Group {
      double v;
      bool has;
      uint64_t count;
    };
    std::vector<Group> groups;
    auto add_groups = [&](Summary* s) {
      for (const Group& g : groups) {
        if (g.has) {
          s->AddCopies(g.v, g.count);
        } else {
          s->missing += g.count;
        }
      }
    };
    for (size_t j = 0; j < st.cut; ++j) {
      FittedOp& op = f.ops[j];
      if (IsFittedFill(op.op)) {
        Summary s = Summary::From(st.positions[st.position_of[j]]);
        add_groups(&s);
        if (s.n() == 0) {
          op.value = 0;
          warn(op, "no values to analyze; filling with 0");
        } else if (op.op.fill == FillMethod::kMean) {
          op.value = s.moments.mean;
        } else {
          op.value = s.Quantile(1, 2);
          op.exact = s.exact;
        }
      }
      for (Group& g : groups) StepNumber(op, &g.v, &g.has);
      if (IsFittedFill(op.op)) groups.push_back({op.value, true, st.filled[j]});
    }
    if (st.cut == f.ops.size()) continue;
    Summary s = Summary::From(st.positions.back());
    add_groups(&s);
    for (size_t j = st.cut; j < f.ops.size(); ++j) {
      FittedOp& op = f.ops[j];
      const bool empty = s.n() == 0;
      switch (op.op.kind) {
        case OpKind::kZScore:
          if (!s.moments_valid) return absl::InternalError("zscore after a clip of a zscore");
          op.mean = s.moments.mean;
          op.std = s.moments.Std();
          if (empty) warn(op, "no values to analyze; fitted mean 0, std 0");
          s.Map(op);
          break;
        case OpKind::kMinMax:
          op.min = empty ? 0 : s.min;
          op.max = empty ? 0 : s.max;
          if (empty) warn(op, "no values to analyze; fitted min = max = 0");
          s.Map(op);
          break;
        case OpKind::kClip:
        case OpKind::kLog1p:
          s.Map(op);
          break;
        case OpKind::kFill:
          if (op.op.fill == FillMethod::kMean) {
            if (!s.moments_valid) return absl::InternalError("fill mean after a clip of a zscore");
            op.value = empty ? 0 : s.moments.mean;
          } else if (op.op.fill == FillMethod::kMedian) {
            op.value = empty ? 0 : s.Quantile(1, 2);
            op.exact = s.exact;
          }
          if (empty && op.op.fill != FillMethod::kConstant) {
            warn(op, "no values to analyze; filling with 0");
          }
          s.Fill(op.value);
          break;
        case OpKind::kBucketize:
          if (op.op.quantiles > 0) {
            op.exact = s.exact;
            const uint64_t q = static_cast<uint64_t>(op.op.quantiles);
            for (uint64_t i = 1; i < q && !empty; ++i) {
              const double b = s.Quantile(i, q);
              if (b > s.min && (op.boundaries.empty() || b > op.boundaries.back())) {
                op.boundaries.push_back(b);
              }
            }
            if (empty) warn(op, "no values to analyze; one bucket");
          }
          break;
        default:
          break;
      }
    }
  }
  for (const FittedFeature& f : t.features_) {
    for (const FittedOp& op : f.ops) {
      for (double v : {op.value, op.mean, op.std, op.min, op.max}) {
        if (!std::isfinite(v)) {
          return absl::InvalidArgumentError(StrCat("feature '", f.name, "', ", DescribeOp(op.op),
                                                   ": the fitted statistics overflow"));
        }
      }
    }
  }
  KILN_RETURN_IF_ERROR(t.Finalize(options_.salts));
  return std::move(result_);
}

// ---- Whole-input fitting ------------------------------------------------------------------

absl::StatusOr<FittedTransform> Fit(const TransformSpec& spec, const data::TableSchema& schema,
                                    data::BlockSource* source, data::BadRowSink* bad,
                                    const FitOptions& options) {
  data::TableSchema s = schema.empty() ? source->KnownSchema() : schema;
  if (s.empty()) {
    return absl::InvalidArgumentError(
        "fitting a transform needs the columns' types: pass a schema (this source has none)");
  }
  KILN_ASSIGN_OR_RETURN(auto fitter, TransformFitter::Create(spec, s, options));
  const int threads = options.num_threads > 0 ? options.num_threads : data::DefaultThreads();
  KILN_RETURN_IF_ERROR(data::ForEachBatchOrdered(
      source, bad, threads, [](data::Batch&) { return absl::OkStatus(); },
      [&](data::Batch& b) { return fitter->Add(b); }));
  return fitter->Finish();
}

absl::StatusOr<FittedTransform> FitDatasetSplit(Env* env, const std::string& dir,
                                                const std::string& split, const TransformSpec& spec,
                                                const FitOptions& options) {
  KILN_ASSIGN_OR_RETURN(data::DatasetManifest manifest, data::ReadManifest(env, dir));
  KILN_ASSIGN_OR_RETURN(auto source, data::OpenDatasetSource(env, dir, split, {}));
  data::BadRowSink bad(data::BadRowPolicy::kError);
  return Fit(spec, manifest.schema, source.get(), &bad, options);
}

}  // namespace kiln::transform
