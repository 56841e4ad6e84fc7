// libFuzzer target: arbitrary bytes through the JSON Lines reader, bad rows skipped.
#include "fuzz/fuzz_util.h"
#include "kiln/data/jsonl.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = kiln::fuzz::WriteInput(data, size, ".jsonl");
  kiln::data::ReadOptions opts;
  opts.bad_rows = kiln::data::BadRowPolicy::kSkip;
  opts.block_bytes = 4096;
  opts.type_overrides = {{"a", kiln::data::ValueType::kInt}};
  kiln::data::BadRowSink bad(opts.bad_rows);
  kiln::fuzz::Drain(kiln::data::OpenJsonlSource(kiln::Env::Default(), {path}, opts), &bad);
  std::remove(path.c_str());
  return 0;
}
