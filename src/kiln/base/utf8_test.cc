#include "kiln/base/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln {
namespace {

// Cases after RFC 3629 section 4 and Markus Kuhn's UTF-8 decoder stress test.
TEST(Utf8Test, ValidAndInvalidSequences) {
  for (const char* ok : {"", "plain ascii", "\xC2\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
                         "\xED\x9F\xBF", "\xEE\x80\x80", "\xF4\x8F\xBF\xBF", "a\xC3\xA9z"}) {
    EXPECT_TRUE(IsValidUtf8(ok)) << ok;
  }
  for (const char* bad : {
           "\x80",              // a lone continuation byte
           "\xC0\xAF",          // overlong '/'
           "\xE0\x80\xAF",      // overlong, three bytes
           "\xF0\x80\x80\xAF",  // overlong, four bytes
           "\xED\xA0\x80",      // a UTF-16 surrogate (U+D800)
           "\xF4\x90\x80\x80",  // above U+10FFFF
           "\xF5\x80\x80\x80",  // never a lead byte
           "\xE2\x82",          // truncated
           "abc\xFF",           // 0xFF never appears
       }) {
    EXPECT_FALSE(IsValidUtf8(bad)) << testing::PrintToString(std::string(bad));
  }
}

// A high bit at every position of every length up to 40 (the eight-byte steps and the
// tail) makes the text not ASCII.
TEST(Utf8Test, IsAsciiSeesEveryByte) {
  for (size_t n = 0; n <= 40; ++n) {
    std::string s(n, 'a');
    EXPECT_TRUE(IsAscii(s));
    for (size_t i = 0; i < n; ++i) {
      std::string t = s;
      t[i] = static_cast<char>(0x80 | (i & 0x7f));
      EXPECT_FALSE(IsAscii(t)) << n << " " << i;
    }
  }
}

}  // namespace
}  // namespace kiln
