#include "kiln/serving/traffic.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <set>

#include "kiln/base/str.h"

namespace kiln::serving {
namespace {

// Latency histogram: bucket 0 holds (0, 0.1 ms], bucket i > 0 holds
// (0.1 ms * 2^((i-1)/4), 0.1 ms * 2^(i/4)], the last one everything above ~210 s.
constexpr int kBins = 4 * 21 + 1;
constexpr double kMinLatency = 1e-4;
constexpr int kBinsPerOctave = 4;
// A window has at most this many buckets; they are window_seconds / kMaxSlots wide.
constexpr int64_t kMaxSlots = 60;

int LatencyBin(double seconds) {
  if (!(seconds > kMinLatency)) return 0;  // NaN included
  const double b = std::ceil(std::log2(seconds / kMinLatency) * kBinsPerOctave);
  return b >= kBins - 1 ? kBins - 1 : static_cast<int>(b);
}

double BinUpperEdge(int bin) {
  return kMinLatency * std::exp2(static_cast<double>(bin) / kBinsPerOctave);
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
int64_t Mod(int64_t a, int64_t b) { return ((a % b) + b) % b; }

// Outcomes of the last `window_seconds`, in up to kMaxSlots time buckets with running
// totals: adding is O(1), and reading the p99 O(kBins). Memory is fixed (~28 KB).
class Window {
 public:
  explicit Window(int64_t window_seconds)
      : slots_(std::min(window_seconds, kMaxSlots)),
        width_ms_((window_seconds * 1000 + static_cast<int64_t>(slots_.size()) - 1) /
                  static_cast<int64_t>(slots_.size())) {}

  void Add(int64_t now_ms, bool error, double latency_seconds) {
    const int64_t b = Advance(now_ms);
    Slot& s = slots_[Mod(b, Size())];
    s.bucket = b;
    const int bin = LatencyBin(latency_seconds);
    ++s.requests;
    ++requests_;
    if (error) {
      ++s.errors;
      ++errors_;
    }
    ++s.hist[bin];
    ++hist_[bin];
  }

  WindowStats Read(int64_t version, int64_t now_ms, bool with_p99 = true) {
    Advance(now_ms);
    WindowStats w;
    w.version = version;
    w.requests = requests_;
    w.errors = errors_;
    if (requests_ == 0) return w;
    w.error_rate = static_cast<double>(errors_) / static_cast<double>(requests_);
    if (!with_p99) return w;
    // The smallest bucket edge with at least 99% of the requests at or below it.
    const int64_t rank = (requests_ * 99 + 99) / 100;
    int64_t seen = 0;
    for (int i = 0; i < kBins; ++i) {
      seen += hist_[i];
      if (seen >= rank) {
        w.p99_seconds = BinUpperEdge(i);
        break;
      }
    }
    return w;
  }

 private:
  struct Slot {
    int64_t bucket = 0;
    int64_t requests = 0;  // 0: empty
    int64_t errors = 0;
    std::array<uint32_t, kBins> hist{};
  };

  int64_t Size() const { return static_cast<int64_t>(slots_.size()); }

  // Moves the window to the bucket of `now_ms` (never back: a clock that steps back
  // counts in the newest bucket), expiring buckets that fall out. Every occupied slot
  // holds a bucket in (last_ - Size(), last_].
  int64_t Advance(int64_t now_ms) {
    const int64_t b = FloorDiv(now_ms, width_ms_);
    if (!started_) {
      started_ = true;
      last_ = b;
      return b;
    }
    if (b <= last_) return last_;
    for (int64_t i = last_ + 1; i <= b && i <= last_ + Size(); ++i) {
      Slot& s = slots_[Mod(i, Size())];
      if (s.requests == 0) continue;
      requests_ -= s.requests;
      errors_ -= s.errors;
      for (int k = 0; k < kBins; ++k) hist_[k] -= s.hist[k];
      s = Slot{};
    }
    last_ = b;
    return b;
  }

  std::vector<Slot> slots_;
  int64_t width_ms_;
  bool started_ = false;
  int64_t last_ = 0;
  int64_t requests_ = 0;
  int64_t errors_ = 0;
  std::array<int64_t, kBins> hist_{};
};

// splitmix64's finalizer (not kiln::Mix64, whose constants differ: sticky routing depends
// on these).
uint64_t SplitMix64Finalize(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

double ToUnit(uint64_t x) { return static_cast<double>(x >> 11) * 0x1.0p-53; }  // [0, 1)

double RandomUnit() {
  thread_local uint64_t state =
      (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  state += 0x9e3779b97f4a7c15ull;
  return ToUnit(SplitMix64Finalize(state));
}

struct Entry {
  std::string key;
  int64_t version = 0;
  double weight = 0;
};

// An immutable routing table: versions newest first with their weights.
struct Routing {
  std::vector<int64_t> versions;
  std::vector<double> weights;
};

std::unique_ptr<const Routing> BuildRouting(const std::vector<Entry>& entries,
                                            const std::map<int64_t, RollbackEvent>& rolled_back) {
  auto r = std::make_unique<Routing>();
  for (const Entry& e : entries) {  // newest first already
    if (rolled_back.count(e.version)) continue;
    if (!r->versions.empty() && r->versions.back() == e.version) {
      r->weights.back() += e.weight;
    } else {
      r->versions.push_back(e.version);
      r->weights.push_back(e.weight);
    }
  }
  return r;
}

// The index whose share of [0, total) holds u * total; `skip[i]` entries take no share.
size_t Choose(const std::vector<double>& weights, const std::vector<bool>* skip, double u) {
  double total = 0;
  size_t last = weights.size();
  for (size_t i = 0; i < weights.size(); ++i) {
    if (skip && (*skip)[i]) continue;
    total += weights[i];
    last = i;
  }
  const double point = u * total;
  double upper = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (skip && (*skip)[i]) continue;
    upper += weights[i];
    if (point < upper) return i;
  }
  return last;  // rounding at the top end
}

nlohmann::json WindowJson(const WindowStats& w) {
  return {{"version", w.version},
          {"requests", w.requests},
          {"errors", w.errors},
          {"error_rate", w.error_rate},
          {"p99_seconds", w.p99_seconds}};
}

}  // namespace

uint64_t Fnv1a64(std::string_view data, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

nlohmann::json RollbackEventJson(const RollbackEvent& e) {
  return {{"event", "kiln.rollback"},
          {"text", StrCat("kiln serve: ", e.reason)},  // what Slack shows
          {"model", e.model},
          {"canary_version", e.canary_version},
          {"stable_version", e.stable_version},
          {"reason", e.reason},
          {"time_ms", e.time_ms},
          {"canary", WindowJson(e.canary)},
          {"stable", WindowJson(e.stable)}};
}

nlohmann::json TrafficStatusJson(const TrafficStatus& s) {
  nlohmann::json split = nlohmann::json::array();
  for (const auto& r : s.split) {
    split.push_back({{"key", r.key}, {"version", r.version}, {"share", r.share}});
  }
  nlohmann::json windows = nlohmann::json::array();
  for (const auto& w : s.windows) windows.push_back(WindowJson(w));
  nlohmann::json rolled_back = nlohmann::json::array();
  for (const auto& e : s.rolled_back) {
    rolled_back.push_back({{"version", e.canary_version},
                           {"stable_version", e.stable_version},
                           {"time_ms", e.time_ms},
                           {"reason", e.reason}});
  }
  nlohmann::json out = {
      {"model", s.model},          {"sticky_header", s.sticky_header}, {"split", split},
      {"canary_version", nullptr}, {"stable_version", nullptr},        {"windows", windows},
      {"rolled_back", rolled_back}};
  if (s.canary_version) out["canary_version"] = *s.canary_version;
  if (s.stable_version) out["stable_version"] = *s.stable_version;
  return out;
}

struct TrafficController::ModelState {
  std::string name;
  std::string sticky_header;
  std::vector<Entry> entries;  // the configured split, newest version first
  std::set<int64_t> named;     // versions the model's config names (labels, split keys)
  std::optional<RollbackConfig> rollback;
  int64_t canary = 0;  // versions of the rollback sides
  int64_t stable = 0;
  int64_t window_seconds = 60;
  // The routing in effect, owned by `routings`; read without a lock.
  std::atomic<const Routing*> routing{nullptr};

  std::mutex mu;
  std::vector<std::unique_ptr<const Routing>> routings;  // guarded by mu; at most 2
  bool retired = false;                                  // replaced by SetConfig; guarded by mu
  std::map<int64_t, Window> windows;                     // per version of `entries`; guarded by mu
  std::map<int64_t, RollbackEvent> rolled_back;          // guarded by mu

  // With mu held, after `version` got a new outcome: the rollback this calls for, if any.
  std::optional<RollbackEvent> Judge(int64_t version, int64_t now_ms) {
    if (!rollback || canary == stable || (version != canary && version != stable) ||
        rolled_back.count(canary)) {
      return std::nullopt;
    }
    const RollbackConfig& rule = *rollback;
    const bool judge_p99 = rule.max_p99_latency_ratio > 0;
    WindowStats c = windows.at(canary).Read(canary, now_ms, judge_p99);
    WindowStats s = windows.at(stable).Read(stable, now_ms, judge_p99);
    if (c.requests < rule.min_requests || s.requests < rule.min_requests) return std::nullopt;
    std::string reason;
    if (c.error_rate - s.error_rate > rule.max_error_rate_increase) {
      reason = StrCat("canary error rate ", c.error_rate, " exceeds stable's ", s.error_rate,
                      " by more than ", rule.max_error_rate_increase);
    } else if (judge_p99 && c.p99_seconds > rule.max_p99_latency_ratio * s.p99_seconds) {
      reason = StrCat("canary p99 latency ", c.p99_seconds, " s is more than ",
                      rule.max_p99_latency_ratio, " times stable's ", s.p99_seconds, " s");
    } else {
      return std::nullopt;
    }
    if (!judge_p99) {  // the event reports both measures
      c = windows.at(canary).Read(canary, now_ms);
      s = windows.at(stable).Read(stable, now_ms);
    }
    RollbackEvent e;
    e.model = name;
    e.canary_version = canary;
    e.stable_version = stable;
    e.canary = c;
    e.stable = s;
    e.reason = StrCat("model '", name, "' version ", canary, " rolled back to version ", stable,
                      ": ", reason, " over the last ", window_seconds, " s");
    e.time_ms = now_ms;
    e.webhook = rule.webhook;
    rolled_back[canary] = e;
    Publish();
    return e;
  }

  // With mu held (or before the state is shared): routes by `entries` and `rolled_back`.
  void Publish() {
    routings.push_back(BuildRouting(entries, rolled_back));
    routing.store(routings.back().get(), std::memory_order_release);
  }

  TrafficStatus StatusAt(int64_t now_ms) {
    TrafficStatus s;
    s.model = name;
    s.sticky_header = sticky_header;
    if (rollback) {
      s.canary_version = canary;
      s.stable_version = stable;
    }
    std::lock_guard<std::mutex> lock(mu);
    double total = 0;
    for (const Entry& e : entries) {
      if (rolled_back.count(e.version)) continue;
      s.split.push_back(TrafficStatus::Route{e.key, e.version, e.weight});
      total += e.weight;
    }
    for (auto& r : s.split) r.share /= total;
    for (auto& [version, window] : windows) s.windows.push_back(window.Read(version, now_ms));
    for (const auto& [version, event] : rolled_back) s.rolled_back.push_back(event);
    return s;
  }
};

struct TrafficController::Table {
  std::map<std::string, std::shared_ptr<ModelState>, std::less<>> models;

  ModelState* Find(const std::string& model) const {
    auto it = models.find(model);
    return it == models.end() ? nullptr : it->second.get();
  }
};

namespace {
std::atomic<uint64_t> next_controller_id{1};
}  // namespace

TrafficController::TrafficController(RollbackCallback on_rollback)
    : on_rollback_(std::move(on_rollback)),
      id_(next_controller_id.fetch_add(1)),
      table_(std::make_shared<const Table>()) {}

std::shared_ptr<const TrafficController::Table> TrafficController::Snapshot() const {
  struct Cache {
    uint64_t controller = 0;
    uint64_t generation = 0;
    std::shared_ptr<const Table> table;
  };
  thread_local Cache cache;
  const uint64_t generation = generation_.load(std::memory_order_acquire);
  if (cache.controller != id_ || cache.generation != generation) {
    std::lock_guard<std::mutex> lock(table_mu_);
    cache.controller = id_;
    cache.generation = generation_.load(std::memory_order_relaxed);
    cache.table = table_;
  }
  return cache.table;
}

TrafficController::~TrafficController() = default;

absl::Status TrafficController::SetConfig(const ServerConfig& config) {
  std::lock_guard<std::mutex> config_lock(config_mu_);
  auto next = std::make_shared<Table>();
  for (const ModelConfig& m : config.models) {
    if (!m.traffic) continue;
    auto state = std::make_shared<ModelState>();
    state->name = m.name;
    state->sticky_header = m.traffic->sticky_header;
    for (const auto& [key, weight] : m.traffic->split) {
      if (!(weight > 0)) {
        return absl::InvalidArgumentError(
            StrCat("model '", m.name, "': traffic split weight of '", key, "' must be > 0"));
      }
      absl::StatusOr<int64_t> version = SplitKeyVersion(m, key);
      if (!version.ok()) return version.status();
      state->entries.push_back(Entry{key, *version, weight});
      state->named.insert(*version);
    }
    for (const auto& [label, version] : m.labels) state->named.insert(version);
    std::stable_sort(state->entries.begin(), state->entries.end(),
                     [](const Entry& a, const Entry& b) { return a.version > b.version; });
    if (m.rollback) {
      state->rollback = m.rollback;
      const auto side = [&](const std::string& key) -> absl::StatusOr<int64_t> {
        if (!m.traffic->split.count(key)) {
          return absl::InvalidArgumentError(StrCat("model '", m.name, "': rollback side '", key,
                                                   "' is not a key of the traffic split"));
        }
        return SplitKeyVersion(m, key);
      };
      absl::StatusOr<int64_t> canary = side(m.rollback->canary);
      if (!canary.ok()) return canary.status();
      absl::StatusOr<int64_t> stable = side(m.rollback->stable);
      if (!stable.ok()) return stable.status();
      state->canary = *canary;
      state->stable = *stable;
      state->window_seconds = std::clamp<int64_t>(m.rollback->window_seconds, 1, 86400);
    }
    for (const Entry& e : state->entries) {
      state->windows.try_emplace(e.version, state->window_seconds);
    }
    next->models[m.name] = std::move(state);
  }

  // Carry state over from the models being replaced, retiring them so that no rollback
  // can happen in a table no longer routed.
  std::shared_ptr<const Table> old;
  {
    std::lock_guard<std::mutex> lock(table_mu_);
    old = table_;
  }
  for (auto& [name, state] : next->models) {
    ModelState* before = old->Find(name);
    if (before == nullptr) continue;
    std::lock_guard<std::mutex> lock(before->mu);
    before->retired = true;
    for (const auto& [version, event] : before->rolled_back) {
      if (state->named.count(version)) state->rolled_back.emplace(version, event);
    }
    if (before->window_seconds == state->window_seconds) {
      for (auto& [version, window] : state->windows) {
        auto it = before->windows.find(version);
        if (it != before->windows.end()) window = it->second;
      }
    }
  }
  for (const auto& [name, before] : old->models) {
    if (next->models.count(name)) continue;
    std::lock_guard<std::mutex> lock(before->mu);
    before->retired = true;
  }
  for (auto& [name, state] : next->models) state->Publish();
  {
    std::lock_guard<std::mutex> lock(table_mu_);
    table_ = std::move(next);
    generation_.fetch_add(1, std::memory_order_release);
  }
  return absl::OkStatus();
}

std::optional<int64_t> TrafficController::Pick(const std::string& model, const HeaderFn& header,
                                               const AvailableFn& available) const {
  const std::shared_ptr<const Table> table = Snapshot();
  const ModelState* state = table->Find(model);
  if (state == nullptr) return std::nullopt;
  const Routing* routing = state->routing.load(std::memory_order_acquire);
  if (routing->versions.empty()) return std::nullopt;

  std::string value;
  if (header && !state->sticky_header.empty()) value = header(state->sticky_header);
  double u;
  if (value.empty()) {
    u = RandomUnit();
  } else {
    // Salted with the model so that one user is not the canary of every model at once.
    const uint64_t salt = Fnv1a64(std::string_view("\0", 1), Fnv1a64(model));
    u = ToUnit(SplitMix64Finalize(Fnv1a64(value, salt)));
  }
  size_t i = Choose(routing->weights, nullptr, u);
  if (!available || available(routing->versions[i])) return routing->versions[i];
  // Some version cannot serve: pick again among the rest with the same point.
  std::vector<bool> skip(routing->versions.size(), false);
  for (size_t left = routing->versions.size() - 1; left > 0; --left) {
    skip[i] = true;
    i = Choose(routing->weights, &skip, u);
    if (available(routing->versions[i])) return routing->versions[i];
  }
  return std::nullopt;
}

void TrafficController::Record(const std::string& model, int64_t version, bool error,
                               double latency_seconds, int64_t now_ms) {
  const std::shared_ptr<const Table> table = Snapshot();
  ModelState* state = table->Find(model);
  if (state == nullptr) return;
  std::optional<RollbackEvent> event;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    if (state->retired) return;
    auto it = state->windows.find(version);
    if (it == state->windows.end()) return;
    it->second.Add(now_ms, error, latency_seconds);
    event = state->Judge(version, now_ms);
  }
  if (event && on_rollback_) on_rollback_(*event);
}

std::vector<TrafficStatus> TrafficController::Status(int64_t now_ms) const {
  std::vector<TrafficStatus> out;
  const std::shared_ptr<const Table> table = Snapshot();
  for (const auto& [name, state] : table->models) {
    out.push_back(state->StatusAt(now_ms));
  }
  return out;
}

absl::StatusOr<TrafficStatus> TrafficController::Status(const std::string& model,
                                                        int64_t now_ms) const {
  const std::shared_ptr<const Table> table = Snapshot();
  ModelState* state = table->Find(model);
  if (state == nullptr) {
    return absl::NotFoundError(StrCat("model '", model, "' has no traffic split"));
  }
  return state->StatusAt(now_ms);
}

}  // namespace kiln::serving
