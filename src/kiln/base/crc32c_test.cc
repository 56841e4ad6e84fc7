#include "kiln/base/crc32c.h"

#include <string>

#include "gtest/gtest.h"

namespace kiln::crc32c {
namespace {

// Test vectors from RFC 3720 (iSCSI), appendix B.4.
TEST(Crc32cTest, Rfc3720Vectors) {
  EXPECT_EQ(Value(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(Value(std::string(32, '\xff')), 0x62a8ab43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(Value(ascending), 0x46dd794eu);
  EXPECT_EQ(Value(descending), 0x113fdb5cu);
}

TEST(Crc32cTest, CheckValueOfDigits) { EXPECT_EQ(Value("123456789"), 0xe3069283u); }

TEST(Crc32cTest, EmptyInputIsZero) { EXPECT_EQ(Value(""), 0u); }

TEST(Crc32cTest, ExtendEqualsOneShotAtEverySplit) {
  // Long enough to cross the 8-byte fast path several times, with a ragged tail.
  std::string data;
  for (int i = 0; i < 203; ++i) data.push_back(static_cast<char>(i * 37 + 11));
  const uint32_t whole = Value(data);
  for (size_t split = 0; split <= data.size(); ++split) {
    uint32_t crc = Extend(0, data.data(), split);
    crc = Extend(crc, data.data() + split, data.size() - split);
    ASSERT_EQ(crc, whole) << "split at " << split;
  }
}

TEST(Crc32cTest, DifferentDataDifferentCrc) {
  EXPECT_NE(Value("a"), Value("b"));
  EXPECT_NE(Value("hello"), Value("hellp"));
}

TEST(Crc32cTest, MaskChangesValueAndUnmaskRestoresIt) {
  for (uint32_t crc : {0u, 1u, 0x8a9136aau, 0xe3069283u, 0xffffffffu}) {
    EXPECT_NE(Mask(crc), crc);
    EXPECT_NE(Mask(Mask(crc)), Mask(crc));
    EXPECT_EQ(Unmask(Mask(crc)), crc);
    EXPECT_EQ(Unmask(Unmask(Mask(Mask(crc)))), crc);
  }
}

// Masked values computed by an independent implementation (TensorBoard's masked_crc32c).
TEST(Crc32cTest, MaskMatchesTensorBoard) {
  EXPECT_EQ(Mask(Value(std::string(8, '\0'))), 0x07980329u);  // header of an empty record
  EXPECT_EQ(Mask(Value("")), 0xa282ead8u);
  EXPECT_EQ(Mask(Value("123456789")), 0xc78ab0e5u);
}

}  // namespace
}  // namespace kiln::crc32c
