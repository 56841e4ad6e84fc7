// libFuzzer target: arbitrary bytes through the CSV reader (inferred types, and with a
// schema override), bad rows skipped.
#include "fuzz/fuzz_util.h"
#include "kiln/data/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = kiln::fuzz::WriteInput(data, size, ".csv");
  for (int variant = 0; variant < 2; ++variant) {
    kiln::data::ReadOptions opts;
    opts.bad_rows = kiln::data::BadRowPolicy::kSkip;
    opts.block_bytes = 4096;  // small blocks exercise the row-boundary logic
    if (variant == 1) {
      opts.null_tokens = {"NA"};
      opts.type_overrides = {{"a", kiln::data::ValueType::kInt},
                             {"b", kiln::data::ValueType::kFloat}};
    }
    kiln::data::BadRowSink bad(opts.bad_rows);
    kiln::fuzz::Drain(kiln::data::OpenCsvSource(kiln::Env::Default(), {path}, opts), &bad);
  }
  std::remove(path.c_str());
  return 0;
}
