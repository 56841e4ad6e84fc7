#include "kiln/data/text_blocks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

namespace kiln::data {
namespace {

// The vectorised count against std::count, at lengths around its 16-byte loads and its
// 255-load flushes, and with every byte a line feed (where per-byte counters would wrap).
TEST(CountNewlinesTest, MatchesStdCount) {
  std::mt19937_64 rng(3);
  for (size_t n : {0, 1, 15, 16, 17, 4079, 4080, 4081, 8160, 100000}) {
    std::string s(n, 'x');
    for (char& c : s) c = rng() % 5 == 0 ? '\n' : static_cast<char>('a' + rng() % 26);
    EXPECT_EQ(CountNewlines(s.data(), s.size()),
              static_cast<uint64_t>(std::count(s.begin(), s.end(), '\n')))
        << n;
    const std::string all(n, '\n');
    EXPECT_EQ(CountNewlines(all.data(), all.size()), n);
  }
}

}  // namespace
}  // namespace kiln::data
