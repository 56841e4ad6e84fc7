// CSV per RFC 4180 as a BlockSource: quoted fields may hold delimiters, newlines and
// doubled quotes; CRLF or LF line ends; a UTF-8 byte order mark is skipped; the first
// row of every file is the header (all files must share it). An empty field, or one
// equal to a null token, is missing. Column types are inferred per block (INT if every
// present value is an integer, else FLOAT if every one is a number, else STRING) unless
// ReadOptions::type_overrides fixes them; a value that does not fit a fixed type makes
// its row bad. Thread-safety as BlockSource.
#ifndef KILN_DATA_CSV_H_
#define KILN_DATA_CSV_H_

#include <memory>
#include <string>
#include <vector>

#include "kiln/base/env.h"
#include "kiln/data/source.h"

namespace kiln::data {

absl::StatusOr<std::unique_ptr<BlockSource>> OpenCsvSource(Env* env, std::vector<std::string> files,
                                                           const ReadOptions& options);

// Writes batches as CSV with a header row; fields are quoted only when needed and
// missing values are empty fields. List values are joined with '|'. The file is
// committed atomically by Finish().
class CsvWriter {
 public:
  static absl::StatusOr<std::unique_ptr<CsvWriter>> Create(Env* env, const std::string& path,
                                                           const TableSchema& schema,
                                                           char delimiter = ',');
  absl::Status Append(const Batch& batch);
  absl::Status Finish();

 private:
  CsvWriter(std::unique_ptr<AtomicFileWriter> out, TableSchema schema, char delimiter)
      : out_(std::move(out)), schema_(std::move(schema)), delimiter_(delimiter) {}
  std::unique_ptr<AtomicFileWriter> out_;
  TableSchema schema_;
  char delimiter_;
  std::string buf_;
};

// Number parsing shared by the text readers. Surrounding spaces are ignored; a leading
// '+' is accepted. ParseDouble accepts nan, inf and infinity in any case.
bool ParseInt64(std::string_view s, int64_t* out);
bool ParseDouble(std::string_view s, double* out);
// The same answers, faster for short plain numbers that lie inside `buffer` (up to 8
// bytes before `s`, within `buffer`, may be read). Any `s` is accepted: one that is not
// inside `buffer` goes the general way.
bool ParseInt64InBuffer(std::string_view s, std::string_view buffer, int64_t* out);
bool ParseDoubleInBuffer(std::string_view s, std::string_view buffer, double* out);

}  // namespace kiln::data

#endif  // KILN_DATA_CSV_H_
