// `kiln serve`: the model server (TF Serving's REST API; flags named as
// tensorflow_model_server's where they mean the same).
#include <signal.h>

#include <cstdio>

#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/model/bundle.h"
#include "kiln/serving/http_server.h"
#include "kiln/serving/manager.h"
#include "kiln/serving/rest_api.h"

namespace kiln::cli {
namespace {

struct ServeFlags {
  int port = 0;  // gRPC: not served yet
  int rest_api_port = 8501;
  std::string host = "127.0.0.1";
  std::string model_name;
  std::string model_base_path;
  std::string model_config_file;
  double poll_seconds = 1;
  int threads = 0;
  size_t max_body_bytes = size_t{16} << 20;
  int64_t timeout_ms = 30000;
  std::string key_file;
};

absl::StatusOr<serving::ServerConfig> LoadConfig(Env* env, const ServeFlags& f) {
  if (!f.model_config_file.empty()) {
    KILN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(env, f.model_config_file));
    auto c = serving::ParseServerConfig(text);
    if (!c.ok()) {
      return absl::Status(c.status().code(),
                          StrCat(f.model_config_file, ": ", c.status().message()));
    }
    return c;
  }
  serving::ServerConfig c;
  c.models.push_back({f.model_name, f.model_base_path, {}, {}});
  KILN_RETURN_IF_ERROR(serving::ValidateName("model name", f.model_name));
  return c;
}

int RunServe(const ServeFlags& f) {
  Env* env = Env::Default();
  if (f.port != 0) {
    return ReportError(
        "serve", absl::UnimplementedError("--port (gRPC) is not served yet; use --rest_api_port"));
  }
  if (f.model_config_file.empty() == (f.model_base_path.empty() || f.model_name.empty())) {
    return ReportError("serve",
                       absl::InvalidArgumentError("give --model_name and --model_base_path, or "
                                                  "--model_config_file"));
  }
  auto key = model::LoadModelKey(env, f.key_file);
  if (!key.ok()) return ReportError("serve", key.status());
  auto config = LoadConfig(env, f);
  if (!config.ok()) return ReportError("serve", config.status());

  // Signals are taken by this thread with sigwait; every thread started later inherits
  // the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  serving::ModelManager manager(env, {.key = *key});
  manager.SetConfig(*config);
  for (const std::string& name : manager.Models()) {
    auto status = manager.Status(name);
    for (const serving::VersionStatus& s : *status) {
      std::fprintf(stderr, "kiln serve: %s version %lld: %s%s%s\n", name.c_str(),
                   static_cast<long long>(s.version),
                   std::string(serving::VersionStateName(s.state)).c_str(),
                   s.error.ok() ? "" : ": ", std::string(s.error.message()).c_str());
    }
  }
  manager.StartPolling(std::chrono::milliseconds(static_cast<int64_t>(f.poll_seconds * 1000)));
  serving::RestApi api(&manager);
  serving::HttpServerOptions options;
  options.host = f.host;
  options.port = f.rest_api_port;
  options.threads = f.threads;
  options.max_body_bytes = f.max_body_bytes;
  options.read_timeout = std::chrono::milliseconds(f.timeout_ms);
  auto server = serving::HttpServer::Start(
      options, [&api](const serving::HttpRequest& r) { return api.Handle(r); });
  if (!server.ok()) return ReportError("serve", server.status());
  std::printf("kiln serve: REST API on http://%s:%d (models: %s)\n", f.host.c_str(),
              (*server)->port(), StrJoin(manager.Models(), ", ").c_str());
  std::fflush(stdout);

  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP && !f.model_config_file.empty()) {
      auto reloaded = LoadConfig(env, f);
      if (reloaded.ok()) {
        manager.SetConfig(*reloaded);
        std::fprintf(stderr, "kiln serve: reloaded %s\n", f.model_config_file.c_str());
      } else {
        std::fprintf(stderr, "kiln serve: keeping the old config: %s\n",
                     std::string(reloaded.status().message()).c_str());
      }
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT) break;
  }
  std::fprintf(stderr, "kiln serve: draining\n");
  (*server)->Shutdown(std::chrono::seconds(10));
  manager.Stop();
  return kExitOk;
}

}  // namespace

void AddServeCommand(CLI::App& root) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* app = root.add_subcommand(
      "serve", "Serve model bundles over TF Serving's REST API (TF Serving's flags)");
  app->footer(StrCat(
      "One model:\n  kiln serve --model_name clicks --model_base_path /srv/models/clicks\n"
      "serves the highest numbered version directory under the base path (each a bundle "
      "from kiln train or import-model), and switches to a newer one once it has loaded and "
      "passed its warm-up rows. Several models, version policies and labels: "
      "--model_config_file (YAML, or TF Serving's model_config_list text proto; SIGHUP "
      "reloads it).\n\n"
      "  curl localhost:8501/v1/models/clicks\n"
      "  curl -d '{\"instances\": [{\"country\": \"DE\", \"price\": 12.5}]}' "
      "localhost:8501/v1/models/clicks:predict\n\n"
      "Listens on 127.0.0.1 unless --host says otherwise. SIGTERM drains requests in flight, "
      "then exits.\n\n",
      kExitCodesHelp));
  app->add_option("--rest_api_port", flags->rest_api_port, "REST port (0: any free port)")
      ->check(CLI::Range(0, 65535));
  app->add_option("--port", flags->port, "gRPC port (not served yet)");
  app->add_option("--host", flags->host, "Address to listen on (default 127.0.0.1)");
  app->add_option("--model_name", flags->model_name, "Name of the one model served");
  app->add_option("--model_base_path", flags->model_base_path,
                  "Directory of its numbered versions");
  app->add_option("--model_config_file", flags->model_config_file,
                  "Models, version policies and labels (YAML or TF Serving text proto)");
  app->add_option("--file_system_poll_wait_seconds", flags->poll_seconds,
                  "How often base paths are scanned for new versions (default 1)")
      ->check(CLI::Range(0.01, 86400.0));
  app->add_option("--rest_api_num_threads", flags->threads, "HTTP threads (0: one per core)")
      ->check(CLI::Range(0, 1024));
  app->add_option("--max_body_bytes", flags->max_body_bytes,
                  "Largest request body accepted (default 16 MiB; larger: 413)");
  app->add_option("--rest_api_timeout_in_ms", flags->timeout_ms,
                  "How long a connection may take to send a request (default 30000); a slower "
                  "or idle one is closed")
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}));
  app->add_option("--key-file", flags->key_file, "Key for sealed bundles (or KILN_MODEL_KEY)");
  app->callback([flags] { Exit(RunServe(*flags)); });
}

}  // namespace kiln::cli
