#include "kiln/base/hash.h"

#include <cstring>

namespace kiln {

// Eight bytes at a time through a multiply-xorshift mixer, then the tail, then the
// length. Stable by construction: no CPU-dependent paths, little-endian loads.
uint64_t Hash64(const void* data, size_t n, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  constexpr uint64_t kMul = 0x9ddfea08eb382d69ULL;
  uint64_t h = seed ^ (n * kMul) ^ 0x2545f4914f6cdd1dULL;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ Mix64(v)) * kMul;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t tail = 0;
  for (size_t i = 0; i < n; ++i) tail |= static_cast<uint64_t>(p[i]) << (8 * i);
  h = (h ^ Mix64(tail ^ (n << 56))) * kMul;
  return Mix64(h);
}

}  // namespace kiln
