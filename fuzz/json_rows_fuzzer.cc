// libFuzzer target: arbitrary bytes as a JSON request body of raw rows (what a serving
// request's "instances" and a bundle's warm-up rows hold), converted to columns for a
// signature of one INT, one FLOAT and one STRING input; rows that convert are written back
// to JSON and must convert again to the same columns. Nothing may crash.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kiln/train/json_rows.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json rows = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (rows.is_discarded()) return 0;
  const kiln::data::TableSchema inputs = {{"a", kiln::data::ValueType::kInt},
                                          {"b", kiln::data::ValueType::kFloat},
                                          {"c", kiln::data::ValueType::kString}};
  auto batch = kiln::train::RowsFromJson(rows, inputs);
  if (!batch.ok()) return 0;
  nlohmann::json back = nlohmann::json::array();
  for (size_t r = 0; r < batch->num_rows; ++r) {
    back.push_back(kiln::train::RowToJson(*batch, r, inputs));
  }
  std::string dumped;
  try {
    dumped = back.dump();
  } catch (const nlohmann::json::exception&) {
    return 0;  // a string that is not UTF-8 cannot be written as JSON
  }
  auto again = kiln::train::RowsFromJson(nlohmann::json::parse(dumped), inputs);
  if (!again.ok() || again->num_rows != batch->num_rows) std::abort();
  for (size_t c = 0; c < inputs.size(); ++c) {
    const auto &x = batch->columns[c], &y = again->columns[c];
    if (x.ints != y.ints || x.str_data != y.str_data) std::abort();
  }
  return 0;
}
