// `kiln serve`: the model server (TF Serving's REST API; flags named as
// tensorflow_model_server's where they mean the same).
#include <signal.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>

#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/cli/metadata_flags.h"
#include "kiln/model/bundle.h"
#include "kiln/serving/auth.h"
#include "kiln/serving/grpc_server.h"
#include "kiln/serving/http_server.h"
#include "kiln/serving/inference.h"
#include "kiln/serving/manager.h"
#include "kiln/serving/request_log.h"
#include "kiln/serving/rest_api.h"

namespace kiln::cli {
namespace {

struct ServeFlags {
  std::string auth = "none";
  serving::AuthOptions auth_options;  // mode set from `auth`
  std::string ssl_cert_file;
  std::string ssl_key_file;
  int max_connections = 1024;
  int port = 0;  // gRPC; 0: not served
  size_t grpc_max_message_bytes = size_t{16} << 20;
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
  bool enable_batching = false;
  std::string batching_parameters_file;
  std::string request_log_dir;
  double request_log_sample_rate = 0.01;
  MetadataFlags metadata;
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

// Records serving events into the metadata store on a thread of its own, through a
// bounded queue (events beyond it are dropped with a warning). Does nothing without
// --metadata.
class MetadataWriter {
 public:
  explicit MetadataWriter(const MetadataFlags& flags) : flags_(flags) {
    if (!flags_.url.empty()) thread_ = std::thread([this] { Loop(); });
  }
  ~MetadataWriter() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void Add(metadata::ExecutionRecord record, std::vector<MetadataFlags::Input> inputs) {
    if (flags_.url.empty()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.size() >= 256) {
        std::fprintf(stderr, "kiln serve: metadata store behind; not recording a %s event\n",
                     record.type.c_str());
        return;
      }
      queue_.emplace_back(std::move(record), std::move(inputs));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything written
      auto [record, inputs] = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      if (absl::Status st = flags_.Record("serve", std::move(record), inputs); !st.ok()) {
        std::fprintf(stderr, "kiln serve: metadata: %s\n", std::string(st.message()).c_str());
      }
      lock.lock();
    }
  }

  const MetadataFlags& flags_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<metadata::ExecutionRecord, std::vector<MetadataFlags::Input>>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

int RunServe(const ServeFlags& f) {
  Env* env = Env::Default();
  if (f.model_config_file.empty() == (f.model_base_path.empty() || f.model_name.empty())) {
    return ReportError("serve",
                       absl::InvalidArgumentError("give --model_name and --model_base_path, or "
                                                  "--model_config_file"));
  }
  auto key = model::LoadModelKey(env, f.key_file);
  if (!key.ok()) return ReportError("serve", key.status());
  auto config = LoadConfig(env, f);
  if (!config.ok()) return ReportError("serve", config.status());
  serving::AuthOptions auth_options = f.auth_options;
  auth_options.mode = f.auth == "jwt"       ? serving::AuthOptions::kJwt
                      : f.auth == "api_key" ? serving::AuthOptions::kApiKey
                                            : serving::AuthOptions::kNone;
  auto auth = serving::Authenticator::Create(env, auth_options);
  if (!auth.ok()) return ReportError("serve", auth.status());

  // Signals are taken by this thread with sigwait; every thread started later inherits
  // the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Version transitions and rollbacks go to stderr and, with --metadata, to the store
  // (written on a thread of its own: the store is never waited on by a request).
  MetadataWriter recorder(f.metadata);
  auto on_version = [&recorder](const serving::VersionEvent& e) {
    const char* what = e.state == serving::VersionState::kAvailable ? "available"
                       : e.error.ok()                               ? "unloaded"
                                                                    : "failed to load";
    std::fprintf(stderr, "kiln serve: %s version %lld: %s%s%s\n", e.model.c_str(),
                 static_cast<long long>(e.version), what, e.error.ok() ? "" : ": ",
                 std::string(e.error.message()).c_str());
    metadata::ExecutionRecord r;
    r.type = "ModelServing";
    r.state =
        e.error.ok() ? metadata::ExecutionState::kComplete : metadata::ExecutionState::kFailed;
    r.parameters = {{"model_name", e.model}, {"version", e.version}, {"event", std::string(what)}};
    if (!e.error.ok()) r.parameters["error"] = std::string(e.error.message());
    recorder.Add(std::move(r), {{.role = "model", .type = "Model", .uri = AbsolutePath(e.dir)}});
  };
  serving::ModelManager manager(env, {.key = *key, .on_event = on_version});
  manager.SetConfig(*config);
  manager.StartPolling(std::chrono::milliseconds(static_cast<int64_t>(f.poll_seconds * 1000)));
  std::unique_ptr<serving::RequestLog> request_log;
  if (!f.request_log_dir.empty()) {
    auto log = serving::RequestLog::Open(
        {.dir = f.request_log_dir, .sample_rate = f.request_log_sample_rate});
    if (!log.ok()) return ReportError("serve", log.status());
    request_log = std::move(*log);
  }
  serving::InferenceOptions inference{.request_log = request_log.get()};
  inference.on_rollback = [&](const serving::RollbackEvent& e) {
    metadata::ExecutionRecord r;
    r.type = "ModelRollback";
    r.parameters = {{"model_name", e.model},
                    {"canary_version", e.canary_version},
                    {"stable_version", e.stable_version},
                    {"reason", e.reason}};
    std::vector<MetadataFlags::Input> inputs;
    if (auto dir = manager.VersionDir(e.model, e.canary_version); dir.ok()) {
      inputs.push_back({.role = "canary", .type = "Model", .uri = AbsolutePath(*dir)});
    }
    recorder.Add(std::move(r), std::move(inputs));
  };
  if (f.enable_batching) {
    inference.batching = serving::BatchingOptions{};
    if (!f.batching_parameters_file.empty()) {
      auto text = ReadFileToString(env, f.batching_parameters_file);
      if (!text.ok()) return ReportError("serve", text.status());
      auto parsed = serving::ParseBatchingParameters(*text);
      if (!parsed.ok()) {
        return ReportError(
            "serve", absl::Status(parsed.status().code(), StrCat(f.batching_parameters_file, ": ",
                                                                 parsed.status().message())));
      }
      inference.batching = *parsed;
    }
  }
  auto service_or = serving::InferenceService::Create(&manager, inference);
  if (!service_or.ok()) return ReportError("serve", service_or.status());
  serving::InferenceService& service = **service_or;
  if (absl::Status st = service.SetConfig(*config); !st.ok()) return ReportError("serve", st);
  // The config file is re-read on SIGHUP and on POST /kiln/admin/reload; a file that does
  // not parse keeps the running config.
  std::mutex reload_mu;
  auto reload = [&]() -> absl::Status {
    if (f.model_config_file.empty()) {
      return absl::FailedPreconditionError("no --model_config_file to reload");
    }
    std::lock_guard<std::mutex> lock(reload_mu);
    auto reloaded = LoadConfig(env, f);
    if (!reloaded.ok()) {
      std::fprintf(stderr, "kiln serve: keeping the old config: %s\n",
                   std::string(reloaded.status().message()).c_str());
      return reloaded.status();
    }
    KILN_RETURN_IF_ERROR(service.SetConfig(*reloaded));
    manager.SetConfig(*reloaded);
    std::fprintf(stderr, "kiln serve: reloaded %s\n", f.model_config_file.c_str());
    return absl::OkStatus();
  };
  serving::RestApi api(&service);
  serving::HttpServerOptions options;
  options.host = f.host;
  options.port = f.rest_api_port;
  options.threads = f.threads;
  options.max_body_bytes = f.max_body_bytes;
  options.read_timeout = std::chrono::milliseconds(f.timeout_ms);
  options.max_connections = f.max_connections;
  options.tls_cert_file = f.ssl_cert_file;
  options.tls_key_file = f.ssl_key_file;
  auto server = serving::HttpServer::StartAsync(
      options, [&](serving::HttpRequest r, serving::HttpReply reply) {
        if (serving::RequiresAuthentication(r.target)) {
          absl::Status allowed =
              (*auth)->Check(r.Header("authorization"), r.Header("x-api-key"), std::time(nullptr));
          if (!allowed.ok()) return reply(serving::ErrorResponse(allowed));
        }
        if (r.target == "/kiln/admin/reload") {
          if (r.method != "POST") {
            return reply(serving::ErrorResponse(absl::UnimplementedError("reload takes POST")));
          }
          absl::Status st = reload();
          if (!st.ok()) return reply(serving::ErrorResponse(st));
          return reply(serving::JsonResponse(200, {{"reloaded", f.model_config_file}}));
        }
        api.HandleAsync(std::move(r), std::move(reply));
      });
  if (!server.ok()) return ReportError("serve", server.status());
  std::printf("kiln serve: REST API on %s://%s:%d (models: %s)\n",
              f.ssl_cert_file.empty() ? "http" : "https", f.host.c_str(), (*server)->port(),
              StrJoin(manager.Models(), ", ").c_str());
  std::unique_ptr<serving::GrpcServer> grpc;
  if (f.port != 0) {
    serving::GrpcServerOptions grpc_options;
    grpc_options.host = f.host;
    grpc_options.port = f.port;
    grpc_options.max_message_bytes = f.grpc_max_message_bytes;
    // The same credentials and certificate as REST.
    grpc_options.tls_cert_file = f.ssl_cert_file;
    grpc_options.tls_key_file = f.ssl_key_file;
    if (auth_options.mode != serving::AuthOptions::kNone) {
      grpc_options.authorize = [&auth](const std::function<std::string(std::string_view)>& md) {
        return (*auth)->Check(md("authorization"), md("x-api-key"), std::time(nullptr));
      };
    }
    auto started = serving::GrpcServer::Start(grpc_options, &service);
    if (!started.ok()) return ReportError("serve", started.status());
    grpc = *std::move(started);
    std::printf("kiln serve: gRPC on %s:%d (KServe v2; TF Serving Predict, GetModelStatus)\n",
                f.host.c_str(), grpc->port());
  }
  std::fflush(stdout);

  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      (void)reload();
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT) break;
  }
  std::fprintf(stderr, "kiln serve: draining\n");
  if (grpc) grpc->Shutdown(std::chrono::seconds(10));
  (*server)->Shutdown(std::chrono::seconds(10));
  service.Shutdown();
  manager.Stop();
  return kExitOk;
}

}  // namespace

void AddServeCommand(CLI::App& root) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* app = root.add_subcommand(
      "serve",
      "Serve model bundles: TF Serving's REST API and flags, KServe v2 over REST and gRPC");
  app->footer(StrCat(
      "One model:\n  kiln serve --model_name clicks --model_base_path /srv/models/clicks\n"
      "serves the highest numbered version directory under the base path (each a bundle "
      "from kiln train or import-model), and switches to a newer one once it has loaded and "
      "passed its warm-up rows. Several models, version policies, labels, traffic splits and "
      "canary rollback: --model_config_file (YAML, or TF Serving's model_config_list text "
      "proto; SIGHUP or POST /kiln/admin/reload re-reads it).\n\n"
      "  curl localhost:8501/v1/models/clicks\n"
      "  curl -d '{\"instances\": [{\"country\": \"DE\", \"price\": 12.5}]}' "
      "localhost:8501/v1/models/clicks:predict\n"
      "  curl localhost:8501/v2/models/clicks            (KServe v2; gRPC with --port)\n"
      "  curl localhost:8501/kiln/traffic                (splits, canary windows, rollbacks)\n"
      "  curl localhost:8501/metrics                     (Prometheus)\n\n"
      "Listens on 127.0.0.1 unless --host says otherwise; no authentication unless --auth. "
      "SIGTERM drains requests in flight, then exits. With --metadata, version loads, "
      "failures, unloads and rollbacks are recorded in the metadata store.\n\n",
      kExitCodesHelp));
  app->add_option("--rest_api_port", flags->rest_api_port, "REST port (0: any free port)")
      ->check(CLI::Range(0, 65535));
  app->add_option("--port", flags->port,
                  "gRPC port: KServe's v2 protocol and TF Serving's Predict and GetModelStatus "
                  "(default 0: no gRPC)")
      ->check(CLI::Range(0, 65535));
  app->add_option("--grpc_max_message_bytes", flags->grpc_max_message_bytes,
                  "Largest gRPC message accepted or sent (default 16 MiB)");
  app->add_option("--host", flags->host, "Address to listen on (default 127.0.0.1)");
  app->add_option("--model_name", flags->model_name, "Name of the one model served");
  app->add_option("--model_base_path", flags->model_base_path,
                  "Directory of its numbered versions");
  app->add_option("--model_config_file", flags->model_config_file,
                  "Models, version policies and labels (YAML or TF Serving text proto)");
  app->add_option("--file_system_poll_wait_seconds", flags->poll_seconds,
                  "How often base paths are scanned for new versions (default 1)")
      ->check(CLI::Range(0.01, 86400.0));
  app->add_option("--rest_api_num_threads", flags->threads,
                  "HTTP threads (0: one per core; requests waiting for a batch hold none)")
      ->check(CLI::Range(0, 1024));
  app->add_option("--max_body_bytes", flags->max_body_bytes,
                  "Largest request body accepted (default 16 MiB; larger: 413)");
  app->add_option("--rest_api_timeout_in_ms", flags->timeout_ms,
                  "How long a connection may take to send a request (default 30000); a slower "
                  "or idle one is closed")
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}));
  app->add_option("--key-file", flags->key_file, "Key for sealed bundles (or KILN_MODEL_KEY)");
  app->add_flag("--enable_batching", flags->enable_batching,
                "Batch concurrent requests for the same model version (TF Serving's flag)");
  app->add_option("--batching_parameters_file", flags->batching_parameters_file,
                  "TF Serving BatchingParameters text proto: max_batch_size, "
                  "batch_timeout_micros, num_batch_threads, max_enqueued_batches, "
                  "allowed_batch_sizes (defaults 32, 1000, cores, 16)");
  app->add_option("--request_log_dir", flags->request_log_dir,
                  "Append sampled request rows to DIR/MODEL/requests.jsonl (for kiln stats and "
                  "kiln validate --serving)");
  app->add_option("--request_log_sample_rate", flags->request_log_sample_rate,
                  "Fraction of requests logged (default 0.01)")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--auth", flags->auth,
                  "Credentials every request needs except /v2/health/live and /v2/health/ready: "
                  "none (default), jwt (Authorization: Bearer <JWT>) or api_key (x-api-key)")
      ->check(CLI::IsMember({"none", "jwt", "api_key"}));
  app->add_option("--jwt_hs256_secret_file", flags->auth_options.jwt_hs256_secret_file,
                  "HS256 key (the file's bytes, at least 32)");
  app->add_option("--jwt_rs256_public_key_file", flags->auth_options.jwt_rs256_public_key_file,
                  "RS256 public key (PEM, RSA >= 2048 bits)");
  app->add_option("--jwt_issuer", flags->auth_options.jwt_issuer, "Required \"iss\" claim");
  app->add_option("--jwt_audience", flags->auth_options.jwt_audience,
                  "Required \"aud\" claim (one of its values)");
  app->add_option("--jwt_clock_skew_seconds", flags->auth_options.jwt_clock_skew_seconds,
                  "Leeway for exp and nbf (default 60)")
      ->check(CLI::Range(int64_t{0}, int64_t{3600}));
  app->add_option("--api_keys_file", flags->auth_options.api_keys_file,
                  "Accepted API keys, one per line ('#' comments)");
  app->add_option("--ssl_cert_file", flags->ssl_cert_file,
                  "PEM certificate chain; with --ssl_key_file the REST API is HTTPS only");
  app->add_option("--ssl_key_file", flags->ssl_key_file, "PEM private key of --ssl_cert_file");
  app->add_option("--max_connections", flags->max_connections,
                  "Open REST connections (default 1024); beyond it new ones are closed at once")
      ->check(CLI::Range(1, 1000000));
  flags->metadata.Add(app, /*recording=*/false);
  app->get_option("--metadata")
      ->description(
          "Record version loads, failures, unloads and rollbacks in this metadata store "
          "(sqlite:PATH or postgresql://USER@HOST:PORT/DB); nothing is recorded without it");
  app->callback([flags] { Exit(RunServe(*flags)); });
}

}  // namespace kiln::cli
