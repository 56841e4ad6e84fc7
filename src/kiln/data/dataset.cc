#include "kiln/data/dataset.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <limits>
#include <utility>

#include "absl/strings/str_join.h"
#include "kiln/base/crc32c.h"
#include "kiln/base/str.h"
#include "kiln/base/string_map.h"
#include "nlohmann/json.hpp"

namespace kiln::data {
namespace {

// ---- Layout constants (see docs/dataset-format.md) -----------------------------------

constexpr char kFileMagic[8] = {'\x89', 'K', 'D', 'S', '\r', '\n', '\x1a', '\n'};
constexpr char kChunkMagic[4] = {'K', 'D', 'S', 'C'};
constexpr char kFooterMagic[4] = {'K', 'D', 'S', 'F'};
// magic, version, schema length, schema CRC
constexpr size_t kFileHeaderSize = 8 + 4 + 4 + 4;
// magic, rows, compressed length, uncompressed length, payload CRC, header CRC
constexpr size_t kChunkHeaderSize = 4 + 4 + 4 + 4 + 4 + 4;
// footer length, footer CRC, version, magic
constexpr size_t kTrailerSize = 8 + 4 + 4 + 8;
// Bounds a reader trusts before allocating.
constexpr uint32_t kMaxSchemaBytes = 16u << 20;
constexpr uint64_t kMaxFooterBytes = 1ull << 30;

// ---- Little-endian encoding ------------------------------------------------------------

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 4);
}
void PutU64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}
uint32_t LoadU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint64_t LoadU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Bounds-checked reading from a byte range; every Get fails instead of overrunning.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  size_t remaining() const { return s_.size(); }
  bool GetU8(uint8_t* v) {
    if (s_.empty()) return false;
    *v = static_cast<uint8_t>(s_[0]);
    s_.remove_prefix(1);
    return true;
  }
  bool GetU32(uint32_t* v) {
    if (s_.size() < 4) return false;
    *v = LoadU32(s_.data());
    s_.remove_prefix(4);
    return true;
  }
  bool GetU64(uint64_t* v) {
    if (s_.size() < 8) return false;
    *v = LoadU64(s_.data());
    s_.remove_prefix(8);
    return true;
  }
  bool GetBytes(size_t n, std::string_view* v) {
    if (s_.size() < n) return false;
    *v = s_.substr(0, n);
    s_.remove_prefix(n);
    return true;
  }

 private:
  std::string_view s_;
};

absl::Status Corrupt(const std::string& what) { return absl::DataLossError(what); }

// Prefixes a status message with where it happened, keeping the code.
absl::Status Annotate(const absl::Status& s, const std::string& where) {
  if (s.ok()) return s;
  return absl::Status(s.code(), kiln::StrCat(where, s.message()));
}

absl::Status CheckVersion(uint32_t version) {
  if (version == 0) return Corrupt("format version 0 is not valid");
  if (version > kDatasetFormatVersion) {
    return absl::FailedPreconditionError(kiln::StrCat("written in dataset format version ", version,
                                                      ", newer than this kiln reads (",
                                                      kDatasetFormatVersion, "); upgrade kiln"));
  }
  return absl::OkStatus();
}

uint32_t MaskedCrc(std::string_view s) { return crc32c::Mask(crc32c::Value(s)); }

// ---- Schema ------------------------------------------------------------------------------

std::string EncodeSchema(const TableSchema& schema) {
  std::string out;
  PutU32(&out, static_cast<uint32_t>(schema.size()));
  for (const ColumnSpec& c : schema) {
    out.push_back(static_cast<char>(c.type));
    PutU32(&out, static_cast<uint32_t>(c.name.size()));
    out.append(c.name);
  }
  return out;
}

absl::Status DecodeSchema(Cursor* in, TableSchema* schema) {
  uint32_t n;
  if (!in->GetU32(&n)) return Corrupt("schema is truncated");
  // Each column takes at least 5 bytes, which bounds the count before reserving.
  if (n > in->remaining() / 5) return Corrupt("schema column count exceeds its length");
  schema->clear();
  schema->reserve(n);
  StringViewSet names;
  for (uint32_t i = 0; i < n; ++i) {
    uint8_t type;
    uint32_t len;
    std::string_view name;
    if (!in->GetU8(&type) || !in->GetU32(&len) || !in->GetBytes(len, &name)) {
      return Corrupt("schema is truncated");
    }
    if (type > static_cast<uint8_t>(ValueType::kString)) {
      return Corrupt(kiln::StrCat("schema column ", i, " has unknown type ", type));
    }
    if (!names.insert(name).second) {
      return Corrupt(kiln::StrCat("schema names column '", name, "' twice"));
    }
    schema->push_back({std::string(name), static_cast<ValueType>(type)});
  }
  return absl::OkStatus();
}

std::string SchemaString(const TableSchema& schema) {
  return absl::StrJoin(schema, ", ", [](std::string* out, const ColumnSpec& c) {
    StrAppend(out, c.name, ":", ValueTypeName(c.type));
  });
}

// ---- File header -------------------------------------------------------------------------

std::string EncodeFileHeader(const TableSchema& schema) {
  std::string schema_bytes = EncodeSchema(schema);
  std::string out(kFileMagic, sizeof(kFileMagic));
  PutU32(&out, kDatasetFormatVersion);
  PutU32(&out, static_cast<uint32_t>(schema_bytes.size()));
  PutU32(&out, MaskedCrc(schema_bytes));
  out.append(schema_bytes);
  return out;
}

struct FileHeader {
  uint32_t version;
  uint32_t schema_len;
  uint32_t schema_crc;
};

// Parses the fixed part of the file header (kFileHeaderSize bytes).
absl::Status ParseFileHeader(std::string_view fixed, FileHeader* h) {
  if (fixed.size() < kFileHeaderSize || std::memcmp(fixed.data(), kFileMagic, 8) != 0) {
    return Corrupt("not a kiln dataset file (bad magic at offset 0)");
  }
  h->version = LoadU32(fixed.data() + 8);
  h->schema_len = LoadU32(fixed.data() + 12);
  h->schema_crc = LoadU32(fixed.data() + 16);
  KILN_RETURN_IF_ERROR(CheckVersion(h->version));
  if (h->schema_len > kMaxSchemaBytes) {
    return Corrupt(kiln::StrCat("header schema length ", h->schema_len, " is implausible"));
  }
  return absl::OkStatus();
}

absl::Status ParseHeaderSchema(const FileHeader& h, std::string_view bytes, TableSchema* schema) {
  if (MaskedCrc(bytes) != h.schema_crc) return Corrupt("header schema CRC mismatch");
  Cursor in(bytes);
  KILN_RETURN_IF_ERROR(DecodeSchema(&in, schema));
  if (in.remaining() != 0) return Corrupt("header schema has trailing bytes");
  return absl::OkStatus();
}

// ---- Chunks ------------------------------------------------------------------------------

struct ChunkHeader {
  uint32_t rows;
  uint32_t compressed;
  uint32_t uncompressed;
  uint32_t payload_crc;
};

std::string EncodeChunkHeader(const ChunkHeader& h) {
  std::string out(kChunkMagic, 4);
  PutU32(&out, h.rows);
  PutU32(&out, h.compressed);
  PutU32(&out, h.uncompressed);
  PutU32(&out, h.payload_crc);
  PutU32(&out, MaskedCrc(out));
  return out;
}

// Checks the magic, the header's own CRC (so a flipped length is never trusted) and the
// format's limits. `p` holds kChunkHeaderSize bytes.
absl::Status ParseChunkHeader(std::string_view p, ChunkHeader* h) {
  if (p.size() < kChunkHeaderSize || std::memcmp(p.data(), kChunkMagic, 4) != 0) {
    return Corrupt("bad chunk magic");
  }
  if (MaskedCrc(p.substr(0, kChunkHeaderSize - 4)) != LoadU32(p.data() + 20)) {
    return Corrupt("chunk header CRC mismatch");
  }
  h->rows = LoadU32(p.data() + 4);
  h->compressed = LoadU32(p.data() + 8);
  h->uncompressed = LoadU32(p.data() + 12);
  h->payload_crc = LoadU32(p.data() + 16);
  if (h->rows > kMaxChunkRows || h->uncompressed > kMaxChunkBytes ||
      h->compressed > ZSTD_compressBound(kMaxChunkBytes)) {
    return Corrupt("chunk header lengths exceed the format's limits");
  }
  return absl::OkStatus();
}

// Appends the uncompressed payload of `columns` (rows each): per column the validity
// bitmap, the per-row value counts, then the values.
void EncodePayload(const std::vector<Column>& columns, uint32_t rows, std::string* out) {
  out->clear();
  for (const Column& c : columns) {
    size_t bitmap_at = out->size();
    out->append((rows + 7) / 8, '\0');
    for (uint32_t r = 0; r < rows; ++r) {
      if (c.present[r]) (*out)[bitmap_at + r / 8] |= static_cast<char>(1u << (r % 8));
    }
    for (uint32_t r = 0; r < rows; ++r) PutU32(out, c.value_count(r));
    switch (c.type) {
      case ValueType::kInt:
        for (int64_t v : c.ints) PutU64(out, static_cast<uint64_t>(v));
        break;
      case ValueType::kFloat:
        for (double v : c.floats) PutU64(out, std::bit_cast<uint64_t>(v));
        break;
      case ValueType::kString:
        for (size_t i = 0; i + 1 < c.str_offsets.size(); ++i) {
          PutU32(out, c.str_offsets[i + 1] - c.str_offsets[i]);
        }
        out->append(c.str_data);
        break;
    }
  }
}

absl::Status DecodePayload(const TableSchema& schema, uint32_t rows, std::string_view payload,
                           Batch* out) {
  out->Clear();
  out->num_rows = rows;
  out->columns.resize(schema.size());
  Cursor in(payload);
  for (size_t ci = 0; ci < schema.size(); ++ci) {
    Column& c = out->columns[ci];
    c.name = schema[ci].name;
    c.type = schema[ci].type;
    auto bad = [&](const std::string& what) {
      return Corrupt(kiln::StrCat("column '", c.name, "': ", what));
    };
    std::string_view bitmap, counts;
    if (!in.GetBytes((rows + 7) / 8, &bitmap) || !in.GetBytes(size_t{rows} * 4, &counts)) {
      return bad("payload ends inside the row data");
    }
    c.present.resize(rows);
    c.offsets.resize(size_t{rows} + 1);
    uint64_t total = 0;
    for (uint32_t r = 0; r < rows; ++r) {
      bool present = (static_cast<unsigned char>(bitmap[r / 8]) >> (r % 8)) & 1;
      uint32_t n = LoadU32(counts.data() + size_t{r} * 4);
      if (!present && n != 0) return bad(kiln::StrCat("missing row ", r, " has values"));
      c.present[r] = present;
      total += n;
      // Every value takes at least 4 bytes, so this bounds the allocation below.
      if (total > in.remaining() / 4) return bad("value counts exceed the payload");
      c.offsets[r + 1] = static_cast<uint32_t>(total);
    }
    std::string_view values;
    switch (c.type) {
      case ValueType::kInt:
        if (!in.GetBytes(total * 8, &values)) return bad("payload ends inside the values");
        c.ints.resize(total);
        for (size_t i = 0; i < total; ++i) {
          c.ints[i] = static_cast<int64_t>(LoadU64(values.data() + i * 8));
        }
        break;
      case ValueType::kFloat:
        if (!in.GetBytes(total * 8, &values)) return bad("payload ends inside the values");
        c.floats.resize(total);
        for (size_t i = 0; i < total; ++i) {
          c.floats[i] = std::bit_cast<double>(LoadU64(values.data() + i * 8));
        }
        break;
      case ValueType::kString: {
        if (!in.GetBytes(total * 4, &values)) return bad("payload ends inside the values");
        c.str_offsets.resize(total + 1);
        uint64_t bytes = 0;
        for (size_t i = 0; i < total; ++i) {
          bytes += LoadU32(values.data() + i * 4);
          if (bytes > in.remaining()) return bad("string lengths exceed the payload");
          c.str_offsets[i + 1] = static_cast<uint32_t>(bytes);
        }
        std::string_view data;
        in.GetBytes(bytes, &data);
        c.str_data.assign(data);
        break;
      }
    }
  }
  if (in.remaining() != 0) return Corrupt("payload has trailing bytes");
  return absl::OkStatus();
}

struct DctxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// Checks and decodes one chunk: `chunk` is its header plus compressed payload.
absl::Status DecodeChunk(const TableSchema& schema, std::string_view chunk, Batch* out) {
  ChunkHeader h;
  KILN_RETURN_IF_ERROR(ParseChunkHeader(chunk, &h));
  std::string_view payload = chunk.substr(kChunkHeaderSize);
  if (payload.size() != h.compressed) {
    return Corrupt(
        kiln::StrCat("chunk holds ", payload.size(), " payload bytes, header says ", h.compressed));
  }
  if (MaskedCrc(payload) != h.payload_crc) return Corrupt("chunk CRC mismatch (data corrupted)");
  unsigned long long content = ZSTD_getFrameContentSize(payload.data(), payload.size());
  if (content != h.uncompressed) return Corrupt("compressed frame size disagrees with header");
  // One decompression context and buffer per thread: Decode runs on many threads.
  thread_local std::unique_ptr<ZSTD_DCtx, DctxDeleter> dctx(ZSTD_createDCtx());
  thread_local std::string buffer;
  if (dctx == nullptr) return absl::ResourceExhaustedError("cannot create a zstd context");
  buffer.resize(h.uncompressed);
  size_t n =
      ZSTD_decompressDCtx(dctx.get(), buffer.data(), buffer.size(), payload.data(), payload.size());
  if (ZSTD_isError(n)) return Corrupt(kiln::StrCat("zstd: ", ZSTD_getErrorName(n)));
  if (n != h.uncompressed) return Corrupt("decompressed size disagrees with header");
  return DecodePayload(schema, h.rows, std::string_view(buffer.data(), n), out);
}

// ---- Footer and trailer ------------------------------------------------------------------

struct Footer {
  TableSchema schema;
  uint64_t total_rows = 0;
  std::vector<std::pair<uint64_t, uint32_t>> chunks;  // offset, rows
};

absl::Status ParseFooter(std::string_view bytes, Footer* f) {
  Cursor in(bytes);
  std::string_view magic;
  if (!in.GetBytes(4, &magic) || magic != std::string_view(kFooterMagic, 4)) {
    return Corrupt("bad footer magic");
  }
  KILN_RETURN_IF_ERROR(Annotate(DecodeSchema(&in, &f->schema), "footer: "));
  uint64_t n;
  if (!in.GetU64(&f->total_rows) || !in.GetU64(&n)) return Corrupt("footer is truncated");
  if (n > in.remaining() / 12) return Corrupt("footer chunk count exceeds its length");
  f->chunks.resize(n);
  for (auto& [offset, rows] : f->chunks) {
    in.GetU64(&offset);
    in.GetU32(&rows);
  }
  if (in.remaining() != 0) return Corrupt("footer has trailing bytes");
  return absl::OkStatus();
}

struct Trailer {
  uint64_t footer_len;
  uint32_t footer_crc;
  uint32_t version;
};

// The last kTrailerSize bytes of a file. Magic first, then version, so a newer file is
// recognized as such even if the rest of its trailer changed meaning.
absl::Status ParseTrailer(std::string_view p, Trailer* t) {
  if (std::memcmp(p.data() + 16, kFileMagic, 8) != 0) {
    return Corrupt("no dataset trailer at the end of the file (truncated, or not a dataset)");
  }
  t->version = LoadU32(p.data() + 12);
  KILN_RETURN_IF_ERROR(CheckVersion(t->version));
  t->footer_len = LoadU64(p.data());
  t->footer_crc = LoadU32(p.data() + 8);
  return absl::OkStatus();
}

// ---- Type widening for ReadOptions::type_overrides -----------------------------------

void ToChars(int64_t v, std::string* out) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->assign(buf, r.ptr);
}
void ToChars(double v, std::string* out) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->assign(buf, r.ptr);
}

void WidenColumn(Column* c, ValueType to) {
  if (c->type == to) return;
  std::string text;
  if (to == ValueType::kFloat) {
    c->floats.assign(c->ints.begin(), c->ints.end());
  } else {
    c->str_data.clear();
    c->str_offsets.assign(1, 0);
    size_t n = c->type == ValueType::kInt ? c->ints.size() : c->floats.size();
    for (size_t i = 0; i < n; ++i) {
      if (c->type == ValueType::kInt)
        ToChars(c->ints[i], &text);
      else
        ToChars(c->floats[i], &text);
      c->PushString(text);
    }
    c->floats.clear();
  }
  c->ints.clear();
  c->type = to;
}

// The schema a source reports after overrides, or kInvalidArgument for a narrowing.
absl::StatusOr<TableSchema> ApplyOverrides(const TableSchema& file_schema,
                                           const std::vector<ColumnSpec>& overrides,
                                           std::string_view name) {
  TableSchema out = file_schema;
  for (const ColumnSpec& o : overrides) {
    for (ColumnSpec& c : out) {
      if (c.name != o.name || c.type == o.type) continue;
      if (o.type < c.type) {
        return absl::InvalidArgumentError(
            kiln::StrCat(name, ": column '", c.name, "' is stored as ", ValueTypeName(c.type),
                         " and cannot be read as ", ValueTypeName(o.type)));
      }
      c.type = o.type;
    }
  }
  return out;
}

// ---- Memory-mapped or in-memory file bytes -----------------------------------------------

absl::Status ErrnoError(const char* what, const std::string& path) {
  int err = errno;
  std::string msg = kiln::StrCat(path, ": ", what, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  return absl::UnknownError(msg);
}

}  // namespace

// ---- DatasetWriter -------------------------------------------------------------------------

DatasetWriter::DatasetWriter(std::string path, TableSchema schema,
                             const DatasetWriterOptions& options,
                             std::unique_ptr<AtomicFileWriter> file)
    : path_(std::move(path)),
      schema_(std::move(schema)),
      options_(options),
      file_(std::move(file)) {
  pending_.resize(schema_.size());
  for (size_t i = 0; i < schema_.size(); ++i) {
    pending_[i].name = schema_[i].name;
    pending_[i].type = schema_[i].type;
  }
}

DatasetWriter::~DatasetWriter() { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_)); }

absl::StatusOr<std::unique_ptr<DatasetWriter>> DatasetWriter::Create(
    Env* env, const std::string& path, TableSchema schema, const DatasetWriterOptions& options) {
  if (options.max_chunk_rows == 0 || options.max_chunk_rows > kMaxChunkRows) {
    return absl::InvalidArgumentError(kiln::StrCat("max_chunk_rows must be in 1..", kMaxChunkRows,
                                                   ", got ", options.max_chunk_rows));
  }
  if (options.max_chunk_bytes == 0) {
    return absl::InvalidArgumentError("max_chunk_bytes must be positive");
  }
  if (options.zstd_level < ZSTD_minCLevel() || options.zstd_level > ZSTD_maxCLevel()) {
    return absl::InvalidArgumentError(kiln::StrCat("zstd level ", options.zstd_level,
                                                   " is outside ", ZSTD_minCLevel(), "..",
                                                   ZSTD_maxCLevel()));
  }
  StringViewSet names;
  for (const ColumnSpec& c : schema) {
    if (!names.insert(c.name).second) {
      return absl::InvalidArgumentError(
          kiln::StrCat(path, ": schema names column '", c.name, "' twice"));
    }
  }
  KILN_ASSIGN_OR_RETURN(auto file, AtomicFileWriter::Create(env, path));
  std::unique_ptr<DatasetWriter> w(
      new DatasetWriter(path, std::move(schema), options, std::move(file)));
  w->cctx_ = ZSTD_createCCtx();
  if (w->cctx_ == nullptr) return absl::ResourceExhaustedError("cannot create a zstd context");
  KILN_RETURN_IF_ERROR(w->Write(EncodeFileHeader(w->schema_)));
  return w;
}

absl::Status DatasetWriter::Write(std::string_view bytes) {
  KILN_RETURN_IF_ERROR(file_->Append(bytes));
  sha256_.Update(bytes);
  offset_ += bytes.size();
  return absl::OkStatus();
}

absl::Status DatasetWriter::Append(const Batch& batch) {
  std::vector<uint32_t> rows(batch.num_rows);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<uint32_t>(i);
  return AppendRows(batch, rows);
}

absl::Status DatasetWriter::AppendRows(const Batch& batch, std::span<const uint32_t> rows) {
  KILN_RETURN_IF_ERROR(status_);
  if (finished_) return absl::FailedPreconditionError(kiln::StrCat(path_, ": already finished"));
  // Check the whole batch before taking any row, so a rejected batch leaves no trace.
  std::vector<int> source(schema_.size(), -1);
  for (size_t bi = 0; bi < batch.columns.size(); ++bi) {
    const Column& bc = batch.columns[bi];
    size_t si = 0;
    while (si < schema_.size() && schema_[si].name != bc.name) ++si;
    if (si == schema_.size()) {
      return absl::InvalidArgumentError(kiln::StrCat(path_, ": column '", bc.name,
                                                     "' is not in the dataset schema (",
                                                     SchemaString(schema_), ")"));
    }
    if (bc.type != schema_[si].type) {
      return absl::InvalidArgumentError(
          kiln::StrCat(path_, ": column '", bc.name, "' has type ", ValueTypeName(bc.type),
                       ", the dataset schema says ", ValueTypeName(schema_[si].type)));
    }
    if (bc.num_rows() != batch.num_rows) {
      return absl::InvalidArgumentError(kiln::StrCat(path_, ": column '", bc.name, "' has ",
                                                     bc.num_rows(), " rows, the batch ",
                                                     batch.num_rows));
    }
    if (source[si] < 0) source[si] = static_cast<int>(bi);
  }
  for (uint32_t r : rows) {
    if (r >= batch.num_rows) {
      return absl::InvalidArgumentError(
          kiln::StrCat(path_, ": row ", r, " is outside the batch (", batch.num_rows, " rows)"));
    }
  }

  for (uint32_t r : rows) {
    // Encoded size of this row: a count per column plus its values.
    size_t row_bytes = 0;
    for (size_t si = 0; si < schema_.size(); ++si) {
      row_bytes += 4;
      if (source[si] < 0) continue;
      const Column& bc = batch.columns[source[si]];
      if (!bc.is_present(r)) continue;
      uint32_t begin = bc.offsets[r], end = bc.offsets[r + 1];
      if (bc.type == ValueType::kString) {
        row_bytes += size_t{4} * (end - begin) + (bc.str_offsets[end] - bc.str_offsets[begin]);
      } else {
        row_bytes += size_t{8} * (end - begin);
      }
    }
    auto bitmap_bytes = [&](uint32_t n) { return schema_.size() * ((n + 7) / 8); };
    if (row_bytes + bitmap_bytes(1) > kMaxChunkBytes) {
      return absl::InvalidArgumentError(kiln::StrCat(path_, ": a row of ", row_bytes,
                                                     " bytes exceeds the dataset chunk limit of ",
                                                     kMaxChunkBytes));
    }
    if (pending_rows_ > 0 &&
        pending_bytes_ + row_bytes + bitmap_bytes(pending_rows_ + 1) > kMaxChunkBytes) {
      KILN_RETURN_IF_ERROR(FlushChunk());
    }
    for (size_t si = 0; si < schema_.size(); ++si) {
      if (source[si] < 0)
        pending_[si].AddMissing();
      else
        pending_[si].AppendRowFrom(batch.columns[source[si]], r);
    }
    ++pending_rows_;
    pending_bytes_ += row_bytes;
    if (pending_rows_ >= options_.max_chunk_rows || pending_bytes_ >= options_.max_chunk_bytes) {
      KILN_RETURN_IF_ERROR(FlushChunk());
    }
  }
  return absl::OkStatus();
}

absl::Status DatasetWriter::FlushChunk() {
  if (pending_rows_ == 0) return absl::OkStatus();
  EncodePayload(pending_, pending_rows_, &scratch_);
  compressed_.resize(ZSTD_compressBound(scratch_.size()));
  size_t n =
      ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(cctx_), compressed_.data(), compressed_.size(),
                        scratch_.data(), scratch_.size(), options_.zstd_level);
  if (ZSTD_isError(n)) {
    status_ = absl::InternalError(kiln::StrCat(path_, ": zstd: ", ZSTD_getErrorName(n)));
    return status_;
  }
  compressed_.resize(n);
  ChunkHeader h{pending_rows_, static_cast<uint32_t>(n), static_cast<uint32_t>(scratch_.size()),
                MaskedCrc(compressed_)};
  uint64_t offset = offset_;
  status_ = Write(EncodeChunkHeader(h));
  if (status_.ok()) status_ = Write(compressed_);
  KILN_RETURN_IF_ERROR(status_);
  chunks_.push_back({offset, pending_rows_});
  rows_written_ += pending_rows_;
  pending_rows_ = 0;
  pending_bytes_ = 0;
  for (Column& c : pending_) c.Clear();
  return absl::OkStatus();
}

absl::Status DatasetWriter::Finish() {
  KILN_RETURN_IF_ERROR(status_);
  if (finished_) return absl::FailedPreconditionError(kiln::StrCat(path_, ": already finished"));
  KILN_RETURN_IF_ERROR(FlushChunk());
  std::string footer(kFooterMagic, 4);
  footer.append(EncodeSchema(schema_));
  PutU64(&footer, rows_written_);
  PutU64(&footer, chunks_.size());
  for (const ChunkRef& c : chunks_) {
    PutU64(&footer, c.offset);
    PutU32(&footer, c.rows);
  }
  std::string trailer;
  PutU64(&trailer, footer.size());
  PutU32(&trailer, MaskedCrc(footer));
  PutU32(&trailer, kDatasetFormatVersion);
  trailer.append(kFileMagic, sizeof(kFileMagic));
  status_ = Write(footer);
  if (status_.ok()) status_ = Write(trailer);
  if (status_.ok()) status_ = file_->Commit();
  KILN_RETURN_IF_ERROR(status_);
  finished_ = true;
  sha256_hex_ = sha256_.HexDigest();
  return absl::OkStatus();
}

// ---- DatasetReader ------------------------------------------------------------------------

struct DatasetReader::Storage {
  std::string owned;
  void* map = nullptr;
  size_t map_len = 0;
  ~Storage() {
    if (map != nullptr) munmap(map, map_len);
  }
};

DatasetReader::~DatasetReader() = default;

absl::StatusOr<std::unique_ptr<DatasetReader>> DatasetReader::Open(Env* env,
                                                                   const std::string& path) {
  auto storage = std::make_unique<Storage>();
  std::string_view bytes;
  if (env == Env::Default()) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("cannot open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
      absl::Status s = ErrnoError("stat", path);
      ::close(fd);
      return s;
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      return absl::InvalidArgumentError(kiln::StrCat(path, ": is a directory, expected a file"));
    }
    if (st.st_size > 0) {
      void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
      if (map == MAP_FAILED) {
        absl::Status s = ErrnoError("mmap", path);
        ::close(fd);
        return s;
      }
      storage->map = map;
      storage->map_len = static_cast<size_t>(st.st_size);
      bytes = std::string_view(static_cast<const char*>(map), storage->map_len);
    }
    ::close(fd);
  } else {
    KILN_ASSIGN_OR_RETURN(storage->owned, ReadFileToString(env, path));
    bytes = storage->owned;
  }
  std::unique_ptr<DatasetReader> r(new DatasetReader);
  r->name_ = path;
  r->storage_ = std::move(storage);
  r->bytes_ = bytes;
  KILN_RETURN_IF_ERROR(r->Parse());
  return r;
}

absl::StatusOr<std::unique_ptr<DatasetReader>> DatasetReader::OpenBuffer(std::string name,
                                                                         std::string_view bytes) {
  std::unique_ptr<DatasetReader> r(new DatasetReader);
  r->name_ = std::move(name);
  r->bytes_ = bytes;
  KILN_RETURN_IF_ERROR(r->Parse());
  return r;
}

absl::Status DatasetReader::Parse() {
  const std::string where = kiln::StrCat(name_, ": ");
  const uint64_t size = bytes_.size();
  if (size < kFileHeaderSize + kTrailerSize) {
    if (size >= 8 && std::memcmp(bytes_.data(), kFileMagic, 8) != 0) {
      return Corrupt(kiln::StrCat(where, "not a kiln dataset file (bad magic at offset 0)"));
    }
    return Corrupt(
        kiln::StrCat(where, "only ", size, " bytes, too short for a dataset file (truncated?)"));
  }
  // A file that does not even start right is not a dataset; say so rather than "truncated".
  if (std::memcmp(bytes_.data(), kFileMagic, 8) != 0) {
    return Corrupt(kiln::StrCat(where, "not a kiln dataset file (bad magic at offset 0)"));
  }
  Trailer t;
  KILN_RETURN_IF_ERROR(Annotate(ParseTrailer(bytes_.substr(size - kTrailerSize), &t), where));
  FileHeader h;
  KILN_RETURN_IF_ERROR(Annotate(ParseFileHeader(bytes_, &h), where));
  if (h.version != t.version) {
    return Corrupt(kiln::StrCat(where, "header says format version ", h.version, ", trailer says ",
                                t.version));
  }
  version_ = t.version;
  const uint64_t header_end = kFileHeaderSize + uint64_t{h.schema_len};
  if (header_end + kTrailerSize > size || t.footer_len > size - kTrailerSize - header_end ||
      t.footer_len > kMaxFooterBytes) {
    return Corrupt(kiln::StrCat(where, "header or footer length exceeds the file (truncated?)"));
  }
  KILN_RETURN_IF_ERROR(Annotate(
      ParseHeaderSchema(h, bytes_.substr(kFileHeaderSize, h.schema_len), &schema_), where));
  const uint64_t footer_start = size - kTrailerSize - t.footer_len;
  std::string_view footer_bytes = bytes_.substr(footer_start, t.footer_len);
  if (MaskedCrc(footer_bytes) != t.footer_crc) {
    return Corrupt(kiln::StrCat(where, "footer at offset ", footer_start, ": CRC mismatch"));
  }
  Footer f;
  KILN_RETURN_IF_ERROR(Annotate(ParseFooter(footer_bytes, &f), where));
  if (f.schema != schema_) {
    return Corrupt(kiln::StrCat(where, "footer schema (", SchemaString(f.schema),
                                ") differs from header schema (", SchemaString(schema_), ")"));
  }
  // Walk the chunk headers: they must tile [header_end, footer_start) exactly and agree
  // with the footer's row counts.
  uint64_t expected = header_end, rows = 0;
  chunks_.reserve(f.chunks.size());
  for (size_t i = 0; i < f.chunks.size(); ++i) {
    auto [offset, chunk_rows] = f.chunks[i];
    std::string at = kiln::StrCat(where, "chunk ", i, " at offset ", offset, ": ");
    if (offset != expected) {
      return Corrupt(kiln::StrCat(at, "footer offset disagrees with the chunk layout (expected ",
                                  expected, ")"));
    }
    if (offset + kChunkHeaderSize > footer_start) {
      return Corrupt(kiln::StrCat(at, "runs into the footer"));
    }
    ChunkHeader ch;
    KILN_RETURN_IF_ERROR(
        Annotate(ParseChunkHeader(bytes_.substr(offset, kChunkHeaderSize), &ch), at));
    if (ch.rows != chunk_rows) {
      return Corrupt(kiln::StrCat(at, "header has ", ch.rows, " rows, footer ", chunk_rows));
    }
    expected = offset + kChunkHeaderSize + ch.compressed;
    if (expected > footer_start) return Corrupt(kiln::StrCat(at, "runs into the footer"));
    chunks_.push_back({offset, chunk_rows, rows});
    rows += chunk_rows;
  }
  if (expected != footer_start) {
    return Corrupt(
        kiln::StrCat(where, (footer_start - expected), " unaccounted bytes before the footer"));
  }
  if (rows != f.total_rows) {
    return Corrupt(kiln::StrCat(where, "footer says ", f.total_rows, " rows, chunks hold ", rows));
  }
  num_rows_ = rows;
  return absl::OkStatus();
}

absl::Status DatasetReader::ReadChunk(size_t i, Batch* out) const {
  if (i >= chunks_.size()) {
    return absl::OutOfRangeError(
        kiln::StrCat(name_, ": chunk ", i, " requested, the file has ", chunks_.size()));
  }
  const ChunkInfo& c = chunks_[i];
  // Parse() checked the header, so the payload length is within the file.
  uint32_t compressed = LoadU32(bytes_.data() + c.offset + 8);
  absl::Status s =
      DecodeChunk(schema_, bytes_.substr(c.offset, kChunkHeaderSize + compressed), out);
  out->source = name_;
  return Annotate(s, kiln::StrCat(name_, ": chunk ", i, " at offset ", c.offset, ": "));
}

// ---- Streaming source ------------------------------------------------------------------------

namespace {

// Reads exactly n bytes unless the file ends first; returns the count read.
absl::StatusOr<size_t> ReadFully(SequentialFile* f, size_t n, char* dst) {
  size_t got = 0;
  while (got < n) {
    KILN_ASSIGN_OR_RETURN(size_t r, f->Read(n - got, dst + got));
    if (r == 0) break;
    got += r;
  }
  return got;
}

// Appends up to n bytes to `out` in bounded steps, so a corrupt length cannot make us
// allocate more than the file really holds.
absl::StatusOr<size_t> AppendFromFile(SequentialFile* f, size_t n, std::string* out) {
  constexpr size_t kStep = 1 << 20;
  size_t got = 0;
  while (got < n) {
    size_t want = std::min(kStep, n - got);
    size_t old = out->size();
    out->resize(old + want);
    KILN_ASSIGN_OR_RETURN(size_t r, ReadFully(f, want, out->data() + old));
    out->resize(old + r);
    got += r;
    if (r < want) break;
  }
  return got;
}

class DatasetStreamSource : public BlockSource {
 public:
  using Opener = std::function<absl::StatusOr<std::unique_ptr<SequentialFile>>()>;
  struct Input {
    std::string name;
    Opener open;
  };

  // `expected` (from a manifest), when set, is the schema every file must have.
  static absl::StatusOr<std::unique_ptr<BlockSource>> Create(std::vector<Input> inputs,
                                                             const ReadOptions& options,
                                                             std::optional<TableSchema> expected) {
    std::unique_ptr<DatasetStreamSource> s(new DatasetStreamSource(std::move(inputs)));
    if (expected.has_value()) {
      s->file_schema_ = std::move(*expected);
      s->have_schema_ = true;
    }
    if (!s->inputs_.empty()) KILN_RETURN_IF_ERROR(s->OpenNext());
    std::string name = s->inputs_.empty() ? "dataset" : s->inputs_[0].name;
    KILN_ASSIGN_OR_RETURN(s->schema_,
                          ApplyOverrides(s->file_schema_, options.type_overrides, name));
    return std::unique_ptr<BlockSource>(std::move(s));
  }

  absl::StatusOr<bool> NextBlock(RawBlock* block) override {
    for (;;) {
      if (cur_ == nullptr) {
        if (next_ >= inputs_.size()) return false;
        KILN_RETURN_IF_ERROR(OpenNext());
      }
      const std::string& name = inputs_[next_ - 1].name;
      char magic[4];
      KILN_ASSIGN_OR_RETURN(size_t n, ReadFully(cur_.get(), 4, magic));
      if (n < 4) {
        return Corrupt(
            kiln::StrCat(name, ": ends at offset ", pos_ + n, " before its footer (truncated?)"));
      }
      if (std::memcmp(magic, kChunkMagic, 4) == 0) {
        std::string at = kiln::StrCat(name, ": chunk ", seen_.size(), " at offset ", pos_, ": ");
        block->data.assign(magic, 4);
        KILN_ASSIGN_OR_RETURN(n, AppendFromFile(cur_.get(), kChunkHeaderSize - 4, &block->data));
        if (n < kChunkHeaderSize - 4) {
          return Corrupt(kiln::StrCat(at, "file ends inside the chunk header (truncated?)"));
        }
        ChunkHeader h;
        KILN_RETURN_IF_ERROR(Annotate(ParseChunkHeader(block->data, &h), at));
        KILN_ASSIGN_OR_RETURN(n, AppendFromFile(cur_.get(), h.compressed, &block->data));
        if (n < h.compressed) {
          return Corrupt(kiln::StrCat(at, "file ends inside the chunk (truncated?)"));
        }
        block->file = name;
        block->first_line = rows_;
        block->byte_offset = pos_;
        block->index = blocks_++;
        seen_.push_back({pos_, h.rows});
        rows_ += h.rows;
        pos_ += block->data.size();
        return true;
      }
      if (std::memcmp(magic, kFooterMagic, 4) == 0) {
        KILN_RETURN_IF_ERROR(FinishFile(name, std::string(magic, 4)));
        continue;
      }
      return Corrupt(
          kiln::StrCat(name, ": offset ", pos_, ": neither a chunk nor the footer starts here"));
    }
  }

  absl::Status Decode(const RawBlock& block, Batch* out, BadRowSink* bad) const override {
    absl::Status s = DecodeChunk(file_schema_, block.data, out);
    out->source = block.file;
    if (!s.ok()) {
      return Annotate(s, kiln::StrCat(block.file, ": chunk at offset ", block.byte_offset,
                                      " (rows from ", block.first_line, "): "));
    }
    for (size_t i = 0; i < schema_.size(); ++i) {
      WidenColumn(&out->columns[i], schema_[i].type);
    }
    return absl::OkStatus();
  }

  TableSchema KnownSchema() const override { return schema_; }

 private:
  explicit DatasetStreamSource(std::vector<Input> inputs) : inputs_(std::move(inputs)) {}

  // Opens inputs_[next_] and reads its header.
  absl::Status OpenNext() {
    const Input& in = inputs_[next_++];
    KILN_ASSIGN_OR_RETURN(cur_, in.open());
    std::string where = kiln::StrCat(in.name, ": ");
    char fixed[kFileHeaderSize];
    KILN_ASSIGN_OR_RETURN(size_t n, ReadFully(cur_.get(), kFileHeaderSize, fixed));
    if (n < kFileHeaderSize) {
      if (n >= 8 && std::memcmp(fixed, kFileMagic, 8) != 0) {
        return Corrupt(kiln::StrCat(where, "not a kiln dataset file (bad magic at offset 0)"));
      }
      return Corrupt(
          kiln::StrCat(where, "only ", n, " bytes, too short for a dataset file (truncated?)"));
    }
    FileHeader h;
    KILN_RETURN_IF_ERROR(Annotate(ParseFileHeader(std::string_view(fixed, n), &h), where));
    std::string schema_bytes;
    KILN_ASSIGN_OR_RETURN(n, AppendFromFile(cur_.get(), h.schema_len, &schema_bytes));
    if (n < h.schema_len) {
      return Corrupt(kiln::StrCat(where, "file ends inside the header (truncated?)"));
    }
    TableSchema schema;
    KILN_RETURN_IF_ERROR(Annotate(ParseHeaderSchema(h, schema_bytes, &schema), where));
    if (!have_schema_) {
      file_schema_ = std::move(schema);
      have_schema_ = true;
    } else if (schema != file_schema_) {
      return absl::FailedPreconditionError(kiln::StrCat(where, "schema (", SchemaString(schema),
                                                        ") differs from the dataset's (",
                                                        SchemaString(file_schema_), ")"));
    }
    version_ = h.version;
    pos_ = kFileHeaderSize + h.schema_len;
    rows_ = 0;
    seen_.clear();
    return absl::OkStatus();
  }

  // Reads the footer and trailer (the rest of the file) and checks them against the chunks
  // streamed.
  absl::Status FinishFile(const std::string& name, std::string tail) {
    std::string where = kiln::StrCat(name, ": footer at offset ", pos_, ": ");
    KILN_ASSIGN_OR_RETURN(size_t n, AppendFromFile(cur_.get(), kMaxFooterBytes, &tail));
    if (n >= kMaxFooterBytes) return Corrupt(kiln::StrCat(where, "implausibly large"));
    if (tail.size() < kTrailerSize + 4) {
      return Corrupt(kiln::StrCat(where, "file ends inside the footer (truncated?)"));
    }
    Trailer t;
    KILN_RETURN_IF_ERROR(Annotate(
        ParseTrailer(std::string_view(tail).substr(tail.size() - kTrailerSize), &t), where));
    std::string_view footer_bytes(tail.data(), tail.size() - kTrailerSize);
    if (t.version != version_) {
      return Corrupt(
          kiln::StrCat(where, "trailer says format version ", t.version, ", header ", version_));
    }
    if (t.footer_len != footer_bytes.size()) {
      return Corrupt(kiln::StrCat(where, "trailer says the footer has ", t.footer_len,
                                  " bytes, found ", footer_bytes.size()));
    }
    if (MaskedCrc(footer_bytes) != t.footer_crc) {
      return Corrupt(kiln::StrCat(where, "CRC mismatch"));
    }
    Footer f;
    KILN_RETURN_IF_ERROR(Annotate(ParseFooter(footer_bytes, &f), where));
    if (f.schema != file_schema_) {
      return Corrupt(kiln::StrCat(where, "schema differs from the file header's"));
    }
    if (f.chunks != seen_ || f.total_rows != rows_) {
      return Corrupt(kiln::StrCat(where, "lists ", f.chunks.size(), " chunks and ", f.total_rows,
                                  " rows; the file holds ", seen_.size(), " chunks and ", rows_,
                                  " rows"));
    }
    cur_.reset();
    return absl::OkStatus();
  }

  std::vector<Input> inputs_;
  size_t next_ = 0;  // index of the next input to open
  std::unique_ptr<SequentialFile> cur_;
  TableSchema file_schema_;  // as stored
  TableSchema schema_;       // as reported, after overrides
  bool have_schema_ = false;
  uint32_t version_ = 0;
  uint64_t pos_ = 0, rows_ = 0, blocks_ = 0;
  std::vector<std::pair<uint64_t, uint32_t>> seen_;  // chunks of the current file
};

std::vector<DatasetStreamSource::Input> FileInputs(Env* env, std::vector<std::string> files) {
  std::vector<DatasetStreamSource::Input> inputs;
  for (std::string& f : files) {
    std::string path = f;
    inputs.push_back({std::move(f), [env, path] { return env->NewSequentialFile(path); }});
  }
  return inputs;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlockSource>> OpenDatasetFiles(Env* env,
                                                              std::vector<std::string> files,
                                                              const ReadOptions& options) {
  if (files.empty()) return absl::InvalidArgumentError("no dataset files to read");
  return DatasetStreamSource::Create(FileInputs(env, std::move(files)), options, std::nullopt);
}

absl::StatusOr<std::unique_ptr<BlockSource>> OpenDatasetStream(std::string name,
                                                               std::unique_ptr<SequentialFile> file,
                                                               const ReadOptions& options) {
  std::vector<DatasetStreamSource::Input> inputs;
  // The opener hands the stream over once; the source never asks twice for one input.
  auto holder = std::make_shared<std::unique_ptr<SequentialFile>>(std::move(file));
  inputs.push_back({std::move(name), [holder]() -> absl::StatusOr<std::unique_ptr<SequentialFile>> {
                      if (*holder == nullptr) return absl::InternalError("stream reopened");
                      return std::move(*holder);
                    }});
  return DatasetStreamSource::Create(std::move(inputs), options, std::nullopt);
}

// ---- Manifest --------------------------------------------------------------------------------

const DatasetSplitInfo* DatasetManifest::FindSplit(std::string_view name) const {
  for (const DatasetSplitInfo& s : splits) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string ManifestToJson(const DatasetManifest& m) {
  using Json = nlohmann::ordered_json;
  Json j;
  j["format"] = kManifestFormat;
  j["format_version"] = m.format_version;
  j["created"] = m.created;
  Json source;
  source["format"] = m.source_format;
  source["files"] = m.source_files;
  if (m.span.has_value()) source["span"] = *m.span;
  j["source"] = std::move(source);
  Json schema = Json::array();
  for (const ColumnSpec& c : m.schema) {
    schema.push_back({{"name", c.name}, {"type", std::string(ValueTypeName(c.type))}});
  }
  j["schema"] = std::move(schema);
  j["partition_feature"] = m.partition_feature;
  j["num_rows"] = m.num_rows;
  j["bad_rows"] = m.bad_rows;
  j["fingerprint"] = m.fingerprint;
  Json splits = Json::array();
  for (const DatasetSplitInfo& s : m.splits) {
    Json files = Json::array();
    for (const DatasetFileInfo& f : s.files) {
      files.push_back(
          {{"path", f.path}, {"rows", f.rows}, {"bytes", f.bytes}, {"sha256", f.sha256}});
    }
    splits.push_back({{"name", s.name},
                      {"weight", s.weight},
                      {"rows", s.rows},
                      {"fingerprint", s.fingerprint},
                      {"files", std::move(files)}});
  }
  j["splits"] = std::move(splits);
  // Invalid UTF-8 in names (from raw source bytes) is replaced rather than thrown on.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

namespace {

absl::StatusOr<ValueType> ParseTypeName(std::string_view s) {
  for (ValueType t : {ValueType::kInt, ValueType::kFloat, ValueType::kString}) {
    if (ValueTypeName(t) == s) return t;
  }
  return Corrupt(kiln::StrCat("unknown column type '", s, "'"));
}

// A manifest file path must stay inside the dataset directory.
bool SafeRelativePath(std::string_view p) {
  if (p.empty() || p.front() == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

absl::StatusOr<DatasetManifest> ManifestFromJson(std::string_view text, std::string_view name) {
  DatasetManifest m;
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    if (!j.is_object() || j.value("format", "") != kManifestFormat) {
      return Corrupt(kiln::StrCat(name, ": not a kiln dataset manifest (format is not \"",
                                  kManifestFormat, "\")"));
    }
    m.format_version = j.at("format_version").get<int>();
    if (m.format_version < 1 || m.format_version > kManifestVersion) {
      if (m.format_version > kManifestVersion) {
        return absl::FailedPreconditionError(
            kiln::StrCat(name, ": manifest format version ", m.format_version,
                         " is newer than this kiln reads (", kManifestVersion, "); upgrade kiln"));
      }
      return Corrupt(kiln::StrCat(name, ": bad manifest format version ", m.format_version));
    }
    m.created = j.value("created", "");
    const auto& source = j.at("source");
    m.source_format = source.value("format", "");
    m.source_files = source.value("files", std::vector<std::string>{});
    if (source.contains("span")) m.span = source.at("span").get<int64_t>();
    for (const auto& c : j.at("schema")) {
      KILN_ASSIGN_OR_RETURN(ValueType t, ParseTypeName(c.at("type").get<std::string>()));
      m.schema.push_back({c.at("name").get<std::string>(), t});
    }
    m.partition_feature = j.value("partition_feature", "");
    m.num_rows = j.at("num_rows").get<uint64_t>();
    m.bad_rows = j.value("bad_rows", uint64_t{0});
    m.fingerprint = j.value("fingerprint", "");
    for (const auto& s : j.at("splits")) {
      DatasetSplitInfo split;
      split.name = s.at("name").get<std::string>();
      split.weight = s.value("weight", 0);
      split.rows = s.at("rows").get<uint64_t>();
      split.fingerprint = s.value("fingerprint", "");
      for (const auto& f : s.at("files")) {
        DatasetFileInfo file;
        file.path = f.at("path").get<std::string>();
        if (!SafeRelativePath(file.path)) {
          return Corrupt(
              kiln::StrCat(name, ": file path '", file.path, "' leaves the dataset directory"));
        }
        file.rows = f.value("rows", uint64_t{0});
        file.bytes = f.value("bytes", uint64_t{0});
        file.sha256 = f.value("sha256", "");
        split.files.push_back(std::move(file));
      }
      m.splits.push_back(std::move(split));
    }
  } catch (const nlohmann::json::exception& e) {
    return Corrupt(kiln::StrCat(name, ": malformed manifest: ", e.what()));
  }
  return m;
}

absl::StatusOr<DatasetManifest> ReadManifest(Env* env, const std::string& dir) {
  std::string path = JoinPath(dir, kManifestName);
  if (!env->FileExists(path)) {
    return absl::NotFoundError(kiln::StrCat(dir, ": not a kiln dataset (no ", kManifestName, ")"));
  }
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(env, path));
  return ManifestFromJson(text, path);
}

absl::StatusOr<std::unique_ptr<BlockSource>> OpenDatasetSource(Env* env, const std::string& dir,
                                                               const std::string& split,
                                                               const ReadOptions& options) {
  KILN_ASSIGN_OR_RETURN(DatasetManifest m, ReadManifest(env, dir));
  std::vector<std::string> files;
  bool found = split.empty();
  for (const DatasetSplitInfo& s : m.splits) {
    if (!split.empty() && s.name != split) continue;
    found = true;
    for (const DatasetFileInfo& f : s.files) files.push_back(JoinPath(dir, f.path));
  }
  if (!found) {
    return absl::NotFoundError(kiln::StrCat(
        dir, ": no split '", split, "'; the dataset has: ",
        absl::StrJoin(m.splits, ", ",
                      [](std::string* out, const DatasetSplitInfo& s) { out->append(s.name); })));
  }
  return DatasetStreamSource::Create(FileInputs(env, std::move(files)), options,
                                     std::move(m.schema));
}

}  // namespace kiln::data
