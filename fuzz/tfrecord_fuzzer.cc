// libFuzzer target: arbitrary bytes through the whole TFRecord read and tf.Example decode
// path with bad rows skipped. Any result is fine as long as nothing crashes, leaks or
// reads out of bounds; decoded batches are checked for internal consistency too.
//
// The first byte picks the mode. Even: the rest is a TFRecord file as is (plain or gzip),
// which exercises framing and inflate. Odd: the rest is a list of records, each one
// length byte and that many bytes, framed here with correct CRCs; random mutations
// rarely keep a CRC valid, so this is how the Example decoder gets fuzzed. Bit 1 turns on
// type overrides.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kiln/data/example_codec.h"
#include "kiln/data/tfrecord.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckBatch(const kiln::data::Batch& b) {
  Check(b.row_positions.size() == b.num_rows);
  for (const kiln::data::Column& c : b.columns) {
    Check(c.num_rows() == b.num_rows);
    Check(c.offsets.size() == b.num_rows + 1);
    for (size_t r = 0; r < b.num_rows; ++r) Check(c.offsets[r] <= c.offsets[r + 1]);
    switch (c.type) {
      case kiln::data::ValueType::kInt:
        Check(c.ints.size() == c.num_values());
        break;
      case kiln::data::ValueType::kFloat:
        Check(c.floats.size() == c.num_values());
        break;
      case kiln::data::ValueType::kString:
        Check(c.str_offsets.size() == c.num_values() + 1);
        Check(c.str_offsets.back() == c.str_data.size());
        break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool frame_here = (data[0] & 1) != 0;
  std::string input;
  if (frame_here) {
    size_t i = 1;
    while (i < size) {
      const size_t n = std::min<size_t>(data[i], size - i - 1);
      kiln::data::AppendTfRecord(&input,
                                 std::string_view(reinterpret_cast<const char*>(data + i + 1), n));
      i += 1 + n;
    }
  } else {
    input.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  }
  kiln::data::ReadOptions options;
  options.bad_rows = kiln::data::BadRowPolicy::kSkip;
  options.block_bytes = 1024;  // several blocks even for small inputs
  if ((data[0] & 2) != 0) {
    // Names from the seed corpus (tests/fixtures/tfrecord), so conversions get hit.
    options.type_overrides = {{"age", kiln::data::ValueType::kFloat},
                              {"name", kiln::data::ValueType::kInt},
                              {"score", kiln::data::ValueType::kString}};
  }
  auto source = kiln::data::TfRecordSource::FromMemory(std::move(input), "fuzz.tfrecord", options);
  if (!source.ok()) return 0;
  kiln::data::BadRowSink sink(options.bad_rows);
  kiln::data::BatchReader reader(std::move(*source), &sink);
  kiln::data::Batch batch;
  for (;;) {
    absl::StatusOr<bool> more = reader.Next(&batch);
    if (!more.ok() || !*more) break;
    CheckBatch(batch);
  }
  return 0;
}
