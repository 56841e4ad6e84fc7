// `kiln schema`: TFX SchemaGen (`infer`) and a readable comparison of two schemas (`diff`).
#include <cstdio>

#include "kiln/base/sha256.h"
#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/cli/metadata_flags.h"
#include "kiln/validation/schema_diff.h"
#include "kiln/validation/schema_infer.h"
#include "kiln/validation/schema_io.h"
#include "kiln/validation/statistics_io.h"

namespace kiln::cli {
namespace {

namespace tfmd = ::tensorflow::metadata::v0;

struct InferFlags {
  std::string stats;
  std::string out;
  std::string split;
  std::string curated;
  validation::InferSchemaOptions options;
  bool quiet = false;
  MetadataFlags metadata;
};

struct DiffFlags {
  std::string a, b;
};

void PrintWarnings(const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) std::fprintf(stderr, "kiln schema: warning: %s\n", w.c_str());
}

// The version of a curated schema's content: the version recorded for the same bytes at
// the same path, else one more than the highest recorded there (1 for the first). 0 when
// nothing can be read (recording off, no store yet, a store error).
int64_t CuratedVersion(const MetadataFlags& metadata, const std::string& path,
                       const std::string& sha) {
  if (metadata.off) return 0;
  auto store = metadata.OpenForReading();
  if (!store.ok()) return absl::IsNotFound(store.status()) ? 1 : 0;
  metadata::Query q;
  q.type = "Schema";
  q.property = std::make_pair(std::string("curated_path"), metadata::Value(path));
  auto found = (*store)->GetArtifacts(q);
  if (absl::IsNotFound(found.status())) return 1;
  if (!found.ok()) return 0;
  int64_t highest = 0;
  for (const metadata::Artifact& a : *found) {
    auto v = a.custom_properties.find("schema_version");
    auto h = a.custom_properties.find("content_sha256");
    if (v == a.custom_properties.end() || !std::holds_alternative<int64_t>(v->second)) continue;
    const int64_t version = std::get<int64_t>(v->second);
    if (h != a.custom_properties.end() && std::holds_alternative<std::string>(h->second) &&
        std::get<std::string>(h->second) == sha) {
      return version;
    }
    highest = std::max(highest, version);
  }
  return highest + 1;
}

// Records the SchemaGen execution: `parameters`, the statistics it read and the Schema at
// --out with its feature count; for a curated schema (`curated_sha` set) also the curated
// file's path, content hash and, when known (not 0), its version.
int RecordSchemaGen(const InferFlags& f, metadata::Properties parameters, int features,
                    const std::string& curated_sha, int64_t version) {
  metadata::ExecutionRecord record;
  record.type = "SchemaGen";
  record.parameters = std::move(parameters);
  metadata::Artifact out{.type = "Schema", .uri = AbsolutePath(f.out)};
  out.properties = {{"features", static_cast<int64_t>(features)}};
  if (!curated_sha.empty()) {
    out.custom_properties = {{"curated_path", AbsolutePath(f.curated)},
                             {"content_sha256", curated_sha}};
    if (version) out.custom_properties["schema_version"] = version;
  }
  record.outputs = {{"schema", out}};
  MetadataFlags::Input stats{.role = "statistics", .type = "ExampleStatistics", .uri = f.stats};
  if (auto s = f.metadata.Record("schema infer", record, {stats}); !s.ok()) {
    return ReportError("schema infer", s);
  }
  return kExitOk;
}

// --curated PATH that exists: the schema a person keeps, used as is (bytes and comments).
int UseCurated(const InferFlags& f) {
  Env* env = Env::Default();
  const std::string path = AbsolutePath(f.curated);
  auto text = ReadFileToString(env, path);
  if (!text.ok()) return ReportError("schema infer", text.status());
  auto parsed = validation::ParseSchemaText(*text, path);  // refuses one that does not parse
  if (!parsed.ok()) return ReportError("schema infer", parsed.status());
  PrintWarnings(parsed->warnings);
  if (auto s = WriteFileAtomically(env, f.out, *text); !s.ok()) {
    return ReportError("schema infer", s);
  }
  const std::string sha = Sha256Hex(*text);
  const int64_t version = CuratedVersion(f.metadata, path, sha);
  if (!f.quiet) {
    std::printf(
        "using the curated schema %s%s: %d features (not inferred; edit that file to "
        "change it)\n",
        path.c_str(), version ? StrCat(" (version ", version, ")").c_str() : "",
        parsed->schema.feature_size());
  }
  return RecordSchemaGen(f, {{"curated", path}}, parsed->schema.feature_size(), sha, version);
}

int RunInfer(const InferFlags& f) {
  Env* env = Env::Default();
  if (!f.curated.empty() && env->FileExists(f.curated)) return UseCurated(f);
  if (f.options.max_string_domain_size < 0) {
    return ReportError("schema infer",
                       absl::InvalidArgumentError("--max-string-domain-size must not be negative"));
  }
  auto list = validation::LoadStatistics(env, f.stats);
  if (!list.ok()) return ReportError("schema infer", list.status());
  auto dataset = validation::SelectDataset(*list, f.split);
  if (!dataset.ok()) return ReportError("schema infer", dataset.status());
  auto schema = validation::InferSchema(*dataset, f.options);
  if (!schema.ok()) return ReportError("schema infer", schema.status());
  const std::string text = validation::SchemaToText(*schema);
  if (auto s = WriteFileAtomically(env, f.out, text); !s.ok()) {
    return ReportError("schema infer", s);
  }
  std::string curated_sha;
  int64_t version = 0;
  if (!f.curated.empty()) {
    // The first run seeds the curated schema; from now on a person owns it.
    absl::Status s = env->CreateDirs(Dirname(AbsolutePath(f.curated)));
    if (s.ok()) s = WriteFileAtomically(env, f.curated, text);
    if (!s.ok()) return ReportError("schema infer", s);
    curated_sha = Sha256Hex(text);
    // 1 the first time; more when a person deleted the file to have it inferred again.
    version = CuratedVersion(f.metadata, AbsolutePath(f.curated), curated_sha);
    if (!f.quiet) {
      std::printf("wrote the curated schema %s: review and edit it; later runs use it as is\n",
                  AbsolutePath(f.curated).c_str());
    }
  }
  if (!f.quiet) {
    int required = 0;
    for (const auto& feature : schema->feature()) {
      if (feature.presence().min_fraction() >= 1.0) ++required;
    }
    std::printf(
        "wrote %s: %d features (%d required), %d string domains, from %llu examples "
        "of dataset '%s'\n",
        f.out.c_str(), schema->feature_size(), required, schema->string_domain_size(),
        static_cast<unsigned long long>(dataset->num_examples()), dataset->name().c_str());
  }
  return RecordSchemaGen(
      f,
      {{"split", dataset->name()},
       {"max_string_domain_size", static_cast<int64_t>(f.options.max_string_domain_size)}},
      schema->feature_size(), curated_sha, version);
}

int RunDiff(const DiffFlags& f) {
  Env* env = Env::Default();
  auto a = validation::ReadSchema(env, f.a);
  if (!a.ok()) return ReportError("schema diff", a.status());
  PrintWarnings(a->warnings);
  auto b = validation::ReadSchema(env, f.b);
  if (!b.ok()) return ReportError("schema diff", b.status());
  PrintWarnings(b->warnings);
  std::vector<std::string> lines = validation::SchemaDiff(a->schema, b->schema);
  if (lines.empty()) {
    std::printf("schemas are equivalent\n");
    return kExitOk;
  }
  for (const auto& line : lines) std::printf("%s\n", line.c_str());
  std::printf("%zu difference(s)\n", lines.size());
  return kExitFindings;
}

}  // namespace

void AddSchemaCommand(CLI::App& root) {
  CLI::App* schema = root.add_subcommand(
      "schema", "Infer a schema from statistics (TFX SchemaGen), or compare two schemas");
  schema->require_subcommand(1);
  schema->footer(
      "Examples:\n  kiln schema infer --stats stats/ --split train --out schema.pbtxt\n"
      "  kiln schema diff old/schema.pbtxt new/schema.pbtxt\n\nExit codes: 0 success, "
      "3 (diff) the schemas differ, 1 internal or I/O failure, 2 usage or input error");

  auto infer = std::make_shared<InferFlags>();
  CLI::App* app = schema->add_subcommand(
      "infer", "Infer schema.pbtxt (tensorflow_metadata Schema) from statistics");
  app->footer(StrCat(
      "Follows tfdv.infer_schema: types from the statistics; presence min_count 1 and, for a "
      "feature never missing, min_fraction 1; value_count min = max = N when every example "
      "has exactly N values (else min 1); a string domain for string features with at most "
      "--max-string-domain-size distinct values. Edit the result by hand: it is the contract "
      "`kiln validate` checks data against.\n\n"
      "With --curated PATH (as in a pipeline): the first run infers and writes PATH; every "
      "later run uses PATH as it is, so edits a person makes (tighter domains, a relaxed "
      "presence, a drift_comparator) are kept. Each distinct content of PATH is a version "
      "(1, 2, ...), recorded on the Schema artifact (schema_version, content_sha256).\n\n"
      "--stats takes a statistics directory (as written by `kiln stats`), statistics.pb, "
      "statistics.json, or TFDV's TFRecord output.\n\n"
      "Example:\n  kiln stats data/train.csv --out stats/\n  kiln schema infer --stats stats/ "
      "--out schema.pbtxt\n\n",
      kExitCodesHelp));
  app->add_option("--stats", infer->stats, "Statistics to infer from")->required();
  app->add_option("--out", infer->out, "Schema file to write (text proto)")->required();
  app->add_option("--split", infer->split,
                  "Dataset (split) of the statistics to use (default: the only one, or 'all')");
  app->add_option("--max-string-domain-size", infer->options.max_string_domain_size,
                  "Largest number of distinct values given a string domain")
      ->capture_default_str();
  app->add_flag("--infer-ranges", infer->options.infer_ranges,
                "Record observed min/max as int_domain / float_domain bounds");
  app->add_flag("--infer-shape", infer->options.infer_feature_shape,
                "Write shape {dim {size: N}} for features always present with N values "
                "(TFDV's infer_feature_shape) instead of value_count");
  app->add_option("--curated", infer->curated,
                  "The schema a person keeps: when this file exists it is used as is (copied "
                  "to --out, versioned in the metadata store) instead of inferring; when it "
                  "does not, the inferred schema is also written here");
  app->add_flag("--quiet,-q", infer->quiet, "Print nothing on success");
  infer->metadata.Add(app, /*recording=*/true);
  app->callback([infer] { Exit(RunInfer(*infer)); });

  auto diff = std::make_shared<DiffFlags>();
  CLI::App* d = schema->add_subcommand("diff", "Show how schema B differs from schema A");
  d->footer(
      "Features are matched by name; the order of features and of domain values does not "
      "matter.\n\nExit codes: 0 the schemas are equivalent, 3 they differ (the differences "
      "are printed), 1 internal or I/O failure, 2 usage or input error (e.g. a file that "
      "does not parse, named with line and column)");
  d->add_option("A", diff->a, "The old schema")->required();
  d->add_option("B", diff->b, "The new schema")->required();
  d->callback([diff] { Exit(RunDiff(*diff)); });
}

}  // namespace kiln::cli
