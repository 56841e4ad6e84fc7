// libFuzzer target: arbitrary bytes as a TFRecord file of tf.Example (plain or gzip),
// through the whole read and decode path with bad rows skipped. Any result is fine as
// long as nothing crashes, leaks or reads out of bounds; the decoded batches are checked
// for internal consistency so silent corruption of a Batch is caught too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kiln/data/example_codec.h"

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
  kiln::data::ReadOptions options;
  options.bad_rows = kiln::data::BadRowPolicy::kSkip;
  options.block_bytes = 1024;  // several blocks even for small inputs
  auto source = kiln::data::TfRecordSource::FromMemory(
      std::string(reinterpret_cast<const char*>(data), size), "fuzz.tfrecord", options);
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
