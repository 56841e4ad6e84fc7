#include "kiln/base/aes_gcm.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>

#include "absl/status/status.h"
#include "kiln/base/str.h"

namespace kiln {
namespace {

constexpr std::string_view kMagic = "KILNAES1";
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

absl::Status CheckKey(std::string_view key) {
  if (key.size() != kAesKeyBytes) {
    return absl::InvalidArgumentError(StrCat("an AES-256 key is 32 bytes, got ", key.size()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> AesGcmSeal(std::string_view key, std::string_view context,
                                       std::string_view plaintext) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  std::string out(kMagic);
  out.resize(kMagic.size() + kNonceBytes + plaintext.size() + kTagBytes);
  unsigned char* nonce = reinterpret_cast<unsigned char*>(out.data() + kMagic.size());
  if (RAND_bytes(nonce, kNonceBytes) != 1) return absl::InternalError("RAND_bytes failed");
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  unsigned char* body = nonce + kNonceBytes;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, U(key), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(context), static_cast<int>(context.size())) !=
          1 ||
      EVP_EncryptUpdate(ctx.get(), body, &len, U(plaintext), static_cast<int>(plaintext.size())) !=
          1 ||
      EVP_EncryptFinal_ex(ctx.get(), body + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, body + plaintext.size()) !=
          1) {
    return absl::InternalError("AES-256-GCM encryption failed");
  }
  return out;
}

absl::StatusOr<std::string> AesGcmOpen(std::string_view key, std::string_view context,
                                       std::string_view sealed) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  if (sealed.size() < kMagic.size() + kNonceBytes + kTagBytes ||
      sealed.substr(0, kMagic.size()) != kMagic) {
    return absl::DataLossError("not an AES-256-GCM sealed file (bad header)");
  }
  std::string_view nonce = sealed.substr(kMagic.size(), kNonceBytes);
  std::string_view body = sealed.substr(kMagic.size() + kNonceBytes,
                                        sealed.size() - kMagic.size() - kNonceBytes - kTagBytes);
  std::string tag(sealed.substr(sealed.size() - kTagBytes));
  std::string out(body.size(), '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  unsigned char* dst = reinterpret_cast<unsigned char*>(out.data());
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, U(key), U(nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(context), static_cast<int>(context.size())) !=
          1 ||
      EVP_DecryptUpdate(ctx.get(), dst, &len, U(body), static_cast<int>(body.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1) {
    return absl::InternalError("AES-256-GCM decryption failed to start");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), dst + len, &len) != 1) {
    return absl::PermissionDeniedError(
        "AES-256-GCM authentication failed: wrong key, or the file was altered");
  }
  return out;
}

absl::StatusOr<std::string> ParseAesKey(std::string_view text) {
  if (text.size() == kAesKeyBytes) {
    // Exactly 32 bytes is taken raw unless it is also valid as another form (it cannot
    // be 64 hex digits; 32 chars of base64 decode to 24 bytes).
    return std::string(text);
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  while (!text.empty() && (text.front() == ' ' || text.front() == '\n')) text.remove_prefix(1);
  if (text.size() == 2 * kAesKeyBytes) {
    std::string key;
    for (size_t i = 0; i < text.size(); i += 2) {
      int hi = HexDigitValue(text[i]), lo = HexDigitValue(text[i + 1]);
      if (hi < 0 || lo < 0) {
        key.clear();
        break;
      }
      key.push_back(static_cast<char>(hi * 16 + lo));
    }
    if (key.size() == kAesKeyBytes) return key;
  }
  if (text.size() == 44) {
    unsigned char buf[48];
    int n = EVP_DecodeBlock(buf, U(text), static_cast<int>(text.size()));
    // 44 base64 chars with one '=' pad decode to 33 bytes, the last being padding.
    if (n == 33 && text[43] == '=' && text[42] != '=') {
      return std::string(reinterpret_cast<const char*>(buf), kAesKeyBytes);
    }
  }
  return absl::InvalidArgumentError(
      "a model key is 32 bytes: give 64 hex digits, 44 characters of base64, or a file of "
      "exactly 32 raw bytes (e.g. `openssl rand -hex 32`)");
}

}  // namespace kiln
