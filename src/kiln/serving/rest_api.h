// TF Serving's REST API (v1) over the model manager, independent of the HTTP transport:
//   GET  /v1/models/M[/versions/V | /labels/L]            version status
//   GET  /v1/models/M[/versions/V | /labels/L]/metadata   signature
//   POST /v1/models/M[/versions/V | /labels/L]:predict    {"instances": [...]} (rows) or
//                                                         {"inputs": {...}} (columns)
// Errors are {"error": "..."} with TF Serving's mapping of status codes to HTTP statuses.
#ifndef KILN_SERVING_REST_API_H_
#define KILN_SERVING_REST_API_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "kiln/observe/metrics.h"
#include "kiln/serving/inference.h"
#include "kiln/serving/manager.h"
#include "nlohmann/json.hpp"

namespace kiln::serving {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, e.g. "/v1/models/clicks:predict"
  std::string body;
  // Header fields as received (names in their original case).
  std::vector<std::pair<std::string, std::string>> headers;
  // The value of the first header named `name` (case-insensitive); empty when absent.
  std::string_view Header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  // Further header fields to send (Server, Content-Type, Content-Length and Connection are
  // the server's own).
  std::vector<std::pair<std::string, std::string>> headers;
  // The model version that answered, for metrics (not sent); -1 when none did.
  int64_t model_version = -1;
};

// Sends the response to one request; call it once, from any thread.
using HttpReply = std::function<void(HttpResponse response)>;

// Runs `start` with a reply and waits for the response given to it (at once, or from
// another thread): a synchronous call over an asynchronous handler.
HttpResponse AwaitReply(const std::function<void(HttpReply)>& start);

// The HTTP status TF Serving answers a Status with (400, 401, 403, 404, 409, 429, 500,
// 501, 503, 504).
int HttpStatusFor(const absl::Status& status);

// Also serves Prometheus metrics at /metrics and /monitoring/prometheus/metrics:
// kiln_requests_total{model, version, api, code}, kiln_request_duration_seconds{model, api}
// (histogram), kiln_model_versions_available{model}, kiln_model_version_load_failures{model}.
// Shared by the v1 and v2 handlers:
// - `path` split at '/' (empty segments kept);
// - a version number from a path segment (kInvalidArgument unless digits);
// - a JSON response, and an error as {"error": message} with HttpStatusFor's status;
// - the predicted class of each of `rows` rows of scores as Model::Predict gives them
//   (binary: P(positive) >= 0.5; multiclass: the most probable class).
std::vector<std::string_view> SplitPath(std::string_view path);
absl::StatusOr<int64_t> ParseVersion(std::string_view text);
HttpResponse JsonResponse(int status, const nlohmann::json& body);
HttpResponse ErrorResponse(const absl::Status& status);
std::vector<int64_t> ClassIds(model::Task task, const std::vector<float>& scores, size_t rows);

class RestApi {
 public:
  explicit RestApi(const InferenceService* service);
  // Thread-safe. Answers through `reply`, at once or, for a request that went to the
  // batch queue, from a batch thread.
  void HandleAsync(HttpRequest request, HttpReply reply) const;
  // HandleAsync, waiting for the answer.
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  const InferenceService* service_;
  const ModelManager* manager_;
  mutable observe::MetricsRegistry metrics_;
};

}  // namespace kiln::serving

#endif  // KILN_SERVING_REST_API_H_
