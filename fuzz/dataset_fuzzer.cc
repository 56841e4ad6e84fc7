// libFuzzer target for the dataset file reader (src/kiln/data/dataset.h). Whatever the
// bytes, reading must end in a Status, never a crash, a sanitizer report or a batch whose
// columns disagree with themselves.
//
// The first byte picks the mode (value % 3):
//   0: the rest is a dataset file as is, read by DatasetReader (random access) and by the
//      streaming BlockSource.
//   1: the rest describes a file whose framing is made valid here (correct lengths, CRCs
//      and zstd compression around fuzzed schema and payload bytes), because random
//      mutations almost never keep a CRC right; this is how the column decoder gets fuzzed.
//   2: the rest becomes a Batch that is written with DatasetWriter and read back; the
//      rows read must equal the rows written.
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kiln/base/crc32c.h"
#include "kiln/data/dataset.h"

namespace {

using kiln::data::Batch;
using kiln::data::Column;
using kiln::data::ValueType;

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckBatch(const Batch& b) {
  for (const Column& c : b.columns) {
    Check(c.num_rows() == b.num_rows);
    Check(c.offsets.size() == b.num_rows + 1 && c.offsets[0] == 0);
    for (size_t r = 0; r < b.num_rows; ++r) {
      Check(c.offsets[r] <= c.offsets[r + 1]);
      if (!c.is_present(r)) Check(c.value_count(r) == 0);
    }
    switch (c.type) {
      case ValueType::kInt:
        Check(c.ints.size() == c.num_values());
        break;
      case ValueType::kFloat:
        Check(c.floats.size() == c.num_values());
        break;
      case ValueType::kString:
        Check(c.str_offsets.size() == c.num_values() + 1);
        Check(c.str_offsets.back() == c.str_data.size());
        for (size_t v = 0; v < c.num_values(); ++v) (void)c.str(v).size();
        break;
    }
  }
}

class MemoryFile : public kiln::SequentialFile {
 public:
  explicit MemoryFile(std::string_view data) : data_(data) {}
  absl::StatusOr<size_t> Read(size_t n, char* scratch) override {
    // Short reads on purpose: the reader must cope with them.
    n = std::min({n, data_.size(), size_t{4096}});
    std::memcpy(scratch, data_.data(), n);
    data_.remove_prefix(n);
    return n;
  }

 private:
  std::string_view data_;
};

// Reads `file` both ways; returns the rows the random-access reader produced.
void ReadBothWays(std::string_view file, Batch* all) {
  auto reader = kiln::data::DatasetReader::OpenBuffer("fuzz.kds", file);
  if (reader.ok()) {
    Batch b;
    for (size_t i = 0; i < (*reader)->num_chunks(); ++i) {
      if (!(*reader)->ReadChunk(i, &b).ok()) continue;
      Check(b.num_rows == (*reader)->chunk(i).rows);
      Check(b.columns.size() == (*reader)->schema().size());
      CheckBatch(b);
      if (all != nullptr) {
        for (size_t c = 0; c < b.columns.size(); ++c) {
          if (all->columns.size() < b.columns.size()) all->columns.resize(b.columns.size());
          all->columns[c].name = b.columns[c].name;
          all->columns[c].type = b.columns[c].type;
          for (size_t r = 0; r < b.num_rows; ++r) all->columns[c].AppendRowFrom(b.columns[c], r);
        }
        all->num_rows += b.num_rows;
      }
    }
  }
  kiln::data::ReadOptions options;
  options.type_overrides = {{"s", ValueType::kString}, {"f", ValueType::kFloat}};
  auto source =
      kiln::data::OpenDatasetStream("fuzz.kds", std::make_unique<MemoryFile>(file), options);
  if (!source.ok()) return;
  kiln::data::BadRowSink bad(kiln::data::BadRowPolicy::kSkip);
  kiln::data::BatchReader stream(std::move(*source), &bad);
  Batch b;
  for (int i = 0; i < 100000; ++i) {
    auto more = stream.Next(&b);
    if (!more.ok() || !*more) break;
    CheckBatch(b);
  }
}

// ---- Mode 1: valid framing around fuzzed contents (layout: docs/dataset-format.md) ----

constexpr char kMagic[8] = {'\x89', 'K', 'D', 'S', '\r', '\n', '\x1a', '\n'};

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
uint32_t Crc(std::string_view s) { return kiln::crc32c::Mask(kiln::crc32c::Value(s)); }

// Input: u8 schema length, schema bytes, then chunks of {u8 rows, u16 payload length,
// payload}. Lengths are clamped to what is left.
std::string Frame(std::string_view in) {
  auto take = [&](size_t n) {
    n = std::min(n, in.size());
    std::string_view out = in.substr(0, n);
    in.remove_prefix(n);
    return out;
  };
  auto byte = [&]() -> uint32_t { return in.empty() ? 0 : static_cast<uint8_t>(take(1)[0]); };
  std::string_view schema = take(byte());
  std::string file(kMagic, 8);
  PutU32(&file, 1);
  PutU32(&file, static_cast<uint32_t>(schema.size()));
  PutU32(&file, Crc(schema));
  file.append(schema);
  std::vector<std::pair<uint64_t, uint32_t>> chunks;
  uint64_t total = 0;
  while (!in.empty()) {
    uint32_t rows = byte();
    uint32_t len = byte();
    len |= byte() << 8;
    std::string_view payload = take(len);
    std::string z(ZSTD_compressBound(payload.size()), '\0');
    size_t n = ZSTD_compress(z.data(), z.size(), payload.data(), payload.size(), 1);
    if (ZSTD_isError(n)) break;
    z.resize(n);
    chunks.push_back({file.size(), rows});
    total += rows;
    std::string header("KDSC", 4);
    PutU32(&header, rows);
    PutU32(&header, static_cast<uint32_t>(z.size()));
    PutU32(&header, static_cast<uint32_t>(payload.size()));
    PutU32(&header, Crc(z));
    PutU32(&header, Crc(header));
    file.append(header);
    file.append(z);
  }
  std::string footer("KDSF", 4);
  footer.append(schema);
  PutU64(&footer, total);
  PutU64(&footer, chunks.size());
  for (auto [offset, rows] : chunks) {
    PutU64(&footer, offset);
    PutU32(&footer, rows);
  }
  file.append(footer);
  PutU64(&file, footer.size());
  PutU32(&file, Crc(footer));
  PutU32(&file, 1);
  file.append(kMagic, 8);
  return file;
}

// ---- Mode 2: write and read back ---------------------------------------------------------

Batch MakeBatch(std::string_view in) {
  auto byte = [&]() -> uint8_t {
    if (in.empty()) return 0;
    uint8_t b = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    return b;
  };
  Batch batch;
  size_t ncols = byte() % 4;
  batch.num_rows = byte() % 64;
  const char* names[] = {"a", "b", "c", "d"};
  for (size_t c = 0; c < ncols; ++c) {
    Column col;
    col.name = names[c];
    col.type = static_cast<ValueType>(byte() % 3);
    for (size_t r = 0; r < batch.num_rows; ++r) {
      uint8_t ctl = byte();
      if (ctl & 1) {
        col.AddMissing();
        continue;
      }
      uint32_t k = (ctl >> 1) % 4;
      for (uint32_t v = 0; v < k; ++v) {
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | byte();
        switch (col.type) {
          case ValueType::kInt:
            col.ints.push_back(static_cast<int64_t>(bits));
            break;
          case ValueType::kFloat:
            col.floats.push_back(std::bit_cast<double>(bits));
            break;
          case ValueType::kString: {
            size_t len = std::min<size_t>(bits % 17, in.size());
            col.PushString(in.substr(0, len));
            in.remove_prefix(len);
            break;
          }
        }
      }
      col.EndRow(k);
    }
    batch.columns.push_back(std::move(col));
  }
  return batch;
}

void RoundTrip(std::string_view in) {
  Batch batch = MakeBatch(in);
  kiln::data::TableSchema schema;
  for (const Column& c : batch.columns) schema.push_back({c.name, c.type});
  static const std::string path = "/dev/shm/kiln-fuzz-ds-" + std::to_string(getpid()) + ".kds";
  kiln::data::DatasetWriterOptions options;
  options.max_chunk_rows = 7;  // several chunks
  auto w = kiln::data::DatasetWriter::Create(kiln::Env::Default(), path, schema, options);
  Check(w.ok());
  Check((*w)->Append(batch).ok());
  Check((*w)->Finish().ok());
  auto bytes = kiln::ReadFileToString(kiln::Env::Default(), path);
  Check(bytes.ok());
  Batch back;
  back.columns.resize(schema.size());
  for (size_t c = 0; c < schema.size(); ++c) {
    back.columns[c].name = schema[c].name;
    back.columns[c].type = schema[c].type;
  }
  ReadBothWays(*bytes, &back);
  Check(back.num_rows == batch.num_rows);
  for (size_t c = 0; c < schema.size(); ++c) {
    const Column& x = batch.columns[c];
    const Column& y = back.columns[c];
    Check(x.present == y.present && x.offsets == y.offsets && x.ints == y.ints);
    Check(x.str_offsets == y.str_offsets && x.str_data == y.str_data);
    Check(x.floats.size() == y.floats.size());
    for (size_t i = 0; i < x.floats.size(); ++i) {
      Check(std::bit_cast<uint64_t>(x.floats[i]) == std::bit_cast<uint64_t>(y.floats[i]));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      ReadBothWays(rest, nullptr);
      break;
    case 1:
      ReadBothWays(Frame(rest), nullptr);
      break;
    case 2:
      RoundTrip(rest);
      break;
  }
  return 0;
}
