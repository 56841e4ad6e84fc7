// The JSON API behind `kiln ui` (docs/ui.md): runs, artifacts, statistics, drift,
// anomalies, training, pushed models, evaluations, lineage and a `kiln serve` proxy, read
// from the metadata store and the files its artifacts point to. Transport-free: Handle
// takes a method and a request target and returns what to answer, so tests call it
// without sockets and the server (ui_server.h) only moves bytes.
//
// Read-only: nothing here writes to the store or to an artifact.
//
// Thread-safe: calls are serialised around the store (which is not thread-safe), except
// that /api/serving's requests to `kiln serve` run outside the lock.
#ifndef KILN_UI_UI_API_H_
#define KILN_UI_UI_API_H_

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "kiln/base/env.h"
#include "kiln/metadata/metadata_store.h"

namespace kiln::ui {

struct UiApiOptions {
  // `kiln serve`'s REST base (http://HOST:PORT) that /api/serving asks. Default "": not
  // configured, /api/serving answers {"configured": false}.
  std::string serving_url;
  // Per request to `kiln serve`. Default 2 s.
  std::chrono::milliseconds serving_timeout{2000};
  // A component's log is answered from its last this many bytes. Default 256 KiB.
  size_t log_tail_bytes = size_t{256} << 10;
  // /api/artifacts without ?limit= lists at most this many. Default 1000.
  int64_t default_artifact_limit = 1000;
  // Files are read through it. Default: the real file system.
  Env* env = Env::Default();
};

// What to answer: a status, a content type and the body.
struct UiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class UiApi {
 public:
  // `store` is not owned and must outlive the UiApi.
  UiApi(metadata::MetadataStore* store, UiApiOptions options);

  // Answers GET `target` (path and query, e.g. "/api/runs?pipeline=recsys"): JSON, or
  // text/plain for a log. Errors are {"error": "..."} with 400 (a bad parameter or id),
  // 404 (no such endpoint, run, artifact or file), 405 (a method other than GET) or 500.
  UiResponse Handle(std::string_view method, std::string_view target);

  // Whether `target`'s path is the API's (starts with /api/ or is /api).
  static bool IsApiTarget(std::string_view target);

 private:
  // The answer, or the error Handle turns into {"error"} with its HTTP status.
  absl::StatusOr<UiResponse> Route(std::string_view path, std::string_view query);
  absl::StatusOr<UiResponse> Serving();

  metadata::MetadataStore* const store_;
  const UiApiOptions options_;
  std::mutex mu_;  // guards store_
};

// The HTTP status Handle answers an error with: 400 kInvalidArgument, 404 kNotFound,
// 500 anything else.
int HttpStatusOf(const absl::Status& status);

}  // namespace kiln::ui

#endif  // KILN_UI_UI_API_H_
