// Request targets as the dashboard receives them: %-decoding and query strings. Pure
// functions; thread-safe.
#ifndef KILN_UI_URL_H_
#define KILN_UI_URL_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace kiln::ui {

// Decodes %XX escapes, and '+' as a space when `plus_is_space` (query strings).
// Errors: kInvalidArgument for a '%' not followed by two hex digits.
absl::StatusOr<std::string> PercentDecode(std::string_view s, bool plus_is_space);

// "a=1&b=x%20y" -> {a: 1, b: "x y"}. A key without '=' has the value ""; of repeated
// keys the first wins. Errors: those of PercentDecode.
absl::StatusOr<std::map<std::string, std::string>> ParseQuery(std::string_view query);

}  // namespace kiln::ui

#endif  // KILN_UI_URL_H_
