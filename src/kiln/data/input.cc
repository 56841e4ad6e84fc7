#include "kiln/data/input.h"

#include <glob.h>

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "kiln/base/str.h"
#include "kiln/base/string_map.h"
#include "kiln/data/csv.h"
#include "kiln/data/dataset.h"
#include "kiln/data/example_codec.h"
#include "kiln/data/jsonl.h"

namespace kiln::data {

std::string_view FormatName(Format f) {
  switch (f) {
    case Format::kCsv:
      return "csv";
    case Format::kJsonl:
      return "jsonl";
    case Format::kTfRecord:
      return "tfrecord";
    case Format::kDataset:
      return "dataset";
  }
  return "unknown";
}

namespace {

std::optional<Format> FormatFromName(std::string_view path) {
  std::string p(path);
  std::transform(p.begin(), p.end(), p.begin(), ::tolower);
  if (absl::EndsWith(p, ".gz")) p.resize(p.size() - 3);
  for (const char* ext : {".csv", ".tsv", ".txt"})
    if (absl::EndsWith(p, ext)) return Format::kCsv;
  for (const char* ext : {".jsonl", ".ndjson", ".json"})
    if (absl::EndsWith(p, ext)) return Format::kJsonl;
  for (const char* ext : {".tfrecord", ".tfrecords", ".tfr"})
    if (absl::EndsWith(p, ext)) return Format::kTfRecord;
  // TFX ExampleGen writes e.g. data_tfrecord-00000-of-00001.gz.
  if (Basename(p).find("tfrecord") != std::string::npos) return Format::kTfRecord;
  return std::nullopt;
}

absl::StatusOr<std::vector<std::string>> Glob(const std::string& pattern) {
  glob_t g;
  int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
  }
  globfree(&g);
  if (rc != 0 && rc != GLOB_NOMATCH) {
    return absl::InvalidArgumentError(kiln::StrCat("cannot expand '", pattern, "'"));
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool HasGlobChars(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

// Files of a directory that look like data (hidden files and manifests skipped).
absl::StatusOr<std::vector<std::string>> DataFilesIn(Env* env, const std::string& dir) {
  KILN_ASSIGN_OR_RETURN(auto names, env->ListDir(dir));
  std::vector<std::string> out;
  for (const auto& n : names) {
    if (n.empty() || n[0] == '.' || n[0] == '_') continue;
    std::string p = JoinPath(dir, n);
    if (env->IsDirectory(p)) continue;
    if (FormatFromName(n)) out.push_back(p);
  }
  return out;
}

absl::Status FinishFiles(std::vector<std::string> files, const std::string& spec,
                         const ResolveOptions& options, InputSet* out) {
  if (files.empty()) {
    return absl::NotFoundError(kiln::StrCat("no input files match '", spec, "'"));
  }
  std::optional<Format> format = options.format;
  if (!format) {
    for (const auto& f : files) {
      std::optional<Format> ff = FormatFromName(f);
      if (!ff) {
        return absl::InvalidArgumentError(
            kiln::StrCat(f,
                         ": cannot tell the format from the extension; use .csv, .tsv, .jsonl, "
                         ".tfrecord (optionally .gz) or pass --format"));
      }
      if (format && *ff != *format) {
        return absl::InvalidArgumentError(kiln::StrCat("'", spec, "' mixes ", FormatName(*format),
                                                       " and ", FormatName(*ff), " files"));
      }
      format = ff;
    }
  }
  out->format = *format;
  out->files = std::move(files);
  return absl::OkStatus();
}

// Resolves a pattern holding {SPAN}: every match's span number is parsed from the
// part of the path the placeholder covered.
absl::StatusOr<InputSet> ResolveSpans(Env* env, const std::string& spec,
                                      const ResolveOptions& options) {
  size_t at = spec.find("{SPAN}");
  std::string prefix = spec.substr(0, at), suffix = spec.substr(at + 6);
  // The span is a directory component or a file name part; glob each candidate.
  KILN_ASSIGN_OR_RETURN(auto matches, Glob(prefix + "*" + suffix));
  std::map<int64_t, std::vector<std::string>> by_span;
  std::map<int64_t, std::string> empty_spans;  // span directories without data files
  for (const auto& m : matches) {
    if (m.size() < prefix.size() + suffix.size()) continue;
    // The digits right after the prefix are the span.
    size_t i = prefix.size();
    size_t j = i;
    while (j < m.size() && isdigit(static_cast<unsigned char>(m[j]))) ++j;
    if (j == i || j - i > 18) continue;
    int64_t span = std::stoll(m.substr(i, j - i));
    // Everything after the digits must match the suffix (possibly a glob).
    std::string rest = m.substr(j);
    if (!HasGlobChars(suffix) && rest != suffix) continue;
    std::string p = m;
    if (env->IsDirectory(p)) {
      KILN_ASSIGN_OR_RETURN(auto files, DataFilesIn(env, p));
      if (files.empty()) empty_spans[span] = p;
      for (auto& f : files) by_span[span].push_back(std::move(f));
    } else {
      by_span[span].push_back(p);
    }
  }
  if (by_span.empty()) {
    return absl::NotFoundError(kiln::StrCat("no span matches '", spec, "'"));
  }
  int64_t span = by_span.rbegin()->first;
  if (!empty_spans.empty() && empty_spans.rbegin()->first > span && !options.span) {
    // The newest span has no data yet (still being written?): say so rather than
    // quietly reading an older one.
    return absl::NotFoundError(kiln::StrCat("the newest span, ", empty_spans.rbegin()->first, " (",
                                            empty_spans.rbegin()->second,
                                            "), holds no data files; name a span with --span"));
  }
  if (options.span) {
    if (!by_span.count(*options.span)) {
      std::vector<std::string> have;
      for (const auto& [s, _] : by_span) have.push_back(std::to_string(s));
      return absl::NotFoundError(kiln::StrCat("span ", *options.span, " not found in '", spec,
                                              "'; spans present: ", kiln::StrJoin(have, ", ")));
    }
    span = *options.span;
  }
  InputSet out;
  out.span = span;
  std::vector<std::string> files = by_span[span];
  std::sort(files.begin(), files.end());
  KILN_RETURN_IF_ERROR(FinishFiles(std::move(files), spec, options, &out));
  return out;
}

}  // namespace

absl::StatusOr<InputSet> ResolveInput(Env* env, const std::string& spec,
                                      const ResolveOptions& options) {
  if (spec.empty()) return absl::InvalidArgumentError("no input given");
  if (spec.find("{SPAN}") != std::string::npos) return ResolveSpans(env, spec, options);
  InputSet out;
  if (env->IsDirectory(spec)) {
    if (env->FileExists(JoinPath(spec, "manifest.json"))) {
      out.format = Format::kDataset;
      out.files = {spec};
      out.split = options.split;
      return out;
    }
    KILN_ASSIGN_OR_RETURN(auto names, env->ListDir(spec));
    bool has_spans = std::any_of(names.begin(), names.end(),
                                 [](const std::string& n) { return absl::StartsWith(n, "span-"); });
    if (has_spans) return ResolveSpans(env, JoinPath(spec, "span-{SPAN}"), options);
    if (options.span) {
      return absl::InvalidArgumentError(
          kiln::StrCat("--span given but '", spec, "' has no span-N directories"));
    }
    KILN_ASSIGN_OR_RETURN(auto files, DataFilesIn(env, spec));
    if (files.empty()) {
      for (const auto& n : names) {
        if (absl::EndsWith(n, ".kds") || env->IsDirectory(JoinPath(spec, n))) {
          return absl::NotFoundError(
              kiln::StrCat(spec,
                           ": not a kiln dataset (no manifest.json; an import may have been "
                           "interrupted) and holds no data files"));
        }
      }
    }
    KILN_RETURN_IF_ERROR(FinishFiles(std::move(files), spec, options, &out));
    return out;
  }
  if (options.span) {
    return absl::InvalidArgumentError(
        kiln::StrCat("--span ", *options.span, " given but '", spec,
                     "' has no spans; use a pattern with {SPAN} or a directory of span-N folders"));
  }
  if (!options.split.empty()) {
    return absl::InvalidArgumentError(kiln::StrCat("--split ", options.split, " given but '", spec,
                                                   "' is not a dataset written by `kiln import`"));
  }
  if (HasGlobChars(spec)) {
    KILN_ASSIGN_OR_RETURN(auto files, Glob(spec));
    files.erase(std::remove_if(files.begin(), files.end(),
                               [&](const std::string& f) { return env->IsDirectory(f); }),
                files.end());
    KILN_RETURN_IF_ERROR(FinishFiles(std::move(files), spec, options, &out));
    return out;
  }
  if (!env->FileExists(spec)) {
    return absl::NotFoundError(kiln::StrCat(spec, ": no such file or directory"));
  }
  KILN_RETURN_IF_ERROR(FinishFiles({spec}, spec, options, &out));
  return out;
}

absl::StatusOr<std::unique_ptr<BlockSource>> OpenSource(Env* env, const InputSet& input,
                                                        const ReadOptions& options) {
  switch (input.format) {
    case Format::kCsv:
      return OpenCsvSource(env, input.files, options);
    case Format::kJsonl:
      return OpenJsonlSource(env, input.files, options);
    case Format::kTfRecord:
      return OpenTfRecordSource(env, input.files, options);
    case Format::kDataset:
      return OpenDatasetSource(env, input.files.at(0), input.split, options);
  }
  return absl::InternalError("unknown format");
}

absl::StatusOr<TableSchema> InferTableSchema(Env* env, const InputSet& input,
                                             const ReadOptions& options, BadRowSink* bad,
                                             Progress* progress) {
  KILN_ASSIGN_OR_RETURN(auto source, OpenSource(env, input, options));
  TableSchema known = source->KnownSchema();
  if (!known.empty()) return known;
  struct Seen {
    ValueType type;
    uint64_t block;
    size_t position;
  };
  const int threads = DefaultThreads();
  std::vector<StringMap<Seen>> per_thread(threads);
  KILN_RETURN_IF_ERROR(ForEachBatchParallel(
      source.get(), bad, threads,
      [&](int t, Batch& batch) -> absl::Status {
        auto& seen = per_thread[t];
        for (size_t c = 0; c < batch.columns.size(); ++c) {
          const Column& col = batch.columns[c];
          auto [it, inserted] = seen.try_emplace(col.name, Seen{col.type, batch.block_index, c});
          if (!inserted) {
            it->second.type = WiderType(it->second.type, col.type);
            if (std::tie(batch.block_index, c) < std::tie(it->second.block, it->second.position)) {
              it->second.block = batch.block_index;
              it->second.position = c;
            }
          }
        }
        return absl::OkStatus();
      },
      progress));
  StringMap<Seen> all;
  for (auto& m : per_thread) {
    for (auto& [name, s] : m) {
      auto [it, inserted] = all.try_emplace(name, s);
      if (!inserted) {
        it->second.type = WiderType(it->second.type, s.type);
        if (std::tie(s.block, s.position) < std::tie(it->second.block, it->second.position)) {
          it->second.block = s.block;
          it->second.position = s.position;
        }
      }
    }
  }
  std::vector<std::pair<std::string, Seen>> sorted(all.begin(), all.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second.block, a.second.position, a.first) <
           std::tie(b.second.block, b.second.position, b.first);
  });
  TableSchema schema;
  for (auto& [name, s] : sorted) {
    ValueType type = s.type;
    for (const auto& o : options.type_overrides)
      if (o.name == name) type = o.type;
    schema.push_back({name, type});
  }
  return schema;
}

}  // namespace kiln::data
