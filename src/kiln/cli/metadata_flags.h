// The --metadata flag and lineage recording shared by kiln's commands. Commands that
// produce artifacts (import, stats, schema infer, validate, ...) record an execution
// with its inputs and outputs; `kiln meta` and `kiln lineage` read the records back.
#ifndef KILN_CLI_METADATA_FLAGS_H_
#define KILN_CLI_METADATA_FLAGS_H_

#include <memory>
#include <string>
#include <string_view>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "kiln/data/input.h"
#include "kiln/metadata/metadata_store.h"
#include "kiln/metadata/recorder.h"

namespace kiln::cli {

struct MetadataFlags {
  std::string url;   // --metadata; empty: the SQLite file in $KILN_HOME
  bool off = false;  // --no-metadata (recording commands only)

  // Adds --metadata, and --no-metadata when `recording`.
  void Add(CLI::App* app, bool recording);

  // For commands that read records: refuses (kNotFound) when no URL was given and the
  // default SQLite file does not exist, instead of creating an empty store.
  absl::StatusOr<std::unique_ptr<metadata::MetadataStore>> OpenForReading() const;

  // Records one execution for `command`. Returns the error when --metadata was given
  // (the user asked for a record, so a missing one is a failure); otherwise prints a
  // warning and returns OK: a quick `kiln stats` must not fail because ~/.kiln is
  // read-only.
  absl::Status Record(std::string_view command, const metadata::ExecutionRecord& record) const;

  // An input for `record`: the newest artifact stored at this uri (any type), or a new
  // external artifact of `type` with `properties`. Use RecordInputs to add it.
  struct Input {
    std::string role;
    std::string type;
    std::string uri;  // made absolute
    metadata::Properties properties;
  };
  absl::Status Record(std::string_view command, metadata::ExecutionRecord record,
                      const std::vector<Input>& inputs) const;
};

struct DataFlags;
// The data a command read, as a lineage input: a kiln dataset is "Examples" at its
// directory; anything else is "RawData" at the file (or the pattern, for several files),
// with its format and span.
MetadataFlags::Input DataInput(const DataFlags& flags, const data::InputSet& input);

// `path` as an absolute, normalised path (artifact uris are absolute so that records
// made from different working directories line up).
std::string AbsolutePath(const std::string& path);

}  // namespace kiln::cli

#endif  // KILN_CLI_METADATA_FLAGS_H_
