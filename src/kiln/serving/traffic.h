// Traffic splitting and canary rollback for `kiln serve`. A TrafficController holds, per
// model with a `traffic` section in its config, the split of unpinned requests (those
// naming neither a version nor a label) over versions, and per version a sliding window
// of outcomes. When a model's `rollback` rule finds its canary doing worse than its stable
// version, the canary's version is taken out of the split: all of the split's traffic goes
// to stable, and that version is not routed again while the config still names it (a
// label moving on to another version, typically a newer one, routes that version again).
//
// Thread-safe. The request path is cheap: Pick takes no lock (each thread keeps the routing
// table it last used and checks an atomic generation number; only after SetConfig does a
// thread take a mutex once, to copy the new table's pointer); Record takes one short
// per-model mutex besides.
//
// Typical use, with the version Pick chose being served:
//   std::optional<int64_t> v = traffic.Pick(model, header, is_available);
//   ... serve v (or the highest version when nullopt) ...
//   if (v) traffic.Record(model, *v, failed_with_5xx, seconds, now_ms);
#ifndef KILN_SERVING_TRAFFIC_H_
#define KILN_SERVING_TRAFFIC_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kiln/serving/model_config.h"
#include "nlohmann/json.hpp"

namespace kiln::serving {

// One version's outcomes over a model's rollback window (or, without a rollback rule, the
// last 60 seconds).
struct WindowStats {
  int64_t version = 0;
  int64_t requests = 0;
  int64_t errors = 0;
  double error_rate = 0;   // errors / requests; 0 without requests
  double p99_seconds = 0;  // upper edge of the latency bucket holding the 99th percentile
                           // (buckets are 2^(1/4) apart: within 19% above); 0 without requests
  bool operator==(const WindowStats&) const = default;
};

// A canary taken out of its model's split.
struct RollbackEvent {
  std::string model;
  int64_t canary_version = 0;
  int64_t stable_version = 0;
  WindowStats canary;  // the windows the decision was made on
  WindowStats stable;
  std::string reason;   // e.g. "canary error rate 0.2 exceeds stable's 0 by more than 0.02"
  int64_t time_ms = 0;  // `now_ms` of the Record that triggered it
  std::string webhook;  // the model's rollback webhook; empty: none
};

// {"event": "kiln.rollback", "text" (a line for Slack-compatible receivers), "model",
//  "canary_version", "stable_version", "reason",
//  "time_ms", "canary": {window}, "stable": {window}}; window: {"version", "requests",
//  "errors", "error_rate", "p99_seconds"}. The webhook's body.
nlohmann::json RollbackEventJson(const RollbackEvent& event);

// What the controller does for one model, for the status API.
struct TrafficStatus {
  struct Route {
    std::string key;  // the split key as configured
    int64_t version = 0;
    double share = 0;  // of the split's traffic, normalized; shares sum to 1
  };
  std::string model;
  std::string sticky_header;  // empty: random per request
  // The split in effect: the configured one without rolled-back versions. Empty when
  // every version of the split is rolled back (the highest version then serves).
  std::vector<Route> split;
  std::optional<int64_t> canary_version;  // with a rollback rule
  std::optional<int64_t> stable_version;
  std::vector<WindowStats> windows;        // per version of the configured split, ascending
  std::vector<RollbackEvent> rolled_back;  // ascending by version
};

// {"model", "sticky_header", "split": [{"key", "version", "share"}], "canary_version",
//  "stable_version" (null without a rollback rule), "windows": [window],
//  "rolled_back": [{"version", "stable_version", "time_ms", "reason"}]}.
nlohmann::json TrafficStatusJson(const TrafficStatus& status);

class TrafficController {
 public:
  // Called when a canary is rolled back, on the thread whose Record triggered it and with
  // no lock held; once per rolled-back version. Keep it short or hand work off (e.g. to a
  // WebhookSender): it runs on a request's path.
  using RollbackCallback = std::function<void(const RollbackEvent&)>;
  // A request's header value for a lowercase name; empty when absent.
  using HeaderFn = std::function<std::string(std::string_view name)>;
  // Whether `version` of the model can serve now (e.g. is loaded).
  using AvailableFn = std::function<bool(int64_t version)>;

  explicit TrafficController(RollbackCallback on_rollback = nullptr);
  ~TrafficController();
  TrafficController(const TrafficController&) = delete;
  TrafficController& operator=(const TrafficController&) = delete;

  // Replaces the routing with `config`'s. Rolled-back versions that the model's config
  // still names (by a label or a split key) stay rolled back; window stats carry over for
  // versions still in the split when the window length is unchanged. Models without a
  // traffic section are not routed. Errors (the previous routing stays): kInvalidArgument
  // for a config ParseServerConfig would reject (a split key that names no label or
  // version, rollback sides outside the split).
  absl::Status SetConfig(const ServerConfig& config);

  // The version to serve an unpinned request of `model`, or nullopt: the model has no
  // split (or nothing in it is left to route): serve its default (highest) version.
  // Sticky: with a sticky header configured and present (read through `header`, which
  // may be empty), the same value always gets the same version for the same split (a
  // stable FNV-1a hash of model and value, so across restarts and replicas as well);
  // otherwise a random pick by the weights. The split's versions are ordered newest
  // first, so growing the newest version's weight keeps the keys it already had.
  // Versions `available` rejects are skipped and the pick is made among the rest by the
  // same hash (`available` may be empty: all are available).
  std::optional<int64_t> Pick(const std::string& model, const HeaderFn& header,
                              const AvailableFn& available = nullptr) const;

  // Records the outcome of a request Pick routed to `version` (requests pinned to a
  // version or label must not be recorded: they say nothing about the split). `error`:
  // the request failed on the server's side (5xx class). Versions outside the model's
  // split and models without one are ignored. May roll the canary back (see the class
  // comment), calling the RollbackCallback. `now_ms`: a wall or steady clock in
  // milliseconds, the same clock for every call.
  void Record(const std::string& model, int64_t version, bool error, double latency_seconds,
              int64_t now_ms);

  // Per model with a split, by name. Windows are read as of `now_ms`.
  std::vector<TrafficStatus> Status(int64_t now_ms) const;
  // kNotFound when `model` has no traffic split.
  absl::StatusOr<TrafficStatus> Status(const std::string& model, int64_t now_ms) const;

 private:
  struct ModelState;
  struct Table;

  // The routing table in effect, through the calling thread's cached copy.
  std::shared_ptr<const Table> Snapshot() const;

  const RollbackCallback on_rollback_;
  const uint64_t id_;     // distinguishes controllers in the per-thread caches
  std::mutex config_mu_;  // one SetConfig at a time
  mutable std::mutex table_mu_;
  std::shared_ptr<const Table> table_;   // guarded by table_mu_
  std::atomic<uint64_t> generation_{1};  // bumped when table_ changes
};

// 64-bit FNV-1a of `data`, continuing from `seed` (the FNV offset basis by default).
uint64_t Fnv1a64(std::string_view data, uint64_t seed = 14695981039346656037ull);

}  // namespace kiln::serving

#endif  // KILN_SERVING_TRAFFIC_H_
