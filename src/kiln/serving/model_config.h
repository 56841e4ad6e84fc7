// What `kiln serve` serves: models, each a base path of numbered version directories (model
// bundles), a version policy and version labels. Read from YAML or from TF Serving's
// model_config_list text proto (--model_config_file), so an existing config file works.
//
// YAML:
//   models:
//     - name: clicks
//       base_path: /srv/models/clicks      # /srv/models/clicks/1, /2, ...
//       version_policy: {latest: 2}        # or: all, or {specific: [3, 5]}; default latest 1
//       version_labels: {stable: 3, canary: 5}
//       traffic:                           # optional (YAML only): split unpinned requests
//         split: {stable: 90, canary: 10}  # keys: labels of this model or version numbers
//         sticky_header: x-user-id         # optional: same header value -> same version
//       rollback:                          # optional: automatic canary rollback
//         canary: canary                   # split key of the canary
//         stable: stable                   # split key of the stable version
//         window_seconds: 60               # judged over the last N seconds
//         min_requests: 100                # per side in the window before judging
//         max_error_rate_increase: 0.02    # canary error rate - stable error rate
//         max_p99_latency_ratio: 1.5       # canary p99 / stable p99 (optional)
//         webhook: http://127.0.0.1:9000/alert  # optional POST target (http:// only)
#ifndef KILN_SERVING_MODEL_CONFIG_H_
#define KILN_SERVING_MODEL_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace kiln::serving {

struct VersionPolicy {
  enum class Kind { kLatest, kAll, kSpecific };
  Kind kind = Kind::kLatest;
  int64_t latest = 1;             // kLatest: how many of the highest versions
  std::vector<int64_t> versions;  // kSpecific, sorted, distinct
  bool operator==(const VersionPolicy&) const = default;

  // The versions to serve out of those found on disk (any order in, ascending out).
  std::vector<int64_t> Select(std::vector<int64_t> found) const;
};

// How requests that name neither a version nor a label are spread over versions.
struct TrafficConfig {
  // Key: a label of the model (looked up first) or a version number written in decimal.
  // Value: a weight > 0; weights are relative (normalized over the split).
  std::map<std::string, double> split;
  // Lowercase header name; requests with the same non-empty value get the same version.
  // Empty (the default), or the header absent from a request: a random pick per request.
  std::string sticky_header;
  bool operator==(const TrafficConfig&) const = default;
};

// When to take a canary out of the split. Needs a traffic split of exactly two keys,
// `canary` and `stable`; after a rollback, all of the split's traffic goes to `stable`.
struct RollbackConfig {
  std::string canary;                     // split key of the canary (required)
  std::string stable;                     // split key of the stable version (required)
  int64_t window_seconds = 60;            // 1..86400
  int64_t min_requests = 100;             // >= 1 per side in the window before judging
  double max_error_rate_increase = 0.02;  // 0..1
  double max_p99_latency_ratio = 0;       // > 0 to judge latency; 0 (default): not judged
  std::string webhook;                    // http:// URL to POST the event to; empty: none
  bool operator==(const RollbackConfig&) const = default;
};

struct ModelConfig {
  std::string name;
  std::string base_path;
  VersionPolicy policy;
  std::map<std::string, int64_t> labels;
  std::optional<TrafficConfig> traffic;    // none: the highest version serves
  std::optional<RollbackConfig> rollback;  // requires `traffic`
  bool operator==(const ModelConfig&) const = default;
};

struct ServerConfig {
  std::vector<ModelConfig> models;
  bool operator==(const ServerConfig&) const = default;
};

// Parses a config file's text: TF Serving's text proto when it starts (after comments)
// with `model_config_list`, else YAML. Errors: kInvalidArgument naming what is wrong
// (unknown keys, a missing name or base_path, a duplicate model, an invalid name or label,
// with a specific-versions policy, a label on a version it does not list; for `traffic`
// and `rollback`: a weight that is not > 0, a split key that is neither a label of the
// model nor a version number, rollback sides not in the split, bounds, a non-http webhook).
absl::StatusOr<ServerConfig> ParseServerConfig(std::string_view text);

// The version a traffic split key names in `model`: its label if the model has one of that
// name, else the key read as a decimal version number. kInvalidArgument otherwise.
absl::StatusOr<int64_t> SplitKeyVersion(const ModelConfig& model, const std::string& key);

// Model and label names: 1-128 characters of [A-Za-z0-9_.-], not starting with '.', so
// that a name never reaches outside a directory or into a URL path. kInvalidArgument
// otherwise, naming `what` ("model name", "label").
absl::Status ValidateName(std::string_view what, std::string_view name);

}  // namespace kiln::serving

#endif  // KILN_SERVING_MODEL_CONFIG_H_
