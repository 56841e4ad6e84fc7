// String building that accepts std::string_view. Debian's Abseil is built with its own
// absl::string_view, so absl::StrCat does not take std::string_view; kiln code uses
// these instead. Thread-safe (pure functions).
#ifndef KILN_BASE_STR_H_
#define KILN_BASE_STR_H_

#include <charconv>
#include <concepts>
#include <string>
#include <string_view>
#include <type_traits>

namespace kiln {

namespace str_internal {

inline void Append(std::string* out, std::string_view v) { out->append(v); }
inline void Append(std::string* out, const char* v) { out->append(v ? v : "(null)"); }
inline void Append(std::string* out, const std::string& v) { out->append(v); }
inline void Append(std::string* out, char c) { out->push_back(c); }
inline void Append(std::string* out, bool b) { out->append(b ? "true" : "false"); }
template <typename T>
requires(std::is_integral_v<T> && !std::is_same_v<T, char> &&
         !std::is_same_v<T, bool>) void Append(std::string* out, T v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}
template <typename T>
requires std::is_floating_point_v<T>
void Append(std::string* out, T v) {
  // Shortest representation that reads back to the same value.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}
// Anything convertible to std::string_view (absl::string_view included).
template <typename T>
requires(!std::is_arithmetic_v<std::decay_t<T>> && !std::is_convertible_v<T, std::string_view> &&
         requires(const T& t) { std::string(t); }) void Append(std::string* out, const T& v) {
  out->append(std::string(v));
}

}  // namespace str_internal

template <typename... Args>
std::string StrCat(const Args&... args) {
  std::string out;
  (str_internal::Append(&out, args), ...);
  return out;
}

template <typename... Args>
void StrAppend(std::string* out, const Args&... args) {
  (str_internal::Append(out, args), ...);
}

template <typename Container>
std::string StrJoin(const Container& parts, std::string_view sep) {
  std::string out;
  bool first = true;
  for (const auto& p : parts) {
    if (!first) out.append(sep);
    first = false;
    str_internal::Append(&out, p);
  }
  return out;
}

// The value of a hexadecimal digit (either case), or -1 for any other character.
inline int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace kiln

#endif  // KILN_BASE_STR_H_
