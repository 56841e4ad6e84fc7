#include "kiln/validation/schema_io.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace kiln::validation {
namespace {

// Gathers parser errors and warnings with 1-based positions prefixed by the file name.
class Collector : public google::protobuf::io::ErrorCollector {
 public:
  explicit Collector(std::string_view name) : name_(std::string(name)) {}
  void AddError(int line, int column, const std::string& message) override {
    if (error_.empty()) error_ = Format(line, column, message);
  }
  void AddWarning(int line, int column, const std::string& message) override {
    warnings_.push_back(Format(line, column, message));
  }
  const std::string& error() const { return error_; }
  std::vector<std::string>& warnings() { return warnings_; }

 private:
  std::string Format(int line, int column, const std::string& message) const {
    return absl::StrCat(name_, ":", line + 1, ":", column + 1, ": ", message);
  }
  std::string name_;
  std::string error_;
  std::vector<std::string> warnings_;
};

}  // namespace

absl::StatusOr<SchemaParseResult> ParseSchemaText(std::string_view text, std::string_view name) {
  SchemaParseResult result;
  Collector collector(name);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  parser.AllowUnknownField(true);
  if (!parser.ParseFromString(std::string(text), &result.schema)) {
    std::string error = collector.error();
    if (error.empty()) error = absl::StrCat(std::string(name), ": not a Schema text proto");
    return absl::InvalidArgumentError(error);
  }
  result.warnings = std::move(collector.warnings());
  return result;
}

absl::StatusOr<SchemaParseResult> ReadSchema(Env* env, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(env, path));
  return ParseSchemaText(text, path);
}

std::string SchemaToText(const tensorflow::metadata::v0::Schema& schema) {
  google::protobuf::TextFormat::Printer printer;
  printer.SetUseUtf8StringEscaping(true);
  std::string out;
  printer.PrintToString(schema, &out);
  return out;
}

absl::Status WriteSchema(Env* env, const std::string& path,
                         const tensorflow::metadata::v0::Schema& schema) {
  return WriteFileAtomically(env, path, SchemaToText(schema));
}

}  // namespace kiln::validation
