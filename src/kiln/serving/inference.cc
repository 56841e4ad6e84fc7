#include "kiln/serving/inference.h"

#include <chrono>
#include <cstdio>

#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::serving {
namespace {

// Wall-clock milliseconds: the traffic windows' clock, and the time rollback events carry.
int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

absl::StatusOr<std::unique_ptr<InferenceService>> InferenceService::Create(
    const ModelManager* manager, InferenceOptions options) {
  std::unique_ptr<InferenceService> s(new InferenceService(manager, options));
  if (options.batching) {
    InferenceService* raw = s.get();
    KILN_ASSIGN_OR_RETURN(
        s->batcher_, Batcher::Create(*options.batching, "the server", [raw](const BatchInfo& b) {
          raw->metrics_.Observe("kiln_batch_size", {}, static_cast<double>(b.rows));
        }));
  }
  return s;
}

InferenceService::InferenceService(const ModelManager* manager, InferenceOptions options)
    : manager_(manager), options_(std::move(options)) {
  DeclareMetrics();
  webhooks_ = std::make_unique<WebhookSender>(
      WebhookSenderOptions{.on_done = [](const std::string& url, const absl::Status& st) {
        if (!st.ok()) {
          std::fprintf(stderr, "kiln serve: rollback webhook %s failed: %s\n", url.c_str(),
                       std::string(st.message()).c_str());
        }
      }});
  traffic_ = std::make_unique<TrafficController>([this](const RollbackEvent& e) {
    std::fprintf(stderr, "kiln serve: rolled back %s version %lld to version %lld: %s\n",
                 e.model.c_str(), static_cast<long long>(e.canary_version),
                 static_cast<long long>(e.stable_version), e.reason.c_str());
    metrics_.Add("kiln_rollbacks_total", {{"model", e.model}});
    if (!e.webhook.empty()) webhooks_->Enqueue(e.webhook, RollbackEventJson(e).dump());
    if (options_.on_rollback) options_.on_rollback(e);
  });
}

absl::Status InferenceService::SetConfig(const ServerConfig& config) {
  return traffic_->SetConfig(config);
}

nlohmann::json InferenceService::TrafficJson(const std::string& model) const {
  if (!model.empty()) {
    auto st = traffic_->Status(model, NowMs());
    if (!st.ok()) return nlohmann::json::object();
    return TrafficStatusJson(*st);
  }
  nlohmann::json all = nlohmann::json::array();
  for (const TrafficStatus& st : traffic_->Status(NowMs())) all.push_back(TrafficStatusJson(st));
  return {{"models", all}};
}

InferenceService::~InferenceService() { Shutdown(); }

void InferenceService::Shutdown() {
  if (batcher_) batcher_->Shutdown();
  webhooks_->Flush();  // a rollback alert is not lost to a restart
}

void InferenceService::DeclareMetrics() {
  metrics_.DeclareHistogram("kiln_batch_size", "Rows per batch the batcher ran.",
                            {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024});
  metrics_.DeclareGauge("kiln_batch_queue_depth",
                        "Batches waiting to run, the open ones included.");
  metrics_.DeclareCounter("kiln_batch_queue_full_total",
                          "Requests refused at once because the batch queue was full.");
  metrics_.DeclareCounter("kiln_rollbacks_total", "Canaries rolled back, by model.");
  metrics_.DeclareCounter("kiln_request_log_rows_total", "Rows written to the request log.");
  metrics_.DeclareCounter("kiln_request_log_dropped_total",
                          "Sampled requests not logged because the log writer was behind.");
  metrics_.DeclareCounter("kiln_request_log_write_errors_total",
                          "Request log writes that failed (the rows are not in the log).");
}

std::string InferenceService::ExposeMetrics() const {
  if (batcher_) {
    const BatcherStats st = batcher_->stats();
    metrics_.Set("kiln_batch_queue_depth", {}, static_cast<double>(st.queued_batches));
    metrics_.SetTotal("kiln_batch_queue_full_total", {}, static_cast<double>(st.requests_refused));
  }
  if (const RequestLog* log = options_.request_log; log != nullptr) {
    metrics_.SetTotal("kiln_request_log_rows_total", {}, static_cast<double>(log->logged_rows()));
    metrics_.SetTotal("kiln_request_log_dropped_total", {},
                      static_cast<double>(log->dropped_requests()));
    metrics_.SetTotal("kiln_request_log_write_errors_total", {},
                      static_cast<double>(log->write_errors()));
  }
  return metrics_.Expose();
}

absl::StatusOr<Resolved> InferenceService::Resolve(const InferTarget& target) const {
  Resolved r;
  r.model = target.model;
  if (!target.version && target.label.empty()) {
    // Unpinned: the model's split, among the versions that are loaded. The version the
    // split picks is the one last found available, so it is kept from that lookup.
    std::optional<ModelManager::Found> found;
    const std::optional<int64_t> picked =
        traffic_->Pick(target.model, target.header, [&](int64_t v) {
          auto f = manager_->FindVersion(target.model, v);
          if (!f.ok()) return false;
          found = *std::move(f);
          return true;
        });
    if (picked && found && found->version == *picked) {
      r.version = found->version;
      r.predictor = std::move(found->predictor);
      r.routed = true;
      return r;
    }
  }
  KILN_ASSIGN_OR_RETURN(ModelManager::Found found,
                        manager_->FindVersion(target.model, target.version, target.label));
  r.version = found.version;
  r.predictor = std::move(found.predictor);
  return r;
}

absl::Status InferenceService::Predict(const train::Predictor& predictor, int64_t version,
                                       const data::Batch& rows, std::vector<float>* scores) {
  // The rows were decoded against the signature already: a model that fails on them now
  // is a server error (500 / INTERNAL), as TF Serving reports a failing session run.
  absl::Status st = predictor.Predict(rows, scores);
  if (st.ok()) return st;
  return absl::InternalError(StrCat("version ", version, " failed: ", st.message()));
}

Batcher::PredictFn InferenceService::PredictFor(const Resolved& resolved) {
  return [p = resolved.predictor, version = resolved.version](
             const data::Batch& b, std::vector<float>* s) { return Predict(*p, version, b, s); };
}

void InferenceService::Finish(const Resolved& resolved, const data::Batch& rows,
                              const absl::Status& status,
                              std::chrono::steady_clock::time_point start) const {
  if (resolved.routed && !absl::IsResourceExhausted(status) && !absl::IsUnavailable(status)) {
    // The rows were decoded against the signature before they got here, so a failure now
    // is the version's (a TorchScript model that throws, say); a full queue or a draining
    // server says nothing about the version.
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    traffic_->Record(resolved.model, resolved.version, !status.ok(), secs, NowMs());
  }
  if (status.ok() && options_.request_log != nullptr) {
    options_.request_log->MaybeLog(resolved.model, rows, resolved.predictor->inputs());
  }
}

absl::Status InferenceService::Run(const Resolved& resolved, const data::Batch& rows,
                                   std::vector<float>* scores) const {
  // Only a routed request's latency is recorded: the others skip the clock.
  const auto start =
      resolved.routed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
  absl::Status st =
      batcher_ ? batcher_->Run(resolved.predictor.get(), PredictFor(resolved), rows, scores)
               : Predict(*resolved.predictor, resolved.version, rows, scores);
  Finish(resolved, rows, st, start);
  return st;
}

void InferenceService::RunAsync(const Resolved& resolved, std::shared_ptr<const data::Batch> rows,
                                ScoresDone done) const {
  const auto start =
      resolved.routed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
  if (!batcher_) {
    std::vector<float> scores;
    absl::Status st = Predict(*resolved.predictor, resolved.version, *rows, &scores);
    Finish(resolved, *rows, st, start);
    done(std::move(st), std::move(scores));
    return;
  }
  const data::Batch* raw = rows.get();
  batcher_->Submit(resolved.predictor.get(), PredictFor(resolved), std::move(rows),
                   [this, resolved, raw, start, done = std::move(done)](absl::Status st,
                                                                        std::vector<float> scores) {
                     // The batcher keeps the rows until this returns.
                     Finish(resolved, *raw, st, start);
                     done(std::move(st), std::move(scores));
                   });
}

}  // namespace kiln::serving
