// `kiln predict`: batch inference (TFX BulkInferrer) with a model bundle.
#include <cstdio>

#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/train/predictor.h"

namespace kiln::cli {
namespace {

struct PredictFlags {
  std::string model;
  std::string data;
  std::string out;
  std::string key_file;
  bool quiet = false;
};

int RunPredict(const PredictFlags& f) {
  Env* env = Env::Default();
  auto key = model::LoadModelKey(env, f.key_file);
  if (!key.ok()) return ReportError("predict", key.status());
  auto predictor = train::Predictor::Load(env, f.model, *key);
  if (!predictor.ok()) return ReportError("predict", predictor.status());
  auto rows = train::PredictFile(env, **predictor, f.data, f.out);
  if (!rows.ok()) return ReportError("predict", rows.status());
  if (!f.quiet) {
    std::printf("wrote %llu predictions to %s\n", static_cast<unsigned long long>(*rows),
                f.out.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddPredictCommand(CLI::App& root) {
  auto flags = std::make_shared<PredictFlags>();
  CLI::App* app =
      root.add_subcommand("predict", "Score rows with a model bundle (TFX BulkInferrer)");
  app->footer(
      StrCat("Reads DATA (CSV, JSON Lines, TFRecord or a dataset) in order and writes one line per "
             "row to --out (.csv or .jsonl): binary models write `score` (probability of the "
             "positive class), multiclass models `class` and `prob_<class>` per class, regression "
             "models `prediction`. The bundle's files are checked against their SHA-256 before "
             "use; encrypted bundles need KILN_MODEL_KEY or --key-file.\n\nExample:\n  kiln "
             "predict --model models/cancer/1 new_rows.csv --out scores.csv\n\n",
             kExitCodesHelp));
  app->add_option("--model", flags->model, "Model bundle directory")->required();
  app->add_option("DATA", flags->data, "Rows to score")->required();
  app->add_option("--out", flags->out, "Output file (.csv or .jsonl)")->required();
  app->add_option("--key-file", flags->key_file, "Key of an encrypted bundle");
  app->add_flag("--quiet,-q", flags->quiet, "Print nothing on success");
  app->callback([flags] { Exit(RunPredict(*flags)); });
}

}  // namespace kiln::cli
