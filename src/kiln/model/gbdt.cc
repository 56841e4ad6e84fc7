// `gbdt`: gradient-boosted trees on XGBoost's C API. Features are the transform's dense
// columns followed by its categorical ids (as numbers: trees split on them directly).
//
// Params (the `model:` section): num_rounds (200), max_depth (6), learning_rate (0.1),
// subsample (1), colsample_bytree (1), min_child_weight (1), reg_lambda (1),
// reg_alpha (0), tree_method ("hist").
#include <dlfcn.h>
#include <xgboost/c_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/model/model.h"

namespace kiln::model {
namespace {

constexpr const char* kModelFile = "model/xgboost.json";
constexpr const char* kCheckpointFormat = "kiln.gbdt.checkpoint.1";

absl::Status Check(int rc, std::string_view what) {
  if (rc == 0) return absl::OkStatus();
  return absl::InternalError(StrCat("xgboost: ", what, ": ", XGBGetLastError()));
}

struct DMatrixDeleter {
  void operator()(void* h) const { XGDMatrixFree(h); }
};
struct BoosterDeleter {
  void operator()(void* h) const { XGBoosterFree(h); }
};
using DMatrix = std::unique_ptr<void, DMatrixDeleter>;
using Booster = std::unique_ptr<void, BoosterDeleter>;

// Row-major float features: dense columns, then categorical ids.
std::vector<float> Features(const transform::TransformedBatch& x) {
  const size_t cols = x.dense_dim + x.num_categorical;
  std::vector<float> out(x.num_rows * cols);
  for (size_t r = 0; r < x.num_rows; ++r) {
    float* row = &out[r * cols];
    for (size_t c = 0; c < x.dense_dim; ++c) row[c] = x.dense_at(r, c);
    for (size_t c = 0; c < x.num_categorical; ++c) {
      row[x.dense_dim + c] = static_cast<float>(x.id_at(r, c));
    }
  }
  return out;
}

absl::StatusOr<DMatrix> MakeDMatrix(const transform::TransformedBatch& x,
                                    const std::vector<float>* labels,
                                    const std::vector<float>* weights, int threads = 0) {
  std::vector<float> f = Features(x);
  DMatrixHandle h = nullptr;
  const size_t cols = x.dense_dim + x.num_categorical;
  KILN_RETURN_IF_ERROR(
      Check(XGDMatrixCreateFromMat_omp(f.data(), x.num_rows, cols,
                                       std::numeric_limits<float>::quiet_NaN(), &h, threads),
            "creating a DMatrix"));
  DMatrix m(h);
  if (labels) {
    KILN_RETURN_IF_ERROR(
        Check(XGDMatrixSetFloatInfo(h, "label", labels->data(), labels->size()), "labels"));
  }
  if (weights && !weights->empty()) {
    KILN_RETURN_IF_ERROR(
        Check(XGDMatrixSetFloatInfo(h, "weight", weights->data(), weights->size()), "weights"));
  }
  return m;
}

// The OpenMP runtime XGBoost runs on, found at run time: kiln's own code is built without
// OpenMP (clang's fuzz build has no OpenMP runtime to link). Null functions when absent.
struct OmpRuntime {
  int (*get_max_threads)() = nullptr;
  void (*set_num_threads)(int) = nullptr;
};

const OmpRuntime& Omp() {
  static const OmpRuntime omp = [] {
    OmpRuntime r;
    r.get_max_threads = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
    r.set_num_threads = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
    if (r.get_max_threads == nullptr || r.set_num_threads == nullptr) r = OmpRuntime();
    return r;
  }();
  return omp;
}

// While one lives, the OpenMP regions this thread starts (XGBoost's: it sizes its team
// by omp_get_max_threads() unless the booster's nthread is set) use `n` threads.
class OmpThreadsScope {
 public:
  explicit OmpThreadsScope(int n) {
    if (Omp().set_num_threads == nullptr) return;
    saved_ = Omp().get_max_threads();
    Omp().set_num_threads(n);
  }
  ~OmpThreadsScope() {
    if (saved_ > 0) Omp().set_num_threads(saved_);
  }
  OmpThreadsScope(const OmpThreadsScope&) = delete;
  OmpThreadsScope& operator=(const OmpThreadsScope&) = delete;

 private:
  int saved_ = 0;
};

// XGBoost scores rows in blocks of this many, one block per thread.
constexpr size_t kXgboostBlockRows = 64;

std::string Objective(Task task) {
  switch (task) {
    case Task::kBinary:
      return "binary:logistic";
    case Task::kMulticlass:
      return "multi:softprob";
    case Task::kRegression:
      return "reg:squarederror";
  }
  return "";
}

class GbdtModel : public Model {
 public:
  GbdtModel(Booster booster, Task task, int num_classes, int rounds, int best_round)
      : booster_(std::move(booster)),
        task_(task),
        num_classes_(num_classes),
        rounds_(rounds),
        best_round_(best_round) {}

  std::string_view type() const override { return "gbdt"; }
  std::string_view backend() const override { return "xgboost"; }

  absl::Status Predict(const transform::TransformedBatch& x,
                       std::vector<float>* out) const override {
    out->clear();
    if (x.num_rows == 0) return absl::OkStatus();
    // A batch of one block has no work for a second thread, and waking XGBoost's OpenMP
    // team for it (futex wake-ups and waits) took most of a one-row request's time: such
    // batches are scored on this thread.
    std::optional<OmpThreadsScope> one_thread;
    if (x.num_rows <= kXgboostBlockRows) one_thread.emplace(1);
    // In place, from the matrix through a proxy kept per thread: a DMatrix per call cost
    // more than the trees (its set-up reads the cgroup CPU quota files each time).
    thread_local DMatrix proxy;
    if (proxy == nullptr) {
      DMatrixHandle h = nullptr;
      KILN_RETURN_IF_ERROR(Check(XGProxyDMatrixCreate(&h), "creating a proxy DMatrix"));
      proxy.reset(h);
    }
    const std::vector<float> f = Features(x);
    char array[160];
    std::snprintf(array, sizeof(array),
                  R"({"data": [%llu, true], "shape": [%zu, %zu], "typestr": "<f4", "version": 3})",
                  static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(f.data())),
                  x.num_rows, x.dense_dim + x.num_categorical);
    static constexpr char kConfig[] =
        R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
        R"("strict_shape": false, "missing": NaN, "cache_id": 0})";
    const bst_ulong* shape = nullptr;
    bst_ulong dims = 0;
    const float* result = nullptr;
    KILN_RETURN_IF_ERROR(Check(XGBoosterPredictFromDense(booster_.get(), array, kConfig,
                                                         proxy.get(), &shape, &dims, &result),
                               "predicting"));
    bst_ulong len = dims == 0 ? 0 : 1;
    for (bst_ulong i = 0; i < dims; ++i) len *= shape[i];
    const size_t want = x.num_rows * (task_ == Task::kMulticlass ? num_classes_ : 1);
    if (len != want) {
      return absl::InternalError(StrCat("xgboost returned ", len, " scores for ", want));
    }
    out->assign(result, result + len);
    return absl::OkStatus();
  }

  absl::Status Save(BundleWriter* writer) const override {
    bst_ulong len = 0;
    const char* buf = nullptr;
    KILN_RETURN_IF_ERROR(Check(
        XGBoosterSaveModelToBuffer(booster_.get(), R"({"format": "json"})", &len, &buf), "saving"));
    return writer->AddFile(kModelFile, std::string_view(buf, len));
  }

  // rounds: trees kept; best_round: the round with the best eval metric (1-based).
  nlohmann::json Summary() const override {
    return {{"rounds", rounds_}, {"best_round", best_round_}};
  }

 private:
  Booster booster_;
  Task task_;
  int num_classes_;
  int rounds_;
  int best_round_;
};

absl::StatusOr<std::unique_ptr<Model>> TrainGbdt(const TrainOptions& options,
                                                 const transform::OutputSignature& signature,
                                                 const Examples& train, const Examples& eval) {
  const nlohmann::json& p = options.params;
  auto num = [&](const char* key, double def) -> absl::StatusOr<double> {
    if (!p.contains(key)) return def;
    if (!p[key].is_number()) {
      return absl::InvalidArgumentError(StrCat("model.", key, " must be a number"));
    }
    return p[key].get<double>();
  };
  KILN_ASSIGN_OR_RETURN(double rounds, num("num_rounds", 200));
  if (rounds < 1 || rounds > 100000) {
    return absl::InvalidArgumentError("model.num_rounds must be in [1, 100000]");
  }
  KILN_ASSIGN_OR_RETURN(DMatrix dtrain,
                        MakeDMatrix(*train.x, &train.labels, &train.weights, options.threads));
  DMatrix deval;
  if (eval.size() > 0) {
    KILN_ASSIGN_OR_RETURN(deval,
                          MakeDMatrix(*eval.x, &eval.labels, &eval.weights, options.threads));
  }
  // Both matrices go in the booster's prediction cache, so the per-round evaluation only
  // adds the newest tree's outputs instead of predicting with every tree again.
  DMatrixHandle cached[2] = {dtrain.get(), deval.get()};
  BoosterHandle h = nullptr;
  KILN_RETURN_IF_ERROR(
      Check(XGBoosterCreate(cached, eval.size() > 0 ? 2 : 1, &h), "creating a booster"));
  Booster booster(h);
  std::vector<std::pair<std::string, std::string>> params = {
      {"objective", Objective(options.task)},
      {"seed", StrCat(options.seed)},
      {"nthread", StrCat(options.threads)},
      {"verbosity", "0"},
  };
  if (options.task == Task::kMulticlass)
    params.emplace_back("num_class", StrCat(options.num_classes));
  const std::pair<const char*, const char*> names[] = {
      {"max_depth", "max_depth"},
      {"learning_rate", "eta"},
      {"subsample", "subsample"},
      {"colsample_bytree", "colsample_bytree"},
      {"min_child_weight", "min_child_weight"},
      {"reg_lambda", "lambda"},
      {"reg_alpha", "alpha"},
  };
  const std::map<std::string, double> defaults = {{"max_depth", 6}, {"learning_rate", 0.1}};
  for (const auto& [ours, theirs] : names) {
    double def = defaults.count(ours) ? defaults.at(ours) : std::nan("");
    KILN_ASSIGN_OR_RETURN(double v, num(ours, def));
    if (!std::isnan(v)) params.emplace_back(theirs, StrCat(v));
  }
  params.emplace_back("tree_method", p.value("tree_method", std::string("hist")));
  for (const auto& [k, v] : params) {
    KILN_RETURN_IF_ERROR(Check(XGBoosterSetParam(h, k.c_str(), v.c_str()), StrCat("param ", k)));
  }

  const std::string metric = options.early_stopping_metric.empty() ? PrimaryMetric(options.task)
                                                                   : options.early_stopping_metric;
  const bool higher = HigherIsBetter(metric);
  double best = higher ? -1e300 : 1e300;
  int best_round = static_cast<int>(rounds) - 1;
  int since_best = 0;
  int first_round = 0;
  if (!options.resume_from.empty()) {
    // A checkpoint: the header line, a JSON line with the loop's state, then the booster
    // as XGBoosterSerializeToBuffer wrote it (trees and configuration).
    const std::string& ck = options.resume_from;
    const size_t eol1 = ck.find('\n');
    const size_t eol2 = eol1 == std::string::npos ? eol1 : ck.find('\n', eol1 + 1);
    if (eol2 == std::string::npos || ck.compare(0, eol1, kCheckpointFormat) != 0) {
      return absl::DataLossError("not a checkpoint of a gbdt training run");
    }
    nlohmann::json st = nlohmann::json::parse(ck.substr(eol1 + 1, eol2 - eol1 - 1), nullptr, false);
    if (!st.is_object() || !st["round"].is_number_integer() || !st["best"].is_number() ||
        !st["best_round"].is_number_integer() || !st["since_best"].is_number_integer()) {
      return absl::DataLossError("gbdt checkpoint: malformed state line");
    }
    first_round = st["round"].get<int>();
    best = st["best"].get<double>();
    best_round = st["best_round"].get<int>();
    since_best = st["since_best"].get<int>();
    if (first_round < 0 || first_round > static_cast<int>(rounds)) {
      return absl::DataLossError(
          StrCat("gbdt checkpoint at round ", first_round, " of a run of ", rounds, " rounds"));
    }
    const std::string_view booster_bytes = std::string_view(ck).substr(eol2 + 1);
    if (XGBoosterUnserializeFromBuffer(h, booster_bytes.data(), booster_bytes.size()) != 0) {
      return absl::DataLossError(StrCat("gbdt checkpoint: ", XGBGetLastError()));
    }
  }
  auto save_checkpoint = [&](int next_round) -> absl::Status {
    bst_ulong len = 0;
    const char* buf = nullptr;
    KILN_RETURN_IF_ERROR(Check(XGBoosterSerializeToBuffer(h, &len, &buf), "checkpointing"));
    nlohmann::json st = {{"round", next_round},
                         {"best", best},
                         {"best_round", best_round},
                         {"since_best", since_best}};
    std::string out = StrCat(kCheckpointFormat, "\n", st.dump(), "\n");
    out.append(buf, len);
    return options.on_checkpoint(next_round, std::move(out));
  };
  std::vector<float> scores;
  for (int round = first_round; round < static_cast<int>(rounds); ++round) {
    KILN_RETURN_IF_ERROR(Check(XGBoosterUpdateOneIter(h, round, dtrain.get()), "boosting"));
    if (options.on_step) options.on_step(round + 1, static_cast<int64_t>(rounds));
    const bool last = round + 1 == static_cast<int>(rounds);
    const bool checkpoint = options.checkpoint_every > 0 && options.on_checkpoint &&
                            (round + 1) % options.checkpoint_every == 0 && !last;
    if (eval.size() == 0 || ((round + 1) % std::max(1, options.eval_every) != 0 && !last)) {
      if (checkpoint) KILN_RETURN_IF_ERROR(save_checkpoint(round + 1));
      continue;
    }
    bst_ulong len = 0;
    const float* result = nullptr;
    KILN_RETURN_IF_ERROR(Check(XGBoosterPredict(h, deval.get(), 0, 0, 0, &len, &result), "eval"));
    scores.assign(result, result + len);
    Metrics m = ComputeMetrics(options.task, options.num_classes, scores, eval.labels);
    if (options.on_eval) options.on_eval(round + 1, m);
    double v = m.count(metric) ? m[metric] : std::nan("");
    if (!std::isnan(v) && (higher ? v > best : v < best)) {
      best = v;
      best_round = round;
      since_best = 0;
    } else if (options.patience > 0 && ++since_best >= options.patience) {
      break;
    }
    if (checkpoint) KILN_RETURN_IF_ERROR(save_checkpoint(round + 1));
  }
  int kept = static_cast<int>(rounds);
  const bool sliced = options.patience > 0 && best_round + 1 < static_cast<int>(rounds);
  if (!sliced) {
    // Every tree is kept: both matrices' scores come from the booster's prediction cache.
    auto cached_scores = [&](DMatrixHandle m, std::vector<float>* out) -> absl::Status {
      if (out == nullptr || m == nullptr) return absl::OkStatus();
      bst_ulong len = 0;
      const float* result = nullptr;
      KILN_RETURN_IF_ERROR(Check(XGBoosterPredict(h, m, 0, 0, 0, &len, &result), "scoring"));
      out->assign(result, result + len);
      return absl::OkStatus();
    };
    KILN_RETURN_IF_ERROR(cached_scores(dtrain.get(), options.final_train_scores));
    KILN_RETURN_IF_ERROR(cached_scores(deval.get(), options.final_eval_scores));
  }
  if (sliced) {
    kept = best_round + 1;
    // Keep the trees up to the best evaluation only.
    BoosterHandle sliced = nullptr;
    KILN_RETURN_IF_ERROR(Check(XGBoosterSlice(h, 0, best_round + 1, 1, &sliced), "slicing"));
    booster.reset(sliced);
  }
  return std::unique_ptr<Model>(
      new GbdtModel(std::move(booster), options.task, options.num_classes, kept, best_round + 1));
}

absl::StatusOr<std::unique_ptr<Model>> LoadGbdt(const Bundle& bundle, Task task, int num_classes) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, bundle.ReadFile(kModelFile));
  BoosterHandle h = nullptr;
  KILN_RETURN_IF_ERROR(Check(XGBoosterCreate(nullptr, 0, &h), "creating a booster"));
  Booster booster(h);
  KILN_RETURN_IF_ERROR(
      Check(XGBoosterLoadModelFromBuffer(h, bytes.data(), bytes.size()), "loading the model"));
  const nlohmann::json summary =
      bundle.manifest().config.value("model_summary", nlohmann::json::object());
  return std::unique_ptr<Model>(new GbdtModel(std::move(booster), task, num_classes,
                                              summary.value("rounds", 0),
                                              summary.value("best_round", 0)));
}

}  // namespace

absl::StatusOr<std::string> XgboostModelAsJson(std::string_view bytes, size_t num_inputs) {
  // XGBoost 2 and later write base_score as a one-element vector ("[5E-1]"), which the
  // 1.7 library kiln links reads as a different intercept; rewrite it as the number.
  // Both forms start with '{': try JSON, then UBJSON.
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    j = nlohmann::json::from_ubjson(bytes, /*strict=*/true, /*allow_exceptions=*/false);
  }
  if (j.is_discarded()) {
    return absl::InvalidArgumentError("not a model XGBoost can load: neither JSON nor UBJSON");
  }
  if (j.is_object() && j.contains("learner") && j["learner"].contains("learner_model_param")) {
    nlohmann::json& param = j["learner"]["learner_model_param"];
    std::string base = param.value("base_score", "");
    if (base.size() > 2 && base.front() == '[' && base.back() == ']') {
      std::string inner = base.substr(1, base.size() - 2);
      if (inner.find(',') != std::string::npos) {
        return absl::InvalidArgumentError(
            "models with several intercepts (multi-target) are not supported");
      }
      param["base_score"] = inner;
    }
  }
  const std::string normalized = j.dump();
  BoosterHandle h = nullptr;
  KILN_RETURN_IF_ERROR(Check(XGBoosterCreate(nullptr, 0, &h), "creating a booster"));
  Booster booster(h);
  if (XGBoosterLoadModelFromBuffer(h, normalized.data(), normalized.size()) != 0) {
    return absl::InvalidArgumentError(StrCat("not a model XGBoost can load: ", XGBGetLastError()));
  }
  bst_ulong num_features = 0;
  KILN_RETURN_IF_ERROR(Check(XGBoosterGetNumFeature(h, &num_features), "counting features"));
  if (num_features > num_inputs) {
    return absl::InvalidArgumentError(
        StrCat("the model uses ", num_features, " features; the signature names ", num_inputs));
  }
  bst_ulong len = 0;
  const char* json = nullptr;
  KILN_RETURN_IF_ERROR(
      Check(XGBoosterSaveModelToBuffer(h, R"({"format": "json"})", &len, &json), "saving"));
  return std::string(json, len);
}

namespace internal {
void RegisterGbdt() { RegisterModelType("gbdt", TrainGbdt, LoadGbdt); }
}  // namespace internal

}  // namespace kiln::model
