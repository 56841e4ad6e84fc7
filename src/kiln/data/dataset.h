// kiln's columnar dataset artifact. A dataset file (.kds) holds rows of a fixed TableSchema
// cut into chunks; each chunk stores every column (validity, per-row value counts, values),
// zstd-compressed and guarded by a CRC32C. A footer lists the schema and where each chunk
// starts, so a file can be read front to back as a stream or by seeking to any chunk. The
// byte layout is in docs/dataset-format.md.
//
// A dataset *directory* (written by `kiln import`) holds one file per split, e.g.
// DIR/train/data-00000.kds, and DIR/manifest.json, written last: a directory without a
// manifest is not a dataset.
//
// Thread safety: DatasetWriter is not thread-safe. DatasetReader is immutable after Open and
// ReadChunk may be called from many threads. The BlockSources follow source.h.
#ifndef KILN_DATA_DATASET_H_
#define KILN_DATA_DATASET_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/base/env.h"
#include "kiln/base/sha256.h"
#include "kiln/base/status.h"
#include "kiln/data/batch.h"
#include "kiln/data/source.h"

namespace kiln::data {

// Version written by this build. Readers accept files of this version or older; a newer
// file is kFailedPrecondition (upgrade kiln), never a guess.
inline constexpr uint32_t kDatasetFormatVersion = 1;
// Hard limits of the format, checked by writer and reader alike (they also keep a corrupt
// or hostile file from asking for absurd allocations).
inline constexpr uint32_t kMaxChunkRows = 1u << 24;
inline constexpr uint32_t kMaxChunkBytes = 256u << 20;  // uncompressed payload

struct DatasetWriterOptions {
  // A chunk is closed when it holds this many rows (at most kMaxChunkRows)...
  uint32_t max_chunk_rows = 65536;
  // ...or when its uncompressed columns reach about this many bytes.
  size_t max_chunk_bytes = 4 << 20;
  // zstd compression level. Output is deterministic for a given level and input.
  int zstd_level = 3;
};

// Writes one dataset file. Rows are buffered until a chunk is full, so memory stays at
// about one chunk. Nothing appears at `path` until Finish() succeeds; destroying an
// unfinished writer (or killing the process) leaves no file there.
class DatasetWriter {
 public:
  // Errors: kInvalidArgument for duplicate column names or bad options; file errors from
  // `env`.
  static absl::StatusOr<std::unique_ptr<DatasetWriter>> Create(
      Env* env, const std::string& path, TableSchema schema,
      const DatasetWriterOptions& options = {});
  ~DatasetWriter();

  // Appends every row of `batch`. Columns are matched by name: a schema column the batch
  // lacks is missing in every row. Errors (kInvalidArgument): a batch column that is not in
  // the schema, or whose type differs, or whose row count differs from batch.num_rows; a
  // single row larger than kMaxChunkBytes. A rejected batch adds no rows; after a write
  // error the writer refuses further calls.
  absl::Status Append(const Batch& batch);
  // Appends the listed rows of `batch`, in the order given.
  absl::Status AppendRows(const Batch& batch, std::span<const uint32_t> rows);
  // Writes the last chunk, the footer and the trailer, and moves the file into place.
  absl::Status Finish();

  const TableSchema& schema() const { return schema_; }
  uint64_t num_rows() const { return rows_written_ + pending_rows_; }
  uint64_t num_chunks() const { return chunks_.size(); }
  // Valid after Finish(): the file size and the SHA-256 of its bytes.
  uint64_t file_bytes() const { return offset_; }
  const std::string& sha256() const { return sha256_hex_; }

 private:
  struct ChunkRef {
    uint64_t offset;
    uint32_t rows;
  };
  DatasetWriter(std::string path, TableSchema schema, const DatasetWriterOptions& options,
                std::unique_ptr<AtomicFileWriter> file);
  absl::Status Write(std::string_view bytes);
  absl::Status FlushChunk();

  std::string path_;
  TableSchema schema_;
  DatasetWriterOptions options_;
  std::unique_ptr<AtomicFileWriter> file_;
  Sha256 sha256_;
  std::string sha256_hex_;
  void* cctx_ = nullptr;  // ZSTD_CCtx, reused across chunks
  std::vector<Column> pending_;
  uint32_t pending_rows_ = 0;
  size_t pending_bytes_ = 0;
  uint64_t rows_written_ = 0;
  uint64_t offset_ = 0;
  std::vector<ChunkRef> chunks_;
  std::string scratch_, compressed_;
  absl::Status status_;
  bool finished_ = false;
};

// Random access to one dataset file held in memory or memory-mapped. Open checks the
// trailer, the footer and every chunk header (cheap: no decompression); ReadChunk checks the
// chunk's CRC and decodes it.
//
// Errors name the file and the chunk: kDataLoss for bad magic, a truncated file, a CRC
// mismatch or inconsistent lengths; kFailedPrecondition for a file written by a newer kiln.
class DatasetReader {
 public:
  struct ChunkInfo {
    uint64_t offset;  // of the chunk header in the file
    uint32_t rows;
    uint64_t first_row;  // index in the file of the chunk's first row
  };

  // Memory-maps the file when `env` is Env::Default() (Env has no random-access files),
  // otherwise reads it through `env` into memory. Dataset files are never modified in place
  // (they are replaced by rename), so the mapping stays valid.
  static absl::StatusOr<std::unique_ptr<DatasetReader>> Open(Env* env, const std::string& path);
  // Parses `bytes`, which must outlive the reader; `name` is used in error messages.
  static absl::StatusOr<std::unique_ptr<DatasetReader>> OpenBuffer(std::string name,
                                                                   std::string_view bytes);
  ~DatasetReader();

  const std::string& name() const { return name_; }
  const TableSchema& schema() const { return schema_; }
  uint32_t format_version() const { return version_; }
  uint64_t num_rows() const { return num_rows_; }
  size_t num_chunks() const { return chunks_.size(); }
  const ChunkInfo& chunk(size_t i) const { return chunks_[i]; }

  // Decodes chunk `i` (< num_chunks()) into `out` (cleared first). Thread-safe.
  absl::Status ReadChunk(size_t i, Batch* out) const;

 private:
  struct Storage;
  DatasetReader() = default;
  absl::Status Parse();

  std::string name_;
  std::unique_ptr<Storage> storage_;
  std::string_view bytes_;
  TableSchema schema_;
  uint32_t version_ = 0;
  uint64_t num_rows_ = 0;
  std::vector<ChunkInfo> chunks_;
};

// A BlockSource streaming dataset files front to back through SequentialFiles, without
// seeking: each block is one chunk's raw bytes (header + compressed payload); Decode checks
// the CRC, decompresses and decodes. At the end of each file the footer is checked against
// the chunks seen, so truncation or a damaged footer is reported (kDataLoss).
// ReadOptions::type_overrides may widen a column (INT to FLOAT or STRING, FLOAT to STRING);
// any other type change is kInvalidArgument. Other ReadOptions fields do not apply: damage
// is kDataLoss whatever the bad-row policy. RawBlock::first_line is the 0-based index in its
// file of the chunk's first row; batches carry no row_positions.
//
// Opens the first file to learn the schema (every file must share it).
absl::StatusOr<std::unique_ptr<BlockSource>> OpenDatasetFiles(Env* env,
                                                              std::vector<std::string> files,
                                                              const ReadOptions& options);
// The same over an already open stream (e.g. a pipe, or bytes in memory).
absl::StatusOr<std::unique_ptr<BlockSource>> OpenDatasetStream(std::string name,
                                                               std::unique_ptr<SequentialFile> file,
                                                               const ReadOptions& options);

// ---- Dataset directories -----------------------------------------------------------

inline constexpr char kManifestName[] = "manifest.json";
inline constexpr char kManifestFormat[] = "kiln.dataset";
inline constexpr int kManifestVersion = 1;

struct DatasetFileInfo {
  std::string path;  // relative to the dataset directory, e.g. "train/data-00000.kds"
  uint64_t rows = 0;
  uint64_t bytes = 0;
  std::string sha256;
};

struct DatasetSplitInfo {
  std::string name;
  int weight = 0;
  uint64_t rows = 0;
  // SHA-256 over the bytes of the split's files in order: equal for equal content.
  std::string fingerprint;
  std::vector<DatasetFileInfo> files;
};

struct DatasetManifest {
  int format_version = kManifestVersion;
  std::string created;        // UTC, RFC 3339
  std::string source_format;  // "csv", "jsonl", "tfrecord", "dataset"
  std::vector<std::string> source_files;
  std::optional<int64_t> span;
  TableSchema schema;
  std::string partition_feature;  // "" when rows were split by their whole content
  std::vector<DatasetSplitInfo> splits;
  uint64_t num_rows = 0;
  uint64_t bad_rows = 0;
  // SHA-256 over the split names and fingerprints: equal datasets have equal fingerprints.
  std::string fingerprint;

  // The split named `name`, or nullptr.
  const DatasetSplitInfo* FindSplit(std::string_view name) const;
};

std::string ManifestToJson(const DatasetManifest& manifest);
absl::StatusOr<DatasetManifest> ManifestFromJson(std::string_view json, std::string_view name);
// Reads DIR/manifest.json. Errors: kNotFound when `dir` has no manifest (not a dataset);
// kDataLoss for a malformed manifest; kFailedPrecondition for a newer format version.
absl::StatusOr<DatasetManifest> ReadManifest(Env* env, const std::string& dir);

// Opens split `split` of the dataset in `dir` ("" = every split, in manifest order) as one
// source. Errors: those of ReadManifest; kNotFound for an unknown split (naming the valid
// ones).
absl::StatusOr<std::unique_ptr<BlockSource>> OpenDatasetSource(Env* env, const std::string& dir,
                                                               const std::string& split,
                                                               const ReadOptions& options);

}  // namespace kiln::data

#endif  // KILN_DATA_DATASET_H_
