// tf.Example in TFRecord files as kiln Batches. TfRecordSource reads one or more TFRecord
// files (plain or gzip) as a BlockSource; ExampleWriter writes Batches back out as one
// tf.Example per row. TfRecordSource follows BlockSource's threading rules (NextBlock
// serial, Decode thread-safe); ExampleWriter is not thread-safe.
//
// Mapping: each feature name is a Column; int64_list -> INT, float_list -> FLOAT (kept
// as double), bytes_list -> STRING; every present feature is a list row. A row without
// the feature is missing; a feature whose `kind` is unset is present with no values.
#ifndef KILN_DATA_EXAMPLE_CODEC_H_
#define KILN_DATA_EXAMPLE_CODEC_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "kiln/base/string_map.h"
#include "kiln/data/batch.h"
#include "kiln/data/source.h"
#include "kiln/data/tfrecord.h"

namespace kiln::data {

// Reads TFRecord files of serialized tf.Example, in the order given.
//
// Blocks: a block holds whole records of one file, up to ReadOptions::block_bytes of
// record data or kMaxRecordsPerBlock records, whichever comes first (a record larger than
// block_bytes gets a block of its own). RawBlock::first_line is the 0-based index of the
// block's first record within its file — the same index TFRecordReader errors, BadRow::line
// and Batch::row_positions use — and RawBlock::byte_offset is the offset of that record's
// header in the (uncompressed) file. RawBlock::data is a private packing (uint32 little
// endian length + bytes per record); only Decode reads it.
//
// Errors: framing corruption (bad CRC, truncation, damaged gzip) is kDataLoss from
// NextBlock whatever the bad-row policy, since nothing after it can be trusted; records
// before the corruption are still returned first. Records that are not a parseable
// tf.Example, and features whose kind disagrees with the same feature earlier in the
// block (or with ReadOptions::type_overrides), are bad rows for the BadRowSink.
//
// Column order in a Batch: the union of the block's feature names in first-seen order,
// names within one record taken in sorted order (tf.Example stores features in a map,
// whose order is not meaningful). A column whose feature never had a kind set in the
// block is INT unless type_overrides names it. Different blocks may have different
// columns and, without overrides, different types for the same name.
class TfRecordSource : public BlockSource {
 public:
  static constexpr size_t kMaxRecordsPerBlock = 8192;

  // Files are opened one at a time as reading reaches them; a file that does not exist
  // is reported here (kNotFound) rather than halfway through.
  static absl::StatusOr<std::unique_ptr<TfRecordSource>> Open(Env* env,
                                                              std::vector<std::string> files,
                                                              const ReadOptions& options);
  // Reads TFRecord bytes held in memory (plain or gzip); `name` stands for the file in
  // messages. Used by the fuzzer and tests.
  static absl::StatusOr<std::unique_ptr<TfRecordSource>> FromMemory(std::string data,
                                                                    std::string name,
                                                                    const ReadOptions& options);
  ~TfRecordSource() override;

  absl::StatusOr<bool> NextBlock(RawBlock* block) override;
  absl::Status Decode(const RawBlock& block, Batch* out, BadRowSink* bad) const override;

 private:
  TfRecordSource(Env* env, std::vector<std::string> files, const ReadOptions& options);
  absl::Status OpenNextFile();

  Env* env_;
  std::vector<std::string> files_;
  std::optional<std::string> memory_;  // set for FromMemory; files_ then holds its name
  size_t block_bytes_;
  StringMap<ValueType> overrides_;
  size_t next_file_ = 0;
  std::unique_ptr<TFRecordReader> reader_;
  absl::Status pending_error_;  // a corruption found while filling the previous block
};

// OpenTfRecordSource is TfRecordSource::Open typed as the generic interface.
absl::StatusOr<std::unique_ptr<BlockSource>> OpenTfRecordSource(Env* env,
                                                                std::vector<std::string> files,
                                                                const ReadOptions& options);

// Writes Batches as TFRecord files of tf.Example, one Example per row: a present column
// becomes a feature (int64_list, float_list with values narrowed to float32, bytes_list),
// a missing one is left out. Features are serialized in name order so the same rows give
// the same bytes. Nothing appears at `path` until Close() succeeds.
class ExampleWriter {
 public:
  struct Options {
    bool gzip = false;  // default: plain TFRecord
  };
  static absl::StatusOr<std::unique_ptr<ExampleWriter>> Create(Env* env, const std::string& path,
                                                               const Options& options);
  static absl::StatusOr<std::unique_ptr<ExampleWriter>> Create(Env* env, const std::string& path) {
    return Create(env, path, Options());
  }
  ~ExampleWriter();

  // Appends every row of `batch`. kInvalidArgument if a column's row count differs from
  // batch.num_rows.
  absl::Status Write(const Batch& batch);
  absl::Status Close();
  uint64_t rows_written() const { return rows_; }

 private:
  explicit ExampleWriter(std::unique_ptr<TFRecordWriter> writer) : writer_(std::move(writer)) {}
  std::unique_ptr<TFRecordWriter> writer_;
  std::string scratch_;
  uint64_t rows_ = 0;
};

}  // namespace kiln::data

#endif  // KILN_DATA_EXAMPLE_CODEC_H_
