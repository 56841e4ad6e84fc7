// Sources of rows. Every input format is read as a BlockSource: a serial, cheap step
// that cuts the input into independently decodable blocks (at row boundaries, with
// their position in the file), and a thread-safe Decode that turns one block into a
// typed Batch. Statistics decode blocks on all cores; a plain serial reader is
// BatchReader over the same source.
#ifndef KILN_DATA_SOURCE_H_
#define KILN_DATA_SOURCE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kiln/base/env.h"
#include "kiln/base/progress.h"
#include "kiln/base/status.h"
#include "kiln/data/batch.h"

namespace kiln::data {

// What to do with a row that cannot be parsed (ragged CSV row, bad JSON, corrupt record).
enum class BadRowPolicy {
  kError,       // stop with an error naming file, line and column (the default)
  kSkip,        // count it, report it, leave it out
  kQuarantine,  // like kSkip, and write the raw row to the quarantine file
};

// Parses "error" / "skip" / "quarantine".
absl::StatusOr<BadRowPolicy> ParseBadRowPolicy(std::string_view s);

struct ReadOptions {
  // CSV field delimiter. Default ','; ".tsv" files default to '\t'.
  std::optional<char> delimiter;
  // Field values (after CSV unquoting) that mean "missing". An empty field is always
  // missing.
  std::vector<std::string> null_tokens;
  // Column types that override inference (e.g. from a schema). Columns not named are
  // inferred over the whole input.
  std::vector<ColumnSpec> type_overrides;
  BadRowPolicy bad_rows = BadRowPolicy::kError;
  // Where quarantined rows go (required for kQuarantine). Text rows are written one per
  // line; a path ending in ".tfrecord" gets TFRecord-framed records instead.
  std::string quarantine_path;
  // Target raw bytes per block. Small enough that a block's field index stays in the
  // CPU's L2 cache while its columns are built.
  size_t block_bytes = 256 << 10;
};

// A raw block: bytes of whole rows of one file.
struct RawBlock {
  std::string data;
  std::string file;
  uint64_t first_line = 1;   // 1-based line (text) or record index (binary) of the first row
  uint64_t byte_offset = 0;  // offset of data[0] in the file (after decompression)
  uint64_t index = 0;        // sequence number of the block within the source
};

// One rejected row.
struct BadRow {
  std::string file;
  uint64_t line = 0;  // line for text formats, record index for TFRecord
  std::string message;
  std::string raw;  // the raw bytes of the row (for quarantine)
};

// Counts and samples bad rows across threads; writes quarantined rows. Thread-safe.
//
// Under kQuarantine the rows are written, at Finish(), to the quarantine file in input
// order (file, then line), after the header row when the format has one, so the file
// reads back like the input; "<quarantine file>.errors" lists "file:line: reason" for
// each. Rows are held in memory until then, up to 256 MiB; beyond that they are written
// as they come (each flush sorted on its own).
class BadRowSink {
 public:
  explicit BadRowSink(BadRowPolicy policy, std::string quarantine_path = "");
  ~BadRowSink();
  BadRowPolicy policy() const { return policy_; }
  // Under kError returns the row's error (the caller stops); otherwise records it and
  // returns OK.
  absl::Status Add(BadRow row);
  // The header row (with its line end) that the quarantine file starts with. The first
  // call wins; later ones are ignored.
  void SetHeader(std::string_view header);
  uint64_t count() const;
  std::vector<BadRow> samples() const;  // the first few, without raw bytes
  // Writes the quarantine file and its .errors list into place. Call once at the end.
  absl::Status Finish();

 private:
  absl::Status FlushLocked();

  BadRowPolicy policy_;
  std::string quarantine_path_;
  mutable std::mutex mu_;
  uint64_t count_ = 0;
  std::vector<BadRow> samples_;
  std::vector<BadRow> pending_;  // quarantined rows not yet written
  size_t pending_bytes_ = 0;
  std::string header_;
  bool header_set_ = false;
  std::unique_ptr<AtomicFileWriter> quarantine_;
  std::unique_ptr<AtomicFileWriter> errors_;
  absl::Status quarantine_status_;
};

class BlockSource {
 public:
  virtual ~BlockSource() = default;
  // The next raw block, or false at the end of the input. Serial.
  virtual absl::StatusOr<bool> NextBlock(RawBlock* block) = 0;
  // Decodes `block` into `out` (cleared first). Bad rows go to `bad`, which decides
  // whether they stop decoding. Thread-safe, may run concurrently for different blocks.
  virtual absl::Status Decode(const RawBlock& block, Batch* out, BadRowSink* bad) const = 0;
  // Column names and types when the format fixes them before reading (a dataset
  // artifact, or a CSV with type overrides for every column); empty otherwise.
  virtual TableSchema KnownSchema() const { return {}; }
};

// Serial reader over a BlockSource.
class BatchReader {
 public:
  BatchReader(std::unique_ptr<BlockSource> source, BadRowSink* bad)
      : source_(std::move(source)), bad_(bad) {}
  // Fills `batch` with the next rows; false at the end.
  absl::StatusOr<bool> Next(Batch* batch);
  BlockSource* source() { return source_.get(); }
  // Raw bytes of every block read so far.
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  std::unique_ptr<BlockSource> source_;
  BadRowSink* bad_;
  RawBlock block_;
  uint64_t next_index_ = 0;
  uint64_t bytes_read_ = 0;
};

// Decodes every block of `source` on `num_threads` threads and calls
// fn(thread_index, batch) for each decoded batch. Block i is handled by thread
// i % num_threads, in order, so per-thread accumulators need no locks and see the same
// blocks on every run (results merged in thread order are reproducible). Memory stays
// bounded: at most 2 * num_threads raw blocks are queued. The first error (by block
// order) is returned.
// `progress`, when given, is told the size of every raw block read.
absl::Status ForEachBatchParallel(BlockSource* source, BadRowSink* bad, int num_threads,
                                  const std::function<absl::Status(int, Batch&)>& fn,
                                  Progress* progress = nullptr);

// Like ForEachBatchParallel, but in two stages: prepare(batch) runs right after decoding
// on the worker threads, then consume(batch) runs on the calling thread, one batch at a
// time, in block order — for outputs that must follow the input order (import). At most
// about 3 * num_threads blocks are in flight. The first error by block order wins.
absl::Status ForEachBatchOrdered(BlockSource* source, BadRowSink* bad, int num_threads,
                                 const std::function<absl::Status(Batch&)>& prepare,
                                 const std::function<absl::Status(Batch&)>& consume,
                                 Progress* progress = nullptr);

// Number of worker threads to use by default: the machine's cores.
int DefaultThreads();

}  // namespace kiln::data

#endif  // KILN_DATA_SOURCE_H_
