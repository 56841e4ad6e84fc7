// `kiln validate`: TFX ExampleValidator / tfdv.validate_statistics, with drift and skew.
#include <cstdio>
#include <optional>

#include "kiln/base/progress.h"
#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/cli/data_flags.h"
#include "kiln/cli/metadata_flags.h"
#include "kiln/stats/generator.h"
#include "kiln/validation/report.h"
#include "kiln/validation/schema_io.h"
#include "kiln/validation/statistics_io.h"
#include "kiln/validation/validator.h"

namespace kiln::cli {
namespace {

namespace tfmd = ::tensorflow::metadata::v0;

struct ValidateFlags {
  DataFlags data;
  std::string previous;
  std::string serving;
  std::string previous_split;
  std::string serving_split;
  std::optional<double> drift_threshold;
  std::string out;
  bool quiet = false;
  MetadataFlags metadata;
};

// The dataset of a control statistics file: the one named `wanted` when given; else the
// one named like the validated split when it has one, else its only (or "all") dataset.
absl::StatusOr<tfmd::DatasetFeatureStatistics> LoadControl(Env* env, const std::string& path,
                                                           const std::string& split,
                                                           const std::string& wanted) {
  KILN_ASSIGN_OR_RETURN(auto list, validation::LoadStatistics(env, path));
  if (!wanted.empty()) {
    auto d = validation::SelectDataset(list, wanted);
    if (!d.ok()) return absl::Status(d.status().code(), StrCat(path, ": ", d.status().message()));
    return d;
  }
  if (!split.empty()) {
    for (const auto& d : list.datasets()) {
      if (d.name() == split) return d;
    }
  }
  auto d = validation::SelectDataset(list, "");
  if (!d.ok()) return absl::Status(d.status().code(), StrCat(path, ": ", d.status().message()));
  return d;
}

// Statistics of raw DATA, computed the way `kiln stats` does and kept in DIR so the next
// run can use them as --previous.
absl::StatusOr<tfmd::DatasetFeatureStatistics> ComputeFromData(Env* env, const ValidateFlags& f,
                                                               const tfmd::Schema& schema) {
  KILN_ASSIGN_OR_RETURN(data::InputSet input, f.data.Resolve(env));
  std::string quarantine = QuarantinePath(f.out, input);
  KILN_ASSIGN_OR_RETURN(data::ReadOptions read, f.data.ReadOptions(env, quarantine, &schema));
  // Only string types are taken from the schema: they never make a row unreadable, and
  // keep e.g. zip codes textual. Numeric columns keep their inferred type, so a stray
  // word in an INT column becomes an INT_TYPE_NOT_INT_STRING anomaly, not a read error.
  std::erase_if(read.type_overrides,
                [](const data::ColumnSpec& c) { return c.type != data::ValueType::kString; });
  KILN_RETURN_IF_ERROR(env->CreateDirs(f.out));
  data::BadRowSink bad(read.bad_rows, quarantine);
  std::string name = input.split.empty() ? "all" : input.split;
  Progress progress(StrCat("validate: statistics of ", name), InputBytes(env, input),
                    !f.quiet && Progress::StderrIsTerminal());
  stats::StatsOptions options;
  options.progress = &progress;
  KILN_ASSIGN_OR_RETURN(tfmd::DatasetFeatureStatistics stats,
                        stats::ComputeStatistics(env, input, read, options, &bad, name));
  KILN_RETURN_IF_ERROR(bad.Finish());
  if (bad.count() > 0) {
    std::fprintf(stderr, "kiln validate: %llu bad row(s) left out of the statistics\n",
                 static_cast<unsigned long long>(bad.count()));
  }
  tfmd::DatasetFeatureStatisticsList list;
  *list.add_datasets() = stats;
  KILN_RETURN_IF_ERROR(stats::WriteStatistics(env, f.out, list));
  return stats;
}

int RunValidate(const ValidateFlags& f) {
  Env* env = Env::Default();
  if (f.drift_threshold && !(*f.drift_threshold >= 0)) {
    return ReportError("validate",
                       absl::InvalidArgumentError("--drift-threshold must be a number >= 0"));
  }
  auto schema = validation::ReadSchema(env, f.data.schema);
  if (!schema.ok()) return ReportError("validate", schema.status());
  for (const auto& w : schema->warnings) {
    std::fprintf(stderr, "kiln validate: warning: %s\n", w.c_str());
  }

  absl::StatusOr<tfmd::DatasetFeatureStatistics> stats;
  bool from_data = !validation::IsStatisticsPath(env, f.data.input);
  if (from_data) {
    stats = ComputeFromData(env, f, schema->schema);
  } else {
    auto list = validation::LoadStatistics(env, f.data.input);
    stats = list.ok() ? validation::SelectDataset(*list, f.data.split)
                      : absl::StatusOr<tfmd::DatasetFeatureStatistics>(list.status());
  }
  if (!stats.ok()) return ReportError("validate", stats.status());

  validation::ValidationOptions options;
  options.drift_threshold = f.drift_threshold;
  std::optional<tfmd::DatasetFeatureStatistics> previous, serving;
  if (!f.previous.empty()) {
    auto p = LoadControl(env, f.previous, stats->name(), f.previous_split);
    if (!p.ok()) return ReportError("validate", p.status());
    previous = std::move(*p);
    options.previous = &*previous;
  }
  if (!f.serving.empty()) {
    auto s = LoadControl(env, f.serving, stats->name(), f.serving_split);
    if (!s.ok()) return ReportError("validate", s.status());
    serving = std::move(*s);
    options.serving = &*serving;
  }

  auto result = validation::ValidateStatistics(*stats, schema->schema, options);
  if (!result.ok()) return ReportError("validate", result.status());
  if (auto s = validation::WriteValidationOutputs(env, f.out, *result); !s.ok()) {
    return ReportError("validate", s);
  }
  if (!f.quiet) {
    std::printf("validated %llu examples (dataset '%s') against %s\n",
                static_cast<unsigned long long>(stats->num_examples()), stats->name().c_str(),
                f.data.schema.c_str());
    std::printf("%s", validation::FormatReport(*result).c_str());
    std::printf("wrote %s/anomalies.pbtxt, anomalies.json, drift_skew.json%s\n", f.out.c_str(),
                from_data ? ", statistics.pb, statistics.json" : "");
  }
  metadata::ExecutionRecord record;
  record.type = "ExampleValidator";
  if (f.drift_threshold) record.parameters["drift_threshold"] = *f.drift_threshold;
  metadata::Artifact out{.type = "ExampleAnomalies", .uri = AbsolutePath(f.out)};
  out.properties = {{"anomalies", static_cast<int64_t>(result->anomalies.anomaly_info_size())}};
  record.outputs = {{"anomalies", out}};
  std::vector<MetadataFlags::Input> inputs;
  if (from_data) {
    auto input = f.data.Resolve(env);
    if (!input.ok()) return ReportError("validate", input.status());
    inputs.push_back(DataInput(f.data, *input));
  } else {
    inputs.push_back({.role = "statistics", .type = "ExampleStatistics", .uri = f.data.input});
  }
  inputs.push_back({.role = "schema", .type = "Schema", .uri = f.data.schema});
  if (!f.previous.empty()) {
    inputs.push_back({.role = "previous", .type = "ExampleStatistics", .uri = f.previous});
  }
  if (!f.serving.empty()) {
    inputs.push_back({.role = "serving", .type = "ExampleStatistics", .uri = f.serving});
  }
  if (auto s = f.metadata.Record("validate", record, inputs); !s.ok()) {
    return ReportError("validate", s);
  }
  return validation::HasAnomalies(result->anomalies) ? kExitFindings : kExitOk;
}

}  // namespace

void AddValidateCommand(CLI::App& root) {
  auto flags = std::make_shared<ValidateFlags>();
  CLI::App* app = root.add_subcommand(
      "validate", "Check data against a schema; detect drift and skew (TFX ExampleValidator)");
  app->footer(StrCat(
      "DATA is raw data or statistics. Statistics are a directory written by `kiln stats` "
      "(or TFX StatisticsGen), a .pb / .pbtxt file, a .json file holding a "
      "DatasetFeatureStatisticsList, or TFDV's stats .tfrecord; anything else is raw data, "
      "whose statistics are computed first (and written to DIR for use as --previous "
      "next time). ",
      kDataHelp,
      "\n\nAnomalies follow tfdv.validate_statistics: missing and new columns, presence, "
      "value counts, types, int/float ranges, NaN, unexpected string values, dataset size; "
      "drift vs. --previous and skew vs. --serving where the schema sets drift_comparator / "
      "skew_comparator (L-infinity for categorical features, Jensen-Shannon divergence in "
      "bits for numeric ones), or for every feature with --drift-threshold.\n\n"
      "Writes DIR/anomalies.pbtxt (tensorflow_metadata Anomalies, readable by TFDV), "
      "DIR/anomalies.json (the same, protobuf JSON) and DIR/drift_skew.json (every drift/skew "
      "measurement with its KL divergence), and prints a report.\n\n"
      "Example:\n  kiln validate data/span-{SPAN}/*.csv --schema schema.pbtxt --previous "
      "runs/span-41/ --drift-threshold 0.1 --out runs/span-42/\n\n"
      "Exit codes: 0 no anomalies, 3 anomalies found, 1 internal or I/O failure, 2 usage or "
      "input error"));
  flags->data.Add(app);
  app->get_option("--schema")
      ->description(
          "The schema (schema.pbtxt) to validate against; its string features are "
          "also read as strings")
      ->required();
  app->get_option("--split")->description(
      "For an imported dataset or statistics with several splits: the split to validate");
  app->add_option("--previous", flags->previous,
                  "Statistics of the previous span, for drift (dir, .pb or .json)");
  app->add_option("--previous-split", flags->previous_split,
                  "The split of --previous to compare with (default: the same name as the "
                  "validated one, or its only dataset)");
  app->add_option("--serving-split", flags->serving_split, "The split of --serving to use");
  app->add_option("--serving", flags->serving,
                  "Statistics of serving data, for training/serving skew (dir, .pb or .json)");
  app->add_option("--drift-threshold", flags->drift_threshold,
                  "Compare every feature for drift and skew with this threshold (L-infinity "
                  "for categorical, Jensen-Shannon for numeric features)");
  app->add_option("--out", flags->out, "Output directory")->required();
  app->add_flag("--quiet,-q", flags->quiet, "Print nothing; rely on the exit code and files");
  flags->metadata.Add(app, /*recording=*/true);
  app->callback([flags] { Exit(RunValidate(*flags)); });
}

}  // namespace kiln::cli
