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
#ifndef KILN_SERVING_MODEL_CONFIG_H_
#define KILN_SERVING_MODEL_CONFIG_H_

#include <cstdint>
#include <map>
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

struct ModelConfig {
  std::string name;
  std::string base_path;
  VersionPolicy policy;
  std::map<std::string, int64_t> labels;
  bool operator==(const ModelConfig&) const = default;
};

struct ServerConfig {
  std::vector<ModelConfig> models;
  bool operator==(const ServerConfig&) const = default;
};

// Parses a config file's text: TF Serving's text proto when it starts (after comments)
// with `model_config_list`, else YAML. Errors: kInvalidArgument naming what is wrong
// (unknown keys, a missing name or base_path, a duplicate model, an invalid name or label,
// with a specific-versions policy, a label on a version it does not list).
absl::StatusOr<ServerConfig> ParseServerConfig(std::string_view text);

// Model and label names: 1-128 characters of [A-Za-z0-9_.-], not starting with '.', so
// that a name never reaches outside a directory or into a URL path. kInvalidArgument
// otherwise, naming `what` ("model name", "label").
absl::Status ValidateName(std::string_view what, std::string_view name);

}  // namespace kiln::serving

#endif  // KILN_SERVING_MODEL_CONFIG_H_
