#include "kiln/stats/string_counter.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

namespace kiln::stats {
namespace {

constexpr size_t kArenaBlock = 64 << 10;

}  // namespace

StringCounter::Arena::Arena(Arena&& other) noexcept
    : blocks_(std::move(other.blocks_)),
      next_(std::exchange(other.next_, nullptr)),
      left_(std::exchange(other.left_, 0)),
      bytes_(std::exchange(other.bytes_, 0)) {
  other.blocks_.clear();
}

StringCounter::Arena& StringCounter::Arena::operator=(Arena&& other) noexcept {
  if (&other != this) {
    blocks_ = std::move(other.blocks_);
    other.blocks_.clear();
    next_ = std::exchange(other.next_, nullptr);
    left_ = std::exchange(other.left_, 0);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

std::string_view StringCounter::Arena::Copy(std::string_view s) {
  if (s.empty()) return {};
  bytes_ += s.size();
  if (s.size() > left_) {
    if (s.size() > kArenaBlock / 4) {
      // A large value gets a block of its own so the current block keeps its free tail.
      blocks_.push_back(std::make_unique_for_overwrite<char[]>(s.size()));
      std::memcpy(blocks_.back().get(), s.data(), s.size());
      return {blocks_.back().get(), s.size()};
    }
    blocks_.push_back(std::make_unique_for_overwrite<char[]>(kArenaBlock));
    next_ = blocks_.back().get();
    left_ = kArenaBlock;
  }
  std::memcpy(next_, s.data(), s.size());
  std::string_view out(next_, s.size());
  next_ += s.size();
  left_ -= s.size();
  return out;
}

StringCounter::StringCounter(size_t exact_cap)
    : StringCounter(StringCounterOptions{.exact_cap = exact_cap}) {}

StringCounter::StringCounter(const StringCounterOptions& options) : options_(options) {
  options_.top_capacity = std::max<size_t>(options_.top_capacity, 1);
}

StringCounter::StringCounter(const StringCounter& other) : StringCounter(other.options_) {
  *this = other;
}

StringCounter& StringCounter::operator=(const StringCounter& other) {
  if (&other == this) return *this;
  // Keys are views into the arena, so a copy re-stores every value in a fresh arena.
  options_ = other.options_;
  exact_ = other.exact_;
  total_ = other.total_;
  total_length_ = other.total_length_;
  counts_ = Map();
  arena_ = Arena();
  live_bytes_ = other.live_bytes_;
  counts_.reserve(other.counts_.size());
  for (const auto& [key, count] : other.counts_) {
    counts_.emplace(Key{arena_.Copy(key.value), key.hash}, count);
  }
  hll_ = other.hll_;
  unique_floor_ = other.unique_floor_;
  top_error_ = other.top_error_;
  return *this;
}

bool StringCounter::AddCount(std::string_view value, uint64_t hash, uint64_t count) {
  bool inserted = false;
  auto it = counts_.lazy_emplace(Key{value, hash}, [&](const Map::constructor& construct) {
    inserted = true;
    live_bytes_ += value.size();
    construct(Key{arena_.Copy(value), hash}, 0);
  });
  it->second += count;
  return inserted;
}

void StringCounter::Add(std::string_view value, uint64_t hash) {
  ++total_;
  total_length_ += value.size();
  if (AddCount(value, hash, 1)) OnNewValue(hash);
}

void StringCounter::OnNewValue(uint64_t hash) {
  if (exact_) {
    if (counts_.size() > options_.exact_cap || live_bytes_ > options_.exact_byte_cap) {
      StartSketch();
      ReduceIfFull();
    }
    return;
  }
  hll_->AddHash(hash);
  unique_floor_ = std::max<uint64_t>(unique_floor_, counts_.size());
  ReduceIfFull();
}

void StringCounter::StartSketch() {
  exact_ = false;
  hll_.emplace(options_.hll_precision);
  for (const auto& entry : counts_) hll_->AddHash(entry.first.hash);
  unique_floor_ = std::max<uint64_t>(unique_floor_, counts_.size());
}

size_t StringCounter::ReduceAt() const {
  const size_t t = options_.top_capacity;
  return t + std::max<size_t>(t - t / 4, 1);
}

void StringCounter::ReduceIfFull() {
  if (counts_.size() >= ReduceAt()) Reduce();
}

void StringCounter::Reduce() {
  const size_t t = options_.top_capacity;
  if (counts_.size() <= t) return;
  std::vector<uint64_t>& values = reduce_counts_;
  values.clear();
  values.reserve(counts_.size());
  for (const auto& entry : counts_) values.push_back(entry.second);
  // c = the (t+1)-th largest count. At least t+1 entries lose c each, so the mass removed
  // is >= (t+1) c while no single value loses more than c.
  std::nth_element(values.begin(), values.begin() + t, values.end(), std::greater<>());
  const uint64_t c = values[t];
  top_error_ += c;
  // The survivors (at most t) go into a fresh table sized for ReduceAt() entries: erasing
  // most entries in place would leave tombstones that make a later insert grow the table,
  // and a table that stays small stays in cache.
  std::vector<std::pair<Key, uint64_t>>& keep = reduce_keep_;
  keep.clear();
  live_bytes_ = 0;
  for (const auto& [key, count] : counts_) {
    if (count > c) {
      keep.emplace_back(key, count - c);
      live_bytes_ += key.value.size();
    }
  }
  Map fresh;
  fresh.reserve(ReduceAt());
  for (const auto& [key, count] : keep) fresh.emplace(key, count);
  counts_ = std::move(fresh);
  // Re-store the survivors once evicted values make up most of the arena.
  if (arena_.bytes() > 2 * live_bytes_ + kArenaBlock) {
    Arena fresh_arena;
    for (auto& entry : counts_) entry.first.value = fresh_arena.Copy(entry.first.value);
    arena_ = std::move(fresh_arena);
  }
}

void StringCounter::Merge(const StringCounter& other) {
  if (&other == this) {
    StringCounter copy(other);
    Merge(copy);
    return;
  }
  total_ += other.total_;
  total_length_ += other.total_length_;
  if (exact_ && other.exact_) {
    for (const auto& [key, count] : other.counts_) AddCount(key.value, key.hash, count);
    if (counts_.size() > options_.exact_cap || live_bytes_ > options_.exact_byte_cap) {
      StartSketch();
      ReduceIfFull();
    }
    return;
  }
  // The result is a sketch. Combine the tables first and reduce once, which loses less
  // than reducing each side on its own.
  if (exact_) StartSketch();
  if (other.exact_) {
    for (const auto& entry : other.counts_) hll_->AddHash(entry.first.hash);
    unique_floor_ = std::max<uint64_t>(unique_floor_, other.counts_.size());
  } else {
    hll_->Merge(*other.hll_);
    unique_floor_ = std::max(unique_floor_, other.unique_floor_);
  }
  top_error_ += other.top_error_;
  for (const auto& [key, count] : other.counts_) AddCount(key.value, key.hash, count);
  unique_floor_ = std::max<uint64_t>(unique_floor_, counts_.size());
  ReduceIfFull();
}

uint64_t StringCounter::Unique() const {
  if (exact_) return counts_.size();
  const uint64_t estimate = static_cast<uint64_t>(std::llround(hll_->Estimate()));
  // The estimate can overshoot; there are never more distinct values than values.
  return std::min(std::max(estimate, unique_floor_), total_);
}

std::vector<std::pair<std::string, uint64_t>> StringCounter::Top(size_t k) const {
  std::vector<std::pair<std::string_view, uint64_t>> entries;
  entries.reserve(counts_.size());
  for (const auto& [key, count] : counts_) entries.emplace_back(key.value, count);
  const size_t n = std::min(k, entries.size());
  auto before = [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  };
  std::partial_sort(entries.begin(), entries.begin() + n, entries.end(), before);
  std::vector<std::pair<std::string, uint64_t>> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.emplace_back(std::string(entries[i].first), entries[i].second);
  return out;
}

}  // namespace kiln::stats
