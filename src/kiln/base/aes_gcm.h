// AES-256-GCM sealing of whole files (OpenSSL underneath). A sealed blob is
//   "KILNAES1" | 12-byte random nonce | ciphertext | 16-byte tag
// and `context` (e.g. the file's name) is bound as additional authenticated data, so a
// sealed file moved to another name fails to open.
#ifndef KILN_BASE_AES_GCM_H_
#define KILN_BASE_AES_GCM_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace kiln {

inline constexpr size_t kAesKeyBytes = 32;

// Errors: kInvalidArgument for a key that is not 32 bytes.
absl::StatusOr<std::string> AesGcmSeal(std::string_view key, std::string_view context,
                                       std::string_view plaintext);
// Errors: kInvalidArgument (key size), kDataLoss when the blob is not a sealed blob,
// kPermissionDenied when authentication fails (wrong key, wrong context, or tampering).
absl::StatusOr<std::string> AesGcmOpen(std::string_view key, std::string_view context,
                                       std::string_view sealed);

// A 32-byte key from text: 64 hex digits or standard base64 of 32 bytes (surrounding
// whitespace ignored), or exactly 32 raw bytes. Errors: kInvalidArgument saying which
// forms are accepted.
absl::StatusOr<std::string> ParseAesKey(std::string_view text);

}  // namespace kiln

#endif  // KILN_BASE_AES_GCM_H_
