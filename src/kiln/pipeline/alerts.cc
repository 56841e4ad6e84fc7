#include "kiln/pipeline/alerts.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "kiln/base/str.h"

namespace kiln::pipeline {
namespace {

using Json = nlohmann::json;

AlertEvent Event(const RunResult& r, std::string event, const ComponentResult* c, std::string text,
                 Json details = Json::object()) {
  AlertEvent e;
  e.event = std::move(event);
  e.component = c != nullptr ? c->name : "";
  e.text = StrCat("kiln: pipeline ", r.pipeline, ", run ", r.run_id, ": ", text);
  e.document = {{"text", e.text},
                {"event", e.event},
                {"pipeline", r.pipeline},
                {"run", r.run_id},
                {"run_dir", r.run_dir},
                {"component", e.component},
                {"details", std::move(details)}};
  return e;
}

std::string WhereToLook(const ComponentResult& c) {
  return c.log.empty() ? "" : StrCat(" (log: ", c.log, ")");
}

// Appends one line to `path` with a single write (O_APPEND: lines of concurrent writers
// do not interleave).
absl::Status AppendLine(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return absl::UnavailableError(StrCat(path, ": ", std::strerror(errno)));
  const std::string data = line + "\n";
  const ssize_t n = ::write(fd, data.data(), data.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(data.size())) {
    return absl::UnavailableError(StrCat(path, ": ", n < 0 ? std::strerror(err) : "short write"));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<AlertEvent> AlertEventsOf(const Pipeline& pipeline, const RunResult& result) {
  std::vector<AlertEvent> events;
  for (const ComponentResult& c : result.components) {
    const int i = pipeline.Find(c.name);
    const Component* spec = i >= 0 ? &pipeline.components[static_cast<size_t>(i)] : nullptr;
    // A gate stops every run it stops, from the cache too: each of them is reported.
    if (c.findings && (c.state == ComponentState::kRan || c.state == ComponentState::kCached)) {
      if (c.kind == "validate" && !c.drift.empty()) {
        events.push_back(Event(result, "drift", &c,
                               StrCat(c.name, " found drift in ", StrJoin(c.drift, ", "), ": ",
                                      c.note, WhereToLook(c)),
                               {{"features", c.drift}, {"outputs", c.outputs}}));
      } else if (c.kind == "validate") {
        events.push_back(Event(result, "anomalies", &c,
                               StrCat(c.name,
                                      " found ERROR anomalies in the data; the run "
                                      "stopped before training",
                                      WhereToLook(c)),
                               {{"outputs", c.outputs}}));
      } else if (c.kind == "evaluate" || c.kind == "infra_validate") {
        events.push_back(
            Event(result, "not_blessed", &c,
                  StrCat(c.name, ": the model is not blessed; it is not pushed", WhereToLook(c)),
                  {{"outputs", c.outputs}}));
      } else {
        events.push_back(
            Event(result, "findings", &c, StrCat(c.name, " exited with findings", WhereToLook(c))));
      }
    }
    if (c.state == ComponentState::kHeld) {
      events.push_back(
          Event(result, "held", &c, StrCat(c.name, " ", c.note), {{"held_by", result.held_by}}));
    }
    if (c.kind == "push" && c.state == ComponentState::kRan && c.exit_code == 0) {
      std::string to;
      if (spec != nullptr) {
        if (auto it = spec->args.find("to"); it != spec->args.end() && !it->second.values.empty()) {
          to = it->second.values.front();
        }
      }
      events.push_back(
          Event(result, "pushed", &c,
                StrCat(c.name, " pushed a new model version", to.empty() ? "" : StrCat(" to ", to)),
                {{"to", to}}));
    }
  }
  if (result.state == "failed" || result.state == "interrupted") {
    std::vector<std::string> failed;
    const ComponentResult* first = nullptr;
    for (const ComponentResult& c : result.components) {
      if (c.state != ComponentState::kFailed) continue;
      if (first == nullptr) first = &c;
      failed.push_back(StrCat(c.name, ": ", c.note));
    }
    const std::string why = result.state == "interrupted"
                                ? StrCat("interrupted by signal ", result.signal)
                                : StrCat("failed (", StrJoin(failed, "; "), ")");
    events.push_back(Event(result, "run_failed", first,
                           StrCat(why, first != nullptr ? WhereToLook(*first) : ""),
                           {{"failed_components", failed}}));
  }
  return events;
}

int SendAlerts(const Pipeline& pipeline, const std::vector<AlertEvent>& events, const PostFn& post,
               FILE* warnings) {
  int failures = 0;
  for (const AlertSink& sink : pipeline.alerts) {
    for (const AlertEvent& e : events) {
      const std::string body = e.document.dump();
      absl::Status st;
      if (!sink.log.empty()) {
        st = AppendLine(sink.log, body);
      } else {
        double delay = sink.backoff_seconds;
        for (int attempt = 0;; ++attempt) {
          st = post(sink.webhook, body,
                    std::chrono::milliseconds(static_cast<int64_t>(sink.timeout_seconds * 1000)));
          const bool retryable = absl::IsUnavailable(st) || absl::IsDeadlineExceeded(st);
          if (st.ok() || !retryable || attempt >= sink.retries) break;
          std::this_thread::sleep_for(std::chrono::duration<double>(delay));
          delay *= 2;
        }
      }
      if (!st.ok()) {
        ++failures;
        if (warnings != nullptr) {
          std::fprintf(warnings, "kiln run: warning: alert %s not delivered to %s: %s\n",
                       e.event.c_str(), sink.log.empty() ? sink.webhook.c_str() : sink.log.c_str(),
                       std::string(st.message()).c_str());
        }
      }
    }
  }
  return failures;
}

}  // namespace kiln::pipeline
