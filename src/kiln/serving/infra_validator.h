// The InfraValidator (TFX InfraValidator): before a model is pushed, it is served for real.
// The candidate bundle is loaded by a ModelManager behind the REST API and HTTP server,
// in-process on a loopback port, exactly as `kiln serve` would load it (checksums, key,
// warm-up rows reproduced); then predict requests, one row each, go through the real
// request path over HTTP. It passes when the version becomes available, every request
// answers 200 with finite scores for its row, and the p99 latency is within a bound.
#ifndef KILN_SERVING_INFRA_VALIDATOR_H_
#define KILN_SERVING_INFRA_VALIDATOR_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/base/env.h"
#include "nlohmann/json.hpp"

namespace kiln::serving {

struct InfraValidationOptions {
  std::optional<std::string> key;  // for a sealed bundle
  // Rows to send besides the bundle's warm-up rows: JSON objects of raw features.
  std::vector<nlohmann::json> rows;
  // Predict requests to send, one row each, cycling through the rows (at least one per row).
  int64_t requests = 100;
  // The bound on the 99th percentile of request latency, measured by the client.
  double max_p99_ms = 100;
  // How long the version may take to load and warm up.
  std::chrono::milliseconds load_timeout{60000};
};

struct InfraValidationResult {
  bool blessed = false;
  std::vector<std::string> failing_checks;  // why not, one line each
  int64_t requests = 0;                     // sent
  int64_t failed_requests = 0;
  double load_ms = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

// {"blessed", "status": INFRA_BLESSED | INFRA_NOT_BLESSED, "failing_checks", "model",
// "requests", "failed_requests", "load_ms", "p50_ms", "p99_ms"}: what `kiln push
// --infra-blessing` reads.
nlohmann::json InfraBlessingJson(const InfraValidationResult& r, const std::string& model);

// Validates the bundle at `bundle_dir`. A model that fails is a result with blessed false,
// not an error. Errors: kInvalidArgument for bad options; those of starting a server.
absl::StatusOr<InfraValidationResult> InfraValidate(Env* env, const std::string& bundle_dir,
                                                    const InfraValidationOptions& options);

}  // namespace kiln::serving

#endif  // KILN_SERVING_INFRA_VALIDATOR_H_
