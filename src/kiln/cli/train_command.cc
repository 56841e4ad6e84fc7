// `kiln train`: TFX Trainer (with Transform): config in, model bundle out.
#include <cmath>
#include <cstdio>

#include "kiln/base/progress.h"
#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/cli/metadata_flags.h"
#include "kiln/model/bundle.h"
#include "kiln/model/model.h"
#include "kiln/train/trainer.h"

namespace kiln::cli {
namespace {

struct TrainFlags {
  std::string config;
  std::string data;
  std::string eval_data;
  std::string transform;
  std::string out;
  std::string key_file;
  std::string checkpoint_dir;
  int64_t checkpoint_every = -1;  // -1: the config's
  bool no_resume = false;
  int world_size = 1;
  int rank = 0;
  std::string rendezvous;
  bool overwrite = false;
  bool quiet = false;
  MetadataFlags metadata;
};

std::string Short(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string FormatMetrics(const model::Metrics& m) {
  std::string out;
  for (const auto& [k, v] : m) StrAppend(&out, out.empty() ? "" : "  ", k, " ", v);
  return out;
}

int RunTrain(const TrainFlags& f) {
  Env* env = Env::Default();
  auto yaml = ReadFileToString(env, f.config);
  if (!yaml.ok()) return ReportError("train", yaml.status());
  auto config = train::ParseTrainConfig(*yaml);
  if (!config.ok()) {
    return ReportError("train", absl::Status(config.status().code(),
                                             StrCat(f.config, ": ", config.status().message())));
  }
  auto key = model::LoadModelKey(env, f.key_file);
  if (!key.ok()) return ReportError("train", key.status());
  train::TrainRequest req;
  req.data = f.data;
  req.eval_data = f.eval_data;
  req.config = *config;
  req.transform = f.transform;
  req.out_dir = f.out;
  req.overwrite = f.overwrite;
  req.key = *key;
  req.checkpoint_dir = f.checkpoint_dir;
  req.resume = !f.no_resume;
  req.world_size = f.world_size;
  req.rank = f.rank;
  req.rendezvous = f.rendezvous;
  if (f.world_size > 1 && f.rendezvous.empty()) {
    return ReportError(
        "train",
        absl::InvalidArgumentError("--world-size > 1 needs --rendezvous HOST:PORT (or file:PATH)"));
  }
  if (f.rank >= f.world_size) {
    return ReportError("train",
                       absl::InvalidArgumentError(
                           StrCat("--rank ", f.rank, " is not below --world-size ", f.world_size)));
  }
  if (f.checkpoint_every >= 0) req.config.checkpoint_every = f.checkpoint_every;
  int64_t start = env->NowMicros();
  absl::StatusOr<train::TrainResult> result;
  {
    Progress progress("train", 0, !f.quiet && Progress::StderrIsTerminal(), Progress::Unit::kSteps);
    req.on_progress = [&](const train::TrainProgress& p) {
      std::string detail;
      if (std::isfinite(p.loss)) detail = StrCat("loss ", Short(p.loss));
      const std::string metric = model::PrimaryMetric(config->task);
      if (auto it = p.eval.find(metric); it != p.eval.end()) {
        StrAppend(&detail, detail.empty() ? "" : ", ", "eval ", metric, " ", Short(it->second));
      }
      progress.Update(static_cast<uint64_t>(p.step), static_cast<uint64_t>(p.total_steps),
                      std::move(detail));
    };
    result = train::Train(env, req);
  }
  if (!result.ok()) return ReportError("train", result.status());
  if (f.rank > 0) {
    if (!f.quiet) {
      std::printf("rank %d of %d: trained %s on its shard of %llu rows; rank 0 writes %s\n", f.rank,
                  f.world_size, config->model_type.c_str(),
                  static_cast<unsigned long long>(result->train_rows), f.out.c_str());
    }
    return kExitOk;
  }
  for (const std::string& w : result->warnings) {
    std::fprintf(stderr, "kiln train: warning: %s\n", w.c_str());
  }
  if (!f.quiet) {
    if (result->resumed_from_step >= 0) {
      std::printf("resumed from the checkpoint at step %lld\n",
                  static_cast<long long>(result->resumed_from_step));
    }
    std::string phases;
    for (const auto& [name, secs] : result->phase_seconds) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2fs", secs);
      StrAppend(&phases, phases.empty() ? ": " : ", ", name, " ", buf);
    }
    std::printf("trained %s (%s) on %llu rows, evaluated on %llu (%.2fs%s)\n",
                config->model_type.c_str(), std::string(model::TaskName(config->task)).c_str(),
                static_cast<unsigned long long>(result->train_rows),
                static_cast<unsigned long long>(result->eval_rows),
                static_cast<double>(env->NowMicros() - start) / 1e6, phases.c_str());
    if (result->dropped_rows > 0) {
      std::printf("  %llu rows without a usable label left out\n",
                  static_cast<unsigned long long>(result->dropped_rows));
    }
    std::printf("  eval:  %s\n  train: %s\n", FormatMetrics(result->eval).c_str(),
                FormatMetrics(result->train).c_str());
    std::printf("wrote %s (TensorBoard logs in %s/logs)\n", f.out.c_str(), f.out.c_str());
  }
  metadata::ExecutionRecord record;
  record.type = "Trainer";
  record.parameters["model_type"] = config->model_type;
  for (const auto& [k, v] : config->model_params.items()) {
    if (v.is_number_integer())
      record.parameters["model." + k] = v.get<int64_t>();
    else if (v.is_number())
      record.parameters["model." + k] = v.get<double>();
    else if (v.is_string())
      record.parameters["model." + k] = v.get<std::string>();
    else if (v.is_boolean())
      record.parameters["model." + k] = v.get<bool>();
  }
  record.parameters["seed"] = static_cast<int64_t>(config->seed);
  metadata::Artifact out{.type = "Model", .uri = AbsolutePath(f.out)};
  out.properties = {{"model_type", config->model_type},
                    {"task", std::string(model::TaskName(config->task))}};
  for (const auto& [k, v] : result->eval) {
    if (std::isfinite(v)) out.custom_properties["eval." + k] = v;
  }
  record.outputs = {{"model", out}};
  MetadataFlags::Input examples{.role = "examples", .type = "RawData", .uri = f.data};
  examples.properties = {{"fingerprint", result->data_fingerprint}};
  std::vector<MetadataFlags::Input> inputs = {examples};
  if (!f.transform.empty()) {
    inputs.push_back({.role = "transform_graph", .type = "TransformGraph", .uri = f.transform});
  }
  if (auto s = f.metadata.Record("train", record, inputs); !s.ok()) {
    return ReportError("train", s);
  }
  return kExitOk;
}

}  // namespace

void AddTrainCommand(CLI::App& root) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* app = root.add_subcommand(
      "train", "Fit a transform and a model from a config; write a model bundle (TFX Trainer)");
  app->footer(
      StrCat("The minimal config:\n"
             "  label: COLUMN\n"
             "  task: binary            # binary | multiclass | regression\n"
             "  model: {type: gbdt}     # model types: ",
             StrJoin(model::ModelTypes(), ", "),
             "\n\nDATA is a CSV, JSON Lines or TFRecord file (split train:eval 2:1 by a hash of "
             "each row) or an imported dataset (its train and eval splits). The transform is "
             "fitted on the train split only (or, with --transform, fitted beforehand by `kiln "
             "transform` from the same config); the bundle in --out holds it with the model, so "
             "predictions apply exactly the same features. See docs/transform.md for the transform "
             "section and the config keys in src/kiln/train/train_config.h.\n\n"
             "Set KILN_MODEL_KEY (64 hex digits) or pass --key-file to encrypt the bundle "
             "(AES-256-GCM).\n\nCheckpoints: a run that is killed or fails leaves its last "
             "checkpoint in the checkpoint directory; running the same command again (same "
             "data, same config) resumes from it and ends where an uninterrupted run would. A "
             "checkpoint of other data or another config is refused; --no-resume discards "
             "it.\n\nDistributed: run the same command in N processes (on one host or several, "
             "each with the data at the same path) with --world-size N --rank R --rendezvous "
             "HOST:PORT; each trains on a 1/N shard of every epoch, gradients are averaged "
             "over the group (torch c10d, gloo), and rank 0 writes the bundle.\n\nExample:\n  kiln "
             "train --config train.yaml --data "
             "breast_cancer.csv --out models/cancer/1\n\n",
             kExitCodesHelp));
  app->add_option("--config", flags->config, "train.yaml")->required();
  app->add_option("--data", flags->data, "Training data (file, glob, span pattern or dataset)")
      ->required();
  app->add_option("--eval-data", flags->eval_data,
                  "Evaluate on these rows instead of a split of --data (then all of --data "
                  "trains)");
  app->add_option("--transform", flags->transform,
                  "Use this fitted transform (`kiln transform`'s --out directory, or its "
                  "transform.json) instead of fitting one; it must come from this config's "
                  "transform section and model type, on data with these columns");
  app->add_option("--out", flags->out, "Model bundle directory to write")->required();
  app->add_option("--key-file", flags->key_file, "Encrypt the bundle with this 32-byte key");
  app->add_flag("--overwrite", flags->overwrite, "Replace a bundle already at --out");
  app->add_option("--checkpoint-every", flags->checkpoint_every,
                  "Save the training state every N steps (mini-batches or boosting rounds); 0: "
                  "never. Default: the config's training.checkpoint_every (1000)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--checkpoint-dir", flags->checkpoint_dir,
                  "Where checkpoints and the logs of the run in progress live (default: "
                  "OUT.ckpt beside --out; removed once the bundle is written)");
  app->add_option("--world-size", flags->world_size,
                  "Train data-parallel in this many processes (libtorch models), started with "
                  "the same command but for --rank")
      ->check(CLI::Range(1, 4096));
  app->add_option("--rank", flags->rank, "This process's rank in [0, --world-size); rank 0 writes")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--rendezvous", flags->rendezvous,
                  "Where the processes meet: HOST:PORT (rank 0 listens there; use a host the "
                  "others reach) or file:PATH (a file on a file system all of them share)");
  app->add_flag("--no-resume", flags->no_resume,
                "Discard a checkpoint left by an interrupted run and start over");
  app->add_flag("--quiet,-q", flags->quiet, "Print nothing on success");
  flags->metadata.Add(app, /*recording=*/true);
  app->callback([flags] { Exit(RunTrain(*flags)); });
}

}  // namespace kiln::cli
