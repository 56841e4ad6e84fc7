// `kiln schedule PIPELINE.yaml`: a foreground daemon that runs a pipeline at cron times
// and/or when a new span directory appears, one run at a time, each run a child
// `kiln run` so that a crash of a run cannot take the scheduler down.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "kiln/base/env.h"
#include "kiln/base/hash.h"
#include "kiln/base/str.h"
#include "kiln/cli/command.h"
#include "kiln/cli/metadata_flags.h"
#include "kiln/cli/pipeline_catalog.h"
#include "kiln/pipeline/cron.h"
#include "kiln/pipeline/lock.h"
#include "kiln/pipeline/pipeline_spec.h"
#include "kiln/pipeline/schedule_spec.h"
#include "kiln/pipeline/scheduler.h"
#include "kiln/pipeline/signal_scope.h"
#include "kiln/pipeline/subprocess.h"

extern char** environ;

namespace kiln::cli {
namespace {

struct ScheduleFlags {
  std::string pipeline;
  bool once = false;
  int next = 0;
  std::string after;
  int max_runs = 0;
  MetadataFlags metadata;
};

// Waits up to `timeout`, until a signal arrives or `fd` (when >= 0) is readable.
void Wait(pipeline::SignalScope& signals, absl::Duration timeout, int fd = -1) {
  const double ms = std::ceil(absl::ToDoubleMilliseconds(timeout));
  signals.Wait(static_cast<int>(std::clamp(ms, 0.0, 60000.0)), fd);
}

class Scheduler {
 public:
  Scheduler(const pipeline::Pipeline& p, const ScheduleFlags& f, std::string metadata_url)
      : p_(p),
        s_(*p.schedule),
        f_(f),
        metadata_url_(std::move(metadata_url)),
        env_(Env::Default()),
        state_path_(JoinPath(p.root, "schedule_state.json")),
        watcher_(env_, s_.new_span) {}

  // The daemon's life; returns the exit code.
  int Main();

 private:
  std::string Iso(absl::Time t) const { return pipeline::FormatIsoTime(t, s_.zone); }
  void Log(std::string_view message) const {
    std::printf("%s kiln schedule: %.*s\n", Iso(absl::Now()).c_str(),
                static_cast<int>(message.size()), message.data());
    std::fflush(stdout);
  }
  absl::Status SaveState();
  void PrintPlan(absl::Time now) const;
  // Runs the pipeline once as a child `kiln run` under the run lock (held by the caller
  // in `lock`); returns its exit code (-1 when it could not start).
  int RunChild(std::unique_ptr<pipeline::PipelineLock> lock, const std::string& trigger);

  const pipeline::Pipeline& p_;
  const pipeline::ScheduleSpec& s_;
  const ScheduleFlags& f_;
  std::string metadata_url_;
  Env* env_;
  std::string state_path_;
  pipeline::SpanWatcher watcher_;
  pipeline::ScheduleState state_;
  std::string saved_;  // the state as last written
  pipeline::SignalScope signals_;
};

absl::Status Scheduler::SaveState() {
  const std::string json = pipeline::ScheduleStateJson(state_);
  if (json == saved_) return absl::OkStatus();
  KILN_RETURN_IF_ERROR(WriteFileAtomically(env_, state_path_, json));
  saved_ = json;
  return absl::OkStatus();
}

void Scheduler::PrintPlan(absl::Time now) const {
  std::printf("pipeline %s (%s): runs in %s/RUN_ID, one at a time\n", p_.name.c_str(),
              p_.file.c_str(), p_.root.c_str());
  if (s_.cron) {
    std::vector<std::string> next;
    absl::Time t = now;
    for (int i = 0; i < 3; ++i) next.push_back(Iso(t = s_.cron->Next(t, s_.zone)));
    std::printf("  cron \"%s\" in %s; next: %s\n", s_.cron->text().c_str(), s_.timezone.c_str(),
                StrJoin(next, ", ").c_str());
  }
  if (!s_.new_span.empty()) {
    std::printf("  new spans of %s, checked every %g s; newest seen: %s\n", s_.new_span.c_str(),
                s_.poll_seconds,
                state_.newest_span ? std::to_string(*state_.newest_span).c_str() : "none");
  }
  std::printf("  missed fire times: %s; state: %s\n",
              std::string(pipeline::MissedPolicyName(s_.missed)).c_str(), state_path_.c_str());
  std::fflush(stdout);
}

std::string NewRunId(absl::Time now) {
  const uint64_t r = Mix64(static_cast<uint64_t>(absl::ToUnixNanos(now)) ^
                           (static_cast<uint64_t>(getpid()) << 32));
  static const char kHex[] = "0123456789abcdef";
  std::string suffix;
  for (int i = 0; i < 4; ++i) suffix.push_back(kHex[(r >> (4 * i)) & 15]);
  return StrCat(absl::FormatTime("%Y%m%d-%H%M%S", now, absl::UTCTimeZone()), "-", suffix);
}

int Scheduler::RunChild(std::unique_ptr<pipeline::PipelineLock> lock, const std::string& trigger) {
  const absl::Time start = absl::Now();
  const std::string run_id = NewRunId(start);
  const std::string log_dir = JoinPath(p_.root, "schedule-logs");
  const std::string log = JoinPath(log_dir, StrCat(run_id, ".log"));
  pipeline::SpawnOptions o;
  o.executable = "/proc/self/exe";
  o.argv = {"kiln", "run", AbsolutePath(p_.file), "--run-id", run_id};
  if (!metadata_url_.empty()) {
    o.argv.push_back("--metadata");
    o.argv.push_back(metadata_url_);
  }
  for (char** e = environ; *e; ++e) {
    if (std::string_view(*e).rfind(StrCat(pipeline::kLockParentEnv, "="), 0) != 0) {
      o.env.push_back(*e);
    }
  }
  o.env.push_back(pipeline::PipelineLock::ChildEnv());
  o.log_path = log;
  state_.last_run_id = run_id;
  state_.last_run_trigger = trigger;
  state_.last_run_started = absl::FromUnixSeconds(absl::ToUnixSeconds(start));
  state_.last_run_exit_code = -1;
  absl::Status saved = SaveState();
  if (!saved.ok()) Log(StrCat("warning: ", saved.message()));
  absl::StatusOr<std::unique_ptr<pipeline::Subprocess>> child;
  if (absl::Status dirs = env_->CreateDirs(log_dir); !dirs.ok()) {
    child = dirs;
  } else {
    child = pipeline::Subprocess::Spawn(o);
  }
  if (!child.ok()) {
    Log(StrCat("run ", run_id, " (", trigger, ") could not start: ", child.status().message()));
    return -1;
  }
  pipeline::Subprocess& proc = **child;
  Log(StrCat("run ", run_id, " started (", trigger, "), pid ", proc.pid(), ", log ", log));
  int forwarded = 0;
  while (!proc.Poll()) {
    if (pipeline::SignalScope::count() > forwarded) {
      // First signal: kiln run stops its components (SIGTERM, then SIGKILL after a
      // grace period) and exits; a second one kills it at once.
      forwarded = pipeline::SignalScope::count();
      Log(StrCat(forwarded == 1 ? "stopping run " : "killing run ", run_id, " (signal ",
                 pipeline::SignalScope::last_signal(), ")"));
      proc.SignalGroup(forwarded == 1 ? SIGTERM : SIGKILL);
    }
    Wait(signals_, proc.wait_fd() >= 0 ? absl::Seconds(1) : absl::Milliseconds(100),
         proc.wait_fd());
  }
  const pipeline::ExitStatus& st = proc.status();
  const int code = st.signal ? 128 + st.signal : st.code;
  lock.reset();
  state_.last_run_exit_code = code;
  const char* what = code == 0    ? "succeeded"
                     : code == 3  ? "stopped by a gate"
                     : code > 128 ? "interrupted"
                                  : "failed";
  Log(StrCat("run ", run_id, " ended: exit ", code, " (", what, ") after ",
             absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(10))), "; ",
             JoinPath(JoinPath(p_.root, run_id), "run.json")));
  return code;
}

int Scheduler::Main() {
  auto daemon_lock = pipeline::PipelineLock::AcquireSchedule(p_.root, p_.name);
  if (!daemon_lock.ok()) return ReportError("schedule", daemon_lock.status());
  auto state = pipeline::ReadScheduleState(env_, state_path_);
  if (!state.ok()) return ReportError("schedule", state.status());
  state_ = *state;
  saved_ = env_->FileExists(state_path_) ? pipeline::ScheduleStateJson(state_) : "";
  const absl::Time start = absl::Now();
  // A first start counts nothing as missed; a fire time within the grace is on time.
  if (s_.cron && !state_.last_fire) state_.last_fire = start - pipeline::kFireGrace;
  if (!s_.new_span.empty() && !state_.newest_span) {
    auto spans = watcher_.List();
    if (!spans.ok()) return ReportError("schedule", spans.status());
    if (!spans->empty()) state_.newest_span = spans->rbegin()->first;
  }
  if (absl::Status s = SaveState(); !s.ok()) return ReportError("schedule", s);
  PrintPlan(start);

  int runs = 0;
  int exit_code = kExitOk;
  bool span_recheck = false;  // --once: a span seen once gets one more look
  absl::Time busy_until = absl::InfinitePast();
  std::string last_busy_log;
  while (!pipeline::SignalScope::last_signal()) {
    const absl::Time now = absl::Now();
    std::vector<std::string> triggers;
    std::optional<absl::Time> due;
    absl::Time wake = now + absl::Seconds(60);
    if (s_.cron) {
      const pipeline::CronCheck c =
          pipeline::CheckCron(*s_.cron, s_.zone, *state_.last_fire,
                              std::max(now - pipeline::kFireGrace, busy_until), now);
      if (c.missed > 0) {
        std::string when = c.missed == 1 ? Iso(*c.first_missed)
                                         : StrCat(Iso(*c.first_missed), " .. ",
                                                  c.last_missed ? Iso(*c.last_missed) : "now");
        const std::string count =
            c.missed >= pipeline::CronCheck::kMaxCounted ? StrCat(c.missed, "+") : StrCat(c.missed);
        const bool catch_up = s_.missed == pipeline::MissedPolicy::kRunOnce;
        Log(StrCat(
            "missed ", count, " fire time", c.missed == 1 ? "" : "s", " (", when, ")",
            catch_up ? "; one catch-up run (missed: run_once)" : "; skipped (missed: skip)"));
        if (catch_up) state_.catch_up = true;
      }
      state_.last_fire = c.handled_through;
      due = c.due;
      if (due) triggers.push_back(StrCat("cron ", Iso(*due)));
      wake = std::min(wake, c.next);
    }
    if (state_.catch_up) triggers.push_back("catch-up for missed fire times");
    std::optional<int64_t> span;
    if (!s_.new_span.empty()) {
      auto ready = watcher_.Poll(state_.newest_span);
      if (!ready.ok()) {
        Log(StrCat("warning: cannot list spans: ", ready.status().message()));
      } else if (*ready) {
        span = **ready;
        triggers.push_back(StrCat("span ", *span));
      }
      wake = std::min(wake, now + absl::Seconds(s_.poll_seconds));
    }
    bool ran = false;
    if (!triggers.empty()) {
      auto lock = pipeline::PipelineLock::AcquireRun(p_.root, p_.name);
      if (lock.ok()) {
        const bool owed = state_.catch_up;
        const auto seen = state_.newest_span;
        state_.catch_up = false;
        if (span) state_.newest_span = span;
        const int code = RunChild(*std::move(lock), StrJoin(triggers, ", "));
        if (code < 0) {  // never started: the span and the catch-up run are still owed
          state_.catch_up = owed;
          state_.newest_span = seen;
        }
        exit_code = code == 0 ? kExitOk : code < 0 ? kExitFailure : code;
        busy_until = absl::Now();
        ++runs;
        ran = true;
      } else {
        const bool catch_up = s_.missed == pipeline::MissedPolicy::kRunOnce;
        std::string msg = StrCat(StrJoin(triggers, ", "), ": ", lock.status().message());
        if (due) {
          StrAppend(&msg, catch_up ? "; fire time missed, a catch-up run follows when it is free"
                                   : "; fire time missed, skipped (missed: skip)");
          if (catch_up) state_.catch_up = true;
        }
        if (span) StrAppend(&msg, "; span ", *span, " stays new");
        // Once per holder, not at every poll while someone else's run goes on.
        if (msg != last_busy_log) Log(msg);
        last_busy_log = std::move(msg);
        if (state_.catch_up) wake = std::min(wake, now + absl::Seconds(s_.poll_seconds));
      }
    }
    if (absl::Status s = SaveState(); !s.ok()) {
      Log(StrCat("error: ", s.message()));
      return kExitFailure;
    }
    if (f_.max_runs > 0 && runs >= f_.max_runs) {
      Log(StrCat("stopping after ", runs, " run", runs == 1 ? "" : "s", " (--max-runs)"));
      return kExitOk;
    }
    if (pipeline::SignalScope::last_signal()) break;
    if (ran) {
      if (f_.once) return exit_code;
      continue;  // what came due during the run is handled now
    }
    if (f_.once) {
      // A new span is complete once it looked the same twice: give it its second look.
      if (!span_recheck && watcher_.pending() >= 0) {
        span_recheck = true;
        Wait(signals_, absl::Seconds(s_.poll_seconds));
        continue;
      }
      if (triggers.empty()) Log("nothing due (--once)");
      return kExitOk;
    }
    Wait(signals_, wake - absl::Now());
  }
  Log(StrCat("stopped by signal ", pipeline::SignalScope::last_signal()));
  return kExitOk;
}

int RunSchedule(const ScheduleFlags& f, CLI::App& root) {
  const pipeline::FlagCatalog catalog = PipelineFlagCatalog(root);
  auto p = pipeline::LoadPipeline(Env::Default(), f.pipeline, &catalog);
  if (!p.ok()) return ReportError("schedule", p.status());
  if (!p->schedule) {
    return ReportError("schedule", absl::InvalidArgumentError(
                                       StrCat(f.pipeline,
                                              " has no schedule: section (cron:, new_span:); "
                                              "see kiln schedule --help")));
  }
  if (f.next > 0) {
    if (!p->schedule->cron) {
      return ReportError("schedule", absl::InvalidArgumentError(
                                         StrCat("--next: ", f.pipeline, " has no schedule.cron")));
    }
    absl::Time t = absl::Now();
    if (!f.after.empty()) {
      std::string err;
      if (!absl::ParseTime(absl::RFC3339_full, f.after, &t, &err)) {
        return ReportError("schedule",
                           absl::InvalidArgumentError(StrCat("--after '", f.after,
                                                             "' is not an RFC 3339 time such as "
                                                             "2024-03-10T01:00:00-05:00: ",
                                                             err)));
      }
    }
    for (int i = 0; i < f.next; ++i) {
      t = p->schedule->cron->Next(t, p->schedule->zone);
      std::printf("%s\n", pipeline::FormatIsoTime(t, p->schedule->zone).c_str());
    }
    return kExitOk;
  }
  // --metadata names a store relative to here; the child runs from the same directory.
  std::string url = f.metadata.url;
  if (!url.empty() && url.find("://") == std::string::npos) {
    const std::string path = url.rfind("sqlite:", 0) == 0 ? url.substr(7) : url;
    url = StrCat("sqlite:", AbsolutePath(path));
  }
  Scheduler scheduler(*p, f, url);
  return scheduler.Main();
}

}  // namespace

void AddScheduleCommand(CLI::App& root) {
  auto flags = std::make_shared<ScheduleFlags>();
  CLI::App* app = root.add_subcommand(
      "schedule",
      "Run a pipeline on a schedule: at cron times and/or when a new span of data appears");
  app->footer(
      "A foreground daemon (run it under systemd, a container or tmux): it prints its plan, "
      "then sleeps until the next cron time or span check, and runs the pipeline as a child "
      "`kiln run PIPELINE --run-id ID` of this same binary — a run that crashes cannot take "
      "the scheduler down. It logs a line when a run starts and when it ends (exit code, run "
      "id, run.json); each run's own output goes to ROOT/schedule-logs/RUN_ID.log.\n\n"
      "Pipeline file (besides pipeline:, components:, ... of `kiln run --help`):\n"
      "  schedule:\n"
      "    cron: \"0 2 * * *\"              # minute hour day-of-month month day-of-week\n"
      "    timezone: Europe/Berlin         # cron's wall clock (IANA name); default UTC\n"
      "    new_span: data/span-{SPAN}      # run when a newer span directory is complete\n"
      "    poll_seconds: 30                # how often new_span is listed; default 30\n"
      "    missed: skip                    # or run_once; default skip\n"
      "At least one of cron and new_span.\n\n"
      "cron: 5 fields, each `*`, N, N-M, lists (1,15) and steps (*/15, 1-30/5, N/S = N-MAX/S); "
      "months JAN..DEC, weekdays SUN..SAT (any case; 0 and 7 are Sunday); or @hourly, "
      "@daily, @weekly, @monthly, @yearly. When both day fields are not `*`, a day matches "
      "if either does (`0 0 13 * FRI`: the 13th and every Friday). Times are the zone's wall "
      "clock: a time skipped when clocks spring forward fires once at the first instant after "
      "the gap (02:30 -> 03:00); a time repeated when they fall back fires once, at its first "
      "occurrence. Check an expression with --next.\n\n"
      "new_span (relative to the pipeline file): the directory's last component holds {SPAN} "
      "(digits, as `kiln import` reads spans). At start the newest span present counts as "
      "seen (unless the state file says otherwise); a newer span starts a run once it is "
      "complete: not empty, and the names and sizes of everything in it unchanged across two "
      "checks poll_seconds apart (so a copy in progress is not read). Several new spans at "
      "once are one run (the pipeline reads the newest). A new span is never dropped: while "
      "the pipeline is running it waits and is checked again.\n\n"
      "Missed fire times: a fire time is on time up to 60 s after it; one that passed while "
      "the scheduler was down, while its own run was still going, or while the pipeline was "
      "running elsewhere (the lock below) is missed. missed: skip logs and drops them (the next "
      "run is at the next fire time); missed: run_once starts one catch-up run as soon as the "
      "pipeline is free, however many were missed (as anacron) — at startup after downtime, "
      "or right after a long run. A cron time and a new span due together are one run. With no "
      "state file nothing counts as missed (a fire time less than 60 s old still runs).\n\n"
      "Lock: one run of a pipeline at a time. `kiln run` takes ROOT/.lock (flock; the kernel "
      "drops it when the holder dies, kill -9 included) and a second `kiln run` of the same "
      "pipeline exits 1: \"pipeline NAME is already running (pid N since TIME)\". The "
      "scheduler takes it at each fire time and hands it to its child run; it takes "
      "ROOT/.schedule.lock for its whole life, so a second `kiln schedule` of the pipeline "
      "exits 1 too.\n\n"
      "State: ROOT/schedule_state.json (written atomically after each decision): last_fire "
      "(the newest fire time handled, RFC 3339), newest_span, catch_up (a run_once run owed), "
      "last_run (run_id, trigger, started, exit_code). A restart reads it to know what it "
      "missed; delete it to start afresh.\n\n"
      "Signals: SIGTERM or SIGINT stop the sleep at once; a run in progress is sent SIGTERM "
      "(kiln run stops its components: SIGTERM, then SIGKILL after 5 s) and waited for — a "
      "second signal kills it — then the scheduler exits 0. An interrupted run is not retried "
      "by the scheduler; `kiln run` again resumes it from the cache.\n\n"
      "Exit codes: 0 stopped by a signal, --max-runs reached, --next printed, or --once with "
      "nothing due; with --once after a run, that run's exit code (as kiln run: 0 succeeded, 1 "
      "failed, 3 stopped by a gate, 128+N interrupted); 1 already scheduled, the state file "
      "cannot be written, or another I/O failure; 2 usage, pipeline file or state file error. "
      "--once that finds the pipeline running handles the fire time as missed and exits 0.\n\n"
      "Examples:\n"
      "  kiln schedule pipeline.yaml --next 5     # check the cron expression and zone\n"
      "  kiln schedule pipeline.yaml              # the daemon (systemd: Type=simple)\n"
      "  kiln schedule pipeline.yaml --once       # from system cron or a CI job");
  app->add_option("PIPELINE", flags->pipeline, "Pipeline file (YAML) with a schedule: section")
      ->required();
  app->add_flag("--once", flags->once,
                "Handle what is due now (an on-time or missed fire time, a new span — looked at "
                "twice, poll_seconds apart), then exit");
  app->add_option("--next", flags->next,
                  "Print the next N cron fire times (ISO-8601 with the zone's offset) and exit")
      ->check(CLI::Range(1, 100000));
  app->add_option("--after", flags->after,
                  "With --next: start from this RFC 3339 time (2024-03-10T01:00:00-05:00) "
                  "instead of now");
  app->add_option("--max-runs", flags->max_runs, "Exit 0 after N runs")
      ->check(CLI::Range(1, 1000000));
  flags->metadata.Add(app, /*recording=*/false);
  CLI::App* root_app = &root;
  app->callback([flags, root_app] { Exit(RunSchedule(*flags, *root_app)); });
}

}  // namespace kiln::cli
