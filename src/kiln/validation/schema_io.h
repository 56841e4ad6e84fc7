// Reading and writing tensorflow.metadata Schema text protos (schema.pbtxt), the format
// TFDV and TFX use. Free functions; thread-safe when the Env is.
#ifndef KILN_VALIDATION_SCHEMA_IO_H_
#define KILN_VALIDATION_SCHEMA_IO_H_

#include <string>
#include <string_view>
#include <vector>

#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "tensorflow_metadata/proto/v0/schema.pb.h"

namespace kiln::validation {

struct SchemaParseResult {
  tensorflow::metadata::v0::Schema schema;
  // One line per field the parser skipped because this version of the proto does not
  // know it ("FILE:LINE:COL: unknown field ..."); empty for a clean parse.
  std::vector<std::string> warnings;
};

// Parses schema text. `name` stands for the file in messages. Unknown fields (from a
// newer TFMD) are skipped and reported as warnings, as TFDV's loader tolerates them.
// Errors: kInvalidArgument "NAME:LINE:COL: message" for malformed text.
absl::StatusOr<SchemaParseResult> ParseSchemaText(std::string_view text, std::string_view name);

// Reads and parses `path`. Errors: those of ReadFileToString, and of ParseSchemaText.
absl::StatusOr<SchemaParseResult> ReadSchema(Env* env, const std::string& path);

// The schema as text format, fields in declaration order (what TFDV's write_schema_text
// produces for the same message).
std::string SchemaToText(const tensorflow::metadata::v0::Schema& schema);

// Writes SchemaToText(schema) to `path` atomically.
absl::Status WriteSchema(Env* env, const std::string& path,
                         const tensorflow::metadata::v0::Schema& schema);

}  // namespace kiln::validation

#endif  // KILN_VALIDATION_SCHEMA_IO_H_
