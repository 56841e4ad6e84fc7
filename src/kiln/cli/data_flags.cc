#include "kiln/cli/data_flags.h"

#include "kiln/base/str.h"
#include "kiln/validation/schema_io.h"

namespace kiln::cli {

const char* const kDataHelp =
    "DATA is a file (.csv .tsv .jsonl .tfrecord, optionally .gz for TFRecord), a glob "
    "('logs/*.csv'), a span pattern ('data/span-{SPAN}/*.csv': the newest span unless "
    "--span), a directory of span-N folders, or a dataset written by `kiln import`.";

std::string QuarantinePath(const std::string& dir, const data::InputSet& input) {
  switch (input.format) {
    case data::Format::kJsonl:
      return JoinPath(dir, "quarantine.jsonl");
    case data::Format::kTfRecord:
      return JoinPath(dir, "quarantine.tfrecord");
    default:
      return JoinPath(dir, "quarantine.csv");
  }
}

uint64_t InputBytes(Env* env, const data::InputSet& input) {
  if (input.format == data::Format::kDataset) return 0;
  uint64_t total = 0;
  for (const auto& f : input.files) {
    auto size = env->FileSize(f);
    if (size.ok()) total += *size;
  }
  return total;
}

void DataFlags::Add(CLI::App* app) {
  app->add_option("DATA", input, "Input data (see below)")->required();
  app->add_option("--span", span, "Read this span instead of the newest");
  app->add_option("--split", split, "For an imported dataset: read only this split");
  app->add_option("--format", format, "Override format detection: csv, jsonl, tfrecord");
  app->add_option("--delimiter", delimiter, "CSV field delimiter (default ',', tab for .tsv)");
  app->add_option("--null-token", null_tokens,
                  "A CSV field value meaning missing (repeatable; empty fields always are)");
  app->add_option("--schema", schema, "schema.pbtxt whose feature types override type inference");
  app->add_option("--bad-rows", bad_rows,
                  "Rows that do not parse: error (stop, naming file, line and column), "
                  "skip (count and report), quarantine (skip and write them aside)")
      ->capture_default_str();
}

absl::StatusOr<data::InputSet> DataFlags::Resolve(Env* env) const {
  data::ResolveOptions opts;
  if (span >= 0) opts.span = span;
  opts.split = split;
  if (!format.empty()) {
    if (format == "csv")
      opts.format = data::Format::kCsv;
    else if (format == "jsonl")
      opts.format = data::Format::kJsonl;
    else if (format == "tfrecord")
      opts.format = data::Format::kTfRecord;
    else
      return absl::InvalidArgumentError(
          kiln::StrCat("--format: unknown format '", format, "'; valid: csv, jsonl, tfrecord"));
  }
  return data::ResolveInput(env, input, opts);
}

absl::StatusOr<data::ReadOptions> DataFlags::ReadOptions(
    Env* env, const std::string& quarantine_path,
    const tensorflow::metadata::v0::Schema* parsed_schema) const {
  data::ReadOptions read;
  if (!delimiter.empty()) {
    std::string d = delimiter == "\\t" || delimiter == "tab" ? "\t" : delimiter;
    if (d.size() != 1) {
      return absl::InvalidArgumentError(
          kiln::StrCat("--delimiter must be one character, got '", delimiter, "'"));
    }
    read.delimiter = d[0];
  }
  read.null_tokens = null_tokens;
  KILN_ASSIGN_OR_RETURN(read.bad_rows, data::ParseBadRowPolicy(bad_rows));
  read.quarantine_path = quarantine_path;
  validation::SchemaParseResult read_schema;
  if (!schema.empty() && parsed_schema == nullptr) {
    KILN_ASSIGN_OR_RETURN(read_schema, validation::ReadSchema(env, schema));
    parsed_schema = &read_schema.schema;
  }
  if (parsed_schema != nullptr) {
    for (const auto& f : parsed_schema->feature()) {
      switch (f.type()) {
        case tensorflow::metadata::v0::INT:
          read.type_overrides.push_back({f.name(), data::ValueType::kInt});
          break;
        case tensorflow::metadata::v0::FLOAT:
          read.type_overrides.push_back({f.name(), data::ValueType::kFloat});
          break;
        case tensorflow::metadata::v0::BYTES:
          read.type_overrides.push_back({f.name(), data::ValueType::kString});
          break;
        default:
          break;
      }
    }
  }
  return read;
}

}  // namespace kiln::cli
