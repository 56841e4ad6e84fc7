// The one path every API (TF Serving REST, KServe v2 REST and gRPC) takes from a decoded
// request to scores, so that routing, batching, canary accounting and request logging
// behave the same whichever protocol a client speaks:
//   1. Resolve: an explicit version or label is honoured; otherwise the model's traffic
//      split picks the version (sticky by the routing key when one is given).
//   2. The API decodes its body into rows against the resolved predictor's inputs.
//   3. Run: the rows are scored (through the batcher when batching is on) and the outcome
//      and latency are recorded per version.
#ifndef KILN_SERVING_INFERENCE_H_
#define KILN_SERVING_INFERENCE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/data/batch.h"
#include "kiln/observe/metrics.h"
#include "kiln/serving/batcher.h"
#include "kiln/serving/manager.h"
#include "kiln/serving/request_log.h"
#include "kiln/serving/traffic.h"
#include "kiln/serving/webhook.h"
#include "kiln/train/predictor.h"

namespace kiln::serving {

struct InferTarget {
  std::string model;
  std::optional<int64_t> version;  // explicit version: no traffic split
  std::string label;               // explicit label: no traffic split
  // The request's header (HTTP) or metadata (gRPC) value for a lowercase name, empty when
  // absent; the traffic split reads its sticky header through it. May be empty.
  std::function<std::string(std::string_view name)> header;
};

struct Resolved {
  std::string model;
  int64_t version = 0;
  std::shared_ptr<const train::Predictor> predictor;
  bool routed = false;  // picked by the traffic split (counts towards canary analysis)
};

struct InferenceOptions {
  RequestLog* request_log = nullptr;        // sampled rows of successful requests
  std::optional<BatchingOptions> batching;  // dynamic batching when set
  // Called (on a request thread; keep it short) after a canary is rolled back, beside the
  // service's own log line, metric and webhook POST.
  std::function<void(const RollbackEvent&)> on_rollback;
};

class InferenceService {
 public:
  // Errors: invalid batching options.
  static absl::StatusOr<std::unique_ptr<InferenceService>> Create(const ModelManager* manager,
                                                                  InferenceOptions options = {});
  explicit InferenceService(const ModelManager* manager)
      : InferenceService(manager, InferenceOptions{}) {}
  virtual ~InferenceService();

  // Errors as ModelManager::FindVersion.
  virtual absl::StatusOr<Resolved> Resolve(const InferTarget& target) const;
  // Scores `rows` with `resolved.predictor` (see train::Predictor::Predict). Errors: the
  // model's, and kResourceExhausted when the batch queue is full.
  virtual absl::Status Run(const Resolved& resolved, const data::Batch& rows,
                           std::vector<float>* scores) const;
  // Run() without blocking on the batch queue: `done` gets Run's status and scores exactly
  // once, on this thread unless the request went to the batcher, and then on a batch
  // thread (keep it short). `rows` is kept alive until then.
  using ScoresDone = std::function<void(absl::Status status, std::vector<float> scores)>;
  virtual void RunAsync(const Resolved& resolved, std::shared_ptr<const data::Batch> rows,
                        ScoresDone done) const;
  bool batching() const { return batcher_ != nullptr; }

  // The traffic splits and rollback policies of `config` (see TrafficController).
  absl::Status SetConfig(const ServerConfig& config);
  // The splits in effect, windows and rolled-back canaries (GET /kiln/traffic[/M]).
  nlohmann::json TrafficJson(const std::string& model = "") const;

  // Prometheus text of the service's own series: batch sizes (histogram), batch queue
  // depth, requests refused by a full queue, request log rows and drops.
  std::string ExposeMetrics() const;
  // Lets queued batches finish; later requests get kUnavailable.
  void Shutdown();

  const ModelManager& manager() const { return *manager_; }

 private:
  InferenceService(const ModelManager* manager, InferenceOptions options);
  void DeclareMetrics();
  // The version's predict, with a failure reported as the version's (kInternal); and the
  // same as a function for the batcher (without batching, no function object is made).
  static absl::Status Predict(const train::Predictor& predictor, int64_t version,
                              const data::Batch& rows, std::vector<float>* scores);
  static Batcher::PredictFn PredictFor(const Resolved& resolved);
  // After the rows were scored: the outcome of a routed request goes to its version's
  // traffic window (`start` is when it began), and the rows of a successful one to the
  // request log.
  void Finish(const Resolved& resolved, const data::Batch& rows, const absl::Status& status,
              std::chrono::steady_clock::time_point start) const;

  const ModelManager* manager_;
  InferenceOptions options_;
  std::unique_ptr<Batcher> batcher_;
  std::unique_ptr<WebhookSender> webhooks_;
  std::unique_ptr<TrafficController> traffic_;
  mutable observe::MetricsRegistry metrics_;
};

}  // namespace kiln::serving

#endif  // KILN_SERVING_INFERENCE_H_
