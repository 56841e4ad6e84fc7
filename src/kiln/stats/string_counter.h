// StringCounter: per-value counts of a string feature, exact while the number of distinct
// values is small, bounded in memory afterwards. Mergeable.
//
// Exact mode: a hash map keyed by (caller's hash, bytes), values stored once in an arena;
// Add of a value already seen is one probe and no allocation.
//
// Once more than exact_cap distinct values (or exact_byte_cap bytes of them) have been
// seen, it switches for good to:
//  - Unique(): HyperLogLog (relative standard error 1.04 / sqrt(2^hll_precision), 0.81% by
//    default), never less than the number of distinct values known for certain;
//  - Top(): a Misra-Gries heavy-hitter table (the mergeable form of Agarwal et al. 2012)
//    of top_capacity counters. It holds up to 1.75 * top_capacity entries; when full, the
//    (top_capacity+1)-th largest count c is subtracted from every entry and entries left at
//    0 are dropped. Every reported count f' of a value with true count f satisfies
//        f - TopCountError() <= f' <= f,
//    where TopCountError() is the sum of all subtracted c (through merges too) and is at
//    most (total() - sum of the table's counts) / (top_capacity + 1) <= total() /
//    (top_capacity + 1). Every value with f > TopCountError() is in the table.
// total() and total_length() stay exact in both modes.
//
// Results depend only on the multiset of values added and on the merge tree, not on hash
// map iteration order. Not thread-safe; copyable (deep) and movable.
#ifndef KILN_STATS_STRING_COUNTER_H_
#define KILN_STATS_STRING_COUNTER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "kiln/stats/hll.h"

namespace kiln::stats {

struct StringCounterOptions {
  size_t exact_cap = 1 << 18;               // distinct values counted exactly
  size_t exact_byte_cap = size_t{1} << 26;  // bytes of distinct values kept exactly (64 MiB)
  size_t top_capacity = 4096;               // heavy-hitter counters after the switch (>= 1)
  int hll_precision = 14;                   // HyperLogLog precision after the switch
};

class StringCounter {
 public:
  explicit StringCounter(size_t exact_cap = 1 << 18);
  explicit StringCounter(const StringCounterOptions& options);
  StringCounter(const StringCounter& other);
  StringCounter& operator=(const StringCounter& other);
  StringCounter(StringCounter&&) noexcept = default;
  StringCounter& operator=(StringCounter&&) noexcept = default;

  // hash must be kiln::Hash64(value) (any fixed well-mixed hash works, if used everywhere).
  void Add(std::string_view value, uint64_t hash);
  // As if other's values had been added here. Both must use the same hash function.
  void Merge(const StringCounter& other);

  bool exact() const { return exact_; }
  // Exact distinct count, or the rounded HyperLogLog estimate after the switch.
  uint64_t Unique() const;
  // The k largest counts, by count descending then value ascending (bytewise, unsigned).
  // Exact in exact mode; see the header comment for the error after the switch.
  std::vector<std::pair<std::string, uint64_t>> Top(size_t k) const;
  uint64_t total() const { return total_; }
  uint64_t total_length() const { return total_length_; }

  // Largest possible undercount of any count returned by Top(); 0 while exact.
  uint64_t TopCountError() const { return top_error_; }
  const StringCounterOptions& options() const { return options_; }

 private:
  // Bump allocator for value bytes: views into it stay valid until the arena is dropped.
  class Arena {
   public:
    Arena() = default;
    Arena(Arena&& other) noexcept;
    Arena& operator=(Arena&& other) noexcept;
    std::string_view Copy(std::string_view s);
    size_t bytes() const { return bytes_; }

   private:
    std::vector<std::unique_ptr<char[]>> blocks_;
    char* next_ = nullptr;
    size_t left_ = 0;
    size_t bytes_ = 0;
  };
  struct Key {
    // Mutable so the arena can be compacted in place; hash and equality do not change.
    mutable std::string_view value;
    uint64_t hash;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return k.hash; }
  };
  struct KeyEq {
    bool operator()(const Key& a, const Key& b) const {
      return a.hash == b.hash && a.value == b.value;
    }
  };
  using Map = absl::flat_hash_map<Key, uint64_t, KeyHash, KeyEq>;

  // Adds `count` to `value`; returns true if it was new.
  bool AddCount(std::string_view value, uint64_t hash, uint64_t count);
  void OnNewValue(uint64_t hash);
  // Leaves exact mode: registers every known value in the HyperLogLog.
  void StartSketch();
  // Misra-Gries reduction down to at most options_.top_capacity entries.
  void Reduce();
  // Reduce() once the table holds ReduceAt() entries, 1.75 * top_capacity (amortizes its
  // O(t) cost).
  void ReduceIfFull();
  size_t ReduceAt() const;

  StringCounterOptions options_;
  bool exact_ = true;
  uint64_t total_ = 0;
  uint64_t total_length_ = 0;
  Map counts_;
  Arena arena_;
  size_t live_bytes_ = 0;           // bytes of the values in counts_
  std::optional<HyperLogLog> hll_;  // set once not exact
  uint64_t unique_floor_ = 0;       // distinct values known for certain (sketch mode)
  uint64_t top_error_ = 0;
  // Scratch storage of Reduce(), kept between calls.
  std::vector<uint64_t> reduce_counts_;
  std::vector<std::pair<Key, uint64_t>> reduce_keep_;
};

}  // namespace kiln::stats

#endif  // KILN_STATS_STRING_COUNTER_H_
