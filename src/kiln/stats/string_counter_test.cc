#include "kiln/stats/string_counter.h"

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/hash.h"

namespace kiln::stats {
namespace {

using testing::ElementsAre;
using testing::Pair;
using Counts = std::map<std::string, uint64_t>;

void Add(StringCounter* c, const std::string& v) { c->Add(v, Hash64(v)); }

void AddAll(StringCounter* c, const std::vector<std::string>& values) {
  for (const auto& v : values) Add(c, v);
}

// Value i appears floor(2000 / (i + 1)) + 1 times (a Zipf-like tail of 20000 values),
// in a fixed shuffled order.
std::vector<std::string> ZipfStream(uint64_t seed, const std::string& prefix = "v") {
  std::vector<std::string> out;
  for (int i = 0; i < 20000; ++i) {
    const int reps = 2000 / (i + 1) + 1;
    for (int r = 0; r < reps; ++r) out.push_back(prefix + std::to_string(i));
  }
  std::shuffle(out.begin(), out.end(), std::mt19937_64(seed));
  return out;
}

Counts Truth(const std::vector<std::string>& values) {
  Counts c;
  for (const auto& v : values) ++c[v];
  return c;
}

// Checks the documented sketch-mode guarantee against exact counts.
void ExpectHeavyHitterBound(const StringCounter& c, const Counts& truth) {
  const uint64_t err = c.TopCountError();
  const auto table = c.Top(SIZE_MAX);
  uint64_t table_mass = 0;
  std::map<std::string, uint64_t> reported;
  for (const auto& [v, n] : table) {
    ASSERT_TRUE(truth.count(v)) << v;
    const uint64_t f = truth.at(v);
    EXPECT_LE(n, f) << v;
    EXPECT_GE(n + err, f) << v;
    table_mass += n;
    reported[v] = n;
  }
  // Every value more frequent than the error is present.
  for (const auto& [v, f] : truth) {
    if (f > err) {
      EXPECT_TRUE(reported.count(v)) << v << " count " << f << " error " << err;
    }
  }
  const uint64_t t = c.options().top_capacity;
  EXPECT_LE(err, (c.total() - table_mass) / (t + 1));
  EXPECT_LE(table.size(), 2 * t);
}

TEST(StringCounterTest, ExactCountsAndTieOrder) {
  StringCounter c;
  // "\xff" sorts after ASCII bytewise (unsigned), the empty string before everything.
  AddAll(&c, {"b", "a", "c", "\xff", "c", "b", "a", "c", "", "\xff", "b", "a", "c", "\xff", "c"});
  EXPECT_TRUE(c.exact());
  EXPECT_EQ(c.Unique(), 5u);
  EXPECT_EQ(c.total(), 15u);
  EXPECT_EQ(c.total_length(), 14u);
  EXPECT_THAT(c.Top(10),
              ElementsAre(Pair("c", 5), Pair("a", 3), Pair("b", 3), Pair("\xff", 3), Pair("", 1)));
  EXPECT_THAT(c.Top(2), ElementsAre(Pair("c", 5), Pair("a", 3)));
  EXPECT_TRUE(c.Top(0).empty());
  EXPECT_EQ(c.TopCountError(), 0u);
}

TEST(StringCounterTest, KeepsItsOwnCopyOfValues) {
  StringCounter c;
  std::string buffer = "alpha";
  c.Add(buffer, Hash64(buffer));
  buffer = "omega";
  c.Add(buffer, Hash64(buffer));
  buffer.assign(100000, 'x');  // a large value takes its own arena block
  c.Add(buffer, Hash64(buffer));
  buffer = "alpha";
  c.Add(buffer, Hash64(buffer));
  buffer = "zzzzz";
  auto top = c.Top(3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0], std::make_pair(std::string("alpha"), uint64_t{2}));
  EXPECT_EQ(top[1], std::make_pair(std::string("omega"), uint64_t{1}));
  EXPECT_EQ(top[2], std::make_pair(std::string(100000, 'x'), uint64_t{1}));
}

TEST(StringCounterTest, HashCollisionsDoNotMergeDistinctValues) {
  StringCounter c;
  c.Add("one", 42);
  c.Add("two", 42);
  c.Add("one", 42);
  EXPECT_EQ(c.Unique(), 2u);
  EXPECT_THAT(c.Top(2), ElementsAre(Pair("one", 2), Pair("two", 1)));
}

TEST(StringCounterTest, StaysExactUpToTheCapAndSwitchesOneAfter) {
  StringCounter c(100);
  for (int i = 0; i < 100; ++i) Add(&c, "k" + std::to_string(i));
  EXPECT_TRUE(c.exact());
  EXPECT_EQ(c.Unique(), 100u);
  Add(&c, "k0");
  EXPECT_TRUE(c.exact());
  Add(&c, "new");
  EXPECT_FALSE(c.exact());
  // 101 entries fit the 4096-counter table: counts are still exact, unique is estimated
  // but never below the 101 values known for certain.
  EXPECT_EQ(c.TopCountError(), 0u);
  EXPECT_THAT(c.Top(2), ElementsAre(Pair("k0", 2), Pair("k1", 1)));
  EXPECT_GE(c.Unique(), 101u);
  EXPECT_LE(c.Unique(), 103u);
  EXPECT_EQ(c.total(), 102u);
}

TEST(StringCounterTest, ByteCapAlsoSwitches) {
  StringCounter c(StringCounterOptions{.exact_cap = 1000, .exact_byte_cap = 100});
  for (int i = 0; i < 10; ++i) Add(&c, "value-" + std::to_string(1000 + i));  // 10 bytes each
  EXPECT_TRUE(c.exact());
  Add(&c, "x");
  EXPECT_FALSE(c.exact());
}

TEST(StringCounterTest, SketchModeKeepsHeavyHittersWithinTheBound) {
  const auto stream = ZipfStream(1);
  const Counts truth = Truth(stream);
  StringCounter c(StringCounterOptions{.exact_cap = 1000, .top_capacity = 64});
  AddAll(&c, stream);
  EXPECT_FALSE(c.exact());
  EXPECT_EQ(c.total(), stream.size());
  EXPECT_GT(c.TopCountError(), 0u);  // reductions happened, so the bound is exercised
  ExpectHeavyHitterBound(c, truth);
  // The head is far apart relative to the error: order and names are exact.
  auto top = c.Top(3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].first, "v0");
  EXPECT_EQ(top[1].first, "v1");
  EXPECT_EQ(top[2].first, "v2");
  const double unique = static_cast<double>(c.Unique());
  EXPECT_NEAR(unique, 20000, 3 * 0.0082 * 20000);
  uint64_t length = 0;
  for (const auto& v : stream) length += v.size();
  EXPECT_EQ(c.total_length(), length);
}

TEST(StringCounterTest, DefaultTableKeepsTheHeadExact) {
  const auto stream = ZipfStream(2);
  const Counts truth = Truth(stream);
  StringCounter c(1000);
  AddAll(&c, stream);
  EXPECT_FALSE(c.exact());
  ExpectHeavyHitterBound(c, truth);
  EXPECT_LE(c.TopCountError(), c.total() / 4097);
  for (const auto& [v, n] : c.Top(20)) EXPECT_GE(n + c.TopCountError(), truth.at(v));
}

TEST(StringCounterTest, MergeOfExactCountersWithinTheCapStaysExact) {
  StringCounter a(1000), b(1000);
  for (int i = 0; i < 600; ++i) Add(&a, std::to_string(i));
  for (int i = 400; i < 1000; ++i) Add(&b, std::to_string(i));
  a.Merge(b);
  EXPECT_TRUE(a.exact());
  EXPECT_EQ(a.Unique(), 1000u);
  EXPECT_EQ(a.total(), 1200u);
  EXPECT_THAT(a.Top(2), ElementsAre(Pair("400", 2), Pair("401", 2)));
}

TEST(StringCounterTest, MergeOfExactCountersOverTheCapSwitches) {
  StringCounter a(1000), b(1000);
  for (int i = 0; i < 600; ++i) Add(&a, std::to_string(i));
  for (int i = 400; i < 1001; ++i) Add(&b, std::to_string(i));
  a.Merge(b);
  EXPECT_FALSE(a.exact());
  EXPECT_EQ(a.total(), 1201u);
  EXPECT_EQ(a.TopCountError(), 0u);  // 1001 values fit the table: counts stay exact
  EXPECT_EQ(a.Top(SIZE_MAX).size(), 1001u);
  EXPECT_THAT(a.Top(1), ElementsAre(Pair("400", 2)));
  EXPECT_GE(a.Unique(), 1001u);
  EXPECT_LE(a.Unique(), 1001u + 3 * 0.0082 * 1001);
  // Adding more afterwards keeps counting in sketch mode.
  Add(&a, "400");
  EXPECT_THAT(a.Top(1), ElementsAre(Pair("400", 3)));
}

TEST(StringCounterTest, MergeOverTheCapWithSmallTableReduces) {
  StringCounterOptions o{.exact_cap = 1000, .top_capacity = 16};
  StringCounter a(o), b(o);
  const auto s1 = ZipfStream(3);
  std::vector<std::string> part1(s1.begin(), s1.begin() + s1.size() / 2);
  std::vector<std::string> part2(s1.begin() + s1.size() / 2, s1.end());
  // Both halves hold the first 900 values only, so each is exact on its own.
  auto keep = [](std::vector<std::string>* p, int first, int last) {
    std::erase_if(*p, [&](const std::string& v) {
      const int i = std::stoi(v.substr(1));
      return i < first || i >= last;
    });
  };
  keep(&part1, 0, 900);
  keep(&part2, 200, 1100);
  AddAll(&a, part1);
  AddAll(&b, part2);
  ASSERT_TRUE(a.exact());
  ASSERT_TRUE(b.exact());
  a.Merge(b);
  EXPECT_FALSE(a.exact());
  std::vector<std::string> all = part1;
  all.insert(all.end(), part2.begin(), part2.end());
  const Counts truth = Truth(all);
  ExpectHeavyHitterBound(a, truth);
  EXPECT_LE(a.Top(SIZE_MAX).size(), 2u * 16);
  // The union was known exactly at the switch, so the estimate never goes below it.
  EXPECT_GE(a.Unique(), truth.size());
  EXPECT_LE(a.Unique(), truth.size() * (1 + 3 * 0.0082));
}

TEST(StringCounterTest, MergeExactWithSketchInEitherOrder) {
  StringCounterOptions o{.exact_cap = 500, .top_capacity = 64};
  const auto big = ZipfStream(4, "v");
  std::vector<std::string> small;
  for (int i = 0; i < 300; ++i) {
    for (int r = 0; r < 300 - i; ++r) small.push_back("s" + std::to_string(i));
  }
  small.push_back("v0");
  StringCounter sketch(o), exact(o);
  AddAll(&sketch, big);
  AddAll(&exact, small);
  ASSERT_FALSE(sketch.exact());
  ASSERT_TRUE(exact.exact());

  StringCounter ab = sketch;
  ab.Merge(exact);
  StringCounter ba = exact;
  ba.Merge(sketch);
  EXPECT_FALSE(ab.exact());
  EXPECT_FALSE(ba.exact());
  EXPECT_EQ(ab.Top(SIZE_MAX), ba.Top(SIZE_MAX));
  EXPECT_EQ(ab.Unique(), ba.Unique());
  EXPECT_EQ(ab.TopCountError(), ba.TopCountError());
  EXPECT_EQ(ab.total(), big.size() + small.size());

  std::vector<std::string> all = big;
  all.insert(all.end(), small.begin(), small.end());
  ExpectHeavyHitterBound(ab, Truth(all));
  EXPECT_NEAR(static_cast<double>(ab.Unique()), 20300, 3 * 0.0082 * 20300);
  EXPECT_EQ(ab.Top(1)[0].first, "v0");
}

TEST(StringCounterTest, MergeOfShardedSketchesKeepsTheBound) {
  StringCounterOptions o{.exact_cap = 1000, .top_capacity = 64};
  const auto stream = ZipfStream(5);
  StringCounter merged(o);
  for (int shard = 0; shard < 10; ++shard) {
    StringCounter part(o);
    for (size_t i = shard; i < stream.size(); i += 10) Add(&part, stream[i]);
    merged.Merge(part);
  }
  EXPECT_EQ(merged.total(), stream.size());
  ExpectHeavyHitterBound(merged, Truth(stream));
  EXPECT_EQ(merged.Top(1)[0].first, "v0");
  EXPECT_NEAR(static_cast<double>(merged.Unique()), 20000, 3 * 0.0082 * 20000);
}

TEST(StringCounterTest, CopiesAreDeepAndSelfMergeDoubles) {
  StringCounter* original = new StringCounter(10);
  for (int i = 0; i < 5; ++i) Add(original, "x" + std::to_string(i));
  Add(original, "x0");
  StringCounter copy = *original;
  StringCounter assigned;
  assigned = *original;
  delete original;  // the copies must not point into the original's arena
  EXPECT_THAT(copy.Top(2), ElementsAre(Pair("x0", 2), Pair("x1", 1)));
  EXPECT_THAT(assigned.Top(2), ElementsAre(Pair("x0", 2), Pair("x1", 1)));
  copy.Merge(copy);
  EXPECT_THAT(copy.Top(2), ElementsAre(Pair("x0", 4), Pair("x1", 2)));
  EXPECT_EQ(copy.total(), 12u);
  EXPECT_TRUE(copy.exact());

  StringCounter moved = std::move(assigned);
  Add(&moved, "x1");
  EXPECT_THAT(moved.Top(2), ElementsAre(Pair("x0", 2), Pair("x1", 2)));
}

TEST(StringCounterTest, EmptyCounter) {
  StringCounter c;
  EXPECT_TRUE(c.exact());
  EXPECT_EQ(c.Unique(), 0u);
  EXPECT_TRUE(c.Top(5).empty());
  EXPECT_EQ(c.total(), 0u);
  EXPECT_EQ(c.total_length(), 0u);
  StringCounter other;
  Add(&other, "a");
  c.Merge(other);
  EXPECT_THAT(c.Top(5), ElementsAre(Pair("a", 1)));
}

}  // namespace
}  // namespace kiln::stats
