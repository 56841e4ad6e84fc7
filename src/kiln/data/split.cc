#include "kiln/data/split.h"

#include <algorithm>
#include <charconv>
#include <numeric>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "kiln/base/hash.h"
#include "kiln/base/str.h"
#include "kiln/base/string_map.h"

namespace kiln::data {
namespace {

// Distinct seeds keep a row hash and a partition hash of the same bytes unrelated.
constexpr uint64_t kRowSeed = 0x6b696c6e2d726f77ULL;        // "kiln-row"
constexpr uint64_t kPartitionSeed = 0x6b696c6e2d707274ULL;  // "kiln-prt"

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

// Appends a length-prefixed value, so ("ab","c") and ("a","bc") differ.
void PutText(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Appends the count and text form of the values of a present row.
void PutValues(const Column& c, size_t row, std::string* out) {
  uint32_t begin = c.offsets[row], end = c.offsets[row + 1];
  PutU32(out, end - begin);
  char buf[64];
  for (uint32_t i = begin; i < end; ++i) {
    switch (c.type) {
      case ValueType::kInt: {
        auto r = std::to_chars(buf, buf + sizeof(buf), c.ints[i]);
        PutText(out, std::string_view(buf, r.ptr - buf));
        break;
      }
      case ValueType::kFloat: {
        auto r = std::to_chars(buf, buf + sizeof(buf), c.floats[i]);
        PutText(out, std::string_view(buf, r.ptr - buf));
        break;
      }
      case ValueType::kString:
        PutText(out, c.str(i));
        break;
    }
  }
}

// Column indices of `batch` sorted by name: the canonical feature order.
std::vector<size_t> NameOrder(const Batch& batch) {
  std::vector<size_t> order(batch.columns.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return batch.columns[a].name < batch.columns[b].name; });
  return order;
}

uint64_t RowHashWithOrder(const Batch& batch, const std::vector<size_t>& order, size_t row,
                          std::string* buf) {
  buf->clear();
  for (size_t ci : order) {
    const Column& c = batch.columns[ci];
    if (!c.is_present(row)) continue;
    PutText(buf, c.name);
    PutValues(c, row, buf);
  }
  return Hash64(*buf, kRowSeed);
}

uint64_t FeatureHash(const Column* c, size_t row, std::string* buf) {
  buf->clear();
  if (c == nullptr || !c->is_present(row)) {
    buf->push_back('\0');  // the missing marker
  } else {
    buf->push_back('\1');
    PutValues(*c, row, buf);
  }
  return Hash64(*buf, kPartitionSeed);
}

bool ValidSplitName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
  });
}

absl::Status CheckConfig(const SplitConfig& config) {
  if (config.splits.empty()) return absl::InvalidArgumentError("split config names no splits");
  StringSet names;
  for (const auto& [name, weight] : config.splits) {
    if (!ValidSplitName(name)) {
      return absl::InvalidArgumentError(kiln::StrCat(
          "split name '", name, "' is not 1-64 characters of letters, digits, '_' or '-'"));
    }
    if (weight <= 0) {
      return absl::InvalidArgumentError(
          kiln::StrCat("split '", name, "' has weight ", weight, "; weights must be positive"));
    }
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(kiln::StrCat("split '", name, "' is named twice"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SplitConfig> ParseSplitConfig(std::string_view spec_view) {
  absl::string_view spec(spec_view.data(), spec_view.size());
  SplitConfig config;
  config.splits.clear();
  for (absl::string_view item : absl::StrSplit(spec, ',')) {
    item = absl::StripAsciiWhitespace(item);
    std::vector<absl::string_view> parts = absl::StrSplit(item, ':');
    int weight = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(absl::StripAsciiWhitespace(parts[1]), &weight)) {
      return absl::InvalidArgumentError(kiln::StrCat("split spec '", spec, "': item '", item,
                                                     "' is not NAME:WEIGHT (e.g. train:2,eval:1)"));
    }
    config.splits.emplace_back(std::string(absl::StripAsciiWhitespace(parts[0])), weight);
  }
  absl::Status s = CheckConfig(config);
  if (!s.ok()) {
    return absl::InvalidArgumentError(kiln::StrCat("split spec '", spec, "': ", s.message()));
  }
  return config;
}

std::string SplitConfigToString(const SplitConfig& config) {
  std::string out;
  for (const auto& [name, weight] : config.splits) {
    kiln::StrAppend(&out, out.empty() ? "" : ",", name, ":", weight);
  }
  return out;
}

uint64_t RowContentHash(const Batch& batch, size_t row) {
  std::string buf;
  return RowHashWithOrder(batch, NameOrder(batch), row, &buf);
}

uint64_t FeatureValueHash(const Column* column, size_t row) {
  std::string buf;
  return FeatureHash(column, row, &buf);
}

SplitAssigner::SplitAssigner(SplitConfig config) : config_(std::move(config)) {
  for (const auto& s : config_.splits) total_weight_ += s.second;
}

absl::StatusOr<SplitAssigner> SplitAssigner::Create(SplitConfig config) {
  KILN_RETURN_IF_ERROR(CheckConfig(config));
  int64_t total = 0;
  for (const auto& s : config.splits) total += s.second;
  if (total > (1 << 30)) return absl::InvalidArgumentError("split weights sum too large");
  return SplitAssigner(std::move(config));
}

int SplitAssigner::SplitForHash(uint64_t hash) const {
  uint64_t bucket = hash % static_cast<uint64_t>(total_weight_);
  for (int i = 0; i < num_splits(); ++i) {
    uint64_t w = static_cast<uint64_t>(config_.splits[i].second);
    if (bucket < w) return i;
    bucket -= w;
  }
  return num_splits() - 1;  // unreachable: buckets are < total_weight_
}

void SplitAssigner::Assign(const Batch& batch, std::vector<int>* out) const {
  out->resize(batch.num_rows);
  std::string buf;
  if (!config_.partition_feature.empty()) {
    int ci = batch.FindColumn(config_.partition_feature);
    const Column* c = ci < 0 ? nullptr : &batch.columns[ci];
    for (size_t r = 0; r < batch.num_rows; ++r) {
      (*out)[r] = SplitForHash(FeatureHash(c, r, &buf));
    }
    return;
  }
  std::vector<size_t> order = NameOrder(batch);
  for (size_t r = 0; r < batch.num_rows; ++r) {
    (*out)[r] = SplitForHash(RowHashWithOrder(batch, order, r, &buf));
  }
}

}  // namespace kiln::data
