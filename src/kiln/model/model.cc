#include "kiln/model/model.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <numeric>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::model {
namespace internal {
// The built-in model types, registered explicitly: a static initializer in a file of a
// static library would be dropped by the linker when nothing else references the file.
void RegisterGbdt();
}  // namespace internal

namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, std::pair<TrainFn, LoadFn>> types;
};
// The libtorch models live in a plugin module (libkiln_torch_models.so beside the kiln
// binary): linking libtorch into kiln would add ~0.4 s of start-up to every command. The
// registry lists their names from the start; the module is loaded when one is first
// trained or loaded, and hands over its real trainers and loaders.
constexpr const char* kTorchModelTypes[] = {"cnn", "linear", "mlp", "wide_deep"};
constexpr const char* kTorchPluginName = "libkiln_torch_models.so";

std::vector<std::string> PluginDirs() {
  std::vector<std::string> dirs;
  if (const char* d = std::getenv("KILN_PLUGIN_DIR"); d && *d) dirs.push_back(d);
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    std::string path(exe, n);
    dirs.push_back(path.substr(0, path.rfind('/')));
  }
#ifdef KILN_BUILD_PLUGIN_DIR
  dirs.push_back(KILN_BUILD_PLUGIN_DIR);  // test binaries run from the build tree
#endif
  return dirs;
}

absl::StatusOr<std::pair<TrainFn, LoadFn>> TorchPlugin(const std::string& type) {
  static std::once_flag once;
  static absl::Status* status = new absl::Status();
  static auto* fns = new std::map<std::string, std::pair<TrainFn, LoadFn>>();
  std::call_once(once, [] {
    std::string tried;
    void* handle = nullptr;
    for (const std::string& dir : PluginDirs()) {
      std::string path = dir + "/" + kTorchPluginName;
      handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle) break;
      const char* err = dlerror();
      StrAppend(&tried, tried.empty() ? "" : "; ", err ? err : path);
    }
    if (!handle) {
      *status = absl::FailedPreconditionError(
          StrCat("the neural model types need ", kTorchPluginName,
                 " beside the kiln binary (or in $KILN_PLUGIN_DIR): ", tried));
      return;
    }
    using AddFn = void (*)(void*, const char*, TrainFn, LoadFn);
    using EntryFn = void (*)(void*, AddFn);
    auto entry = reinterpret_cast<EntryFn>(dlsym(handle, "kiln_torch_models_register"));
    if (!entry) {
      *status = absl::FailedPreconditionError(
          StrCat(kTorchPluginName, " has no kiln_torch_models_register"));
      return;
    }
    entry(fns, [](void* ctx, const char* name, TrainFn train, LoadFn load) {
      (*static_cast<std::map<std::string, std::pair<TrainFn, LoadFn>>*>(ctx))[name] = {
          std::move(train), std::move(load)};
    });
  });
  if (!status->ok()) return *status;
  auto it = fns->find(type);
  if (it == fns->end()) return absl::InternalError(StrCat(kTorchPluginName, " lacks ", type));
  return it->second;
}

Registry& RawRegistry() {
  static Registry* r = new Registry;
  return *r;
}
// The registry with the built-in types in it.
Registry& GetRegistry() {
  static std::once_flag builtins;
  std::call_once(builtins, [] {
    internal::RegisterGbdt();
    // Imported (kiln import-model), never trained: no trainer.
    RegisterModelType("torchscript", nullptr,
                      [](const Bundle& bundle, Task task,
                         int num_classes) -> absl::StatusOr<std::unique_ptr<Model>> {
                        KILN_ASSIGN_OR_RETURN(auto fns, TorchPlugin("torchscript"));
                        return fns.second(bundle, task, num_classes);
                      });
    for (const char* type : kTorchModelTypes) {
      const std::string name = type;
      RegisterModelType(
          name,
          [name](const TrainOptions& options, const transform::OutputSignature& signature,
                 const Examples& train,
                 const Examples& eval) -> absl::StatusOr<std::unique_ptr<Model>> {
            KILN_ASSIGN_OR_RETURN(auto fns, TorchPlugin(name));
            return fns.first(options, signature, train, eval);
          },
          [name](const Bundle& bundle, Task task,
                 int num_classes) -> absl::StatusOr<std::unique_ptr<Model>> {
            KILN_ASSIGN_OR_RETURN(auto fns, TorchPlugin(name));
            return fns.second(bundle, task, num_classes);
          });
    }
  });
  return RawRegistry();
}

absl::StatusOr<std::pair<TrainFn, LoadFn>> Find(const std::string& type) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.types.find(type);
  if (it == r.types.end()) {
    std::vector<std::string> names;
    for (const auto& [name, fns] : r.types) {
      if (fns.first) names.push_back(name);
    }
    return absl::InvalidArgumentError(
        StrCat("unknown model type '", type, "'; model types: ", StrJoin(names, ", ")));
  }
  return it->second;
}

}  // namespace

std::string_view TaskName(Task t) {
  switch (t) {
    case Task::kBinary:
      return "binary";
    case Task::kMulticlass:
      return "multiclass";
    case Task::kRegression:
      return "regression";
  }
  return "unknown";
}

absl::StatusOr<Task> ParseTask(std::string_view name) {
  for (Task t : {Task::kBinary, Task::kMulticlass, Task::kRegression}) {
    if (TaskName(t) == name) return t;
  }
  return absl::InvalidArgumentError(
      StrCat("unknown task '", name, "'; tasks: binary, multiclass, regression"));
}

bool RegisterModelType(const std::string& name, TrainFn train, LoadFn load) {
  Registry& r = RawRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.types[name] = {std::move(train), std::move(load)};
  return true;
}

std::vector<std::string> ModelTypes() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> names;
  for (const auto& [name, fns] : r.types) {
    if (fns.first) names.push_back(name);
  }
  return names;
}

absl::StatusOr<std::unique_ptr<Model>> TrainModel(const std::string& type,
                                                  const TrainOptions& options,
                                                  const transform::OutputSignature& signature,
                                                  const Examples& train, const Examples& eval) {
  auto fns = Find(type);
  if (!fns.ok()) return fns.status();
  if (!fns->first) {
    return absl::InvalidArgumentError(
        StrCat("model type '", type, "' is imported with kiln import-model, not trained"));
  }
  if (train.size() == 0) return absl::InvalidArgumentError("no training rows");
  return fns->first(options, signature, train, eval);
}

absl::StatusOr<std::unique_ptr<Model>> LoadModel(const Bundle& bundle, Task task, int num_classes) {
  auto fns = Find(bundle.manifest().model_type);
  if (!fns.ok()) return fns.status();
  return fns->second(bundle, task, num_classes);
}

double BinaryAuc(const std::vector<float>& scores, const std::vector<float>& labels) {
  // Per row one 64-bit key: the score's bits mapped so that unsigned order is float order,
  // shifted left once, with the label in bit 0. An LSD radix sort on bits 1..32 (three
  // 11-bit digits) orders them by score: the metric runs after every boosting round, and
  // this is several times faster than a comparison sort of row indices.
  const size_t n = scores.size();
  std::vector<uint64_t> keys(n), tmp(n);
  for (size_t i = 0; i < n; ++i) {
    float f = scores[i] == 0 ? 0.0f : scores[i];  // -0 and +0 are one score
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    keys[i] = (static_cast<uint64_t>(u) << 1) | (labels[i] > 0.5f ? 1 : 0);
  }
  for (int shift : {1, 12, 23}) {
    size_t count[2049] = {};
    for (uint64_t k : keys) ++count[((k >> shift) & 2047) + 1];
    for (int d = 0; d < 2048; ++d) count[d + 1] += count[d];
    for (uint64_t k : keys) tmp[count[(k >> shift) & 2047]++] = k;
    keys.swap(tmp);
  }
  // Sum of the positives' ranks (1-based, ties get their average rank).
  double rank_sum = 0, positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i, pos = 0;
    for (; j < n && (keys[j] >> 1) == (keys[i] >> 1); ++j) pos += keys[j] & 1;
    rank_sum +=
        static_cast<double>(pos) * (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    positives += static_cast<double>(pos);
    i = j;
  }
  double negatives = static_cast<double>(n) - positives;
  if (positives == 0 || negatives == 0) return std::nan("");
  return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

Metrics ComputeMetrics(Task task, int num_classes, const std::vector<float>& scores,
                       const std::vector<float>& labels) {
  Metrics m;
  const size_t n = labels.size();
  if (n == 0) return m;
  constexpr double kEps = 1e-15;
  if (task == Task::kBinary) {
    double ll = 0, correct = 0;
    for (size_t i = 0; i < n; ++i) {
      double p = std::clamp(static_cast<double>(scores[i]), kEps, 1 - kEps);
      ll -= labels[i] > 0.5f ? std::log(p) : std::log(1 - p);
      correct += (p >= 0.5) == (labels[i] > 0.5f);
    }
    m["auc"] = BinaryAuc(scores, labels);
    m["log_loss"] = ll / n;
    m["accuracy"] = correct / n;
  } else if (task == Task::kMulticlass) {
    double ll = 0, correct = 0;
    for (size_t i = 0; i < n; ++i) {
      const float* p = &scores[i * num_classes];
      int label = static_cast<int>(labels[i]);
      int best = static_cast<int>(std::max_element(p, p + num_classes) - p);
      correct += best == label;
      ll -= std::log(std::clamp(static_cast<double>(p[label]), kEps, 1.0));
    }
    m["accuracy"] = correct / n;
    m["log_loss"] = ll / n;
  } else {
    double se = 0, ae = 0, mean = 0;
    for (size_t i = 0; i < n; ++i) mean += labels[i];
    mean /= n;
    double ss = 0;
    for (size_t i = 0; i < n; ++i) {
      double d = scores[i] - labels[i];
      se += d * d;
      ae += std::abs(d);
      ss += (labels[i] - mean) * (labels[i] - mean);
    }
    m["rmse"] = std::sqrt(se / n);
    m["mae"] = ae / n;
    m["r2"] = ss > 0 ? 1 - se / ss : std::nan("");
  }
  return m;
}

std::string PrimaryMetric(Task task) {
  switch (task) {
    case Task::kBinary:
      return "auc";
    case Task::kMulticlass:
      return "log_loss";
    case Task::kRegression:
      return "rmse";
  }
  return "";
}

bool HigherIsBetter(std::string_view metric) {
  return metric == "auc" || metric == "accuracy" || metric == "r2";
}

}  // namespace kiln::model
