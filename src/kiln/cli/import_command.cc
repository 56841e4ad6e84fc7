// `kiln import`: TFX ExampleGen.
#include <cstdio>

#include "kiln/base/progress.h"
#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/cli/data_flags.h"
#include "kiln/cli/metadata_flags.h"
#include "kiln/data/importer.h"

namespace kiln::cli {
namespace {

struct ImportFlags {
  DataFlags data;
  std::string out;
  std::string splits = "train:2,eval:1";
  std::string partition_feature;
  bool overwrite = false;
  bool quiet = false;
  MetadataFlags metadata;
};

int RunImport(const ImportFlags& f) {
  Env* env = Env::Default();
  auto input = f.data.Resolve(env);
  if (!input.ok()) return ReportError("import", input.status());
  std::string quarantine = QuarantinePath(f.out, *input);
  auto read = f.data.ReadOptions(env, quarantine);
  if (!read.ok()) return ReportError("import", read.status());
  data::ImportOptions opts;
  opts.out_dir = f.out;
  opts.read = *read;
  opts.overwrite = f.overwrite;
  auto splits = data::ParseSplitConfig(f.splits);
  if (!splits.ok()) return ReportError("import", splits.status());
  opts.splits = *splits;
  opts.splits.partition_feature = f.partition_feature;
  // Two passes over the input: type inference, then the import itself.
  Progress progress("import", 2 * InputBytes(env, *input),
                    !f.quiet && Progress::StderrIsTerminal());
  opts.progress = &progress;
  int64_t start = env->NowMicros();
  auto result = data::ImportDataset(env, *input, opts);
  if (!result.ok()) return ReportError("import", result.status());
  double secs = static_cast<double>(env->NowMicros() - start) / 1e6;
  const auto& m = result->manifest;
  if (!f.quiet) {
    std::printf("imported %llu rows, %zu columns from %zu %s file(s)%s into %s (%.2fs)\n",
                static_cast<unsigned long long>(m.num_rows), m.schema.size(), m.source_files.size(),
                std::string(data::FormatName(input->format)).c_str(),
                m.span ? StrCat(" (span ", *m.span, ")").c_str() : "", f.out.c_str(), secs);
    for (const auto& s : m.splits) {
      std::printf("  %-8s %10llu rows  sha256 %s\n", s.name.c_str(),
                  static_cast<unsigned long long>(s.rows), s.fingerprint.substr(0, 16).c_str());
    }
    std::printf("  fingerprint %s\n", m.fingerprint.c_str());
  }
  if (m.bad_rows > 0) {
    std::fprintf(stderr, "kiln import: %llu bad row(s) %s; first ones:\n",
                 static_cast<unsigned long long>(m.bad_rows),
                 read->bad_rows == data::BadRowPolicy::kQuarantine
                     ? StrCat("quarantined to ", quarantine).c_str()
                     : "skipped");
    for (size_t i = 0; i < result->bad_rows.size() && i < 5; ++i) {
      const auto& row = result->bad_rows[i];
      std::fprintf(stderr, "  %s:%llu: %s\n", row.file.c_str(),
                   static_cast<unsigned long long>(row.line), row.message.c_str());
    }
  }
  metadata::ExecutionRecord record;
  record.type = "Import";
  record.parameters = {{"splits", f.splits}};
  if (!f.partition_feature.empty()) record.parameters["partition_feature"] = f.partition_feature;
  metadata::Artifact examples{.type = "Examples", .uri = AbsolutePath(f.out)};
  examples.properties = {{"fingerprint", m.fingerprint},
                         {"rows", static_cast<int64_t>(m.num_rows)},
                         {"bad_rows", static_cast<int64_t>(m.bad_rows)}};
  if (m.span) examples.properties["span"] = *m.span;
  for (const auto& s : m.splits) {
    examples.custom_properties[StrCat("split.", s.name, ".rows")] = static_cast<int64_t>(s.rows);
    examples.custom_properties[StrCat("split.", s.name, ".fingerprint")] = s.fingerprint;
  }
  record.outputs = {{"examples", examples}};
  if (auto s = f.metadata.Record("import", record, {DataInput(f.data, *input)}); !s.ok()) {
    return ReportError("import", s);
  }
  return kExitOk;
}

}  // namespace

void AddImportCommand(CLI::App& root) {
  auto flags = std::make_shared<ImportFlags>();
  CLI::App* app = root.add_subcommand(
      "import", "Convert data into kiln's columnar dataset with splits (TFX ExampleGen)");
  app->footer(
      StrCat(kDataHelp,
             "\n\nRows are assigned to splits by a hash of their content (or of "
             "--partition-feature, so that every row of one user lands in one split): the same "
             "input always gives the same splits and the same fingerprint. DIR/manifest.json is "
             "written last; a directory without it is not a dataset.\n\nExample:\n  kiln import "
             "data/span-{SPAN}/*.csv --partition-feature user_id --out datasets/clicks\n\n",
             kExitCodesHelp));
  flags->data.Add(app);
  app->add_option("--out", flags->out, "Dataset directory to write")->required();
  app->add_option("--splits", flags->splits, "Split names and weights")->capture_default_str();
  app->add_option("--partition-feature", flags->partition_feature,
                  "Keep every row with the same value of this feature in one split");
  app->add_flag("--overwrite", flags->overwrite, "Replace a dataset already at --out");
  app->add_flag("--quiet,-q", flags->quiet, "Print nothing on success");
  flags->metadata.Add(app, /*recording=*/true);
  app->callback([flags] { Exit(RunImport(*flags)); });
}

}  // namespace kiln::cli
