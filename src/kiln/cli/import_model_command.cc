// `kiln import-model`: a model trained elsewhere, as a kiln bundle.
#include <cstdio>

#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/model/bundle.h"
#include "kiln/train/import_model.h"

namespace kiln::cli {
namespace {

struct ImportModelFlags {
  std::string model;
  std::string signature;
  std::string out;
  std::string key_file;
  bool overwrite = false;
};

int RunImportModel(const ImportModelFlags& f) {
  Env* env = Env::Default();
  auto sig = ReadFileToString(env, f.signature);
  if (!sig.ok()) return ReportError("import-model", sig.status());
  auto key = model::LoadModelKey(env, f.key_file);
  if (!key.ok()) return ReportError("import-model", key.status());
  train::ImportModelRequest req{f.model, *sig, f.out, f.overwrite, *key};
  if (auto s = train::ImportModel(env, req); !s.ok()) return ReportError("import-model", s);
  std::printf("wrote %s from %s\n", f.out.c_str(), f.model.c_str());
  return kExitOk;
}

}  // namespace

void AddImportModelCommand(CLI::App& root) {
  auto flags = std::make_shared<ImportModelFlags>();
  CLI::App* app = root.add_subcommand(
      "import-model",
      "Wrap a model trained elsewhere (XGBoost JSON/UBJ, TorchScript) in a kiln bundle");
  app->footer(
      StrCat("The signature file names the task and the model's input features in its column "
             "order:\n  task: binary\n  classes: [benign, malignant]\n  inputs: [mean_radius, "
             "mean_texture, ...]\nInputs are raw numbers passed to the model unchanged (a missing "
             "value is missing to an XGBoost model, 0 to a TorchScript one). The bundle then works "
             "with kiln predict like a trained one.\n\n"
             "TorchScript (torch.jit.save): forward takes a float32 tensor [rows, inputs] and "
             "returns [rows] (binary: P(positive); regression: the prediction), [rows, 2] "
             "(binary) or [rows, classes] (multiclass). Add `output: logits` to the signature "
             "when it returns logits. kiln runs it once on zeros before writing the bundle.\n\n"
             "Example:\n  kiln import-model --model model.json --signature signature.yaml --out "
             "models/cancer/2\n\n",
             kExitCodesHelp));
  app->add_option(
         "--model", flags->model,
         "XGBoost model (Booster.save_model: JSON or UBJ) or TorchScript file (torch.jit.save)")
      ->required();
  app->add_option("--signature", flags->signature, "Signature YAML")->required();
  app->add_option("--out", flags->out, "Model bundle directory to write")->required();
  app->add_option("--key-file", flags->key_file, "Encrypt the bundle with this 32-byte key");
  app->add_flag("--overwrite", flags->overwrite, "Replace a bundle already at --out");
  app->callback([flags] { Exit(RunImportModel(*flags)); });
}

}  // namespace kiln::cli
