// `kiln push` (TFX Pusher): a blessed model bundle becomes the next version under a
// serving base path, where `kiln serve` picks it up.
#include <cstdio>

#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/cli/metadata_flags.h"
#include "kiln/model/push.h"
#include "nlohmann/json.hpp"

namespace kiln::cli {
namespace {

struct PushFlags {
  std::string model;
  std::string to;
  std::string blessing;
  bool force = false;
  bool quiet = false;
  MetadataFlags metadata;
};

// What `kiln evaluate` decided about the model: OK when blessed, kFailedPrecondition
// listing the failing checks when not. `path` is blessing.json or the directory holding it.
absl::Status CheckBlessing(Env* env, const std::string& path, const std::string& model,
                           std::string* file) {
  *file = env->IsDirectory(path) ? JoinPath(path, "blessing.json") : path;
  auto text = ReadFileToString(env, *file);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        StrCat("cannot read the blessing ", *file, ": ", text.status().message()));
  }
  const nlohmann::json b = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!b.is_object() || !b.contains("blessed") || !b["blessed"].is_boolean()) {
    return absl::InvalidArgumentError(
        StrCat(*file, " is not a blessing from kiln evaluate (no boolean \"blessed\")"));
  }
  if (b.contains("model") && b["model"].is_string() &&
      AbsolutePath(b["model"].get<std::string>()) != AbsolutePath(model)) {
    return absl::InvalidArgumentError(
        StrCat(*file, " blesses ", b["model"].get<std::string>(), ", not ", model));
  }
  if (b["blessed"].get<bool>()) return absl::OkStatus();
  std::vector<std::string> failing;
  for (const nlohmann::json& c : b.value("failing_checks", nlohmann::json::array())) {
    failing.push_back(c.is_string() ? c.get<std::string>() : c.dump());
  }
  return absl::FailedPreconditionError(
      StrCat(model, " is NOT_BLESSED (", *file, ")",
             failing.empty() ? "" : StrCat(": ", StrJoin(failing, "; "))));
}

int RunPush(const PushFlags& f) {
  Env* env = Env::Default();
  std::string blessing_file;
  if (!f.blessing.empty()) {
    absl::Status blessed = CheckBlessing(env, f.blessing, f.model, &blessing_file);
    if (absl::IsInvalidArgument(blessed)) return ReportError("push", blessed);
    if (!blessed.ok() && !f.force) {
      std::fprintf(stderr,
                   "kiln push: refused: %s\n  (--force pushes it anyway, recorded as "
                   "forced)\n",
                   std::string(blessed.message()).c_str());
      return kExitFindings;
    }
  } else if (!f.force) {
    return ReportError("push", absl::InvalidArgumentError(
                                   "no --blessing: give the output of `kiln evaluate` (its "
                                   "directory or blessing.json), or --force to push unblessed"));
  }
  auto pushed = model::PushBundle(env, f.model, f.to);
  if (!pushed.ok()) return ReportError("push", pushed.status());

  metadata::ExecutionRecord record;
  record.type = "Pusher";
  // The recorder adds who and where (env.user, env.host); the execution's time is when.
  record.parameters = {
      {"destination", AbsolutePath(f.to)}, {"version", pushed->version}, {"forced", f.force}};
  metadata::Artifact out{.type = "PushedModel", .uri = AbsolutePath(pushed->dir)};
  out.properties = {{"version", pushed->version}};
  record.outputs = {{"pushed_model", out}};
  std::vector<MetadataFlags::Input> inputs = {{.role = "model", .type = "Model", .uri = f.model}};
  if (!blessing_file.empty()) {
    inputs.push_back({.role = "blessing", .type = "ModelBlessing", .uri = blessing_file});
  }
  if (auto s = f.metadata.Record("push", record, inputs); !s.ok()) {
    return ReportError("push", s);
  }
  if (!f.quiet) {
    std::printf("pushed %s to %s as version %lld%s\n", f.model.c_str(), pushed->dir.c_str(),
                static_cast<long long>(pushed->version), f.force ? " (forced)" : "");
  }
  return kExitOk;
}

}  // namespace

void AddPushCommand(CLI::App& root) {
  auto flags = std::make_shared<PushFlags>();
  CLI::App* app = root.add_subcommand(
      "push", "Publish a blessed model bundle as the next serving version (TFX Pusher)");
  app->footer(
      StrCat("Copies the bundle to BASE_PATH/N, N one more than the newest version there, checking "
             "every file against the bundle's SHA-256 as it goes. The copy is made in a hidden "
             "directory and renamed into place, so `kiln serve --model_base_path BASE_PATH` (or TF "
             "Serving) sees the whole version or none of it. The push is recorded in the metadata "
             "store: destination, version, time, user and host, and whether it was forced.\n\nThe "
             "model must be blessed by "
             "`kiln evaluate` (--blessing); an unblessed model is refused with exit code 3 unless "
             "--force, which is recorded.\n\nExample:\n  kiln evaluate --model models/clicks/7 "
             "--data day3.csv --config eval.yaml --out eval/7\n  kiln push --model models/clicks/7 "
             "--blessing eval/7 --to serving/clicks\n\n",
             kExitCodesHelp, ", 3 not blessed (nothing pushed)"));
  app->add_option("--model", flags->model, "Model bundle directory")->required();
  app->add_option("--to", flags->to, "Serving base path (created if missing)")->required();
  app->add_option("--blessing", flags->blessing,
                  "kiln evaluate's output directory, or its blessing.json");
  app->add_flag("--force", flags->force, "Push even without a blessing, or against one");
  app->add_flag("--quiet,-q", flags->quiet, "Print nothing on success");
  flags->metadata.Add(app, /*recording=*/true);
  app->callback([flags] { Exit(RunPush(*flags)); });
}

}  // namespace kiln::cli
