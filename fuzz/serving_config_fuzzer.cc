// libFuzzer target: arbitrary bytes as kiln serve's configuration files, through both
// parsers: ParseServerConfig (--model_config_file: YAML with version policies, labels, and
// the traffic and rollback sections, or TF Serving's model_config_list text proto) and
// ParseBatchingParameters (--batching_parameters_file). A config that parses must satisfy
// what the parser promises (valid names, a traffic split of labels or versions with
// weights > 0, a rollback within bounds on a two-key split); written back as YAML it must
// parse to the same config. Batching options that parse must pass ValidateBatchingOptions
// and read back the same when written out. Errors are kInvalidArgument. Nothing may crash.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "kiln/base/str.h"
#include "kiln/serving/batcher.h"
#include "kiln/serving/model_config.h"

namespace {

namespace serving = kiln::serving;

void Require(bool ok) {
  if (!ok) std::abort();
}

bool Printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// `config` as the YAML form; empty when a string in it is one yaml-cpp cannot write back
// unchanged (control characters, non-ASCII).
std::string ToYaml(const serving::ServerConfig& config) {
  YAML::Emitter out;
  out.SetDoublePrecision(17);
  out << YAML::BeginMap << YAML::Key << "models" << YAML::Value << YAML::BeginSeq;
  for (const serving::ModelConfig& m : config.models) {
    if (!Printable(m.base_path)) return "";
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << YAML::DoubleQuoted << m.name;
    out << YAML::Key << "base_path" << YAML::Value << YAML::DoubleQuoted << m.base_path;
    out << YAML::Key << "version_policy" << YAML::Value;
    switch (m.policy.kind) {
      case serving::VersionPolicy::Kind::kAll:
        out << "all";
        break;
      case serving::VersionPolicy::Kind::kLatest:
        out << YAML::BeginMap << YAML::Key << "latest" << YAML::Value << m.policy.latest
            << YAML::EndMap;
        break;
      case serving::VersionPolicy::Kind::kSpecific:
        out << YAML::BeginMap << YAML::Key << "specific" << YAML::Value << YAML::Flow
            << m.policy.versions << YAML::EndMap;
        break;
    }
    out << YAML::Key << "version_labels" << YAML::Value << YAML::BeginMap;
    for (const auto& [label, version] : m.labels) {
      out << YAML::Key << YAML::DoubleQuoted << label << YAML::Value << version;
    }
    out << YAML::EndMap;
    if (m.traffic) {
      if (!Printable(m.traffic->sticky_header)) return "";
      out << YAML::Key << "traffic" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "split" << YAML::Value << YAML::BeginMap;
      for (const auto& [key, weight] : m.traffic->split) {
        if (!Printable(key)) return "";
        out << YAML::Key << YAML::DoubleQuoted << key << YAML::Value << weight;
      }
      out << YAML::EndMap;
      if (!m.traffic->sticky_header.empty()) {
        out << YAML::Key << "sticky_header" << YAML::Value << YAML::DoubleQuoted
            << m.traffic->sticky_header;
      }
      out << YAML::EndMap;
    }
    if (m.rollback) {
      const serving::RollbackConfig& r = *m.rollback;
      if (!Printable(r.canary) || !Printable(r.stable) || !Printable(r.webhook)) return "";
      out << YAML::Key << "rollback" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "canary" << YAML::Value << YAML::DoubleQuoted << r.canary;
      out << YAML::Key << "stable" << YAML::Value << YAML::DoubleQuoted << r.stable;
      out << YAML::Key << "window_seconds" << YAML::Value << r.window_seconds;
      out << YAML::Key << "min_requests" << YAML::Value << r.min_requests;
      out << YAML::Key << "max_error_rate_increase" << YAML::Value << r.max_error_rate_increase;
      if (r.max_p99_latency_ratio > 0) {
        out << YAML::Key << "max_p99_latency_ratio" << YAML::Value << r.max_p99_latency_ratio;
      }
      if (!r.webhook.empty()) {
        out << YAML::Key << "webhook" << YAML::Value << YAML::DoubleQuoted << r.webhook;
      }
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  if (!out.good()) return "";
  return out.c_str();
}

void CheckServerConfig(const serving::ServerConfig& config) {
  std::set<std::string> names;
  for (const serving::ModelConfig& m : config.models) {
    Require(serving::ValidateName("model name", m.name).ok());
    Require(names.insert(m.name).second);
    Require(!m.base_path.empty());
    const std::vector<int64_t>& v = m.policy.versions;
    Require(std::is_sorted(v.begin(), v.end()) &&
            std::adjacent_find(v.begin(), v.end()) == v.end());
    if (m.policy.kind == serving::VersionPolicy::Kind::kSpecific) Require(!v.empty());
    if (m.policy.kind == serving::VersionPolicy::Kind::kLatest) Require(m.policy.latest >= 1);
    for (const auto& [label, version] : m.labels) {
      Require(serving::ValidateName("label", label).ok());
      if (m.policy.kind == serving::VersionPolicy::Kind::kSpecific) {
        Require(std::binary_search(v.begin(), v.end(), version));
      }
    }
    Require(!m.rollback || m.traffic);
    if (m.traffic) {
      Require(!m.traffic->split.empty());
      for (const auto& [key, weight] : m.traffic->split) {
        Require(weight > 0 && std::isfinite(weight));
        Require(serving::SplitKeyVersion(m, key).ok());
      }
      for (char c : m.traffic->sticky_header) Require(!(c >= 'A' && c <= 'Z'));
    }
    if (m.rollback) {
      const serving::RollbackConfig& r = *m.rollback;
      Require(r.canary != r.stable && m.traffic->split.size() == 2);
      Require(m.traffic->split.count(r.canary) && m.traffic->split.count(r.stable));
      Require(r.window_seconds >= 1 && r.window_seconds <= 86400 && r.min_requests >= 1);
      Require(r.max_error_rate_increase >= 0 && r.max_error_rate_increase <= 1);
      Require(r.max_p99_latency_ratio >= 0);
    }
  }
  // Written back as YAML, the same config.
  const std::string yaml = ToYaml(config);
  if (yaml.empty()) return;
  auto again = serving::ParseServerConfig(yaml);
  Require(again.ok() && *again == config);
}

std::string ToText(const serving::BatchingOptions& o) {
  std::string out = kiln::StrCat("max_batch_size { value: ", o.max_batch_size,
                                 " }\nbatch_timeout_micros: < value: ", o.batch_timeout_micros,
                                 " >\nmax_enqueued_batches {value:", o.max_enqueued_batches,
                                 "}\nnum_batch_threads { value: ", o.num_batch_threads, " }\n");
  if (!o.allowed_batch_sizes.empty()) {
    kiln::StrAppend(&out, "allowed_batch_sizes: [", kiln::StrJoin(o.allowed_batch_sizes, ", "),
                    "]\n");
  }
  kiln::StrAppend(
      &out, "pad_variable_length_inputs: ", o.pad_variable_length_inputs ? "true" : "false", "\n");
  return out;
}

void CheckBatching(const serving::BatchingOptions& o) {
  Require(serving::ValidateBatchingOptions(o).ok());
  auto again = serving::ParseBatchingParameters(ToText(o));
  Require(again.ok());
  Require(again->max_batch_size == o.max_batch_size &&
          again->batch_timeout_micros == o.batch_timeout_micros &&
          again->max_enqueued_batches == o.max_enqueued_batches &&
          again->num_batch_threads == o.num_batch_threads &&
          again->allowed_batch_sizes == o.allowed_batch_sizes &&
          again->pad_variable_length_inputs == o.pad_variable_length_inputs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = serving::ParseServerConfig(text);
  if (config.ok()) {
    CheckServerConfig(*config);
  } else {
    Require(config.status().code() == absl::StatusCode::kInvalidArgument);
  }
  auto batching = serving::ParseBatchingParameters(text);
  if (batching.ok()) {
    CheckBatching(*batching);
  } else {
    Require(batching.status().code() == absl::StatusCode::kInvalidArgument);
  }
  return 0;
}
