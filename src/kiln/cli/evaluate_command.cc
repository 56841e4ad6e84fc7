// `kiln evaluate`: the Evaluator (TFX Evaluator / TFMA) — metrics per slice, comparison
// with a baseline model, thresholds and the blessing.
#include <cstdio>
#include <memory>
#include <optional>

#include "kiln/base/progress.h"
#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/eval/evaluator.h"
#include "kiln/model/bundle.h"

namespace kiln::cli {
namespace {

struct EvaluateFlags {
  std::string model;
  std::string baseline;
  std::string data;
  std::string split;
  std::string config;
  std::string out;
  std::string key_file;
  bool quiet = false;
};

int RunEvaluate(const EvaluateFlags& f) {
  Env* env = Env::Default();
  eval::EvalRequest req;
  req.model = f.model;
  req.baseline = f.baseline;
  req.data = f.data;
  req.split = f.split;
  if (!f.config.empty()) {
    auto yaml = ReadFileToString(env, f.config);
    if (!yaml.ok()) return ReportError("evaluate", yaml.status());
    auto config = eval::ParseEvalConfig(*yaml, f.config);
    if (!config.ok()) return ReportError("evaluate", config.status());
    req.config = std::move(*config);
  }
  auto key = model::LoadModelKey(env, f.key_file);
  if (!key.ok()) return ReportError("evaluate", key.status());
  req.key = *key;
  // A blessing left by an earlier run must not outlive a failed one.
  const std::string blessing = JoinPath(f.out, eval::kBlessingFile);
  if (env->FileExists(blessing)) {
    if (absl::Status st = env->DeleteFile(blessing); !st.ok()) return ReportError("evaluate", st);
  }
  std::optional<Progress> progress;
  if (!f.quiet) progress.emplace("evaluate", 0, Progress::StderrIsTerminal());
  req.progress = progress ? &*progress : nullptr;
  auto result = eval::Evaluate(env, req);
  progress.reset();
  if (!result.ok()) return ReportError("evaluate", result.status());
  if (absl::Status st = eval::WriteEvaluation(env, f.out, *result); !st.ok()) {
    return ReportError("evaluate", st);
  }
  if (!f.quiet) {
    std::fputs(eval::FormatReport(*result).c_str(), stdout);
    std::printf("wrote %s and %s\n", JoinPath(f.out, eval::kEvaluationFile).c_str(),
                blessing.c_str());
  }
  return result->blessed ? kExitOk : kExitFindings;
}

}  // namespace

void AddEvaluateCommand(CLI::App& root) {
  auto flags = std::make_shared<EvaluateFlags>();
  CLI::App* app = root.add_subcommand(
      "evaluate", "Evaluate a model per slice against thresholds and a baseline (TFX Evaluator)");
  app->footer(StrCat(
      "Scores DATA with the candidate model (and the baseline, on the same rows), computes "
      "metrics overall and per slice, and checks them against the thresholds in --config:\n"
      "  binary      auc, auc_pr, log_loss, accuracy, precision, recall, f1 (at "
      "decision_threshold), calibration (mean_prediction / mean_label), mean_prediction, "
      "mean_label, a confusion matrix and a 10-bucket calibration table\n"
      "  multiclass  accuracy, log_loss, top_k_accuracy (k = top_k, default 3), a confusion "
      "matrix\n"
      "  regression  rmse, mae, r2, mean_prediction, mean_label\n"
      "  ranking     ndcg@K per cutoff, rows grouped by ranking.query_key, gains from the "
      "label (binary and regression models)\n"
      "  every task  example_count (and weighted_example_count with a weight column)\n"
      "Undefined values (auc on a slice of one class, ...) are null and fail any check on "
      "them.\n\n"
      "Change thresholds compare with --baseline through a paired bootstrap (rows resampled "
      "with a seeded generator; queries for ndcg): a check fails only when the whole "
      "confidence interval of the improvement lies below the improvement required, so "
      "noise does not fail a model. Without --baseline, change thresholds are skipped. In a "
      "pipeline (`kiln run`), an evaluate component given no baseline gets the latest model "
      "the pipeline blessed, looked up in the metadata store.\n\n"
      "Writes OUT/evaluation.json (every metric per slice for both models, differences with "
      "their confidence intervals, every check and why it passed or failed) and "
      "OUT/blessing.json ({\"blessed\", \"status\": BLESSED|NOT_BLESSED, "
      "\"failing_checks\"}), each atomically, and prints a table.\n\n"
      "Example eval.yaml (every key optional):\n"
      "  label: clicked                  # default: the label the model was trained on\n"
      "  weight: importance              # a column of row weights\n"
      "  decision_threshold: 0.5         # binary: positive when score >= this\n"
      "  top_k: 3                        # multiclass: top_k_accuracy's k\n"
      "  ranking: {query_key: session_id, k: [5, 10]}\n"
      "  slicing:\n"
      "    - feature: user_type          # user_type=new, user_type=(missing), ...\n"
      "    - features: [user_type, device]   # user_type=new,device=mobile, ...\n"
      "    - feature: price              # price=[-inf,10), price=[10,20), price=[20,inf)\n"
      "      boundaries: [10, 20]\n"
      "  thresholds:\n"
      "    - metric: auc\n"
      "      slices: [overall, user_type]    # names, slicing specs or all; default overall\n"
      "      lower: 0.75                     # value bounds: lower <= value <= upper\n"
      "      change: {absolute: -0.01}       # fails when significantly more than 0.01 worse "
      "than the baseline\n"
      "      min_examples: 100               # smaller slices skip this check\n"
      "    - metric: log_loss\n"
      "      change: {relative: 0.01}        # fails when significantly less than 1% better\n"
      "                                      # (better: the metric's own direction, or set "
      "direction: higher_is_better | lower_is_better)\n"
      "  bootstrap: {samples: 200, seed: 42, confidence: 0.95}   # samples 0: point "
      "differences\n\n"
      "Example:\n"
      "  kiln evaluate --model models/ctr/2 --baseline models/ctr/1 --data day3.csv "
      "--config eval.yaml --out eval/day3\n\n",
      kExitCodesHelp, ", 3 not blessed (a check failed)"));
  app->add_option("--model", flags->model, "Candidate model bundle directory")->required();
  app->add_option("--baseline", flags->baseline,
                  "Baseline model bundle to compare with (change thresholds need it)");
  app->add_option("--data", flags->data,
                  "Rows to evaluate: CSV, JSON Lines, TFRecord, a glob, span pattern or dataset")
      ->required();
  app->add_option("--split", flags->split, "Dataset input: the split to evaluate (e.g. eval)");
  app->add_option("--config", flags->config, "eval.yaml: label, slicing, thresholds, bootstrap");
  app->add_option("--out", flags->out, "Directory for evaluation.json and blessing.json")
      ->required();
  app->add_option("--key-file", flags->key_file, "Key of encrypted bundles");
  app->add_flag("--quiet,-q", flags->quiet, "Print nothing; the exit code tells the blessing");
  app->callback([flags] { Exit(RunEvaluate(*flags)); });
}

}  // namespace kiln::cli
