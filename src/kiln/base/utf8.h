// UTF-8 checks. Data values are kept as bytes; text outputs (JSON, text protos, tables)
// need valid UTF-8, so invalid sequences are replaced there with U+FFFD.
#ifndef KILN_BASE_UTF8_H_
#define KILN_BASE_UTF8_H_

#include <string>
#include <string_view>

namespace kiln {

bool IsValidUtf8(std::string_view s);
// Whether every byte of `s` is below 0x80 (then it is valid UTF-8); eight bytes a step.
bool IsAscii(std::string_view s);
// Returns `s` with every invalid byte sequence replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view s);

}  // namespace kiln

#endif  // KILN_BASE_UTF8_H_
