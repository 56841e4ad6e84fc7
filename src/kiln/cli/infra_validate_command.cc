// `kiln infra-validate` (TFX InfraValidator): serve the candidate for real, in-process on
// loopback, and send it requests before it may be pushed.
#include <cstdio>

#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/cli/metadata_flags.h"
#include "kiln/model/bundle.h"
#include "kiln/serving/infra_validator.h"
#include "kiln/train/json_rows.h"
#include "kiln/train/predictor.h"

namespace kiln::cli {
namespace {

struct InfraValidateFlags {
  std::string model;
  std::string data;
  int64_t rows = 100;
  int64_t requests = 100;
  double max_p99_ms = 100;
  std::string out;
  std::string key_file;
  bool quiet = false;
  MetadataFlags metadata;
};

// The first `limit` rows of `data` as JSON objects of the model's raw input features.
absl::StatusOr<std::vector<nlohmann::json>> DataRows(Env* env, const std::string& model,
                                                     const std::optional<std::string>& key,
                                                     const std::string& data, int64_t limit) {
  KILN_ASSIGN_OR_RETURN(auto predictor, train::Predictor::Load(env, model, key));
  data::BadRowSink bad(data::BadRowPolicy::kError);
  KILN_ASSIGN_OR_RETURN(auto reader, predictor->OpenRows(env, data, &bad));
  std::vector<nlohmann::json> rows;
  data::Batch batch;
  while (static_cast<int64_t>(rows.size()) < limit) {
    KILN_ASSIGN_OR_RETURN(bool more, reader->Next(&batch));
    if (!more) break;
    for (size_t r = 0; r < batch.num_rows && static_cast<int64_t>(rows.size()) < limit; ++r) {
      rows.push_back(train::RowToJson(batch, r, predictor->inputs()));
    }
  }
  return rows;
}

int RunInfraValidate(const InfraValidateFlags& f) {
  Env* env = Env::Default();
  auto key = model::LoadModelKey(env, f.key_file);
  if (!key.ok()) return ReportError("infra-validate", key.status());
  serving::InfraValidationOptions options;
  options.key = *key;
  options.requests = f.requests;
  options.max_p99_ms = f.max_p99_ms;
  if (!f.data.empty()) {
    auto rows = DataRows(env, f.model, *key, f.data, f.rows);
    if (!rows.ok()) return ReportError("infra-validate", rows.status());
    options.rows = *std::move(rows);
  }
  auto result = serving::InfraValidate(env, f.model, options);
  if (!result.ok()) return ReportError("infra-validate", result.status());
  const nlohmann::json blessing = serving::InfraBlessingJson(*result, AbsolutePath(f.model));
  const std::string file = JoinPath(f.out, "infra_blessing.json");
  absl::Status written = env->CreateDirs(f.out);
  if (written.ok()) written = WriteFileAtomically(env, file, blessing.dump(2) + "\n");
  if (!written.ok()) return ReportError("infra-validate", written);

  metadata::ExecutionRecord record;
  record.type = "InfraValidator";
  record.parameters = {{"requests", f.requests}, {"max_p99_ms", f.max_p99_ms}};
  metadata::Artifact out{.type = "InfraBlessing", .uri = AbsolutePath(file)};
  out.properties = {{"blessed", result->blessed}};
  out.custom_properties = {{"p99_ms", result->p99_ms}};
  record.outputs = {{"blessing", out}};
  if (auto s = f.metadata.Record("infra-validate", record,
                                 {{.role = "model", .type = "Model", .uri = f.model}});
      !s.ok()) {
    return ReportError("infra-validate", s);
  }
  if (!f.quiet || !result->blessed) {
    std::printf("%s: %s (%lld requests, %lld failed; load %.0f ms, p50 %.2f ms, p99 %.2f ms)\n",
                f.model.c_str(), result->blessed ? "INFRA_BLESSED" : "INFRA_NOT_BLESSED",
                static_cast<long long>(result->requests),
                static_cast<long long>(result->failed_requests), result->load_ms, result->p50_ms,
                result->p99_ms);
    for (const std::string& c : result->failing_checks) std::printf("  failed: %s\n", c.c_str());
  }
  return result->blessed ? kExitOk : kExitFindings;
}

}  // namespace

void AddInfraValidateCommand(CLI::App& root) {
  auto flags = std::make_shared<InfraValidateFlags>();
  CLI::App* app = root.add_subcommand(
      "infra-validate",
      "Serve a candidate model for real and send it requests (TFX InfraValidator)");
  app->footer(StrCat(
      "Loads the bundle as `kiln serve` would (checksums, key, warm-up rows reproduced) behind "
      "the REST API on a loopback port in this process, then sends --requests predict "
      "requests of one row each over HTTP: the bundle's warm-up rows and the first --rows rows "
      "of DATA. Passes (INFRA_BLESSED) when the model loads, every request answers 200 with "
      "finite scores, and the p99 latency is within --max-p99-ms. Writes "
      "OUT/infra_blessing.json, which `kiln push --infra-blessing` checks.\n\nExample:\n"
      "  kiln infra-validate --model runs/clicks/7 --data day3.csv --out eval/7\n\n",
      kExitCodesHelp, ", 3 not blessed"));
  app->add_option("--model", flags->model, "Model bundle directory")->required();
  app->add_option("--data", flags->data, "Rows to send besides the warm-up rows");
  app->add_option("--rows", flags->rows, "At most this many rows of --data")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  app->add_option("--requests", flags->requests, "Predict requests to send")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  app->add_option("--max-p99-ms", flags->max_p99_ms, "Bound on the p99 request latency")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--out", flags->out, "Directory for infra_blessing.json")->required();
  app->add_option("--key-file", flags->key_file, "Key of an encrypted bundle");
  app->add_flag("--quiet,-q", flags->quiet, "Print nothing when blessed");
  flags->metadata.Add(app, /*recording=*/true);
  app->callback([flags] { Exit(RunInfraValidate(*flags)); });
}

}  // namespace kiln::cli
