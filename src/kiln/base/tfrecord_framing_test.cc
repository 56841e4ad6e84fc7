#include "kiln/base/tfrecord_framing.h"

#include <algorithm>
#include <string>

#include "gtest/gtest.h"

namespace kiln::tfrecord {
namespace {

// Expected bytes were produced by TensorBoard's own Python RecordWriter
// (tensorboard.summary.writer.record_writer) for the same data.
TEST(TfRecordFramingTest, MatchesTensorBoardRecordWriter) {
  std::string out;
  AppendRecord(&out, "hello");
  EXPECT_EQ(out, std::string("\x05\x00\x00\x00\x00\x00\x00\x00\xea\xb2\x04\x3e", 12) + "hello" +
                     std::string("\xbb\x1f\x1c\x19", 4));

  out.clear();
  AppendRecord(&out, "brain.Event:2");
  EXPECT_EQ(out, std::string("\x0d\x00\x00\x00\x00\x00\x00\x00\x3c\x37\xb8\x34", 12) +
                     "brain.Event:2" + std::string("\xee\x01\x06\x7c", 4));
}

TEST(TfRecordFramingTest, EmptyRecordIsHeaderAndMaskedZeroCrc) {
  std::string out;
  AppendRecord(&out, "");
  EXPECT_EQ(out, std::string("\x00\x00\x00\x00\x00\x00\x00\x00\x29\x03\x98\x07"
                             "\xd8\xea\x82\xa2",
                             16));
}

TEST(TfRecordFramingTest, AppendKeepsWhatWasThere) {
  std::string out = "xy";
  AppendRecord(&out, "abc");
  ASSERT_EQ(out.size(), 2 + kHeaderBytes + 3 + kFooterBytes);
  EXPECT_EQ(out.substr(0, 2), "xy");
  EXPECT_EQ(out.substr(2 + kHeaderBytes, 3), "abc");
}

TEST(TfRecordFramingTest, DecodeRoundTripsLengths) {
  for (uint64_t n :
       {uint64_t{0}, uint64_t{1}, uint64_t{255}, uint64_t{256}, uint64_t{1} << 40, ~uint64_t{0}}) {
    char header[kHeaderBytes];
    EncodeHeader(n, header);
    uint64_t got = 7;
    ASSERT_TRUE(DecodeHeader(header, &got)) << n;
    EXPECT_EQ(got, n);
  }
}

TEST(TfRecordFramingTest, DecodeRejectsAnyFlippedHeaderBit) {
  char header[kHeaderBytes];
  EncodeHeader(1234, header);
  for (size_t byte = 0; byte < kHeaderBytes; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      char bad[kHeaderBytes];
      std::copy(header, header + kHeaderBytes, bad);
      bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
      uint64_t got = 99;
      EXPECT_FALSE(DecodeHeader(bad, &got)) << byte << ":" << bit;
      EXPECT_EQ(got, 99u);
    }
  }
}

TEST(TfRecordFramingTest, FooterMatchesOnlyItsData) {
  char footer[kFooterBytes];
  EncodeFooter("payload", footer);
  EXPECT_TRUE(FooterMatches("payload", footer));
  EXPECT_FALSE(FooterMatches("paylOad", footer));
  EXPECT_FALSE(FooterMatches("payloa", footer));
  footer[0] = static_cast<char>(footer[0] ^ 1);
  EXPECT_FALSE(FooterMatches("payload", footer));
}

}  // namespace
}  // namespace kiln::tfrecord
