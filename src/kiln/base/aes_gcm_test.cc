#include "kiln/base/aes_gcm.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

std::string Hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// Test cases 15 and 16 of the GCM specification (McGrew & Viega), AES-256, 96-bit IV.
const std::string kKey = Hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
const std::string kIv = Hex("cafebabefacedbaddecaf888");

TEST(AesGcmTest, OpensPublishedVectorWithAad) {
  std::string sealed =
      "KILNAES1" + kIv +
      Hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
          "56828838c5f61e6393ba7a0abcc9f662") +
      Hex("76fc6ece0f4e1768cddf8853bb2d551b");
  auto plain = AesGcmOpen(kKey, Hex("feedfacedeadbeeffeedfacedeadbeefabaddad2"), sealed);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, Hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95"
                        "956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"));
}

TEST(AesGcmTest, OpensPublishedVectorWithoutAad) {
  std::string sealed =
      "KILNAES1" + kIv +
      Hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
          "56828838c5f61e6393ba7a0abcc9f662898015ad") +
      Hex("b094dac5d93471bdec1a502270e3cc6c");
  auto plain = AesGcmOpen(kKey, "", sealed);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, Hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95"
                        "956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"));
}

TEST(AesGcmTest, SealRoundTripsWithFreshNonces) {
  std::string msg(10000, 'x');
  auto a = AesGcmSeal(kKey, "weights.bin", msg);
  auto b = AesGcmSeal(kKey, "weights.bin", msg);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);  // random nonce
  EXPECT_EQ(a->size(), msg.size() + 8 + 12 + 16);
  EXPECT_EQ(a->find(msg.substr(0, 64)), std::string::npos);
  EXPECT_EQ(*AesGcmOpen(kKey, "weights.bin", *a), msg);
  EXPECT_EQ(*AesGcmOpen(kKey, "weights.bin", *b), msg);
  auto empty = AesGcmSeal(kKey, "", "");
  EXPECT_EQ(*AesGcmOpen(kKey, "", *empty), "");
}

TEST(AesGcmTest, RefusesWrongKeyContextAndTampering) {
  auto sealed = AesGcmSeal(kKey, "a", "secret weights");
  ASSERT_TRUE(sealed.ok());
  std::string other_key(32, 'k');
  EXPECT_EQ(AesGcmOpen(other_key, "a", *sealed).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(AesGcmOpen(kKey, "b", *sealed).status().code(), absl::StatusCode::kPermissionDenied);
  for (size_t i = 8; i < sealed->size(); i += 5) {
    std::string t = *sealed;
    t[i] ^= 1;
    EXPECT_EQ(AesGcmOpen(kKey, "a", t).status().code(), absl::StatusCode::kPermissionDenied) << i;
  }
  EXPECT_EQ(AesGcmOpen(kKey, "a", "KILNAES1short").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(AesGcmOpen(kKey, "a", std::string(64, 'z')).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(AesGcmSeal("short", "a", "x").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AesGcmTest, ParsesKeyForms) {
  std::string hex = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
  EXPECT_EQ(*ParseAesKey(hex), kKey);
  EXPECT_EQ(*ParseAesKey(hex + "\n"), kKey);
  // base64 of the same 32 bytes (python: base64.b64encode(bytes.fromhex(hex))).
  EXPECT_EQ(*ParseAesKey("/v/pkoZlcxxtao+UZzCDCP7/6ZKGZXMcbWqPlGcwgwg=\n"), kKey);
  EXPECT_EQ(*ParseAesKey(kKey), kKey);  // 32 raw bytes
  auto bad = ParseAesKey("0123");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("64 hex digits"));
  EXPECT_FALSE(ParseAesKey(std::string(64, 'g')).ok());
}

}  // namespace
}  // namespace kiln
