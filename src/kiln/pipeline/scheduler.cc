#include "kiln/pipeline/scheduler.h"

#include <algorithm>
#include <cctype>

#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "nlohmann/json.hpp"

namespace kiln::pipeline {
namespace {

std::string UtcIso(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

bool ParseIso(const nlohmann::json& j, std::optional<absl::Time>* out) {
  if (j.is_null()) return true;
  if (!j.is_string()) return false;
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, j.get<std::string>(), &t, &err)) return false;
  *out = t;
  return true;
}

}  // namespace

std::string ScheduleStateJson(const ScheduleState& s) {
  nlohmann::json j;
  j["last_fire"] = s.last_fire ? nlohmann::json(UtcIso(*s.last_fire)) : nlohmann::json();
  j["newest_span"] = s.newest_span ? nlohmann::json(*s.newest_span) : nlohmann::json();
  j["catch_up"] = s.catch_up;
  if (!s.last_run_id.empty()) {
    j["last_run"] = {
        {"run_id", s.last_run_id},
        {"trigger", s.last_run_trigger},
        {"started",
         s.last_run_started ? nlohmann::json(UtcIso(*s.last_run_started)) : nlohmann::json()},
        {"exit_code",
         s.last_run_exit_code >= 0 ? nlohmann::json(s.last_run_exit_code) : nlohmann::json()},
    };
  }
  return j.dump(2) + "\n";
}

absl::StatusOr<ScheduleState> ReadScheduleState(Env* env, const std::string& path) {
  ScheduleState s;
  if (!env->FileExists(path)) return s;
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(env, path));
  auto bad = [&](std::string_view what) {
    return absl::DataLossError(
        StrCat(path, " is not a schedule state (", what, "); delete it to start afresh"));
  };
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return bad("not a JSON object");
  if (j.contains("last_fire") && !ParseIso(j["last_fire"], &s.last_fire)) {
    return bad("last_fire is an RFC 3339 time such as 2024-03-10T07:00:00+00:00");
  }
  if (j.contains("newest_span") && !j["newest_span"].is_null()) {
    if (!j["newest_span"].is_number_integer()) return bad("newest_span is a whole number");
    s.newest_span = j["newest_span"].get<int64_t>();
  }
  if (j.contains("catch_up")) {
    if (!j["catch_up"].is_boolean()) return bad("catch_up is true or false");
    s.catch_up = j["catch_up"].get<bool>();
  }
  if (j.contains("last_run") && j["last_run"].is_object()) {
    const nlohmann::json& r = j["last_run"];
    if (r.contains("run_id") && r["run_id"].is_string()) s.last_run_id = r["run_id"];
    if (r.contains("trigger") && r["trigger"].is_string()) s.last_run_trigger = r["trigger"];
    if (r.contains("started")) ParseIso(r["started"], &s.last_run_started);
    if (r.contains("exit_code") && r["exit_code"].is_number_integer()) {
      s.last_run_exit_code = r["exit_code"].get<int>();
    }
  }
  return s;
}

absl::Status WriteScheduleState(Env* env, const std::string& path, const ScheduleState& state) {
  return WriteFileAtomically(env, path, ScheduleStateJson(state));
}

CronCheck CheckCron(const CronExpr& cron, const absl::TimeZone& zone, absl::Time last_fire,
                    absl::Time window_start, absl::Time now) {
  CronCheck c;
  c.handled_through = last_fire;
  const absl::Time ws = std::min(std::max(last_fire, window_start), now);
  for (absl::Time t = cron.Next(last_fire, zone); t <= ws; t = cron.Next(t, zone)) {
    if (c.missed == CronCheck::kMaxCounted) {  // too many to count: a long time down
      c.last_missed.reset();
      c.handled_through = ws;
      break;
    }
    ++c.missed;
    if (!c.first_missed) c.first_missed = t;
    c.last_missed = t;
    c.handled_through = t;
  }
  for (absl::Time t = cron.Next(ws, zone); t <= now; t = cron.Next(t, zone)) {
    c.due = t;
    c.handled_through = t;
  }
  c.next = cron.Next(now, zone);
  return c;
}

absl::StatusOr<std::map<int64_t, std::string>> SpanWatcher::List() const {
  std::map<int64_t, std::string> spans;
  const std::string dir = Dirname(pattern_);
  const std::string base = Basename(pattern_);
  const size_t at = base.find("{SPAN}");
  const std::string prefix = base.substr(0, at), suffix = base.substr(at + 6);
  if (!env_->IsDirectory(dir)) return spans;
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(dir));
  for (const std::string& name : names) {
    if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix)) {
      continue;
    }
    const std::string digits =
        name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char ch) {
          return std::isdigit(static_cast<unsigned char>(ch));
        })) {
      continue;
    }
    const std::string path = JoinPath(dir, name);
    if (env_->IsDirectory(path)) spans.emplace(std::stoll(digits), path);
  }
  return spans;
}

absl::StatusOr<std::string> SpanWatcher::Signature(const std::string& dir) const {
  std::string out;
  // Depth-first, names sorted; bounded depth so a symlink loop cannot recurse forever.
  struct Frame {
    std::string path, rel;
    int depth;
  };
  std::vector<Frame> stack = {{dir, "", 0}};
  while (!stack.empty()) {
    Frame f = std::move(stack.back());
    stack.pop_back();
    KILN_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(f.path));
    for (auto it = names.rbegin(); it != names.rend(); ++it) {
      const std::string path = JoinPath(f.path, *it);
      const std::string rel = f.rel.empty() ? *it : JoinPath(f.rel, *it);
      if (env_->IsDirectory(path)) {
        StrAppend(&out, "d ", rel, "\n");
        if (f.depth < 32) stack.push_back({path, rel, f.depth + 1});
      } else {
        auto size = env_->FileSize(path);
        StrAppend(&out, "f ", rel, " ", size.ok() ? static_cast<int64_t>(*size) : -1, "\n");
      }
    }
  }
  return out;
}

absl::StatusOr<std::optional<int64_t>> SpanWatcher::Poll(std::optional<int64_t> seen) {
  KILN_ASSIGN_OR_RETURN(auto spans, List());
  if (spans.empty() || (seen && spans.rbegin()->first <= *seen)) {
    candidate_ = -1;
    return std::nullopt;
  }
  const auto& [span, dir] = *spans.rbegin();
  KILN_ASSIGN_OR_RETURN(std::string signature, Signature(dir));
  if (span == candidate_ && !signature.empty() && signature == signature_) {
    candidate_ = -1;
    return span;
  }
  candidate_ = span;
  signature_ = std::move(signature);
  return std::nullopt;
}

}  // namespace kiln::pipeline
