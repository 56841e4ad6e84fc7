#include "kiln/serving/manager.h"

#include <algorithm>
#include <filesystem>

#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/model/push.h"

namespace kiln::serving {
namespace {

namespace fs = std::filesystem;

using Served = std::map<int64_t, std::shared_ptr<const train::Predictor>>;

// The manifest's modification time (ns), or -1: tells a rewritten bundle from the one that
// failed.
int64_t ManifestTime(const std::string& dir) {
  std::error_code ec;
  auto t = fs::last_write_time(fs::path(dir) / "manifest.json", ec);
  return ec ? -1 : static_cast<int64_t>(t.time_since_epoch().count());
}

}  // namespace

std::string_view VersionStateName(VersionState s) {
  switch (s) {
    case VersionState::kStart:
      return "START";
    case VersionState::kLoading:
      return "LOADING";
    case VersionState::kAvailable:
      return "AVAILABLE";
    case VersionState::kUnloading:
      return "UNLOADING";
    case VersionState::kEnd:
      return "END";
  }
  return "UNKNOWN";
}

ModelManager::ModelManager(Env* env, ManagerOptions options)
    : env_(env), options_(std::move(options)) {}

ModelManager::~ModelManager() { Stop(); }

void ModelManager::SetConfig(ServerConfig config) {
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::string, Model> next;
    for (ModelConfig& c : config.models) {
      Model m;
      auto it = models_.find(c.name);
      if (it != models_.end() && it->second.config.base_path == c.base_path) {
        m = std::move(it->second);  // keep what is loaded
      }
      m.config = std::move(c);
      if (!m.served) m.served = std::make_shared<const Served>();
      names.push_back(m.config.name);
      next.emplace(m.config.name, std::move(m));
    }
    models_.swap(next);  // models no longer configured go (with `next`) once unused
  }
  for (const std::string& name : names) Reconcile(name);
}

void ModelManager::Poll() {
  for (const std::string& name : Models()) Reconcile(name);
}

void ModelManager::Reconcile(const std::string& name) {
  std::lock_guard<std::mutex> one_at_a_time(reconcile_mu_);
  ModelConfig config;
  std::shared_ptr<const Served> served;
  std::map<int64_t, int64_t> failed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return;
    config = it->second.config;
    served = it->second.served;
    failed = it->second.failed;
  }
  const std::vector<int64_t> aspired = config.policy.Select(model::ScanVersions(config.base_path));
  auto set_status = [&](int64_t v, VersionState s, absl::Status error = absl::OkStatus()) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it != models_.end()) it->second.status[v] = {v, s, std::move(error)};
  };
  Served next = *served;
  std::vector<VersionEvent> events;
  for (int64_t v : aspired) {
    if (next.count(v)) continue;
    const std::string dir = JoinPath(config.base_path, StrCat(v));
    const int64_t mtime = ManifestTime(dir);
    if (auto f = failed.find(v); f != failed.end() && f->second == mtime) continue;
    set_status(v, VersionState::kLoading);
    auto loaded = train::Predictor::Load(env_, dir, options_.key);
    if (loaded.ok()) {
      next[v] = std::shared_ptr<const train::Predictor>(std::move(*loaded));
      failed.erase(v);
      set_status(v, VersionState::kAvailable);
      events.push_back({name, v, VersionState::kAvailable, absl::OkStatus(), dir});
    } else {
      failed[v] = mtime;
      set_status(v, VersionState::kEnd, loaded.status());
      events.push_back({name, v, VersionState::kEnd, loaded.status(), dir});
    }
  }
  // A specific version that is not on disk is reported, not fatal.
  if (config.policy.kind == VersionPolicy::Kind::kSpecific) {
    for (int64_t v : config.policy.versions) {
      if (!std::binary_search(aspired.begin(), aspired.end(), v)) {
        set_status(v, VersionState::kStart,
                   absl::NotFoundError(StrCat("no version ", v, " under ", config.base_path)));
      }
    }
  }
  // Versions the policy no longer serves go, but only once one it serves is available.
  const bool have_aspired =
      std::any_of(aspired.begin(), aspired.end(), [&](int64_t v) { return next.count(v) > 0; });
  std::vector<int64_t> unloaded;
  if (have_aspired) {
    for (auto it = next.begin(); it != next.end();) {
      if (std::binary_search(aspired.begin(), aspired.end(), it->first)) {
        ++it;
      } else {
        unloaded.push_back(it->first);
        it = next.erase(it);
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return;
    it->second.served = std::make_shared<const Served>(std::move(next));
    it->second.failed = std::move(failed);
    for (int64_t v : unloaded) it->second.status[v] = {v, VersionState::kEnd, absl::OkStatus()};
  }
  // An unloaded version's memory (often most of the server's) goes back to the system
  // rather than waiting in the allocator's caches (freed once no request holds it).
  if (!unloaded.empty()) ReleaseFreeMemory();
  if (!options_.on_event) return;
  for (int64_t v : unloaded) {
    events.push_back(
        {name, v, VersionState::kEnd, absl::OkStatus(), JoinPath(config.base_path, StrCat(v))});
  }
  for (const VersionEvent& e : events) options_.on_event(e);
}

absl::StatusOr<std::string> ModelManager::VersionDir(const std::string& model,
                                                     int64_t version) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(model);
  if (it == models_.end()) {
    return absl::NotFoundError(StrCat("no model '", model, "' is configured"));
  }
  return JoinPath(it->second.config.base_path, StrCat(version));
}

void ModelManager::StartPolling(std::chrono::milliseconds interval) {
  Stop();
  {
    std::lock_guard<std::mutex> lock(poll_mu_);
    stopping_ = false;
  }
  poller_ = std::thread([this, interval] {
    std::unique_lock<std::mutex> lock(poll_mu_);
    while (!poll_cv_.wait_for(lock, interval, [this] { return stopping_; })) {
      lock.unlock();
      Poll();
      lock.lock();
    }
  });
}

void ModelManager::Stop() {
  {
    std::lock_guard<std::mutex> lock(poll_mu_);
    stopping_ = true;
  }
  poll_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

absl::StatusOr<std::shared_ptr<const train::Predictor>> ModelManager::Find(
    const std::string& model, std::optional<int64_t> version, const std::string& label) const {
  KILN_ASSIGN_OR_RETURN(Found found, FindVersion(model, version, label));
  return std::move(found.predictor);
}

absl::StatusOr<ModelManager::Found> ModelManager::FindVersion(const std::string& model,
                                                              std::optional<int64_t> version,
                                                              const std::string& label) const {
  std::shared_ptr<const Served> served;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(model);
    if (it == models_.end()) {
      return absl::NotFoundError(StrCat("no model '", model, "' is configured"));
    }
    served = it->second.served;
    if (!label.empty()) {
      auto l = it->second.config.labels.find(label);
      if (l == it->second.config.labels.end()) {
        return absl::NotFoundError(StrCat("model '", model, "' has no label '", label, "'"));
      }
      version = l->second;
    }
  }
  if (version) {
    auto v = served->find(*version);
    if (v == served->end()) {
      return absl::NotFoundError(StrCat("model '", model, "' has no available version ", *version));
    }
    return Found{*version, v->second};
  }
  if (served->empty()) {
    return absl::UnavailableError(StrCat("model '", model, "' has no available version yet"));
  }
  return Found{served->rbegin()->first, served->rbegin()->second};
}

absl::StatusOr<std::vector<VersionStatus>> ModelManager::Status(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(model);
  if (it == models_.end())
    return absl::NotFoundError(StrCat("no model '", model, "' is configured"));
  std::vector<VersionStatus> out;
  for (const auto& [v, s] : it->second.status) out.push_back(s);
  return out;
}

absl::StatusOr<int64_t> ModelManager::LabelVersion(const std::string& model,
                                                   const std::string& label) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(model);
  if (it == models_.end())
    return absl::NotFoundError(StrCat("no model '", model, "' is configured"));
  auto l = it->second.config.labels.find(label);
  if (l == it->second.config.labels.end()) {
    return absl::NotFoundError(StrCat("model '", model, "' has no label '", label, "'"));
  }
  return l->second;
}

std::vector<std::string> ModelManager::Models() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, m] : models_) out.push_back(name);
  return out;
}

}  // namespace kiln::serving
