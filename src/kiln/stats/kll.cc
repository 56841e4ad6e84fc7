#include "kiln/stats/kll.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <utility>

#include "kiln/base/crc32c.h"
#include "kiln/base/hash.h"

namespace kiln::stats {
namespace {

// Levels below this size compact too often to be worth their bookkeeping (the KLL paper's
// lower levels may shrink to 2; practical implementations use 8).
constexpr uint32_t kMinLevelCapacity = 8;
// More levels than this would need more than 2^64 inputs.
constexpr uint32_t kMaxLevels = 64;
constexpr char kMagic[4] = {'K', 'L', 'L', '1'};

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutF64(std::string* out, double v) { PutU64(out, std::bit_cast<uint64_t>(v)); }

// Bounds-checked little-endian reads; every getter fails instead of reading past the end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : p_(bytes) {}
  bool U32(uint32_t* v) {
    if (p_.size() < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v |= uint32_t{static_cast<unsigned char>(p_[i])} << (8 * i);
    p_.remove_prefix(4);
    return true;
  }
  bool U64(uint64_t* v) {
    if (p_.size() < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v |= uint64_t{static_cast<unsigned char>(p_[i])} << (8 * i);
    p_.remove_prefix(8);
    return true;
  }
  bool F64(double* v) {
    uint64_t bits;
    if (!U64(&bits)) return false;
    *v = std::bit_cast<double>(bits);
    return true;
  }
  size_t remaining() const { return p_.size(); }

 private:
  std::string_view p_;
};

// Maps a double to an unsigned key with the same order (for non-NaN values; -0 sorts just
// before +0): negative numbers have all bits flipped, others only the sign bit.
inline uint64_t OrderedKey(double d) {
  const uint64_t u = std::bit_cast<uint64_t>(d);
  return u ^ (static_cast<uint64_t>(static_cast<int64_t>(u) >> 63) | (uint64_t{1} << 63));
}

inline double FromOrderedKey(uint64_t k) {
  return std::bit_cast<double>((k >> 63) ? k ^ (uint64_t{1} << 63) : ~k);
}

}  // namespace

namespace internal {

// Sorts the level-0 buffer, an LSD radix sort over bytes of the ordered keys that skips
// the bytes all values share (about half of std::sort's time on a few hundred random
// values: std::sort mispredicts a branch on every other comparison). Only the three
// highest bytes that differ get a pass: that orders the keys up to their low bits, and
// an insertion pass finishes the few neighbours left out of order. Clustered data could
// leave many (values in a narrow band beside a distant outlier): once the insertion pass
// has moved 4n keys it gives up, and the remaining low bytes are radix-sorted as well.
void SortValues(std::vector<double>* values, std::vector<uint64_t>* scratch) {
  const size_t n = values->size();
  if (n < 64) {
    std::sort(values->begin(), values->end());
    return;
  }
  scratch->resize(2 * n);
  uint64_t* src = scratch->data();
  uint64_t* dst = src + n;
  uint32_t counts[8][256] = {};
  for (size_t i = 0; i < n; ++i) {
    const uint64_t k = OrderedKey((*values)[i]);
    src[i] = k;
    ++counts[0][k & 0xff];
    ++counts[1][(k >> 8) & 0xff];
    ++counts[2][(k >> 16) & 0xff];
    ++counts[3][(k >> 24) & 0xff];
    ++counts[4][(k >> 32) & 0xff];
    ++counts[5][(k >> 40) & 0xff];
    ++counts[6][(k >> 48) & 0xff];
    ++counts[7][k >> 56];
  }
  int varying[8];
  int num_varying = 0;
  for (int b = 0; b < 8; ++b) {
    if (counts[b][(src[0] >> (8 * b)) & 0xff] != n) varying[num_varying++] = b;
  }
  auto pass = [&](int b) {
    uint32_t* c = counts[b];
    uint32_t sum = 0;
    for (int d = 0; d < 256; ++d) sum += std::exchange(c[d], sum);
    for (size_t i = 0; i < n; ++i) dst[c[(src[i] >> (8 * b)) & 0xff]++] = src[i];
    std::swap(src, dst);
  };
  constexpr int kTopPasses = 3;
  const int first = std::max(0, num_varying - kTopPasses);
  for (int v = first; v < num_varying; ++v) pass(varying[v]);
  if (first > 0) {
    const size_t budget = 4 * n;
    size_t moves = 0;
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; ++i) {
      const uint64_t key = src[i];
      size_t j = i;
      while (j > 0 && src[j - 1] > key) {
        src[j] = src[j - 1];
        --j;
        if (++moves > budget) {
          sorted = false;
          break;
        }
      }
      src[j] = key;
    }
    if (!sorted) {
      // src is still a permutation of the keys: sort it on every differing byte.
      for (int v = 0; v < first; ++v) pass(varying[v]);
      for (int v = first; v < num_varying; ++v) {
        // Those histograms were turned into offsets by their pass: count again.
        const int b = varying[v];
        std::fill(std::begin(counts[b]), std::end(counts[b]), 0);
        for (size_t i = 0; i < n; ++i) ++counts[b][(src[i] >> (8 * b)) & 0xff];
        pass(b);
      }
    }
  }
  for (size_t i = 0; i < n; ++i) (*values)[i] = FromOrderedKey(src[i]);
}

}  // namespace internal

namespace {

// Merges sorted a[0, na) with the sorted b[0], b[2], ..., b[2 (nb - 1)] into out. The
// loop is branch-free on the comparison, which is a coin toss on random data.
void MergeEveryOther(const double* a, size_t na, const double* b, size_t nb, double* out) {
  const double* a_end = a + na;
  const double* b_end = b + 2 * nb;
  while (a < a_end && b < b_end) {
    const bool take_b = *b < *a;
    *out++ = take_b ? *b : *a;
    a += !take_b;
    b += 2 * take_b;
  }
  while (a < a_end) *out++ = *a++;
  for (; b < b_end; b += 2) *out++ = *b;
}

absl::Status Corrupt(std::string_view what) {
  return absl::DataLossError(std::string("corrupt KLL sketch: ") + std::string(what));
}

}  // namespace

KllSketch::KllSketch(int k) : KllSketch(k, kDefaultSeed) {}

KllSketch::KllSketch(int k, uint64_t seed) : k_(std::clamp(k, kMinK, kMaxK)), rng_(seed) {
  levels_.emplace_back();
  RecomputeCapacities();
}

uint64_t KllSketch::NextRandom() {
  // splitmix64: a tiny generator with a full 2^64 period; its output is Mix64 of a counter.
  rng_ += 0x9e3779b97f4a7c15ULL;
  return Mix64(rng_);
}

void KllSketch::RecomputeCapacities() {
  // The top level holds k values; each level below holds 2/3 of the one above (rounded
  // up with integers so every machine agrees), but never fewer than kMinLevelCapacity.
  const size_t levels = levels_.size();
  level_capacity_.assign(levels, 0);
  uint64_t cap = static_cast<uint64_t>(k_);
  capacity_ = 0;
  for (size_t d = 0; d < levels; ++d) {
    uint32_t c = static_cast<uint32_t>(std::max<uint64_t>(cap, kMinLevelCapacity));
    level_capacity_[levels - 1 - d] = c;
    capacity_ += c;
    cap = (2 * cap + 2) / 3;
  }
  // Level 0 is the unsorted input buffer. Giving it room for 2k values means it is sorted
  // in large batches (a radix sort's fixed cost amortizes; upper levels merge less often),
  // which makes Add about 40% faster. Its compactions have weight 1, so the error bound
  // barely moves.
  const uint32_t buffer = static_cast<uint32_t>(2 * k_);
  capacity_ += buffer - std::min(buffer, level_capacity_[0]);
  level_capacity_[0] = std::max(level_capacity_[0], buffer);
  levels_[0].reserve(capacity_);
}

void KllSketch::AddLevel() {
  levels_.emplace_back();
  RecomputeCapacities();
}

void KllSketch::Compress() {
  while (size_ >= capacity_) {
    // Lazy compaction: only the lowest over-full level. Since the sizes sum to at least the
    // capacities, some level is over-full.
    size_t h = 0;
    while (h < levels_.size() && levels_[h].size() < level_capacity_[h]) ++h;
    if (h == levels_.size()) return;  // unreachable by the pigeonhole argument above
    if (h + 1 == levels_.size()) {
      if (levels_.size() == kMaxLevels) return;  // > 2^64 inputs: cannot happen
      AddLevel();
    }
    CompactLevel(h);
  }
}

void KllSketch::CompactLevel(size_t h) {
  std::vector<double>& src = levels_[h];
  if (h == 0) internal::SortValues(&src, &sort_keys_);
  const size_t len = src.size();
  const size_t even = len & ~size_t{1};
  if (even == 0) return;
  // The coin also depends on the data, so shards built with the same seed decorrelate.
  const uint64_t coin = Mix64(NextRandom() ^ std::bit_cast<uint64_t>(src[len / 2])) >> 63;
  std::vector<double>& dst = levels_[h + 1];
  // Merge through a second buffer; swapping buffers keeps allocations to a warm-up.
  merged_.resize(dst.size() + even / 2);
  MergeEveryOther(dst.data(), dst.size(), src.data() + coin, even / 2, merged_.data());
  dst.swap(merged_);
  // An odd value out stays behind (the largest, a choice independent of the coin).
  if (len & 1) {
    src[0] = src[len - 1];
    src.resize(1);
  } else {
    src.clear();
  }
  size_ -= even / 2;
  variance_sum_ += std::ldexp(1.0, static_cast<int>(2 * h));
}

void KllSketch::Merge(const KllSketch& other) {
  if (&other == this) {
    KllSketch copy(other);
    Merge(copy);
    return;
  }
  if (other.n_ == 0) return;
  n_ += other.n_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  while (levels_.size() < other.levels_.size()) AddLevel();
  for (size_t h = 0; h < other.levels_.size(); ++h) {
    const std::vector<double>& src = other.levels_[h];
    if (src.empty()) continue;
    std::vector<double>& dst = levels_[h];
    const size_t old = dst.size();
    dst.insert(dst.end(), src.begin(), src.end());
    if (h > 0) std::inplace_merge(dst.begin(), dst.begin() + old, dst.end());
  }
  size_ += other.size_;
  variance_sum_ += other.variance_sum_;
  // Order-dependent on purpose: merging the same sketches in the same order reproduces.
  rng_ = Mix64(rng_ ^ (other.rng_ * 0xbf58476d1ce4e5b9ULL + 0x94d049bb133111ebULL));
  Compress();
  levels_[0].reserve(capacity_);
}

double KllSketch::min() const { return n_ == 0 ? std::numeric_limits<double>::quiet_NaN() : min_; }

double KllSketch::max() const { return n_ == 0 ? std::numeric_limits<double>::quiet_NaN() : max_; }

double KllSketch::Quantile(double q) const { return Quantiles({q})[0]; }

std::vector<double> KllSketch::Quantiles(const std::vector<double>& qs) const {
  std::vector<double> out(qs.size(), std::numeric_limits<double>::quiet_NaN());
  if (n_ == 0) return out;
  std::vector<std::pair<double, uint64_t>> items;  // (value, weight)
  items.reserve(size_);
  for (size_t h = 0; h < levels_.size(); ++h) {
    for (double v : levels_[h]) items.emplace_back(v, uint64_t{1} << h);
  }
  std::sort(items.begin(), items.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<uint64_t> cum(items.size());
  uint64_t running = 0;
  for (size_t i = 0; i < items.size(); ++i) cum[i] = running += items[i].second;
  const double n = static_cast<double>(n_);
  for (size_t j = 0; j < qs.size(); ++j) {
    const double q = qs[j];
    if (!(q > 0)) {
      out[j] = min_;
    } else if (q >= 1) {
      out[j] = max_;
    } else {
      const double target = q * n;
      auto it = std::lower_bound(cum.begin(), cum.end(), target,
                                 [](uint64_t c, double t) { return static_cast<double>(c) < t; });
      const double v = it == cum.end() ? max_ : items[it - cum.begin()].first;
      out[j] = std::clamp(v, min_, max_);
    }
  }
  return out;
}

double KllSketch::RankErrorBoundAt(double delta) const {
  if (n_ == 0 || variance_sum_ == 0) return 0;
  if (!(delta > 0)) return std::numeric_limits<double>::infinity();
  if (delta >= 1) return 0;
  return std::sqrt(2 * variance_sum_ * std::log(2 / delta)) / static_cast<double>(n_);
}

std::string KllSketch::Serialize() const {
  std::string out(kMagic, sizeof(kMagic));
  PutU32(&out, static_cast<uint32_t>(k_));
  PutU64(&out, rng_);
  PutU64(&out, n_);
  PutF64(&out, min_);
  PutF64(&out, max_);
  PutF64(&out, variance_sum_);
  PutU32(&out, static_cast<uint32_t>(levels_.size()));
  for (const auto& level : levels_) PutU32(&out, static_cast<uint32_t>(level.size()));
  for (const auto& level : levels_) {
    for (double v : level) PutF64(&out, v);
  }
  PutU32(&out, crc32c::Value(out));
  return out;
}

absl::StatusOr<KllSketch> KllSketch::Deserialize(std::string_view bytes) {
  if (bytes.size() < sizeof(kMagic) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::InvalidArgumentError("not a KLL sketch (bad magic)");
  }
  if (bytes.size() < sizeof(kMagic) + 4) return Corrupt("truncated");
  const std::string_view body = bytes.substr(0, bytes.size() - 4);
  uint32_t stored_crc;
  Reader crc_reader(bytes.substr(bytes.size() - 4));
  crc_reader.U32(&stored_crc);
  if (crc32c::Value(body) != stored_crc) return Corrupt("checksum mismatch");

  Reader r(body.substr(sizeof(kMagic)));
  uint32_t k, num_levels;
  uint64_t rng, n;
  double mn, mx, var;
  if (!r.U32(&k) || !r.U64(&rng) || !r.U64(&n) || !r.F64(&mn) || !r.F64(&mx) || !r.F64(&var) ||
      !r.U32(&num_levels)) {
    return Corrupt("truncated header");
  }
  if (k < static_cast<uint32_t>(kMinK) || k > static_cast<uint32_t>(kMaxK)) {
    return Corrupt("k out of range");
  }
  if (num_levels == 0 || num_levels > kMaxLevels) return Corrupt("bad level count");
  if (!std::isfinite(var) || var < 0) return Corrupt("bad error accumulator");
  std::vector<uint32_t> sizes(num_levels);
  uint64_t total = 0;
  for (uint32_t& s : sizes) {
    if (!r.U32(&s)) return Corrupt("truncated level sizes");
    total += s;
  }
  if (r.remaining() != total * 8) return Corrupt("level sizes do not match the length");
  unsigned __int128 weight = 0;
  for (uint32_t h = 0; h < num_levels; ++h) weight += static_cast<unsigned __int128>(sizes[h]) << h;
  if (weight != n) return Corrupt("retained weights do not add up to the count");
  if (n > 0 && !(mn <= mx)) return Corrupt("bad min/max");

  KllSketch s(static_cast<int>(k), rng);
  while (s.levels_.size() < num_levels) s.levels_.emplace_back();
  s.RecomputeCapacities();
  for (uint32_t h = 0; h < num_levels; ++h) {
    std::vector<double>& level = s.levels_[h];
    level.reserve(std::max<size_t>(level.capacity(), sizes[h]));
    for (uint32_t i = 0; i < sizes[h]; ++i) {
      double v = 0;
      r.F64(&v);
      if (!(v >= mn && v <= mx)) return Corrupt("value outside [min, max] or NaN");
      if (h > 0 && i > 0 && v < level.back()) return Corrupt("level not sorted");
      level.push_back(v);
    }
  }
  s.n_ = n;
  if (n > 0) {
    s.min_ = mn;
    s.max_ = mx;
  }
  s.variance_sum_ = var;
  s.size_ = total;
  if (s.size_ >= s.capacity_) s.Compress();
  s.levels_[0].reserve(s.capacity_);
  return s;
}

}  // namespace kiln::stats
