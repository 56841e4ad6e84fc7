// The decisions of `kiln schedule`, apart from its loop so they can be tested: which cron
// fire times are due or missed, which span directory is new and complete, and the state
// kept across restarts (ROOT/schedule_state.json). Thread-compatible.
#ifndef KILN_PIPELINE_SCHEDULER_H_
#define KILN_PIPELINE_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kiln/base/env.h"
#include "kiln/pipeline/cron.h"

namespace kiln::pipeline {

// A fire time counts as on time (due) up to this long after it; older ones not handled
// are missed. One minute: cron's resolution.
inline constexpr absl::Duration kFireGrace = absl::Seconds(60);

// ROOT/schedule_state.json, written atomically after every decision:
//   {"last_fire": "2024-03-10T07:00:00+00:00", "newest_span": 12, "catch_up": false,
//    "last_run": {"run_id": ..., "trigger": ..., "started": ..., "exit_code": 0}}
struct ScheduleState {
  // The newest cron fire time handled (run, skipped or counted as missed).
  std::optional<absl::Time> last_fire;
  // The newest span that started a run or was present when the scheduler first started.
  std::optional<int64_t> newest_span;
  // missed: run_once: fire times were missed and their one run has not started yet.
  bool catch_up = false;
  std::string last_run_id;  // "" before the first run
  std::string last_run_trigger;
  std::optional<absl::Time> last_run_started;
  int last_run_exit_code = -1;  // -1: still running or none
};

std::string ScheduleStateJson(const ScheduleState& state);
// A missing file is an empty state. Errors: kDataLoss for a file that is not such JSON.
absl::StatusOr<ScheduleState> ReadScheduleState(Env* env, const std::string& path);
absl::Status WriteScheduleState(Env* env, const std::string& path, const ScheduleState& state);

// Fire times after `last_fire` and up to `now`, split at `window_start`: those after it
// are on time, those at or before it missed.
struct CronCheck {
  std::optional<absl::Time> due;  // the newest on-time fire time
  int missed = 0;                 // counted up to kMaxCounted
  std::optional<absl::Time> first_missed;
  std::optional<absl::Time> last_missed;  // unset when more than kMaxCounted
  absl::Time handled_through;             // the new last_fire
  absl::Time next;                        // the first fire time after `now`
  static constexpr int kMaxCounted = 10000;
};
CronCheck CheckCron(const CronExpr& cron, const absl::TimeZone& zone, absl::Time last_fire,
                    absl::Time window_start, absl::Time now);

// Watches a span directory pattern ("/data/span-{SPAN}", {SPAN} in the last component:
// digits, as `kiln import` reads them) for a span newer than a given one whose directory
// is complete: non-empty, and the names and sizes of everything in it the same at two
// polls in a row (a writer still copying files changes them).
class SpanWatcher {
 public:
  SpanWatcher(Env* env, std::string pattern) : env_(env), pattern_(std::move(pattern)) {}

  // Every span directory present, by span. A missing parent directory is no spans.
  absl::StatusOr<std::map<int64_t, std::string>> List() const;

  // One poll: the newest span newer than `seen` when it is complete, else nullopt (a
  // newer span found incomplete is remembered for the next poll).
  absl::StatusOr<std::optional<int64_t>> Poll(std::optional<int64_t> seen);

  // The newest span a Poll saw but could not call complete yet (-1: none).
  int64_t pending() const { return candidate_; }

 private:
  // The names and sizes of everything under `dir`, sorted; "" for an empty directory.
  absl::StatusOr<std::string> Signature(const std::string& dir) const;

  Env* env_;
  std::string pattern_;
  int64_t candidate_ = -1;
  std::string signature_;
};

}  // namespace kiln::pipeline

#endif  // KILN_PIPELINE_SCHEDULER_H_
