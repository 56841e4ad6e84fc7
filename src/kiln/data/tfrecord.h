// TFRecord files: a sequence of length-prefixed records, each framed as
//   uint64 length (little endian) | uint32 masked CRC32C of the 8 length bytes |
//   length bytes of data          | uint32 masked CRC32C of the data
// optionally inside a gzip stream. TFRecordReader reads one record at a time with bounded
// memory (streaming inflate, never the whole file); TFRecordWriter writes one atomically.
// Neither class is thread-safe; each is used by one thread at a time.
#ifndef KILN_DATA_TFRECORD_H_
#define KILN_DATA_TFRECORD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "kiln/base/env.h"
#include "kiln/base/status.h"

namespace kiln::data {

// Framing overhead per record: 12 header bytes and a 4-byte data CRC.
inline constexpr uint64_t kTfRecordHeaderBytes = 12;
inline constexpr uint64_t kTfRecordFooterBytes = 4;

// Appends `data` framed as one TFRecord to `out` (no compression). Useful to build
// TFRecord bytes in memory.
void AppendTfRecord(std::string* out, std::string_view data);

// A source of bytes handed out in chunks; the reader's view of a file, a memory buffer or
// an inflated gzip stream. Internal to tfrecord.cc, declared here only so the reader can
// own one.
class ChunkStream;

class TFRecordReader {
 public:
  struct Options {
    // Records longer than this are reported as corrupt instead of allocated: a flipped
    // length that still passed its CRC must not ask for gigabytes. Default 256 MiB.
    uint64_t max_record_bytes = uint64_t{256} << 20;
  };

  // Opens `path` through `env`. Gzip is detected by the 1f 8b magic, not the extension.
  // Errors: those of Env::NewSequentialFile (kNotFound, ...), kDataLoss for a gzip
  // header that cannot be read.
  static absl::StatusOr<std::unique_ptr<TFRecordReader>> Open(Env* env, const std::string& path,
                                                              const Options& options);
  static absl::StatusOr<std::unique_ptr<TFRecordReader>> Open(Env* env, const std::string& path) {
    return Open(env, path, Options());
  }
  // Reads TFRecord bytes (plain or gzip) held in memory; `data` must outlive the reader.
  // `name` stands for the file in error messages.
  static absl::StatusOr<std::unique_ptr<TFRecordReader>> FromMemory(std::string_view data,
                                                                    std::string name,
                                                                    const Options& options);

  ~TFRecordReader();

  // Replaces *record with the next record's data. Returns false at a clean end of input
  // (the end falls exactly between records). Errors are kDataLoss for any corruption —
  // truncated header or data, bad length or data CRC, an over-long record, a damaged or
  // truncated gzip stream — and name the file, the record index and the byte offset of
  // the record's header in the uncompressed stream; read errors from the Env keep their
  // code. After an error the reader must not be used again.
  absl::StatusOr<bool> Next(std::string* record);
  // Like Next, but appends the record's data to *out instead of replacing it.
  absl::StatusOr<bool> AppendNext(std::string* out);

  // Index (0-based) and header offset of the record that the last successful Next
  // returned; before the first record, 0 and 0.
  uint64_t last_index() const { return last_index_; }
  uint64_t last_offset() const { return last_offset_; }
  // True when the input is gzip-compressed.
  bool compressed() const { return compressed_; }
  const std::string& name() const { return name_; }

 private:
  TFRecordReader(std::unique_ptr<ChunkStream> stream, std::string name, bool compressed,
                 const Options& options);
  // Copies up to n bytes of the stream to dst (or appends them to *out); returns how many
  // (fewer only at the end of the stream).
  absl::StatusOr<size_t> ReadBytes(char* dst, size_t n);
  absl::StatusOr<size_t> AppendBytes(std::string* out, size_t n);
  absl::Status Corrupt(const std::string& what) const;
  absl::Status WithContext(const absl::Status& s) const;

  std::unique_ptr<ChunkStream> stream_;
  std::string name_;
  bool compressed_;
  Options options_;
  std::string_view chunk_;  // unread part of the current chunk
  uint64_t pos_ = 0;        // bytes of the (uncompressed) stream consumed
  uint64_t next_index_ = 0;
  uint64_t cur_offset_ = 0;  // header offset of the record being read
  uint64_t last_index_ = 0;
  uint64_t last_offset_ = 0;
};

class TFRecordWriter {
 public:
  struct Options {
    bool gzip = false;    // default: plain TFRecord
    int gzip_level = -1;  // zlib level 0..9; default -1 (zlib's default, 6)
  };

  // Starts writing `path` atomically: nothing appears at `path` until Close() succeeds.
  static absl::StatusOr<std::unique_ptr<TFRecordWriter>> Create(Env* env, const std::string& path,
                                                                const Options& options);
  static absl::StatusOr<std::unique_ptr<TFRecordWriter>> Create(Env* env, const std::string& path) {
    return Create(env, path, Options());
  }
  // Destroying a writer that was not closed discards the file.
  ~TFRecordWriter();

  absl::Status Write(std::string_view record);
  // Flushes, finishes the gzip stream and renames the file into place. Idempotent once it
  // succeeded; Write after Close is kFailedPrecondition.
  absl::Status Close();
  uint64_t records_written() const { return records_; }

 private:
  struct Deflater;
  TFRecordWriter(std::unique_ptr<AtomicFileWriter> file, std::unique_ptr<Deflater> deflater);
  absl::Status Emit(std::string_view bytes);
  absl::Status FlushBuffer(bool finish);

  std::unique_ptr<AtomicFileWriter> file_;
  std::unique_ptr<Deflater> deflater_;  // null for plain output
  std::string buffer_;                  // framed bytes not yet handed to the file / deflate
  uint64_t records_ = 0;
  bool closed_ = false;
};

}  // namespace kiln::data

#endif  // KILN_DATA_TFRECORD_H_
