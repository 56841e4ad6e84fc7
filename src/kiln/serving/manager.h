// The model manager, after TF Serving's Source → Loader → Manager: for each configured
// model it scans the base path for version directories (published model bundles), picks
// the versions the policy serves, loads new ones (bundle verification and warm-up rows
// included) and only then makes them visible, and unloads versions the policy no longer
// serves. Transitions preserve availability: a version stays served until a replacement
// is available, and a version that fails to load (bad checksum, wrong key, corrupt weights,
// warm-up mismatch) leaves what is served untouched and shows its error in the status.
//
// Lookups hand out shared pointers: a request that holds one keeps its version alive while
// it runs, even if the version is unloaded meanwhile.
#ifndef KILN_SERVING_MANAGER_H_
#define KILN_SERVING_MANAGER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/base/env.h"
#include "kiln/serving/model_config.h"
#include "kiln/train/predictor.h"

namespace kiln::serving {

// A version's state, with TF Serving's ModelVersionStatus.State numbers.
enum class VersionState { kStart = 10, kLoading = 20, kAvailable = 30, kUnloading = 40, kEnd = 50 };
std::string_view VersionStateName(VersionState s);  // "START", "LOADING", ...

struct VersionStatus {
  int64_t version = 0;
  VersionState state = VersionState::kStart;
  absl::Status error;  // why a version failed to load (state kEnd)
};

// A version's transition, reported once it has taken effect: kAvailable (now served),
// kEnd with an error (failed to load; not served), kEnd without one (unloaded).
struct VersionEvent {
  std::string model;
  int64_t version = 0;
  VersionState state = VersionState::kEnd;
  absl::Status error;
  std::string dir;  // the version's directory
};

struct ManagerOptions {
  std::optional<std::string> key;  // for sealed bundles
  // Called after each transition, on the thread that reconciled (no lock held).
  std::function<void(const VersionEvent&)> on_event;
};

class ModelManager {
 public:
  explicit ModelManager(Env* env, ManagerOptions options = {});
  ~ModelManager();  // stops polling

  // Replaces the configuration and brings the served versions in line with it (models no
  // longer configured are unloaded). Load failures are reported in the status, not here.
  void SetConfig(ServerConfig config);
  // Rescans every model's base path and loads / unloads accordingly.
  void Poll();
  // Calls Poll() every `interval` on a background thread until Stop() or destruction.
  void StartPolling(std::chrono::milliseconds interval);
  void Stop();

  // The predictor of `model` at `version`, at the version `label` names, or (neither
  // given) at the highest available version. Errors: kNotFound for an unknown model,
  // version or label; kUnavailable when the model has no available version yet.
  struct Found {
    int64_t version = 0;
    std::shared_ptr<const train::Predictor> predictor;
  };
  // As Find, with the version number found.
  absl::StatusOr<Found> FindVersion(const std::string& model, std::optional<int64_t> version = {},
                                    const std::string& label = "") const;
  absl::StatusOr<std::shared_ptr<const train::Predictor>> Find(const std::string& model,
                                                               std::optional<int64_t> version = {},
                                                               const std::string& label = "") const;
  // Every version the model has been asked to serve, ascending; kNotFound for an unknown
  // model.
  absl::StatusOr<std::vector<VersionStatus>> Status(const std::string& model) const;
  std::vector<std::string> Models() const;
  // Where `version` of `model` is (or would be) published: its base path joined with the
  // number. kNotFound for an unknown model.
  absl::StatusOr<std::string> VersionDir(const std::string& model, int64_t version) const;
  // The version `label` names; kNotFound for an unknown model or label.
  absl::StatusOr<int64_t> LabelVersion(const std::string& model, const std::string& label) const;

 private:
  struct Model {
    ModelConfig config;
    // What is served; replaced as a whole so readers copy one pointer.
    std::shared_ptr<const std::map<int64_t, std::shared_ptr<const train::Predictor>>> served;
    std::map<int64_t, VersionStatus> status;
    // Versions that failed to load, with their manifest's modification time: retried only
    // when the bundle changes.
    std::map<int64_t, int64_t> failed;
  };

  void Reconcile(const std::string& name);

  Env* env_;
  ManagerOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Model> models_;  // guarded by mu_
  std::mutex reconcile_mu_;              // one reconciliation at a time
  std::thread poller_;
  std::mutex poll_mu_;
  std::condition_variable poll_cv_;
  bool stopping_ = false;  // guarded by poll_mu_
};

}  // namespace kiln::serving

#endif  // KILN_SERVING_MANAGER_H_
