#include "kiln/data/importer.h"

#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <memory>

#include "kiln/base/publish_dir.h"
#include "kiln/base/sha256.h"
#include "kiln/base/str.h"

namespace kiln::data {
namespace {

std::string Rfc3339Utc(int64_t micros) {
  std::time_t secs = static_cast<std::time_t>(micros / 1000000);
  std::tm tm;
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string SplitFileName(const std::string& split) { return split + "/data-00000.kds"; }

// The source with every column's type fixed, and that schema.
absl::Status OpenTyped(Env* env, const InputSet& input, const ReadOptions& read,
                       std::unique_ptr<BlockSource>* source, TableSchema* schema,
                       Progress* progress) {
  KILN_ASSIGN_OR_RETURN(*source, OpenSource(env, input, read));
  *schema = (*source)->KnownSchema();
  if (!schema->empty()) return absl::OkStatus();
  // Inference reads the whole input once. It must stop on a bad row only under kError;
  // otherwise bad rows are counted (and quarantined) by the import pass alone.
  BadRowSink infer_bad(read.bad_rows == BadRowPolicy::kError ? BadRowPolicy::kError
                                                             : BadRowPolicy::kSkip);
  KILN_ASSIGN_OR_RETURN(*schema, InferTableSchema(env, input, read, &infer_bad, progress));
  ReadOptions typed = read;
  typed.type_overrides = *schema;
  KILN_ASSIGN_OR_RETURN(*source, OpenSource(env, input, typed));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ImportResult> ImportDataset(Env* env, const InputSet& input,
                                           const ImportOptions& caller_options) {
  ImportOptions options = caller_options;
  const std::string target = options.out_dir;
  if (target.empty()) return absl::InvalidArgumentError("import: no output directory given");
  if (input.format == Format::kDataset && !input.files.empty() && input.files[0] == target) {
    return absl::InvalidArgumentError(
        kiln::StrCat("import: ", target, " is both the input and the output"));
  }
  KILN_ASSIGN_OR_RETURN(SplitAssigner assigner, SplitAssigner::Create(options.splits));
  RecoverFromDeadWriters(target);
  const bool replacing = env->FileExists(JoinPath(target, kManifestName));
  if (replacing && !options.overwrite) {
    return absl::AlreadyExistsError(
        kiln::StrCat(target, " already holds a dataset; pass --overwrite to replace it"));
  }
  // A dataset being replaced stays whole until the new one is complete: the new one is
  // built in a sibling directory and swapped in at the end, so a killed re-import leaves
  // the old dataset (and a stray staging directory), never a half-written one.
  const std::string dir = replacing ? StagingDirFor(target) : target;
  const std::string manifest_path = JoinPath(dir, kManifestName);
  struct StagingCleanup {
    std::string path;
    bool armed;
    ~StagingCleanup() {
      std::error_code ec;
      if (armed) std::filesystem::remove_all(path, ec);
    }
  } cleanup{dir, replacing};
  if (replacing) {
    // Rows quarantined into the dataset directory go with the new dataset.
    std::string& q = options.read.quarantine_path;
    if (q.rfind(target + "/", 0) == 0) q = JoinPath(dir, q.substr(target.size() + 1));
  }

  std::unique_ptr<BlockSource> source;
  TableSchema schema;
  KILN_RETURN_IF_ERROR(OpenTyped(env, input, options.read, &source, &schema, options.progress));
  const std::string& partition = options.splits.partition_feature;
  if (!partition.empty()) {
    bool found = false;
    for (const ColumnSpec& c : schema) found |= c.name == partition;
    if (!found) {
      std::vector<std::string> names;
      for (const ColumnSpec& c : schema) names.push_back(c.name);
      return absl::InvalidArgumentError(
          kiln::StrCat("import: partition feature '", partition,
                       "' is not a column; columns: ", kiln::StrJoin(names, ", ")));
    }
  }

  // From here on the directory changes: first make sure it no longer looks like a dataset.
  KILN_RETURN_IF_ERROR(env->CreateDirs(dir));
  if (env->FileExists(manifest_path)) {
    KILN_RETURN_IF_ERROR(env->DeleteFile(manifest_path));
    KILN_RETURN_IF_ERROR(env->SyncDir(dir));
  }
  const auto& splits = options.splits.splits;
  std::vector<std::unique_ptr<DatasetWriter>> writers;
  for (const auto& [name, weight] : splits) {
    KILN_RETURN_IF_ERROR(env->CreateDirs(JoinPath(dir, name)));
    KILN_ASSIGN_OR_RETURN(auto w, DatasetWriter::Create(env, JoinPath(dir, SplitFileName(name)),
                                                        schema, options.writer));
    writers.push_back(std::move(w));
  }

  // Decoding and split assignment run on every core; the writers take the batches in
  // input order, so the written bytes (and so the fingerprints) do not depend on timing.
  BadRowSink bad(options.read.bad_rows, options.read.quarantine_path);
  std::vector<std::vector<uint32_t>> rows(splits.size());
  KILN_RETURN_IF_ERROR(ForEachBatchOrdered(
      source.get(), &bad, DefaultThreads(),
      [&](Batch& batch) {
        assigner.Assign(batch, &batch.row_tags);
        return absl::OkStatus();
      },
      [&](Batch& batch) -> absl::Status {
        for (auto& r : rows) r.clear();
        for (size_t r = 0; r < batch.num_rows; ++r) {
          rows[batch.row_tags[r]].push_back(static_cast<uint32_t>(r));
        }
        for (size_t s = 0; s < splits.size(); ++s) {
          if (rows[s].empty()) continue;
          absl::Status st = writers[s]->AppendRows(batch, rows[s]);
          if (!st.ok()) {
            return absl::Status(st.code(),
                                kiln::StrCat("import of ", batch.source, ": ", st.message()));
          }
        }
        return absl::OkStatus();
      },
      options.progress));
  KILN_RETURN_IF_ERROR(bad.Finish());

  ImportResult result;
  DatasetManifest& m = result.manifest;
  m.created = Rfc3339Utc(env->NowMicros());
  m.source_format = std::string(FormatName(input.format));
  m.source_files = input.files;
  m.span = options.span.has_value() ? options.span : input.span;
  m.schema = schema;
  m.partition_feature = partition;
  Sha256 total;
  for (size_t s = 0; s < splits.size(); ++s) {
    KILN_RETURN_IF_ERROR(writers[s]->Finish());
    DatasetSplitInfo info;
    info.name = splits[s].first;
    info.weight = splits[s].second;
    info.rows = writers[s]->num_rows();
    // One file per split, so the split's byte stream is that file's.
    info.fingerprint = writers[s]->sha256();
    info.files.push_back(
        {SplitFileName(info.name), info.rows, writers[s]->file_bytes(), writers[s]->sha256()});
    total.Update(kiln::StrCat(info.name, "\t", info.fingerprint, "\n"));
    m.num_rows += info.rows;
    m.splits.push_back(std::move(info));
  }
  m.fingerprint = total.HexDigest();
  m.bad_rows = bad.count();
  result.bad_rows = bad.samples();
  // Last: only now does the directory become a dataset.
  KILN_RETURN_IF_ERROR(WriteFileAtomically(env, manifest_path, ManifestToJson(m)));
  if (replacing) {
    KILN_RETURN_IF_ERROR(PublishDirectory(env, dir, target, /*replace=*/true));
    cleanup.armed = false;
  }
  return result;
}

}  // namespace kiln::data
