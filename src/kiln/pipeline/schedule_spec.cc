#include "kiln/pipeline/schedule_spec.h"

#include <yaml-cpp/yaml.h>

#include <cmath>

#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::pipeline {

std::string_view MissedPolicyName(MissedPolicy p) {
  return p == MissedPolicy::kRunOnce ? "run_once" : "skip";
}

absl::StatusOr<ScheduleSpec> ParseScheduleSpec(const YAML::Node& node, const std::string& file,
                                               const std::string& dir) {
  auto bad = [&](const YAML::Node& n, std::string_view what) {
    return absl::InvalidArgumentError(StrCat(file, ":", n.Mark().line + 1, ": schedule", what));
  };
  ScheduleSpec s;
  if (!node.IsMap()) {
    return bad(node, " is a map {cron, timezone, new_span, poll_seconds, missed}");
  }
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    auto scalar = [&]() -> absl::StatusOr<std::string> {
      if (!v.IsScalar() || v.Scalar().empty())
        return bad(v, StrCat(".", key, " is a single value"));
      return v.Scalar();
    };
    if (key == "cron") {
      KILN_ASSIGN_OR_RETURN(std::string text, scalar());
      auto cron = CronExpr::Parse(text);
      if (!cron.ok()) return bad(v, StrCat(".cron: ", cron.status().message()));
      s.cron = *std::move(cron);
    } else if (key == "timezone") {
      KILN_ASSIGN_OR_RETURN(s.timezone, scalar());
      auto zone = LoadZone(s.timezone);
      if (!zone.ok()) return bad(v, StrCat(".timezone: ", zone.status().message()));
      s.zone = *zone;
    } else if (key == "new_span") {
      KILN_ASSIGN_OR_RETURN(std::string pattern, scalar());
      const size_t at = pattern.find("{SPAN}");
      const size_t slash = pattern.find_last_of('/');
      if (at == std::string::npos || pattern.find("{SPAN}", at + 1) != std::string::npos ||
          (slash != std::string::npos && at < slash)) {
        return bad(v, StrCat(".new_span: '", pattern,
                             "' names span directories with one {SPAN} in its last component "
                             "(data/span-{SPAN})"));
      }
      s.new_span = pattern.front() == '/' ? pattern : JoinPath(dir, pattern);
    } else if (key == "poll_seconds") {
      double x = 0;
      if (!v.IsScalar() || !YAML::convert<double>::decode(v, x) || !std::isfinite(x) || x < 0.05 ||
          x > 86400) {
        return bad(v, ".poll_seconds is a number of seconds in [0.05, 86400]");
      }
      s.poll_seconds = x;
    } else if (key == "missed") {
      KILN_ASSIGN_OR_RETURN(std::string policy, scalar());
      if (policy == "skip") {
        s.missed = MissedPolicy::kSkip;
      } else if (policy == "run_once") {
        s.missed = MissedPolicy::kRunOnce;
      } else {
        return bad(v, StrCat(".missed is skip or run_once, not '", policy, "'"));
      }
    } else {
      return bad(kv.first, StrCat(": unknown key '", key,
                                  "'; keys: cron, timezone, new_span, poll_seconds, missed"));
    }
  }
  if (!s.cron && s.new_span.empty()) {
    return bad(node, " needs cron: (times) or new_span: (a data trigger), or both");
  }
  return s;
}

}  // namespace kiln::pipeline
