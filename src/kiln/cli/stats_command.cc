// `kiln stats`: TFX StatisticsGen.
#include <cstdio>

#include "absl/strings/str_format.h"
#include "kiln/base/progress.h"
#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/cli/data_flags.h"
#include "kiln/cli/metadata_flags.h"
#include "kiln/data/dataset.h"
#include "kiln/stats/generator.h"

namespace kiln::cli {
namespace {

struct StatsFlags {
  DataFlags data;
  std::string out;
  stats::StatsOptions options;
  bool quiet = false;
  MetadataFlags metadata;
};

void PrintBadRows(const data::BadRowSink& bad, const std::string& quarantine) {
  if (bad.count() == 0) return;
  std::fprintf(stderr, "kiln: %llu bad row(s) %s", static_cast<unsigned long long>(bad.count()),
               bad.policy() == data::BadRowPolicy::kQuarantine ? "quarantined" : "skipped");
  if (bad.policy() == data::BadRowPolicy::kQuarantine)
    std::fprintf(stderr, " to %s", quarantine.c_str());
  std::fprintf(stderr, "; first ones:\n");
  int shown = 0;
  for (const auto& row : bad.samples()) {
    if (++shown > 5) break;
    std::fprintf(stderr, "  %s:%llu: %s\n", row.file.c_str(),
                 static_cast<unsigned long long>(row.line), row.message.c_str());
  }
}

int RunStats(const StatsFlags& f) {
  Env* env = Env::Default();
  auto input = f.data.Resolve(env);
  if (!input.ok()) return ReportError("stats", input.status());
  std::string quarantine = QuarantinePath(f.out, *input);
  auto read = f.data.ReadOptions(env, quarantine);
  if (!read.ok()) return ReportError("stats", read.status());
  if (auto s = env->CreateDirs(f.out); !s.ok()) return ReportError("stats", s);
  data::BadRowSink bad(read->bad_rows, quarantine);

  // An imported dataset gets one statistics entry per split, as StatisticsGen does.
  std::vector<std::string> splits = {""};
  if (input->format == data::Format::kDataset && input->split.empty()) {
    auto manifest = data::ReadManifest(env, input->files[0]);
    if (!manifest.ok()) return ReportError("stats", manifest.status());
    splits.clear();
    for (const auto& s : manifest->splits) splits.push_back(s.name);
  }
  if (input->span && !f.quiet)
    std::printf("reading span %lld\n", static_cast<long long>(*input->span));
  int64_t start = env->NowMicros();
  tensorflow::metadata::v0::DatasetFeatureStatisticsList list;
  for (const auto& split : splits) {
    data::InputSet in = *input;
    if (!split.empty()) in.split = split;
    std::string name = in.split.empty() ? "all" : in.split;
    Progress progress(StrCat("stats ", name), InputBytes(env, in),
                      !f.quiet && Progress::StderrIsTerminal());
    stats::StatsOptions options = f.options;
    options.progress = &progress;
    auto ds = stats::ComputeStatistics(env, in, *read, options, &bad, name);
    if (!ds.ok()) return ReportError("stats", ds.status());
    *list.add_datasets() = std::move(*ds);
  }
  if (auto s = bad.Finish(); !s.ok()) return ReportError("stats", s);
  if (auto s = stats::WriteStatistics(env, f.out, list); !s.ok()) return ReportError("stats", s);
  double secs = static_cast<double>(env->NowMicros() - start) / 1e6;
  if (!f.quiet) {
    for (const auto& ds : list.datasets())
      std::printf("%s", stats::FormatStatisticsTable(ds).c_str());
    std::printf("wrote %s/statistics.pb and statistics.json (%.2fs)\n", f.out.c_str(), secs);
  }
  PrintBadRows(bad, quarantine);
  metadata::ExecutionRecord record;
  record.type = "StatisticsGen";
  metadata::Artifact out{.type = "ExampleStatistics", .uri = AbsolutePath(f.out)};
  std::vector<std::string> names;
  for (const auto& ds : list.datasets()) {
    names.push_back(ds.name());
    out.custom_properties[StrCat("split.", ds.name(), ".examples")] =
        static_cast<int64_t>(ds.num_examples());
  }
  out.properties["splits"] = StrJoin(names, ",");
  if (input->span) out.properties["span"] = *input->span;
  record.outputs = {{"statistics", out}};
  if (auto s = f.metadata.Record("stats", record, {DataInput(f.data, *input)}); !s.ok()) {
    return ReportError("stats", s);
  }
  return kExitOk;
}

}  // namespace

void AddStatsCommand(CLI::App& root) {
  auto flags = std::make_shared<StatsFlags>();
  CLI::App* app =
      root.add_subcommand("stats", "Compute feature statistics (TFX StatisticsGen / TFDV)");
  app->footer(kiln::StrCat(
      kDataHelp,
      "\n\nWrites DIR/statistics.pb and DIR/statistics.json (tensorflow_metadata "
      "DatasetFeatureStatisticsList; readable by TFDV and Facets) and prints a table. An "
      "imported dataset gets one entry per split.\n\nExample:\n  kiln stats "
      "data/span-{SPAN}/*.csv --out stats/\n\n",
      kExitCodesHelp));
  flags->data.Add(app);
  app->add_option("--out", flags->out, "Output directory")->required();
  app->add_option("--threads", flags->options.threads, "Worker threads (default: all cores)")
      ->check(CLI::Range(1, 256));
  app->add_option("--top-values", flags->options.num_top_values,
                  "Top values kept per string feature")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app->add_option("--histogram-buckets", flags->options.num_histogram_buckets,
                  "Buckets of the equal-width histogram")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  app->add_option("--quantile-buckets", flags->options.num_quantiles_histogram_buckets,
                  "Buckets of the quantiles histogram")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  app->add_option("--max-exact-unique", flags->options.max_exact_unique,
                  "Distinct values per string feature counted exactly (less for very wide "
                  "tables, to bound memory); beyond, unique is a HyperLogLog estimate and top "
                  "values come from a heavy-hitter sketch")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 26));
  app->add_flag("--quiet,-q", flags->quiet, "Do not print the table");
  flags->metadata.Add(app, /*recording=*/true);
  app->callback([flags] { Exit(RunStats(*flags)); });
}

}  // namespace kiln::cli
