// Cutting a text file into blocks of whole rows, for the serial NextBlock() of the
// line-oriented sources (CSV, JSON Lines). What ends a row is the caller's: CSV must not
// cut inside a quoted field, JSON Lines cuts at any line feed. Not thread-safe.
#ifndef KILN_DATA_TEXT_BLOCKS_H_
#define KILN_DATA_TEXT_BLOCKS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "kiln/data/source.h"

namespace kiln::data {

// Number of '\n' in data[0..n).
uint64_t CountNewlines(const char* data, size_t n);

class TextBlockCutter {
 public:
  // Returns the index just past the last complete row in data[0..n), or 0 if none ends
  // there.
  using RowEndFn = size_t (*)(const char* data, size_t n);

  TextBlockCutter(Env* env, size_t block_bytes, RowEndFn row_end)
      : env_(env), block_bytes_(block_bytes), row_end_(row_end) {}

  // Starts reading `path` from its beginning, skipping a UTF-8 byte order mark.
  absl::Status Open(const std::string& path);
  bool is_open() const { return file_ != nullptr; }
  const std::string& path() const { return path_; }

  // Reads until the buffer holds one complete row or the whole file, for a header.
  absl::Status FillFirstRow();
  // The bytes read but not yet handed out, and where they start.
  std::string_view pending() const { return buf_; }
  uint64_t line() const { return line_; }
  // Drops the first `bytes` of pending() (a header), which hold `newlines` line feeds.
  void Consume(size_t bytes, uint64_t newlines);

  // Fills `block` with the next whole rows (about block_bytes; more when one row is
  // longer). At the end of the file returns false and closes it. The last block may end
  // without a line feed, or inside an unclosed quote: the decoder reports that.
  absl::StatusOr<bool> Next(RawBlock* block);

 private:
  absl::Status ReadMore(size_t want);

  Env* env_;
  size_t block_bytes_;
  RowEndFn row_end_;
  std::string path_;
  std::unique_ptr<SequentialFile> file_;
  std::string buf_;
  bool eof_ = false;
  uint64_t line_ = 1;
  uint64_t offset_ = 0;
};

}  // namespace kiln::data

#endif  // KILN_DATA_TEXT_BLOCKS_H_
