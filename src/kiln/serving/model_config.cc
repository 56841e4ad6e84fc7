#include "kiln/serving/model_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "kiln/base/status.h"
#include "kiln/base/str.h"
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
        } else {
          return Bad(kv.first, StrCat("unknown model key '", key,
                                      "'; keys: name, base_path, version_policy, version_labels"));
        }
      }
      out.models.push_back(std::move(c));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("model config: ", e.what()));
  }
  return out;
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
  }
  return absl::OkStatus();
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
