#include "kiln/validation/statistics_io.h"

#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "kiln/base/crc32c.h"
#include "kiln/data/tfrecord.h"

namespace kiln::validation {
namespace {

using tensorflow::metadata::v0::DatasetFeatureStatistics;
using tensorflow::metadata::v0::DatasetFeatureStatisticsList;

// Collects the first text-format parse error with its position.
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (message_.empty()) message_ = absl::StrCat(line + 1, ":", column + 1, ": ", message);
  }
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

// True when `bytes` starts with a TFRecord header whose length CRC checks out.
bool LooksLikeTfRecord(std::string_view bytes) {
  if (bytes.size() < data::kTfRecordHeaderBytes) return false;
  uint32_t masked;
  std::memcpy(&masked, bytes.data() + 8, 4);
  return crc32c::Mask(crc32c::Value(bytes.data(), 8)) == masked;
}

bool ParseJson(std::string_view text, DatasetFeatureStatisticsList* out, std::string* error) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(text.data(), text.size()), out, options);
  if (!status.ok()) *error = status.ToString();
  return status.ok();
}

// True when the file opens like a JSON DatasetFeatureStatisticsList: `{` then the key
// "datasets". Only the first few kilobytes are read, so a large JSON-lines data file
// costs nothing to rule out.
bool StartsLikeStatisticsJson(Env* env, const std::string& path) {
  auto file = env->NewSequentialFile(path);
  if (!file.ok()) return false;
  std::string head(4096, '\0');
  auto n = (*file)->Read(head.size(), head.data());
  if (!n.ok()) return false;
  head.resize(*n);
  size_t i = head.find_first_not_of(" \t\r\n");
  if (i == std::string::npos || head[i] != '{') return false;
  i = head.find_first_not_of(" \t\r\n", i + 1);
  return i != std::string::npos && head.compare(i, 10, "\"datasets\"") == 0;
}

std::string Extension(const std::string& path) {
  std::string base = Basename(path);
  size_t dot = base.rfind('.');
  return dot == std::string::npos ? "" : base.substr(dot);
}

}  // namespace

absl::StatusOr<std::string> ResolveStatisticsFile(Env* env, const std::string& path) {
  if (!env->FileExists(path)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file or directory"));
  }
  if (!env->IsDirectory(path)) return path;
  for (const char* name : kStatisticsFileNames) {
    std::string candidate = JoinPath(path, name);
    if (env->FileExists(candidate) && !env->IsDirectory(candidate)) return candidate;
  }
  return absl::NotFoundError(absl::StrCat(path, ": directory holds no statistics (looked for ",
                                          absl::StrJoin(kStatisticsFileNames, ", "), ")"));
}

bool IsStatisticsPath(Env* env, const std::string& path) {
  if (!env->FileExists(path)) return false;
  if (env->IsDirectory(path)) return ResolveStatisticsFile(env, path).ok();
  std::string ext = Extension(path);
  std::string base = Basename(path);
  if (ext == ".pb" || ext == ".pbtxt") return true;
  if (ext == ".tfrecord" || ext == ".tfrecords") {
    return absl::StrContains(base, "stats") || absl::StrContains(base, "statistics");
  }
  if (ext == ".json") return StartsLikeStatisticsJson(env, path);
  return false;
}

absl::StatusOr<DatasetFeatureStatisticsList> LoadStatistics(Env* env, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string file, ResolveStatisticsFile(env, path));
  KILN_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(env, file));
  DatasetFeatureStatisticsList list;
  std::string ext = Extension(file);
  if (ext == ".json") {
    std::string error;
    if (!ParseJson(bytes, &list, &error)) {
      return absl::DataLossError(absl::StrCat(file, ": not a statistics JSON file: ", error));
    }
  } else if (ext == ".pbtxt" || ext == ".txt") {
    google::protobuf::TextFormat::Parser parser;
    FirstError errors;
    parser.RecordErrorsTo(&errors);
    if (!parser.ParseFromString(bytes, &list)) {
      return absl::DataLossError(absl::StrCat(file, ":", errors.message()));
    }
  } else if (LooksLikeTfRecord(bytes)) {
    KILN_ASSIGN_OR_RETURN(auto reader, data::TFRecordReader::FromMemory(
                                           bytes, file, data::TFRecordReader::Options()));
    std::string record;
    KILN_ASSIGN_OR_RETURN(bool any, reader->Next(&record));
    if (!any || !list.ParseFromString(record)) {
      return absl::DataLossError(
          absl::StrCat(file, ": first TFRecord record is not a DatasetFeatureStatisticsList"));
    }
  } else if (!list.ParseFromString(bytes)) {
    return absl::DataLossError(
        absl::StrCat(file,
                     ": not a binary DatasetFeatureStatisticsList proto (statistics "
                     "are what `kiln stats` writes)"));
  }
  if (list.datasets_size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": statistics hold no dataset"));
  }
  return list;
}

absl::StatusOr<DatasetFeatureStatistics> SelectDataset(const DatasetFeatureStatisticsList& list,
                                                       std::string_view split) {
  std::vector<std::string> names;
  for (const auto& d : list.datasets()) names.push_back(d.name());
  if (!split.empty()) {
    for (const auto& d : list.datasets()) {
      if (d.name() == split) return d;
    }
    return absl::NotFoundError(
        absl::StrCat("no dataset named '", std::string(split),
                     "' in the statistics (have: ", absl::StrJoin(names, ", "), ")"));
  }
  if (list.datasets_size() == 1) return list.datasets(0);
  for (const auto& d : list.datasets()) {
    if (d.name() == "all") return d;
  }
  if (list.datasets_size() == 0) return absl::InvalidArgumentError("statistics hold no dataset");
  return absl::InvalidArgumentError(absl::StrCat("statistics hold several datasets (",
                                                 absl::StrJoin(names, ", "),
                                                 "); name one with --split"));
}

}  // namespace kiln::validation
