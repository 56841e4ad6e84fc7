// `kiln transform`: TFX Transform as its own step, between SchemaGen and Trainer.
#include <cstdio>

#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/cli/data_flags.h"
#include "kiln/cli/metadata_flags.h"
#include "kiln/train/trainer.h"
#include "kiln/train/transform_step.h"

namespace kiln::cli {
namespace {

struct TransformFlags {
  std::string config;
  std::string data;
  std::string split = "train";
  bool all_rows = false;
  std::string schema;
  std::string out;
  bool quiet = false;
  MetadataFlags metadata;
};

int RunTransform(const TransformFlags& f) {
  Env* env = Env::Default();
  auto yaml = ReadFileToString(env, f.config);
  if (!yaml.ok()) return ReportError("transform", yaml.status());
  auto config = train::ParseTrainConfig(*yaml);
  if (!config.ok()) {
    return ReportError(
        "transform",
        absl::Status(config.status().code(), StrCat(f.config, ": ", config.status().message())));
  }
  train::TransformStepRequest req;
  req.data = f.data;
  req.config = *config;
  req.split = f.all_rows ? "" : f.split;
  if (!f.all_rows && f.split.empty()) {
    return ReportError("transform",
                       absl::InvalidArgumentError("--split is empty; use --all-rows to fit on "
                                                  "every row of --data"));
  }
  if (!f.schema.empty()) {
    // The schema's feature types, read as every data command reads them.
    DataFlags schema_flags;
    schema_flags.schema = f.schema;
    auto read = schema_flags.ReadOptions(env, "");
    if (!read.ok()) return ReportError("transform", read.status());
    req.type_overrides = read->type_overrides;
  }
  auto input = data::ResolveInput(env, f.data);
  if (!input.ok()) return ReportError("transform", input.status());
  const int64_t start = env->NowMicros();
  auto result = train::FitTransformStep(env, req);
  if (!result.ok()) return ReportError("transform", result.status());
  if (auto s = train::WriteTransformStep(env, f.out, *result); !s.ok()) {
    return ReportError("transform", s);
  }
  for (const std::string& w : result->fitted.warnings()) {
    std::fprintf(stderr, "kiln transform: warning: %s\n", w.c_str());
  }
  const auto& sig = result->fitted.output_signature();
  if (!f.quiet) {
    std::printf("fitted on %llu rows (%s of %s)", static_cast<unsigned long long>(result->rows),
                f.all_rows ? "every row" : StrCat("split ", f.split).c_str(), f.data.c_str());
    if (result->dropped_rows > 0) {
      std::printf("; %llu without a usable label left out",
                  static_cast<unsigned long long>(result->dropped_rows));
    }
    std::printf(": %zu dense and %zu categorical outputs\n%s", sig.dense.size(),
                sig.categorical.size(), train::FormatTransformSummary(result->fitted).c_str());
    std::printf("wrote %s/%s and %s (%.2fs)\n", f.out.c_str(), train::kTransformFile,
                train::kTransformSummaryFile, static_cast<double>(env->NowMicros() - start) / 1e6);
  }

  metadata::ExecutionRecord record;
  record.type = "Transform";
  if (f.all_rows) {
    record.parameters["all_rows"] = true;
  } else {
    record.parameters["split"] = f.split;
  }
  record.parameters["label"] = config->label;
  record.parameters["model_type"] = config->model_type;
  metadata::Artifact out{.type = "TransformGraph", .uri = AbsolutePath(f.out)};
  out.properties = {{"spec_sha256", result->summary["spec_sha256"].get<std::string>()},
                    {"model_type", config->model_type},
                    {"label", config->label}};
  out.custom_properties = {{"rows", static_cast<int64_t>(result->rows)},
                           {"dense_outputs", static_cast<int64_t>(sig.dense.size())},
                           {"categorical_outputs", static_cast<int64_t>(sig.categorical.size())}};
  record.outputs = {{"transform_graph", out}};
  const bool dataset = input->format == data::Format::kDataset;
  MetadataFlags::Input examples{.role = "examples",
                                .type = dataset ? "Examples" : "RawData",
                                .uri = dataset ? input->files[0] : f.data};
  examples.properties = {{"fingerprint", result->data_fingerprint}};
  std::vector<MetadataFlags::Input> inputs = {examples};
  if (!f.schema.empty()) inputs.push_back({.role = "schema", .type = "Schema", .uri = f.schema});
  if (auto s = f.metadata.Record("transform", record, inputs); !s.ok()) {
    return ReportError("transform", s);
  }
  return kExitOk;
}

}  // namespace

void AddTransformCommand(CLI::App& root) {
  auto flags = std::make_shared<TransformFlags>();
  CLI::App* app = root.add_subcommand(
      "transform", "Fit a train config's transform on the training rows (TFX Transform)");
  app->footer(StrCat(
      "Reads the transform section (and the label, which is never a feature) of the train "
      "config, fits it on the rows `kiln train` would fit it on (the same split and the same "
      "rows without a label left out; model.type decides the defaults of unlisted numbers, "
      "which pass through for gbdt), and writes DIR/transform.json (the fitted transform, as a "
      "model bundle stores it) and DIR/transform_summary.json (each output column's kind, "
      "cardinality and fitted statistics). `kiln train --transform DIR` then uses it instead "
      "of fitting one, and refuses it when the config's transform section, label or model "
      "type changed since or the data lacks its columns.\n\n",
      kDataHelp,
      "\n\nExample:\n  kiln transform --config train.yaml --data ds/ --out transform/\n  kiln "
      "train --config train.yaml --data ds/ --transform transform/ --out models/cancer/1\n\n",
      kExitCodesHelp));
  app->add_option("--config", flags->config, "train.yaml (its transform, label and model type)")
      ->required();
  app->add_option("--data", flags->data, "Training data (file, glob, span pattern or dataset)")
      ->required();
  CLI::Option* split = app->add_option(
      "--split", flags->split,
      "The split to fit on: an imported dataset's, or one named in the config's training.split "
      "for other data (rows assigned as train assigns them)");
  split->capture_default_str();
  app->add_flag("--all-rows", flags->all_rows,
                "Fit on every row of --data (what train does when given --eval-data)")
      ->excludes(split);
  app->add_option("--schema", flags->schema,
                  "schema.pbtxt whose feature types override the data's (as in `kiln stats`)");
  app->add_option("--out", flags->out, "Directory to write transform.json and its summary to")
      ->required();
  app->add_flag("--quiet,-q", flags->quiet, "Print nothing on success");
  flags->metadata.Add(app, /*recording=*/true);
  app->callback([flags] { Exit(RunTransform(*flags)); });
}

}  // namespace kiln::cli
