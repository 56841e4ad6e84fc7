// Shared by the fuzz targets: runs a source over arbitrary bytes with bad rows skipped.
// The bytes go through a file in /dev/shm because the readers read files through Env.
#ifndef KILN_FUZZ_FUZZ_UTIL_H_
#define KILN_FUZZ_FUZZ_UTIL_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "kiln/data/source.h"

namespace kiln::fuzz {

inline std::string WriteInput(const uint8_t* data, size_t size, const char* ext) {
  std::string path = "/dev/shm/kiln-fuzz-" + std::to_string(getpid()) + ext;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  return path;
}

// Reads everything; errors are fine, crashes and sanitizer reports are not.
inline void Drain(absl::StatusOr<std::unique_ptr<data::BlockSource>> source,
                  data::BadRowSink* bad) {
  if (!source.ok()) return;
  data::BatchReader reader(std::move(*source), bad);
  data::Batch batch;
  for (int i = 0; i < 10000; ++i) {
    auto more = reader.Next(&batch);
    if (!more.ok() || !*more) break;
    // Touch every value so the sanitizers see the layout.
    for (const auto& col : batch.columns) {
      if (col.num_rows() != batch.num_rows) __builtin_trap();
      for (size_t v = 0; v < col.num_values() && col.type == data::ValueType::kString; ++v)
        (void)col.str(v).size();
    }
  }
}

}  // namespace kiln::fuzz

#endif  // KILN_FUZZ_FUZZ_UTIL_H_
