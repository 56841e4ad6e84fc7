// Property values as JSON, for every reader that prints records (`kiln meta --json`, the
// `kiln ui` API): int64 values stay JSON integers, exact beyond 2^53; doubles and strings
// are themselves; properties are an object in key order.
#ifndef KILN_METADATA_JSON_H_
#define KILN_METADATA_JSON_H_

#include <variant>

#include "kiln/metadata/types.h"
#include "nlohmann/json.hpp"

namespace kiln::metadata {

inline nlohmann::ordered_json ValueToJson(const Value& v) {
  return std::visit([](const auto& x) { return nlohmann::ordered_json(x); }, v);
}

inline nlohmann::ordered_json PropertiesToJson(const Properties& props) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [k, v] : props) j[k] = ValueToJson(v);
  return j;
}

}  // namespace kiln::metadata

#endif  // KILN_METADATA_JSON_H_
