// Fast non-cryptographic 64-bit hashing. The values are part of kiln's on-disk contract
// (deterministic splits, sketch merging across processes): they must never change
// between versions or machines. Thread-safe.
#ifndef KILN_BASE_HASH_H_
#define KILN_BASE_HASH_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kiln {

uint64_t Hash64(const void* data, size_t n, uint64_t seed = 0);
inline uint64_t Hash64(std::string_view s, uint64_t seed = 0) {
  return Hash64(s.data(), s.size(), seed);
}

// Mixes one 64-bit value (a bijection; good avalanche).
inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

inline uint64_t HashCombine(uint64_t a, uint64_t b) {
  return Mix64(a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2)));
}

}  // namespace kiln

#endif  // KILN_BASE_HASH_H_
