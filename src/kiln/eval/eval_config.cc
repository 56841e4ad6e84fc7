#include "kiln/eval/eval_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::eval {
namespace {

class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  absl::Status Bad(const YAML::Node& node, std::string_view what) const {
    return absl::InvalidArgumentError(StrCat(source_, " line ", node.Mark().line + 1, ": ", what));
  }

  // Every key of `map` must be one of `keys`.
  absl::Status CheckKeys(const YAML::Node& map, std::string_view where,
                         const std::vector<std::string>& keys) const {
    if (!map.IsMap()) return Bad(map, StrCat(where, " must be a map"));
    for (const auto& kv : map) {
      const std::string key = kv.first.Scalar();
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
        return Bad(kv.first,
                   StrCat("unknown key '", key, "' in ", where, "; keys: ", StrJoin(keys, ", ")));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> String(const YAML::Node& node, std::string_view key) const {
    if (!node.IsScalar() || node.Scalar().empty()) {
      return Bad(node, StrCat(key, " must be a non-empty string"));
    }
    return node.Scalar();
  }

  absl::StatusOr<double> Number(const YAML::Node& node, std::string_view key) const {
    double v;
    if (!node.IsScalar() || !YAML::convert<double>::decode(node, v) || !std::isfinite(v)) {
      return Bad(node, StrCat(key, " must be a number"));
    }
    return v;
  }

  absl::StatusOr<int64_t> Int(const YAML::Node& node, std::string_view key, int64_t lo,
                              int64_t hi) const {
    int64_t v;
    if (!node.IsScalar() || !YAML::convert<int64_t>::decode(node, v) || v < lo || v > hi) {
      return Bad(node, StrCat(key, " must be an integer in [", lo, ", ", hi, "]"));
    }
    return v;
  }

  absl::StatusOr<SliceDimension> Dimension(const YAML::Node& node) const {
    SliceDimension d;
    if (node.IsScalar()) {
      KILN_ASSIGN_OR_RETURN(d.feature, String(node, "a sliced feature"));
      return d;
    }
    KILN_RETURN_IF_ERROR(CheckKeys(node, "a slicing feature", {"feature", "boundaries"}));
    if (!node["feature"]) return Bad(node, "a slicing feature needs `feature: COLUMN`");
    KILN_ASSIGN_OR_RETURN(d.feature, String(node["feature"], "feature"));
    if (const YAML::Node b = node["boundaries"]) {
      if (!b.IsSequence() || b.size() == 0) {
        return Bad(b, "boundaries must be a non-empty list of numbers, e.g. [10, 20]");
      }
      for (const YAML::Node& x : b) {
        KILN_ASSIGN_OR_RETURN(double v, Number(x, "a boundary"));
        if (!d.boundaries.empty() && v <= d.boundaries.back()) {
          return Bad(x, "boundaries must be strictly ascending");
        }
        d.boundaries.push_back(v);
      }
    }
    return d;
  }

  absl::StatusOr<SliceSpec> Slicing(const YAML::Node& node) const {
    KILN_RETURN_IF_ERROR(CheckKeys(node, "a slicing spec", {"feature", "features", "boundaries"}));
    SliceSpec spec;
    if (node["features"]) {
      if (node["feature"] || node["boundaries"]) {
        return Bad(node,
                   "a slicing spec has either `feature` (with optional `boundaries`) or "
                   "`features: [A, B]`");
      }
      const YAML::Node list = node["features"];
      if (!list.IsSequence() || list.size() == 0) {
        return Bad(list, "features must be a non-empty list of columns");
      }
      for (const YAML::Node& f : list) {
        KILN_ASSIGN_OR_RETURN(SliceDimension d, Dimension(f));
        spec.dimensions.push_back(std::move(d));
      }
    } else if (node["feature"]) {
      KILN_ASSIGN_OR_RETURN(SliceDimension d, Dimension(node));
      spec.dimensions.push_back(std::move(d));
    } else {
      return Bad(node, "a slicing spec needs `feature: COLUMN` or `features: [A, B]`");
    }
    std::set<std::string> seen;
    for (const SliceDimension& d : spec.dimensions) {
      if (!seen.insert(d.feature).second) {
        return Bad(node, StrCat("feature '", d.feature, "' appears twice in one cross"));
      }
    }
    return spec;
  }

  absl::StatusOr<MetricThreshold> Threshold(const YAML::Node& node,
                                            const std::vector<SliceSpec>& slicing) const {
    KILN_RETURN_IF_ERROR(CheckKeys(
        node, "a threshold", {"metric", "slices", "lower", "upper", "change", "min_examples"}));
    MetricThreshold t;
    t.line = node.Mark().line + 1;
    if (!node["metric"]) return Bad(node, "a threshold needs `metric: NAME`");
    KILN_ASSIGN_OR_RETURN(t.metric, String(node["metric"], "metric"));
    if (const YAML::Node s = node["slices"]) {
      t.slices.clear();
      if (s.IsScalar()) {
        KILN_ASSIGN_OR_RETURN(std::string one, String(s, "slices"));
        t.slices.push_back(one);
      } else if (s.IsSequence() && s.size() > 0) {
        for (const YAML::Node& x : s) {
          KILN_ASSIGN_OR_RETURN(std::string one, String(x, "a slice"));
          t.slices.push_back(one);
        }
      } else {
        return Bad(s, "slices must be a list of slice names, slicing specs or `all`");
      }
      for (const std::string& name : t.slices) {
        if (!SliceReferenceKnown(name, slicing)) {
          std::vector<std::string> keys = {"overall", "all"};
          for (const SliceSpec& spec : slicing) keys.push_back(spec.Key());
          return Bad(s, StrCat("slice '", name, "' is not sliced by any slicing spec; use ",
                               StrJoin(keys, ", "), " or a slice name such as FEATURE=VALUE"));
        }
      }
    }
    if (node["lower"]) {
      KILN_ASSIGN_OR_RETURN(t.lower, Number(node["lower"], "lower"));
    }
    if (node["upper"]) {
      KILN_ASSIGN_OR_RETURN(t.upper, Number(node["upper"], "upper"));
    }
    if (t.lower && t.upper && *t.lower > *t.upper) {
      return Bad(node, StrCat("lower ", *t.lower, " is above upper ", *t.upper));
    }
    if (const YAML::Node c = node["change"]) {
      KILN_RETURN_IF_ERROR(CheckKeys(c, "change", {"absolute", "relative", "direction"}));
      ChangeThreshold ch;
      if (c["absolute"]) {
        KILN_ASSIGN_OR_RETURN(ch.absolute, Number(c["absolute"], "absolute"));
      }
      if (c["relative"]) {
        KILN_ASSIGN_OR_RETURN(ch.relative, Number(c["relative"], "relative"));
      }
      if (!ch.absolute && !ch.relative) {
        return Bad(c,
                   "change needs `absolute` and/or `relative` (the least improvement "
                   "required; negative values allow that much worsening)");
      }
      if (const YAML::Node d = c["direction"]) {
        const std::string dir = d.IsScalar() ? d.Scalar() : "";
        if (dir == "higher_is_better") {
          ch.direction = 1;
        } else if (dir == "lower_is_better") {
          ch.direction = -1;
        } else {
          return Bad(d, "direction must be higher_is_better or lower_is_better");
        }
      }
      t.change = ch;
    }
    if (node["min_examples"]) {
      KILN_ASSIGN_OR_RETURN(int64_t m, Int(node["min_examples"], "min_examples", 0, INT64_MAX));
      t.min_examples = static_cast<uint64_t>(m);
    }
    if (!t.lower && !t.upper && !t.change) {
      return Bad(node, StrCat("threshold on ", t.metric,
                              " checks nothing: give lower, upper "
                              "and/or change"));
    }
    return t;
  }

 private:
  // "overall", "all", a spec key, or FEATURE=... for a feature some spec slices first.
  static bool SliceReferenceKnown(const std::string& name, const std::vector<SliceSpec>& slicing) {
    if (name == "overall" || name == "all") return true;
    for (const SliceSpec& spec : slicing) {
      if (name == spec.Key()) return true;
      if (name.starts_with(spec.dimensions[0].feature + "=")) return true;
    }
    return false;
  }

  std::string source_;
};

}  // namespace

std::string SliceSpec::Key() const {
  std::string key;
  for (const SliceDimension& d : dimensions) StrAppend(&key, key.empty() ? "" : ",", d.feature);
  return key;
}

absl::StatusOr<EvalConfig> ParseEvalConfig(std::string_view yaml, std::string_view source) {
  Parser p(source);
  EvalConfig c;
  c.source = std::string(source);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat(source, " is not valid YAML: ", e.what()));
  }
  if (root.IsNull()) return c;  // an empty config: evaluate, check nothing
  try {
    KILN_RETURN_IF_ERROR(p.CheckKeys(root, "the eval config",
                                     {"label", "weight", "decision_threshold", "top_k", "ranking",
                                      "slicing", "thresholds", "bootstrap"}));
    if (root["label"]) {
      KILN_ASSIGN_OR_RETURN(c.label, p.String(root["label"], "label"));
    }
    if (root["weight"]) {
      KILN_ASSIGN_OR_RETURN(c.weight, p.String(root["weight"], "weight"));
    }
    if (const YAML::Node t = root["decision_threshold"]) {
      KILN_ASSIGN_OR_RETURN(c.decision_threshold, p.Number(t, "decision_threshold"));
      if (c.decision_threshold < 0 || c.decision_threshold > 1) {
        return p.Bad(t, "decision_threshold must be in [0, 1]");
      }
    }
    if (root["top_k"]) {
      KILN_ASSIGN_OR_RETURN(int64_t k, p.Int(root["top_k"], "top_k", 1, 1000000));
      c.top_k = static_cast<int>(k);
    }
    if (const YAML::Node r = root["ranking"]) {
      KILN_RETURN_IF_ERROR(p.CheckKeys(r, "ranking", {"query_key", "k"}));
      RankingConfig rc;
      if (!r["query_key"]) return p.Bad(r, "ranking needs `query_key: COLUMN`");
      KILN_ASSIGN_OR_RETURN(rc.query_key, p.String(r["query_key"], "query_key"));
      if (const YAML::Node k = r["k"]) {
        rc.k.clear();
        if (k.IsSequence() && k.size() > 0) {
          for (const YAML::Node& x : k) {
            KILN_ASSIGN_OR_RETURN(int64_t v, p.Int(x, "a ranking cutoff k", 1, 1000000));
            rc.k.push_back(static_cast<int>(v));
          }
        } else {
          KILN_ASSIGN_OR_RETURN(int64_t v, p.Int(k, "ranking k", 1, 1000000));
          rc.k.push_back(static_cast<int>(v));
        }
        std::sort(rc.k.begin(), rc.k.end());
        rc.k.erase(std::unique(rc.k.begin(), rc.k.end()), rc.k.end());
      }
      c.ranking = rc;
    }
    if (const YAML::Node s = root["slicing"]) {
      if (!s.IsSequence()) return p.Bad(s, "slicing must be a list of slicing specs");
      std::set<std::string> keys;
      for (const YAML::Node& x : s) {
        KILN_ASSIGN_OR_RETURN(SliceSpec spec, p.Slicing(x));
        if (!keys.insert(spec.Key()).second) {
          return p.Bad(x, StrCat("slicing spec '", spec.Key(), "' appears twice"));
        }
        c.slicing.push_back(std::move(spec));
      }
    }
    if (const YAML::Node t = root["thresholds"]) {
      if (!t.IsSequence()) {
        return p.Bad(t, "thresholds must be a list of {metric, slices, lower, upper, change}");
      }
      for (const YAML::Node& x : t) {
        KILN_ASSIGN_OR_RETURN(MetricThreshold th, p.Threshold(x, c.slicing));
        c.thresholds.push_back(std::move(th));
      }
    }
    if (const YAML::Node b = root["bootstrap"]) {
      KILN_RETURN_IF_ERROR(p.CheckKeys(b, "bootstrap", {"samples", "seed", "confidence"}));
      if (b["samples"]) {
        KILN_ASSIGN_OR_RETURN(int64_t n, p.Int(b["samples"], "samples", 0, 100000));
        c.bootstrap.samples = static_cast<int>(n);
      }
      if (b["seed"]) {
        KILN_ASSIGN_OR_RETURN(int64_t s, p.Int(b["seed"], "seed", 0, INT64_MAX));
        c.bootstrap.seed = static_cast<uint64_t>(s);
      }
      if (b["confidence"]) {
        KILN_ASSIGN_OR_RETURN(c.bootstrap.confidence, p.Number(b["confidence"], "confidence"));
        if (!(c.bootstrap.confidence > 0 && c.bootstrap.confidence < 1)) {
          return p.Bad(b["confidence"], "confidence must be in (0, 1), e.g. 0.95");
        }
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat(source, ": ", e.what()));
  }
  return c;
}

}  // namespace kiln::eval
