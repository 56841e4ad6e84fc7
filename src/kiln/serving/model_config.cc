#include "kiln/serving/model_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/serving/webhook.h"
#include "tensorflow_serving/config/model_server_config.pb.h"

namespace kiln::serving {
namespace {

// Whether the first token of `text` (comments and blank space skipped) is
// `model_config_list`: TF Serving's text format rather than YAML.
bool LooksLikeTextProto(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (std::isspace(static_cast<unsigned char>(text[i]))) {
      ++i;
    } else {
      break;
    }
  }
  return text.substr(i).rfind("model_config_list", 0) == 0;
}

// Collects text-format parse errors with their line and column.
class Errors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first.empty()) first = StrCat("line ", line + 1, ", column ", column + 1, ": ", message);
  }
  std::string first;
};

absl::StatusOr<ServerConfig> FromTextProto(std::string_view text) {
  tensorflow::serving::ModelServerConfig proto;
  google::protobuf::TextFormat::Parser parser;
  Errors errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &proto)) {
    return absl::InvalidArgumentError(StrCat("model config (text proto): ", errors.first));
  }
  ServerConfig out;
  for (const auto& m : proto.model_config_list().config()) {
    ModelConfig c;
    c.name = m.name();
    c.base_path = m.base_path();
    if (!m.model_platform().empty() && m.model_platform() != "kiln") {
      return absl::InvalidArgumentError(
          StrCat("model '", c.name, "': model_platform '", m.model_platform(),
                 "' (kiln serves kiln model bundles; leave it out or write \"kiln\")"));
    }
    const auto& p = m.model_version_policy();
    if (p.has_all()) {
      c.policy.kind = VersionPolicy::Kind::kAll;
    } else if (p.has_specific()) {
      c.policy.kind = VersionPolicy::Kind::kSpecific;
      c.policy.versions.assign(p.specific().versions().begin(), p.specific().versions().end());
    } else if (p.has_latest()) {
      c.policy.latest = p.latest().num_versions() == 0 ? 1 : p.latest().num_versions();
    }
    for (const auto& [label, version] : m.version_labels()) c.labels[label] = version;
    // Versions are directory numbers, as in YAML: never negative.
    for (int64_t v : c.policy.versions) {
      if (v < 0) {
        return absl::InvalidArgumentError(
            StrCat("model '", c.name, "': specific version ", v, "; a version is a number >= 0"));
      }
    }
    for (const auto& [label, version] : c.labels) {
      if (version < 0) {
        return absl::InvalidArgumentError(StrCat("model '", c.name, "': label '", label,
                                                 "' names version ", version,
                                                 "; a version is a number >= 0"));
      }
    }
    out.models.push_back(std::move(c));
  }
  return out;
}

absl::Status Bad(const YAML::Node& node, std::string_view what) {
  return absl::InvalidArgumentError(StrCat("model config line ", node.Mark().line + 1, ": ", what));
}

absl::StatusOr<int64_t> Version(const YAML::Node& node) {
  int64_t v;
  if (!node.IsScalar() || !YAML::convert<int64_t>::decode(node, v) || v < 0) {
    return Bad(node, "a version is a number >= 0");
  }
  return v;
}

absl::StatusOr<double> Number(const YAML::Node& node, std::string_view what) {
  double v;
  if (!node.IsScalar() || !YAML::convert<double>::decode(node, v) || !std::isfinite(v)) {
    return Bad(node, StrCat(what, " is a number"));
  }
  return v;
}

absl::StatusOr<int64_t> Integer(const YAML::Node& node, std::string_view what) {
  int64_t v;
  if (!node.IsScalar() || !YAML::convert<int64_t>::decode(node, v)) {
    return Bad(node, StrCat(what, " is a whole number"));
  }
  return v;
}

// Errors of the traffic and rollback sections name the model as well as the line.
class ModelErrors {
 public:
  explicit ModelErrors(const YAML::Node& model)
      : prefix_(StrCat("model '", model["name"] ? model["name"].Scalar() : "", "': ")) {}
  absl::Status operator()(const YAML::Node& node, std::string_view what) const {
    return Bad(node, StrCat(prefix_, what));
  }
  std::string What(std::string_view what) const { return StrCat(prefix_, what); }

 private:
  std::string prefix_;
};

absl::StatusOr<TrafficConfig> ParseTraffic(const ModelErrors& bad, const YAML::Node& node) {
  if (!node.IsMap()) return bad(node, "traffic is a map {split, sticky_header}");
  TrafficConfig t;
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (key == "split") {
      if (!v.IsMap() || v.size() == 0) {
        return bad(v, "traffic split maps labels or version numbers to weights");
      }
      for (const auto& w : v) {
        const std::string split_key = w.first.Scalar();
        const std::string what = StrCat("traffic split weight of '", split_key, "'");
        KILN_ASSIGN_OR_RETURN(double weight, Number(w.second, bad.What(what)));
        if (!(weight > 0)) return bad(w.second, StrCat(what, " must be > 0, not ", weight));
        if (!t.split.emplace(split_key, weight).second) {
          return bad(w.first, StrCat("traffic split key '", split_key, "' appears twice"));
        }
      }
    } else if (key == "sticky_header") {
      if (!v.IsScalar()) return bad(v, "sticky_header is a header name");
      t.sticky_header = v.Scalar();
      std::transform(t.sticky_header.begin(), t.sticky_header.end(), t.sticky_header.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      const bool token =
          !t.sticky_header.empty() &&
          std::all_of(t.sticky_header.begin(), t.sticky_header.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
          });
      if (!token) {
        return bad(v, StrCat("sticky_header '", v.Scalar(),
                             "' is not a header name (letters, digits, '-', '_')"));
      }
    } else {
      return bad(kv.first, StrCat("unknown traffic key '", key, "'; keys: split, sticky_header"));
    }
  }
  if (t.split.empty()) return bad(node, "traffic needs a split");
  return t;
}

absl::StatusOr<RollbackConfig> ParseRollback(const ModelErrors& bad, const YAML::Node& node) {
  if (!node.IsMap()) return bad(node, "rollback is a map {canary, stable, ...}");
  RollbackConfig r;
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    const std::string what = StrCat("rollback ", key);
    if (key == "canary" || key == "stable" || key == "webhook") {
      if (!v.IsScalar()) return bad(v, StrCat(what, " is a string"));
      (key == "canary" ? r.canary : key == "stable" ? r.stable : r.webhook) = v.Scalar();
    } else if (key == "window_seconds") {
      KILN_ASSIGN_OR_RETURN(r.window_seconds, Integer(v, bad.What(what)));
      if (r.window_seconds < 1 || r.window_seconds > 86400) {
        return bad(v, StrCat(what, " is 1..86400"));
      }
    } else if (key == "min_requests") {
      KILN_ASSIGN_OR_RETURN(r.min_requests, Integer(v, bad.What(what)));
      if (r.min_requests < 1) return bad(v, StrCat(what, " is >= 1"));
    } else if (key == "max_error_rate_increase") {
      KILN_ASSIGN_OR_RETURN(r.max_error_rate_increase, Number(v, bad.What(what)));
      if (r.max_error_rate_increase < 0 || r.max_error_rate_increase > 1) {
        return bad(v, StrCat(what, " is 0..1 (a difference of error rates)"));
      }
    } else if (key == "max_p99_latency_ratio") {
      KILN_ASSIGN_OR_RETURN(r.max_p99_latency_ratio, Number(v, bad.What(what)));
      if (!(r.max_p99_latency_ratio > 0)) return bad(v, StrCat(what, " is > 0"));
    } else {
      return bad(kv.first, StrCat("unknown rollback key '", key,
                                  "'; keys: canary, stable, window_seconds, min_requests, "
                                  "max_error_rate_increase, max_p99_latency_ratio, webhook"));
    }
  }
  return r;
}

absl::StatusOr<ServerConfig> FromYaml(std::string_view text) {
  ServerConfig out;
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    if (!root.IsMap() || !root["models"] || !root["models"].IsSequence()) {
      return absl::InvalidArgumentError(
          "model config: expected `models:` with a list of {name, base_path, ...} (or TF "
          "Serving's model_config_list text proto)");
    }
    for (const auto& key : root) {
      if (key.first.Scalar() != "models") {
        return Bad(key.first, StrCat("unknown key '", key.first.Scalar(), "'; keys: models"));
      }
    }
    for (const YAML::Node& m : root["models"]) {
      if (!m.IsMap()) return Bad(m, "each model is a map {name, base_path, ...}");
      ModelConfig c;
      for (const auto& kv : m) {
        const std::string key = kv.first.Scalar();
        const YAML::Node& v = kv.second;
        if (key == "name") {
          c.name = v.Scalar();
        } else if (key == "base_path") {
          c.base_path = v.Scalar();
        } else if (key == "version_policy") {
          if (v.IsScalar() && v.Scalar() == "all") {
            c.policy.kind = VersionPolicy::Kind::kAll;
          } else if (v.IsMap() && v.size() == 1 && v["latest"]) {
            KILN_ASSIGN_OR_RETURN(c.policy.latest, Version(v["latest"]));
            if (c.policy.latest < 1) return Bad(v, "latest: serves at least 1 version");
          } else if (v.IsMap() && v.size() == 1 && v["specific"] && v["specific"].IsSequence()) {
            c.policy.kind = VersionPolicy::Kind::kSpecific;
            for (const YAML::Node& n : v["specific"]) {
              KILN_ASSIGN_OR_RETURN(int64_t version, Version(n));
              c.policy.versions.push_back(version);
            }
          } else {
            return Bad(v, "version_policy is {latest: N}, all, or {specific: [versions]}");
          }
        } else if (key == "version_labels") {
          if (!v.IsMap()) return Bad(v, "version_labels maps label names to versions");
          for (const auto& l : v) {
            KILN_ASSIGN_OR_RETURN(c.labels[l.first.Scalar()], Version(l.second));
          }
        } else if (key == "traffic") {
          KILN_ASSIGN_OR_RETURN(c.traffic, ParseTraffic(ModelErrors(m), v));
        } else if (key == "rollback") {
          KILN_ASSIGN_OR_RETURN(c.rollback, ParseRollback(ModelErrors(m), v));
        } else {
          return Bad(kv.first, StrCat("unknown model key '", key,
                                      "'; keys: name, base_path, version_policy, version_labels, "
                                      "traffic, rollback"));
        }
      }
      out.models.push_back(std::move(c));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("model config: ", e.what()));
  }
  return out;
}

absl::Status CheckTraffic(const ModelConfig& c) {
  if (c.rollback && !c.traffic) {
    return absl::InvalidArgumentError(
        StrCat("model '", c.name, "': rollback needs a traffic split (traffic: {split: ...})"));
  }
  if (!c.traffic) return absl::OkStatus();
  for (const auto& [key, weight] : c.traffic->split) {
    if (!(weight > 0)) {
      return absl::InvalidArgumentError(StrCat("model '", c.name, "': traffic split weight of '",
                                               key, "' must be > 0, not ", weight));
    }
    KILN_ASSIGN_OR_RETURN(int64_t version, SplitKeyVersion(c, key));
    if (c.policy.kind == VersionPolicy::Kind::kSpecific &&
        !std::binary_search(c.policy.versions.begin(), c.policy.versions.end(), version)) {
      return absl::InvalidArgumentError(StrCat(
          "model '", c.name, "': traffic split key '", key, "' names version ", version,
          ", which the version policy does not serve (", StrJoin(c.policy.versions, ", "), ")"));
    }
  }
  if (!c.rollback) return absl::OkStatus();
  const RollbackConfig& r = *c.rollback;
  const std::string prefix = StrCat("model '", c.name, "': rollback ");
  if (r.canary.empty() || r.stable.empty()) {
    return absl::InvalidArgumentError(StrCat(prefix, "needs both canary and stable"));
  }
  if (r.canary == r.stable) {
    return absl::InvalidArgumentError(
        StrCat(prefix, "canary and stable are the same key '", r.canary, "'"));
  }
  for (const std::string* side : {&r.canary, &r.stable}) {
    if (!c.traffic->split.count(*side)) {
      return absl::InvalidArgumentError(StrCat(prefix,
                                               (side == &r.canary ? "canary '" : "stable '"), *side,
                                               "' is not a key of the traffic split"));
    }
  }
  if (c.traffic->split.size() != 2) {
    return absl::InvalidArgumentError(StrCat(
        prefix, "needs a traffic split of exactly its canary and stable keys; the split has ",
        c.traffic->split.size(), " keys"));
  }
  if (r.window_seconds < 1 || r.window_seconds > 86400 || r.min_requests < 1 ||
      r.max_error_rate_increase < 0 || r.max_error_rate_increase > 1 ||
      r.max_p99_latency_ratio < 0) {
    return absl::InvalidArgumentError(StrCat(prefix, "has a value out of bounds"));
  }
  if (!r.webhook.empty()) {
    auto url = ParseHttpUrl(r.webhook);
    if (!url.ok()) {
      return absl::InvalidArgumentError(StrCat(prefix, "webhook: ", url.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::Status Check(ServerConfig* config) {
  std::set<std::string> names;
  for (ModelConfig& c : config->models) {
    KILN_RETURN_IF_ERROR(ValidateName("model name", c.name));
    if (!names.insert(c.name).second) {
      return absl::InvalidArgumentError(StrCat("model '", c.name, "' is configured twice"));
    }
    if (c.base_path.empty()) {
      return absl::InvalidArgumentError(StrCat("model '", c.name, "' has no base_path"));
    }
    std::vector<int64_t>& v = c.policy.versions;
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    if (c.policy.kind == VersionPolicy::Kind::kSpecific && v.empty()) {
      return absl::InvalidArgumentError(
          StrCat("model '", c.name, "': a specific version policy lists no versions"));
    }
    for (const auto& [label, version] : c.labels) {
      KILN_RETURN_IF_ERROR(ValidateName("label", label));
      if (c.policy.kind == VersionPolicy::Kind::kSpecific &&
          !std::binary_search(v.begin(), v.end(), version)) {
        return absl::InvalidArgumentError(
            StrCat("model '", c.name, "': label '", label, "' names version ", version,
                   ", which the version policy does not serve (", StrJoin(v, ", "), ")"));
      }
    }
    KILN_RETURN_IF_ERROR(CheckTraffic(c));
  }
  return absl::OkStatus();
}

std::vector<std::string> LabelNames(const ModelConfig& model) {
  std::vector<std::string> names;
  for (const auto& [label, version] : model.labels) names.push_back(label);
  if (names.empty()) names.push_back("none");
  return names;
}

}  // namespace

std::vector<int64_t> VersionPolicy::Select(std::vector<int64_t> found) const {
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  switch (kind) {
    case Kind::kAll:
      return found;
    case Kind::kLatest:
      if (static_cast<int64_t>(found.size()) > latest) {
        found.erase(found.begin(), found.end() - latest);
      }
      return found;
    case Kind::kSpecific: {
      std::vector<int64_t> out;
      std::set_intersection(found.begin(), found.end(), versions.begin(), versions.end(),
                            std::back_inserter(out));
      return out;
    }
  }
  return found;
}

absl::StatusOr<int64_t> SplitKeyVersion(const ModelConfig& model, const std::string& key) {
  if (auto it = model.labels.find(key); it != model.labels.end()) return it->second;
  int64_t version = 0;
  const char* end = key.data() + key.size();
  auto [ptr, ec] = std::from_chars(key.data(), end, version);
  if (key.empty() || ec != std::errc() || ptr != end || version < 0) {
    return absl::InvalidArgumentError(StrCat(
        "model '", model.name, "': traffic split key '", key, "' is neither a label of the model (",
        StrJoin(LabelNames(model), ", "), ") nor a version number"));
  }
  return version;
}

absl::Status ValidateName(std::string_view what, std::string_view name) {
  const bool ok =
      !name.empty() && name.size() <= 128 && name.front() != '.' &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      StrCat(what, " '", name,
             "' is not 1-128 characters of letters, digits, '_', '-', '.' (not "
             "starting with '.')"));
}

absl::StatusOr<ServerConfig> ParseServerConfig(std::string_view text) {
  KILN_ASSIGN_OR_RETURN(ServerConfig c,
                        LooksLikeTextProto(text) ? FromTextProto(text) : FromYaml(text));
  KILN_RETURN_IF_ERROR(Check(&c));
  return c;
}

}  // namespace kiln::serving
