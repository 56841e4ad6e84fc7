#include "kiln/train/train_config.h"

#include <yaml-cpp/yaml.h>

#include <set>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::train {
namespace {

absl::Status Bad(const YAML::Node& node, std::string_view what) {
  return absl::InvalidArgumentError(StrCat("train config line ", node.Mark().line + 1, ": ", what));
}

// A YAML scalar or map as JSON (numbers stay numbers, true/false bools).
nlohmann::json ToJson(const YAML::Node& node) {
  if (node.IsMap()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& kv : node) j[kv.first.as<std::string>()] = ToJson(kv.second);
    return j;
  }
  if (node.IsSequence()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& v : node) j.push_back(ToJson(v));
    return j;
  }
  if (!node.IsScalar()) return nullptr;
  const std::string s = node.Scalar();
  if (node.Tag() != "!") {  // unquoted: try number and bool
    int64_t i;
    double d;
    if (YAML::convert<int64_t>::decode(node, i)) return i;
    if (YAML::convert<double>::decode(node, d)) return d;
    if (s == "true" || s == "false") return s == "true";
  }
  return s;
}

absl::StatusOr<int64_t> Int(const YAML::Node& node, std::string_view key, int64_t lo, int64_t hi) {
  int64_t v;
  if (!node.IsScalar() || !YAML::convert<int64_t>::decode(node, v) || v < lo || v > hi) {
    return Bad(node, StrCat(key, " must be an integer in [", lo, ", ", hi, "]"));
  }
  return v;
}

}  // namespace

absl::StatusOr<TrainConfig> ParseTrainConfig(std::string_view yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("train config is not valid YAML: ", e.what()));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError("train config must be a YAML map");
  const std::set<std::string> known = {"label", "task",      "positive_class",
                                       "model", "transform", "training"};
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    if (!known.count(key)) {
      return Bad(kv.first, StrCat("unknown key '", key,
                                  "'; keys: label, task, positive_class, model, transform, "
                                  "training"));
    }
  }
  TrainConfig c;
  try {
    if (!root["label"] || !root["label"].IsScalar() || root["label"].Scalar().empty()) {
      return absl::InvalidArgumentError("train config needs `label: COLUMN`");
    }
    c.label = root["label"].Scalar();
    if (!root["task"]) {
      return absl::InvalidArgumentError("train config needs `task: binary|multiclass|regression`");
    }
    KILN_ASSIGN_OR_RETURN(c.task, model::ParseTask(root["task"].Scalar()));
    if (root["positive_class"]) {
      if (c.task != model::Task::kBinary) {
        return Bad(root["positive_class"], "positive_class applies to task: binary only");
      }
      c.positive_class = root["positive_class"].Scalar();
    }
    const YAML::Node model = root["model"];
    if (!model || !model.IsMap() || !model["type"]) {
      return absl::InvalidArgumentError(
          StrCat("train config needs `model: {type: NAME}`; model types: ",
                 StrJoin(model::ModelTypes(), ", ")));
    }
    c.model_type = model["type"].Scalar();
    c.model_params = ToJson(model);
    if (root["transform"]) {
      KILN_ASSIGN_OR_RETURN(c.transform, transform::ParseTransformSpec(root["transform"]));
    }
    if (const YAML::Node t = root["training"]) {
      if (!t.IsMap()) return Bad(t, "training must be a map");
      for (const auto& kv : t) {
        const std::string key = kv.first.as<std::string>();
        const YAML::Node& v = kv.second;
        if (key == "seed") {
          KILN_ASSIGN_OR_RETURN(int64_t seed, Int(v, key, 0, INT64_MAX));
          c.seed = static_cast<uint64_t>(seed);
        } else if (key == "threads") {
          KILN_ASSIGN_OR_RETURN(int64_t n, Int(v, key, 0, 1024));
          c.threads = static_cast<int>(n);
        } else if (key == "eval_every") {
          KILN_ASSIGN_OR_RETURN(int64_t n, Int(v, key, 1, 1000000));
          c.eval_every = static_cast<int>(n);
        } else if (key == "checkpoint_every") {
          KILN_ASSIGN_OR_RETURN(c.checkpoint_every, Int(v, key, 0, INT64_MAX));
        } else if (key == "split") {
          c.split = v.Scalar();
        } else if (key == "early_stopping") {
          if (!v.IsMap()) return Bad(v, "early_stopping must be {metric: M, patience: N}");
          if (v["metric"]) c.early_stopping_metric = v["metric"].Scalar();
          if (v["patience"]) {
            KILN_ASSIGN_OR_RETURN(int64_t n, Int(v["patience"], "patience", 0, 1000000));
            c.patience = static_cast<int>(n);
          }
        } else if (key == "class_weights") {
          if (!v.IsMap()) return Bad(v, "class_weights must map label values to weights");
          for (const auto& w : v) {
            double weight;
            if (!YAML::convert<double>::decode(w.second, weight) || !(weight > 0)) {
              return Bad(w.second, "a class weight must be a number > 0");
            }
            c.class_weights[w.first.as<std::string>()] = weight;
          }
        } else {
          return Bad(kv.first, StrCat("unknown training key '", key,
                                      "'; keys: seed, threads, eval_every, early_stopping, "
                                      "checkpoint_every, split, class_weights"));
        }
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("train config: ", e.what()));
  }
  if (!c.early_stopping_metric.empty()) {
    static const std::set<std::string> metrics = {"auc",  "log_loss", "accuracy",
                                                  "rmse", "mae",      "r2"};
    if (!metrics.count(c.early_stopping_metric)) {
      return absl::InvalidArgumentError(
          StrCat("unknown early_stopping metric '", c.early_stopping_metric,
                 "'; metrics: auc, log_loss, accuracy (classification), rmse, mae, r2 "
                 "(regression)"));
    }
  }
  // The label is never a feature.
  if (!c.transform.IsExcluded(c.label)) c.transform.exclude.push_back(c.label);
  return c;
}

nlohmann::json TrainConfigToJson(const TrainConfig& c) {
  nlohmann::json j;
  j["label"] = c.label;
  j["task"] = std::string(model::TaskName(c.task));
  if (c.positive_class) j["positive_class"] = *c.positive_class;
  j["model"] = c.model_params;
  j["transform"] = transform::SpecToJson(c.transform);
  j["training"] = {
      {"seed", c.seed},
      {"threads", c.threads},
      {"eval_every", c.eval_every},
      {"checkpoint_every", c.checkpoint_every},
      {"early_stopping", {{"metric", c.early_stopping_metric}, {"patience", c.patience}}},
      {"split", c.split},
      {"class_weights", c.class_weights}};
  return j;
}

}  // namespace kiln::train
