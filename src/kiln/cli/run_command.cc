// `kiln run PIPELINE.yaml`: runs a pipeline's components as child processes of this
// binary (or any executable), with caching, retries, gates and metadata records.
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/cli/metadata_flags.h"
#include "kiln/cli/pipeline_catalog.h"
#include "kiln/pipeline/alerts.h"
#include "kiln/pipeline/invocation.h"
#include "kiln/pipeline/kinds.h"
#include "kiln/pipeline/lock.h"
#include "kiln/pipeline/pipeline_spec.h"
#include "kiln/pipeline/run_records.h"
#include "kiln/pipeline/runner.h"
#include "kiln/serving/webhook.h"
#include "nlohmann/json.hpp"

namespace kiln::cli {
namespace {

struct RunFlags {
  std::string pipeline;
  std::string run_id;
  int parallel = 0;
  bool no_cache = false;
  bool dry_run = false;
  bool quiet = false;
  MetadataFlags metadata;
};

// `--dry-run`: each component's command line in this order, with the paths of a run.
void PrintPlan(const pipeline::Pipeline& p, const pipeline::FlagCatalog& catalog,
               const std::string& metadata_url) {
  const std::string run_dir = JoinPath(p.root, "RUN_ID");
  pipeline::InvocationContext ctx;
  ctx.catalog = &catalog;
  ctx.metadata_url = metadata_url.empty() ? "STORE" : metadata_url;
  ctx.run_id = "RUN_ID";
  ctx.run_dir = run_dir;
  const char* path = std::getenv("PATH");
  ctx.path_env = path ? path : "";
  std::printf("pipeline %s: %zu components in %zu parallel groups; runs in %s/RUN_ID\n",
              p.name.c_str(), p.components.size(), p.dag.levels.size(), p.root.c_str());
  for (size_t level = 0; level < p.dag.levels.size(); ++level) {
    for (int i : p.dag.levels[level]) {
      const pipeline::Component& c = p.components[i];
      std::map<std::string, std::string> inputs;
      for (const pipeline::InputRef& in : c.inputs) {
        const pipeline::Component& up = p.components[p.Find(in.component)];
        const std::string output = in.output.empty() ? up.outputs[0].name : in.output;
        for (const pipeline::OutputPaths& o : pipeline::OutputsOf(up, run_dir)) {
          if (o.name == output) inputs[in.name] = o.final_path;
        }
      }
      std::vector<std::string> after;
      for (int u : p.dag.upstream[i]) after.push_back(p.components[u].name);
      auto inv = pipeline::BuildInvocation(p, c, inputs, pipeline::OutputsOf(c, run_dir), ctx);
      std::printf("[%zu] %s (%s)%s\n    %s\n", level, c.name.c_str(), c.kind.c_str(),
                  after.empty() ? "" : StrCat(" after ", StrJoin(after, ", ")).c_str(),
                  inv.ok() ? StrJoin(inv->argv, " ").c_str()
                           : StrCat("error: ", inv.status().message()).c_str());
    }
  }
}

// The last `n` lines of a log, for the error report of a failed component.
std::string Tail(const std::string& path, size_t n) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("=== kiln run:", 0) == 0) continue;
    lines.push_back(std::move(line));
    if (lines.size() > n) lines.erase(lines.begin());
  }
  std::string out;
  for (const std::string& l : lines) out += StrCat("    ", l, "\n");
  return out;
}

// --metadata names a store relative to here; the pipeline's own relative to its file.
std::string StoreUrl(const std::string& flag) {
  std::string url = flag;
  if (!url.empty() && url.find("://") == std::string::npos) {
    const std::string path = url.rfind("sqlite:", 0) == 0 ? url.substr(7) : url;
    url = StrCat("sqlite:", AbsolutePath(path));
  }
  return url;
}

// Alerts, the summary table, and what failed or stopped the run; returns the exit code.
int ReportRun(const char* command, const pipeline::Pipeline& p, const pipeline::RunResult& r,
              bool quiet) {
  // A sink that fails is a warning: it never changes the run's outcome.
  pipeline::SendAlerts(p, pipeline::AlertEventsOf(p, r), serving::PostJson, stderr);
  if (!quiet) {
    std::printf("pipeline %s, run %s: %s in %.2f s\n%s%s: %s/run.json\n", r.pipeline.c_str(),
                r.run_id.c_str(), r.state.c_str(), r.seconds, pipeline::SummaryTable(r).c_str(),
                "logs and outputs", r.run_dir.c_str());
    std::fflush(stdout);
  }
  for (const pipeline::ComponentResult& c : r.components) {
    if (c.state != pipeline::ComponentState::kFailed) continue;
    std::fprintf(stderr, "kiln %s: error: component '%s' failed: %s\n%s", command, c.name.c_str(),
                 c.note.c_str(), c.log.empty() ? "" : Tail(c.log, 5).c_str());
  }
  for (const pipeline::ComponentResult& c : r.components) {
    if (r.state == "stopped" && c.name == r.stopped_by) {
      std::fprintf(stderr, "kiln %s: stopped at component '%s': %s\n", command, c.name.c_str(),
                   c.note.c_str());
    }
    if (c.state == pipeline::ComponentState::kHeld) {
      std::fprintf(stderr, "kiln %s: component '%s' %s\n", command, c.name.c_str(), c.note.c_str());
    }
  }
  return r.ExitCode();
}

int RunRun(const RunFlags& f, CLI::App& root) {
  const pipeline::FlagCatalog catalog = PipelineFlagCatalog(root);
  auto p = pipeline::LoadPipeline(Env::Default(), f.pipeline, &catalog);
  if (!p.ok()) return ReportError("run", p.status());
  const std::string url = StoreUrl(f.metadata.url);
  if (f.dry_run) {
    PrintPlan(*p, catalog, url.empty() ? p->metadata : url);
    return kExitOk;
  }
  // One run of a pipeline at a time (kiln schedule hands its own lock to the run it starts).
  auto lock = pipeline::PipelineLock::AcquireRunOrInherit(p->root, p->name);
  if (!lock.ok()) return ReportError("run", lock.status());
  pipeline::RunOptions options;
  options.metadata_url = url;
  options.run_id = f.run_id;
  options.parallel = f.parallel;
  options.use_cache = !f.no_cache;
  options.catalog = &catalog;
  options.progress = !f.quiet && isatty(STDERR_FILENO) ? stderr : nullptr;
  auto result = pipeline::RunPipeline(*p, options);
  if (!result.ok()) return ReportError("run", result.status());
  return ReportRun("run", *p, *result, f.quiet);
}

struct ApproveFlags {
  std::string run_id;
  std::string pipeline = "pipeline.yaml";
  std::string note;
  int parallel = 0;
  bool quiet = false;
  MetadataFlags metadata;
};

std::string WhoAmI() {
  if (const char* u = std::getenv("USER"); u && *u) return u;
  if (const passwd* pw = getpwuid(geteuid())) return pw->pw_name;
  return StrCat("uid ", geteuid());
}

int RunApprove(const ApproveFlags& f, CLI::App& root) {
  const pipeline::FlagCatalog catalog = PipelineFlagCatalog(root);
  Env* env = Env::Default();
  auto p = pipeline::LoadPipeline(env, f.pipeline, &catalog);
  if (!p.ok()) return ReportError("approve", p.status());
  const std::string run_json = JoinPath(JoinPath(p->root, f.run_id), "run.json");
  auto text = ReadFileToString(env, run_json);
  if (!text.ok()) {
    return ReportError("approve", absl::NotFoundError(StrCat("pipeline ", p->name, " has no run '",
                                                             f.run_id, "' (no ", run_json, ")")));
  }
  const nlohmann::json run = nlohmann::json::parse(*text, nullptr, false);
  const std::string state = run.is_object() && run.value("state", nlohmann::json()).is_string()
                                ? run["state"].get<std::string>()
                                : "unreadable";
  if (state != "held") {
    return ReportError("approve",
                       absl::FailedPreconditionError(StrCat(
                           "run ", f.run_id, " is ", state,
                           "; only a held run (drift found, its push held) waits for approval")));
  }
  // The store the run used, unless told otherwise.
  std::string url = StoreUrl(f.metadata.url);
  if (url.empty() && run.value("metadata", nlohmann::json()).is_string()) {
    url = run["metadata"].get<std::string>();
  }
  // The re-run is a run like any other: one at a time per pipeline.
  auto lock = pipeline::PipelineLock::AcquireRun(p->root, p->name);
  if (!lock.ok()) return ReportError("approve", lock.status());
  char host[256] = "";
  gethostname(host, sizeof(host) - 1);
  auto records = pipeline::RunRecords::Open(url, p->name, f.run_id);
  if (!records.ok()) return ReportError("approve", records.status());
  auto id = (*records)->RecordApproval(WhoAmI(), host, f.note);
  if (!id.ok()) return ReportError("approve", id.status());
  records->reset();  // the run opens its own connection
  if (!f.quiet) {
    std::printf(
        "approved run %s of pipeline %s (%s@%s, execution %lld); running it again to "
        "push\n",
        f.run_id.c_str(), p->name.c_str(), WhoAmI().c_str(), host, static_cast<long long>(*id));
    std::fflush(stdout);
  }
  pipeline::RunOptions options;
  options.metadata_url = url;
  options.run_id = f.run_id;
  options.parallel = f.parallel;
  options.catalog = &catalog;
  options.progress = !f.quiet && isatty(STDERR_FILENO) ? stderr : nullptr;
  auto result = pipeline::RunPipeline(*p, options);
  if (!result.ok()) return ReportError("approve", result.status());
  return ReportRun("approve", *p, *result, f.quiet);
}

}  // namespace

void AddRunCommand(CLI::App& root) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* app = root.add_subcommand(
      "run", "Run a pipeline: its components in dependency order, cached, retried, recorded");
  app->footer(StrCat(
      "Each component runs as a child process — a kiln command for the built-in kinds, any "
      "executable for `kind: command` — in its own process group, with the pipeline file's "
      "directory as its working directory (relative paths in the file are relative to it). "
      "Components whose inputs are ready run in parallel (at most --parallel). A run lives "
      "in ROOT/RUN_ID: COMPONENT/log.txt (stdout and stderr of every attempt), "
      "COMPONENT/cache_key.txt (the cache key and what it was computed from), "
      "COMPONENT/OUTPUT (outputs: written in COMPONENT/.staging and renamed into place when "
      "the attempt succeeds) and run.json (the summary printed at the end, as JSON).\n\n"
      "Example (pipeline.yaml):\n"
      "  pipeline: clicks                  # names the pipeline's metadata context\n"
      "  root: runs/clicks                 # default: runs/PIPELINE\n"
      "  metadata: sqlite:runs/meta.sqlite # default: --metadata, else $KILN_HOME's store\n"
      "  components:\n"
      "    - name: import\n"
      "      kind: import\n"
      "      args: {data: \"data/span-{SPAN}/clicks.csv\", splits: \"train:8,eval:2\"}\n"
      "    - name: stats\n"
      "      kind: stats\n"
      "      inputs: {data: import.out}     # COMPONENT.OUTPUT: makes the dependency\n"
      "    - name: schema\n"
      "      kind: schema\n"
      "      inputs: {stats: stats}         # COMPONENT alone: its only output\n"
      "      args: {split: train, curated: schema.pbtxt}  # inferred once, then kept by you\n"
      "    - name: validate\n"
      "      kind: validate\n"
      "      inputs: {data: stats.out, schema: schema.out, previous: stats.out@previous}\n"
      "      args: {drift_threshold: 0.1}   # previous: the last span's statistics, for drift\n"
      "      on_findings: stop              # default: ERROR anomalies (exit 3) stop the run\n"
      "      on_drift: hold                 # default: drift alone holds the push (kiln approve)\n"
      "    - name: train\n"
      "      kind: train\n"
      "      inputs: {data: import.out}\n"
      "      args: {config: train.yaml}\n"
      "      after: [validate]              # ordering without an artifact\n"
      "      retries: 2                     # retryable failures: exit 75, 1, a signal, timeout\n"
      "      retry_backoff_seconds: 1       # 1 s, then 2 s, 4 s, ...\n"
      "      timeout_seconds: 3600\n"
      "    - name: my_model\n"
      "      kind: command\n"
      "      command: [python3, my_train.py, --epochs, \"3\"]\n"
      "      inputs: {data: import.out}\n"
      "      outputs: {model: Model}        # or a list of names: [model]\n"
      "      env: {OMP_NUM_THREADS: \"4\"}\n"
      "    - name: evaluate\n"
      "      kind: evaluate\n"
      "      inputs: {model: train.out, data: import.out}  # baseline: the last blessed model\n"
      "      args: {config: eval.yaml, split: eval}\n"
      "    - name: push\n"
      "      kind: push\n"
      "      inputs: {model: train.out, blessing: evaluate.out}\n"
      "      args: {to: serving/clicks}\n"
      "  alerts:                           # after the run: run_failed, anomalies, drift,\n"
      "                                    # held, not_blessed, findings, pushed\n"
      "    - {webhook: \"http://127.0.0.1:9000/hook\", retries: 3, backoff_seconds: 1}\n"
      "    - {log: runs/alerts.jsonl}\n\n"
      "History: `COMPONENT.OUTPUT@previous` is that output as it was in the newest earlier "
      "run of this pipeline where it held something else (yesterday's statistics); on a first "
      "run there is none and the input is left out. An evaluate component given no baseline "
      "compares with the latest model this pipeline blessed (other than the candidate), "
      "found in the metadata store; with none, change thresholds pass. A schema component "
      "with `curated: PATH` infers once and writes PATH; later runs use PATH as it is.\n\n"
      "Drift: when a validate component's anomalies are all drift or skew (L-infinity or "
      "Jensen-Shannon above the threshold, a changed example count), the run goes on through "
      "train and evaluate, but push components are held: the run ends `held` (exit 3) until "
      "`kiln approve RUN` records an approval and pushes (`on_drift: stop` makes drift stop "
      "the run like any anomaly, `on_drift: continue` ignores it).\n\n"
      "Alerts: a webhook gets a JSON POST per event with a Slack-compatible `text` (and "
      "event, pipeline, run, component, details), retried with backoff when it may pass (a "
      "connection error, 5xx, 429, a timeout); a log sink appends the same JSON lines. A sink "
      "that fails is a warning: it never changes the run's outcome.\n\n"
      "Kinds (inputs; outputs): import (data; out: dataset), stats (data, schema; out: "
      "statistics), schema (stats; out: schema.pbtxt), validate (data, schema, previous, "
      "serving; out: anomalies), transform (data, schema; out: the fitted transform), train "
      "(data, eval_data, transform; out: model bundle), evaluate (model, "
      "baseline, data; out: evaluation and blessing.json), infra_validate (model, data; out: "
      "infra_blessing.json), push (model, blessing, infra_blessing; none). Inputs are artifact "
      "references under inputs: or literal paths under args:. Every other arg is the "
      "command's flag of that name (`kiln train --help`): `eval_data: x` is --eval-data=x, "
      "`overwrite: true` is --overwrite, a list repeats the flag; --out and --metadata are "
      "set by kiln run. Unknown keys, kinds, flags and references, and cycles, are errors "
      "naming the file and line.\n\n"
      "Command contract: the executable (found on PATH, or a path) runs with KILN_INPUT_<NAME> "
      "(the path of each input artifact), KILN_OUTPUT_<NAME> (an empty directory to write each "
      "declared output into), KILN_PIPELINE, KILN_RUN_ID, KILN_RUN_DIR, KILN_COMPONENT and "
      "KILN_ATTEMPT in its environment. Exit 0: done; 3: done with findings (a gate, as for "
      "validate); 75 (EX_TEMPFAIL): retry; anything else: failed. For kiln's own kinds exit "
      "1 (internal or I/O error) is retryable too, and 2 (bad usage or input) never is.\n\n"
      "Caching: a component is not run again when its cache key equals that of a complete "
      "earlier execution in the metadata store whose outputs still hold the same bytes; it "
      "is reported as cached and its earlier outputs are used. The key covers the kind, every "
      "arg (and the content of files, directories and file patterns args name, except "
      "destinations such as push's `to`), the content of every input artifact, kiln's version "
      "and git sha, and for commands the argv, env, declared outputs, the executable's bytes "
      "and those of every argument naming a file (a directory named on a command line is "
      "not read: pass data as inputs). `cache: false` on a component or --no-cache runs it "
      "anyway. Running the pipeline again after a failure, a gate or kill -9 therefore runs "
      "only what did not finish.\n\n"
      "Metadata: every component is an execution in the contexts of the pipeline, the run "
      "(named by the run id) and the component (PIPELINE.COMPONENT). kiln's commands record "
      "their own executions (with their parameters and outputs), which kiln run completes "
      "with the cache key and contexts; the runner records command components itself, "
      "cached ones as CACHED executions. List a run's records with\n"
      "  kiln meta ls executions --context RUN_CONTEXT_ID   (run.json: run_context_id)\n\n"
      "One run of a pipeline at a time: a run holds ROOT/.lock (flock, released when it "
      "exits, kill -9 included); a second `kiln run` of the pipeline meanwhile exits 1 with "
      "\"pipeline NAME is already running (pid N since TIME)\". --dry-run takes no lock. "
      "`kiln schedule` runs a pipeline at cron times or on new spans.\n\n"
      "Exit codes: 0 every component ran or was cached, 1 a component failed, the pipeline "
      "is already running (or kiln failed), 2 usage or pipeline file error, 3 a gate "
      "stopped the run or a push is held, "
      "128+N interrupted "
      "by signal N (components are sent SIGTERM, then SIGKILL)."));
  app->add_option("PIPELINE", flags->pipeline, "Pipeline file (YAML)")->required();
  app->add_option("--run-id", flags->run_id,
                  "Name of this run (default: UTC time and a random suffix)");
  app->add_option("--parallel,-j", flags->parallel,
                  "Components running at once (default: the core count)")
      ->check(CLI::Range(1, 1024));
  app->add_flag("--no-cache", flags->no_cache, "Run every component, cached or not");
  app->add_flag("--dry-run", flags->dry_run,
                "Print each component's command line and dependencies; run nothing");
  app->add_flag("--quiet,-q", flags->quiet, "Print no summary; rely on the exit code and run.json");
  flags->metadata.Add(app, /*recording=*/false);
  CLI::App* root_app = &root;
  app->callback([flags, root_app] { Exit(RunRun(*flags, *root_app)); });
}

void AddApproveCommand(CLI::App& root) {
  auto flags = std::make_shared<ApproveFlags>();
  CLI::App* app = root.add_subcommand(
      "approve", "Approve a run held for drift: record who approved it, then push");
  app->footer(StrCat(
      "When a validate component finds drift (and only drift or skew: ERROR anomalies stop the "
      "run), `kiln run` trains and evaluates as usual but holds every push component; the run "
      "ends `held` (exit 3) and says which features drifted. After looking at the drift "
      "(RUN_DIR/VALIDATE/out/drift_skew.json), approve it: the approval is recorded in the "
      "metadata store as an Approval execution in the run's contexts (user, host, note, "
      "time), and the same run is run again under its run id. Everything before the push "
      "is cached, so only the push runs; it still refuses a model that is not blessed.\n\n"
      "Example:\n"
      "  kiln run pipeline.yaml --run-id day-2          # exit 3: push held (drift in price)\n"
      "  kiln approve day-2 --pipeline pipeline.yaml --note \"promo day, expected\"\n\n"
      "Exit codes: those of `kiln run` (0 pushed, 1 failed, 2 usage error or the run is not "
      "held, 3 stopped or held again)"));
  app->add_option("RUN", flags->run_id, "The run id (run.json's run_id)")->required();
  app->add_option("--pipeline", flags->pipeline, "The pipeline file of the run")
      ->capture_default_str();
  app->add_option("--note", flags->note, "Why it is approved (recorded)");
  app->add_option("--parallel,-j", flags->parallel,
                  "Components running at once (default: the core count)")
      ->check(CLI::Range(1, 1024));
  app->add_flag("--quiet,-q", flags->quiet, "Print no summary; rely on the exit code and run.json");
  flags->metadata.Add(app, /*recording=*/false);
  CLI::App* root_app = &root;
  app->callback([flags, root_app] { Exit(RunApprove(*flags, *root_app)); });
}

}  // namespace kiln::cli
