// The input flags shared by every command that reads data (stats, import, validate):
// what to read, how to parse it, and what to do with rows that do not parse.
#ifndef KILN_CLI_DATA_FLAGS_H_
#define KILN_CLI_DATA_FLAGS_H_

#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "kiln/base/env.h"
#include "kiln/data/input.h"
#include "kiln/data/source.h"
#include "tensorflow_metadata/proto/v0/schema.pb.h"

namespace kiln::cli {

struct DataFlags {
  std::string input;
  int64_t span = -1;
  std::string split;
  std::string format;
  std::string delimiter;
  std::vector<std::string> null_tokens;
  std::string schema;  // schema.pbtxt whose feature types override inference
  std::string bad_rows = "error";

  // Declares DATA as the first positional argument plus the parsing flags.
  void Add(CLI::App* app);
  absl::StatusOr<data::InputSet> Resolve(Env* env) const;
  // `quarantine_path` receives rows under --bad-rows=quarantine.
  // `parsed_schema`, when the caller has already read --schema, saves reading it again.
  absl::StatusOr<data::ReadOptions> ReadOptions(
      Env* env, const std::string& quarantine_path,
      const tensorflow::metadata::v0::Schema* parsed_schema = nullptr) const;
};

// Where --bad-rows=quarantine writes rejected rows: DIR/quarantine.csv, .jsonl or
// .tfrecord (TFRecord-framed), matching the input's format.
std::string QuarantinePath(const std::string& dir, const data::InputSet& input);

// Total size of the input's files (0 for a dataset directory: not known up front). Used
// for progress percentages only.
uint64_t InputBytes(Env* env, const data::InputSet& input);

// Help text describing DATA, shared by the commands.
extern const char* const kDataHelp;

}  // namespace kiln::cli

#endif  // KILN_CLI_DATA_FLAGS_H_
