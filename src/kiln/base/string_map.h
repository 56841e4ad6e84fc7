// Hash maps and sets keyed by strings that can be probed with std::string_view without
// building a std::string (Debian's Abseil does not do that for std::string_view itself).
#ifndef KILN_BASE_STRING_MAP_H_
#define KILN_BASE_STRING_MAP_H_

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "kiln/base/hash.h"

namespace kiln {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return Hash64(s); }
};
struct StringEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

template <typename V>
using StringMap = absl::flat_hash_map<std::string, V, StringHash, StringEq>;
using StringSet = absl::flat_hash_set<std::string, StringHash, StringEq>;
using StringViewSet = absl::flat_hash_set<std::string_view, StringHash, StringEq>;

}  // namespace kiln

#endif  // KILN_BASE_STRING_MAP_H_
