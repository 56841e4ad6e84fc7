// CRC-32C (Castagnoli), as used by TFRecord framing and kiln's dataset chunks.
// Uses the SSE4.2 instruction when the CPU has it, a table otherwise; both give the
// same value. Thread-safe.
#ifndef KILN_BASE_CRC32C_H_
#define KILN_BASE_CRC32C_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kiln::crc32c {

// Returns the CRC of data[0..n) continuing from `init` (the CRC of what came before).
uint32_t Extend(uint32_t init, const char* data, size_t n);
inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }

// TFRecord stores CRCs "masked" so that a CRC of data containing CRCs stays well mixed.
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

}  // namespace kiln::crc32c

#endif  // KILN_BASE_CRC32C_H_
