// `kiln ui`: the dashboard. Serves the built web app and its JSON API (docs/ui.md) over
// the metadata store on 127.0.0.1 until SIGTERM or SIGINT.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/cli/metadata_flags.h"
#include "kiln/metadata/open_store.h"
#include "kiln/serving/webhook.h"
#include "kiln/ui/ui_api.h"
#include "kiln/ui/ui_server.h"

namespace kiln::cli {
namespace {

struct UiFlags {
  int port = 8080;
  std::string serving;
  std::string web;
  MetadataFlags metadata;
};

// `web` beside the binary, where the build installs web/dist.
std::string DefaultWebDir() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "web";
  return (exe.parent_path() / "web").string();
}

int RunUi(const UiFlags& f) {
  if (!f.serving.empty()) {
    if (auto url = serving::ParseHttpUrl(f.serving); !url.ok()) {
      return ReportError("ui",
                         absl::InvalidArgumentError(StrCat("--serving: ", url.status().message())));
    }
  }
  // Read-only: a missing default store is an error, not a new empty one. A request waits
  // at most 5 s for a writer (kiln run) to release the SQLite lock.
  metadata::StoreOptions store_options;
  store_options.must_exist = true;
  store_options.busy_deadline_ms = 5000;
  auto store = metadata::OpenStore(f.metadata.url, store_options);
  if (!store.ok()) return ReportError("ui", store.status());

  // Signals are taken by this thread with sigwait; the server's threads inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ui::UiApiOptions api_options;
  api_options.serving_url = f.serving;
  ui::UiApi api(store->get(), api_options);
  ui::UiServerOptions server_options;
  server_options.port = f.port;
  server_options.web_dir = f.web.empty() ? DefaultWebDir() : f.web;
  auto server = ui::StartUiServer(&api, server_options);
  if (!server.ok()) return ReportError("ui", server.status());
  std::printf("kiln ui on http://127.0.0.1:%d/\n", (*server)->port());
  std::fflush(stdout);
  std::fprintf(stderr, "kiln ui: store %s\n", (*store)->Describe().c_str());
  std::error_code ec;
  if (std::filesystem::is_regular_file(std::filesystem::path(server_options.web_dir) / "index.html",
                                       ec)) {
    std::fprintf(stderr, "kiln ui: web app from %s\n", server_options.web_dir.c_str());
  } else {
    std::fprintf(stderr,
                 "kiln ui: warning: no web app at %s (no index.html); pass --web DIR (a built "
                 "web/dist). The JSON API still answers under /api/ (docs/ui.md)\n",
                 server_options.web_dir.c_str());
  }
  if (!f.serving.empty()) std::fprintf(stderr, "kiln ui: kiln serve at %s\n", f.serving.c_str());

  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGTERM || sig == SIGINT) break;
  }
  (*server)->Shutdown(std::chrono::seconds(2));
  return kExitOk;
}

}  // namespace

void AddUiCommand(CLI::App& root) {
  auto flags = std::make_shared<UiFlags>();
  CLI::App* app = root.add_subcommand(
      "ui", "The dashboard: runs, data, training, models and lineage in a browser");
  app->footer(StrCat(
      "Serves a web app and the JSON API it reads on http://127.0.0.1:PORT/ (this machine "
      "only), until SIGTERM or Ctrl-C. It reads the metadata store (never writes it) and the "
      "files its artifacts point to; it needs neither Node nor the network. The first line "
      "on stdout is `kiln ui on http://127.0.0.1:PORT/`.\n\n"
      "Views:\n"
      "  #/runs              pipeline runs, newest first; a running one updates every 2 s\n"
      "  #/runs/P/RUN        one run: its components' state, time, attempts and logs\n"
      "  #/data, #/data/ID   statistics (histograms, top values), drift between two, anomalies\n"
      "  #/training          Trainer executions: hyperparameters, metrics, TensorBoard scalars\n"
      "  #/models            pushed versions per destination, blessings, kiln serve's status\n"
      "  #/lineage/ID        what made an artifact and what it made\n\n"
      "API (GET, JSON; errors are {\"error\"} with 400/404/500; the full contract is "
      "docs/ui.md):\n"
      "  /api/summary   /api/runs[?pipeline=P]   /api/runs/P/RUN   /api/runs/P/RUN/log/COMPONENT\n"
      "  /api/artifacts[?type=T&limit=N]   /api/artifacts/ID   /api/statistics/ID\n"
      "  /api/drift?a=ID&b=ID[&split=S]   /api/anomalies/ID   /api/evaluations/ID\n"
      "  /api/training   /api/training/MODEL_ID/scalars   /api/models   /api/serving\n"
      "  /api/lineage/ID[?hops=N]\n\n"
      "Examples:\n"
      "  kiln ui                                   # $KILN_HOME's store on port 8080\n"
      "  kiln ui --port 0 --metadata sqlite:demo-out/kiln-home/metadata.sqlite\n"
      "  kiln ui --serving http://127.0.0.1:8501   # also what `kiln serve` reports\n"
      "  curl -s localhost:8080/api/runs\n\n",
      kExitCodesHelp));
  app->add_option("--port", flags->port, "Port on 127.0.0.1 (0: pick a free one and print it)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app->add_option("--serving", flags->serving,
                  "A `kiln serve` REST base (http://HOST:PORT): /api/serving shows its model "
                  "status, traffic splits and rollbacks");
  app->add_option("--web", flags->web,
                  "The built web app (web/dist) to serve (default: `web` beside the kiln "
                  "binary)");
  flags->metadata.Add(app, /*recording=*/false);
  app->callback([flags] { Exit(RunUi(*flags)); });
}

}  // namespace kiln::cli
