// `kiln run PIPELINE.yaml`: runs a pipeline's components as child processes of this
// binary (or any executable), with caching, retries, gates and metadata records.
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/cli/metadata_flags.h"
#include "kiln/pipeline/alerts.h"
#include "kiln/pipeline/invocation.h"
#include "kiln/pipeline/kinds.h"
#include "kiln/pipeline/pipeline_spec.h"
#include "kiln/pipeline/runner.h"
#include "kiln/serving/webhook.h"

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

// The flags of each built-in kind's command, read from this binary's own parser, so a
// pipeline file is checked against the real flags.
pipeline::FlagCatalog Catalog(CLI::App& root) {
  pipeline::FlagCatalog catalog;
  for (const std::string& name : pipeline::KindNames()) {
    const pipeline::Kind* kind = pipeline::FindKind(name);
    if (!kind) continue;
    CLI::App* app = &root;
    for (const std::string& word : kind->subcommand) {
      CLI::App* next = nullptr;
      for (CLI::App* sub : app->get_subcommands({})) {
        if (sub->get_name() == word) next = sub;
      }
      app = next;
      if (!app) break;
    }
    if (!app) continue;
    pipeline::CommandFlags& flags = catalog[name];
    for (const CLI::Option* opt : app->get_options()) {
      for (const std::string& lname : opt->get_lnames()) {
        flags.options[lname] = opt->get_type_size() != 0;
      }
    }
  }
  return catalog;
}

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

int RunRun(const RunFlags& f, CLI::App& root) {
  const pipeline::FlagCatalog catalog = Catalog(root);
  auto p = pipeline::LoadPipeline(Env::Default(), f.pipeline, &catalog);
  if (!p.ok()) return ReportError("run", p.status());
  // --metadata names a store relative to here; the pipeline's own relative to its file.
  std::string url = f.metadata.url;
  if (!url.empty() && url.find("://") == std::string::npos) {
    const std::string path = url.rfind("sqlite:", 0) == 0 ? url.substr(7) : url;
    url = StrCat("sqlite:", AbsolutePath(path));
  }
  if (f.dry_run) {
    PrintPlan(*p, catalog, url.empty() ? p->metadata : url);
    return kExitOk;
  }
  pipeline::RunOptions options;
  options.metadata_url = url;
  options.run_id = f.run_id;
  options.parallel = f.parallel;
  options.use_cache = !f.no_cache;
  options.catalog = &catalog;
  options.progress = !f.quiet && isatty(STDERR_FILENO) ? stderr : nullptr;
  auto result = pipeline::RunPipeline(*p, options);
  if (!result.ok()) return ReportError("run", result.status());
  // A sink that fails is a warning: it never changes the run's outcome.
  pipeline::SendAlerts(*p, pipeline::AlertEventsOf(*p, *result), serving::PostJson, stderr);
  if (!f.quiet) {
    std::printf("pipeline %s, run %s: %s in %.2f s\n%s%s: %s/run.json\n", result->pipeline.c_str(),
                result->run_id.c_str(), result->state.c_str(), result->seconds,
                pipeline::SummaryTable(*result).c_str(), "logs and outputs",
                result->run_dir.c_str());
    std::fflush(stdout);
  }
  for (const pipeline::ComponentResult& c : result->components) {
    if (c.state != pipeline::ComponentState::kFailed) continue;
    std::fprintf(stderr, "kiln run: error: component '%s' failed: %s\n%s", c.name.c_str(),
                 c.note.c_str(), c.log.empty() ? "" : Tail(c.log, 5).c_str());
  }
  for (const pipeline::ComponentResult& c : result->components) {
    if (result->state == "stopped" && c.name == result->stopped_by) {
      std::fprintf(stderr, "kiln run: stopped at component '%s': %s\n", c.name.c_str(),
                   c.note.c_str());
    }
  }
  return result->ExitCode();
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
      "      args: {split: train}\n"
      "    - name: validate\n"
      "      kind: validate\n"
      "      inputs: {data: stats.out, schema: schema.out}\n"
      "      on_findings: stop              # default: ERROR anomalies (exit 3) stop the run\n"
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
      "      inputs: {model: train.out, data: import.out}\n"
      "      args: {config: eval.yaml, split: eval}\n"
      "    - name: push\n"
      "      kind: push\n"
      "      inputs: {model: train.out, blessing: evaluate.out}\n"
      "      args: {to: serving/clicks}\n"
      "  alerts:                           # after the run: run_failed, anomalies, not_blessed,\n"
      "                                    # findings (a command exited 3), pushed\n"
      "    - {webhook: \"http://127.0.0.1:9000/hook\", retries: 3, backoff_seconds: 1}\n"
      "    - {log: runs/alerts.jsonl}\n\n"
      "Alerts: a webhook gets a JSON POST per event with a Slack-compatible `text` (and "
      "event, pipeline, run, component, details), retried with backoff when it may pass (a "
      "connection error, 5xx, 429, a timeout); a log sink appends the same JSON lines. A sink "
      "that fails is a warning: it never changes the run's outcome.\n\n"
      "Kinds (inputs; outputs): import (data; out: dataset), stats (data, schema; out: "
      "statistics), schema (stats; out: schema.pbtxt), validate (data, schema, previous, "
      "serving; out: anomalies), train (data, eval_data; out: model bundle), evaluate (model, "
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
      "Exit codes: 0 every component ran or was cached, 1 a component failed (or kiln "
      "failed), 2 usage or pipeline file error, 3 a gate stopped the run, 128+N interrupted "
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

}  // namespace kiln::cli
