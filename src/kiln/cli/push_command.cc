// `kiln push` (TFX Pusher): a blessed model bundle becomes the next version under a
// serving base path, where `kiln serve` picks it up.
#include <cstdio>
#include <tuple>

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
  std::string infra_blessing;
  bool force = false;
  bool quiet = false;
  MetadataFlags metadata;
};

// What `kiln evaluate` (blessing.json) or `kiln infra-validate` (infra_blessing.json)
// decided about the model: OK when blessed, kFailedPrecondition listing the failing checks
// when not, kInvalidArgument when there is no such blessing or it is another model's.
// `path` is the file or the directory holding it; `*file` is set to the file.
absl::Status CheckBlessing(Env* env, const std::string& path, const std::string& name,
                           const std::string& model, std::string* file) {
  *file = env->IsDirectory(path) ? JoinPath(path, name) : path;
  auto text = ReadFileToString(env, *file);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        StrCat("cannot read the blessing ", *file, ": ", text.status().message()));
  }
  const nlohmann::json b = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!b.is_object() || !b.contains("blessed") || !b["blessed"].is_boolean()) {
    return absl::InvalidArgumentError(
        StrCat(*file, " is not a blessing from kiln (no boolean \"blessed\")"));
  }
  // The model it blesses: "candidate" (kiln evaluate) or "model" (kiln infra-validate).
  for (const char* key : {"candidate", "model"}) {
    if (b.contains(key) && b[key].is_string() &&
        AbsolutePath(b[key].get<std::string>()) != AbsolutePath(model)) {
      return absl::InvalidArgumentError(
          StrCat(*file, " blesses ", b[key].get<std::string>(), ", not ", model));
    }
  }
  if (b["blessed"].get<bool>()) return absl::OkStatus();
  std::vector<std::string> failing;
  for (const nlohmann::json& c : b.value("failing_checks", nlohmann::json::array())) {
    // kiln evaluate's checks are objects: slice, metric and why.
    failing.push_back(c.is_string() ? c.get<std::string>()
                                    : StrCat(c.value("slice", ""), " ", c.value("metric", ""), ": ",
                                             c.value("reason", c.dump())));
  }
  return absl::FailedPreconditionError(
      StrCat(model, " is ", b.value("status", std::string("NOT_BLESSED")), " (", *file, ")",
             failing.empty() ? "" : StrCat(": ", StrJoin(failing, "; "))));
}

int RunPush(const PushFlags& f) {
  Env* env = Env::Default();
  if (f.blessing.empty() && !f.force) {
    return ReportError("push", absl::InvalidArgumentError(
                                   "no --blessing: give the output of `kiln evaluate` (its "
                                   "directory or blessing.json), or --force to push unblessed"));
  }
  std::string blessing_file, infra_file;
  for (auto [path, name, file] :
       {std::tuple(&f.blessing, "blessing.json", &blessing_file),
        std::tuple(&f.infra_blessing, "infra_blessing.json", &infra_file)}) {
    if (path->empty()) continue;
    absl::Status blessed = CheckBlessing(env, *path, name, f.model, file);
    if (absl::IsInvalidArgument(blessed)) return ReportError("push", blessed);
    if (!blessed.ok() && !f.force) {
      std::fprintf(stderr,
                   "kiln push: refused: %s\n  (--force pushes it anyway, recorded as forced)\n",
                   std::string(blessed.message()).c_str());
      return kExitFindings;
    }
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
  if (!infra_file.empty()) {
    inputs.push_back({.role = "infra_blessing", .type = "InfraBlessing", .uri = infra_file});
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
  app->add_option("--infra-blessing", flags->infra_blessing,
                  "kiln infra-validate's output directory, or its infra_blessing.json");
  app->add_flag("--force", flags->force, "Push even without a blessing, or against one");
  app->add_flag("--quiet,-q", flags->quiet, "Print nothing on success");
  flags->metadata.Add(app, /*recording=*/true);
  app->callback([flags] { Exit(RunPush(*flags)); });
}

}  // namespace kiln::cli
