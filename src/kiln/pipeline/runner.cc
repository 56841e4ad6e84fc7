#include "kiln/pipeline/runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <tuple>

#include "kiln/base/hash.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/pipeline/invocation.h"
#include "kiln/pipeline/run_records.h"
#include "kiln/pipeline/signal_scope.h"
#include "kiln/pipeline/subprocess.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace kiln::pipeline {
namespace {

constexpr int kExitFindings = 3;
constexpr int kExitTempFail = 75;  // EX_TEMPFAIL
constexpr double kMaxBackoffSeconds = 300;

std::string UtcTime(int64_t micros, const char* format) {
  const time_t t = static_cast<time_t>(micros / 1000000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof(buf), format, &tm);
  return buf;
}

std::string NewRunId(Env* env) {
  const int64_t now = env->NowMicros();
  const uint64_t r = Mix64(static_cast<uint64_t>(now) ^ (static_cast<uint64_t>(getpid()) << 32));
  static const char kHex[] = "0123456789abcdef";
  std::string suffix;
  for (int i = 0; i < 4; ++i) suffix.push_back(kHex[(r >> (4 * i)) & 15]);
  return StrCat(UtcTime(now, "%Y%m%d-%H%M%S"), "-", suffix);
}

bool ValidRunId(std::string_view id) {
  return !id.empty() && id != "." && id != ".." && id[0] != '.' &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
         });
}

void AppendToFile(const std::string& path, std::string_view text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t ignored = write(fd, text.data(), text.size());
  (void)ignored;
  close(fd);
}

std::string Seconds(double s) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.2f", s);
  return buf;
}

absl::Status RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return absl::UnavailableError(StrCat("cannot remove ", path, ": ", ec.message()));
  return absl::OkStatus();
}

// tensorflow_metadata anomaly types that compare the data with other data (the previous
// span, serving logs) rather than with the schema: drift and skew.
bool IsDriftOrSkew(std::string_view type) {
  return type == "COMPARATOR_L_INFTY_HIGH" || type == "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH" ||
         type == "COMPARATOR_LOW_NUM_EXAMPLES" || type == "COMPARATOR_HIGH_NUM_EXAMPLES" ||
         type == "COMPARATOR_CONTROL_DATA_MISSING";
}

// The features (and "(dataset)") with drift or skew when every anomaly in ANOMALIES_DIR's
// anomalies.json is one; nullopt when any is not, or the file cannot be read — the
// gate then treats the findings as the ERROR anomalies they may be.
std::optional<std::vector<std::string>> DriftOnly(Env* env, const std::string& dir) {
  auto text = ReadFileToString(env, JoinPath(dir, "anomalies.json"));
  if (!text.ok()) return std::nullopt;
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto field = [&](const nlohmann::json& o, const char* snake,
                   const char* camel) -> const nlohmann::json* {
    if (auto it = o.find(snake); it != o.end()) return &*it;
    if (auto it = o.find(camel); it != o.end()) return &*it;
    return nullptr;
  };
  std::vector<std::string> features;
  auto all_drift = [&](const nlohmann::json& info, const std::string& name) {
    const nlohmann::json* reasons = field(info, "reason", "reason");
    if (!reasons || !reasons->is_array() || reasons->empty()) return false;
    for (const nlohmann::json& r : *reasons) {
      if (!r.is_object() || !r.contains("type") || !r["type"].is_string() ||
          !IsDriftOrSkew(r["type"].get<std::string>())) {
        return false;
      }
    }
    features.push_back(name);
    return true;
  };
  if (const nlohmann::json* info = field(j, "anomaly_info", "anomalyInfo")) {
    if (!info->is_object()) return std::nullopt;
    for (const auto& [name, a] : info->items()) {
      if (!a.is_object() || !all_drift(a, name)) return std::nullopt;
    }
  }
  if (const nlohmann::json* d = field(j, "dataset_anomaly_info", "datasetAnomalyInfo")) {
    if (!d->is_null() && (!d->is_object() || !all_drift(*d, "(dataset)"))) return std::nullopt;
  }
  if (features.empty()) return std::nullopt;
  return features;
}

enum class Phase { kWaiting, kReady, kRunning, kDone };

struct Node {
  const Component* c = nullptr;
  const Kind* kind = nullptr;  // nullptr for command components
  Phase phase = Phase::kWaiting;
  ComponentResult result;
  std::vector<OutputPaths> outputs;
  std::map<std::string, std::string> input_paths;  // input name -> artifact path
  std::map<std::string, std::string> input_fps;    // input name -> content fingerprint
  Invocation inv;
  std::unique_ptr<Subprocess> proc;
  int64_t first_start_us = 0;
  int64_t attempt_start_us = 0;
  int64_t next_attempt_us = 0;
  int64_t deadline_us = 0;  // timeout; 0: none
  int64_t kill_at_us = 0;   // SIGKILL after SIGTERM; 0: not signalled
  bool timed_out = false;
  std::string cache_recipe;  // what the cache key was computed from
  std::string history_note;  // how @previous inputs and the baseline were resolved
  // Output name -> (artifact path, content fingerprint) once available.
  std::map<std::string, std::pair<std::string, std::string>> produced;
};

class Runner {
 public:
  Runner(const Pipeline& p, const RunOptions& o) : p_(p), o_(o), env_(o.env), fp_(o.env) {}
  absl::StatusOr<RunResult> Run();

 private:
  bool Done(const Node& n) const { return n.phase == Phase::kDone; }
  bool Succeeded(const Node& n) const {
    return n.result.state == ComponentState::kRan || n.result.state == ComponentState::kCached;
  }
  void Finish(Node& n, ComponentState state, std::string note);
  // Works out inputs, invocation and cache key; true when the cache answered.
  absl::StatusOr<bool> Prepare(Node& n);
  void Start(Node& n);
  void OnExit(Node& n);
  absl::Status Publish(Node& n, int exit_code);
  // For kinds with inout_args: the cache key again, now that the command wrote them.
  absl::Status RekeyAfterWrite(Node& n);
  RunRecords::Completion CompletionOf(const Node& n, int exit_code) const;
  void Findings(Node& n);
  void Progress(const Node& n);
  void WriteRunJson();
  RunResult Snapshot() const;
  int64_t Now() { return env_->NowMicros(); }

  const Pipeline& p_;
  const RunOptions& o_;
  Env* env_;
  Fingerprinter fp_;
  InvocationContext ctx_;
  std::unique_ptr<RunRecords> records_;
  std::vector<Node> nodes_;
  std::string run_id_, run_dir_;
  int64_t start_us_ = 0;
  int parallel_ = 1;
  int running_ = 0;
  int finished_ = 0;
  // Inputs that resolve from the metadata store (@previous, evaluate's default baseline).
  absl::Status ResolveFromHistory(Node& n);
  // Whether every validate component not downstream of component `push` has finished
  // (a push waits for the drift gate).
  bool GatesSettled(int push) const;

  bool stop_ = false;  // a gate stopped the run
  std::string stopped_by_;
  std::string drift_by_;  // the first validate component that found drift (on_drift: hold)
  bool approved_ = false;
  bool held_ = false;
  int interrupted_by_ = 0;
  std::string state_ = "running";
};

void Runner::Finish(Node& n, ComponentState state, std::string note) {
  n.phase = Phase::kDone;
  n.result.state = state;
  if (!note.empty()) n.result.note = std::move(note);
  if (n.first_start_us) n.result.seconds = (Now() - n.first_start_us) / 1e6;
  ++finished_;
  Progress(n);
  WriteRunJson();
}

void Runner::Progress(const Node& n) {
  if (!o_.progress) return;
  std::fprintf(o_.progress, "[%d/%zu] %s: %s%s%s\n", finished_, nodes_.size(), n.c->name.c_str(),
               std::string(StateName(n.result.state)).c_str(), n.result.note.empty() ? "" : " — ",
               n.result.note.c_str());
  std::fflush(o_.progress);
}

bool Runner::GatesSettled(int push) const {
  // Validate components that come after the push (a skew check of what was pushed) are
  // not its gates: waiting for them would wait forever.
  std::vector<bool> after(nodes_.size(), false);
  std::vector<int> todo = {push};
  while (!todo.empty()) {
    const int i = todo.back();
    todo.pop_back();
    for (int d : p_.dag.downstream[i]) {
      if (!after[d]) {
        after[d] = true;
        todo.push_back(d);
      }
    }
  }
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    if (n.kind && n.kind->name == "validate" && !after[i] && !Done(n)) return false;
  }
  return true;
}

absl::Status Runner::ResolveFromHistory(Node& n) {
  const Component& c = *n.c;
  auto verify = [&](const std::string& uri, const std::string& fingerprint) {
    if (!env_->FileExists(uri)) return false;
    auto f = fp_.Of(uri);
    return f.ok() && *f == fingerprint;
  };
  std::vector<std::string> notes;
  for (const InputRef& in : c.inputs) {
    if (!in.previous) continue;
    const Node& up = nodes_[p_.Find(in.component)];
    const std::string output = in.output.empty() ? up.c->outputs[0].name : in.output;
    const std::string current = up.produced.at(output).second;
    KILN_ASSIGN_OR_RETURN(auto prev, records_->FindPrevious(in.component, output, current, verify));
    if (!prev) {
      notes.push_back(StrCat(in.name, ": no earlier ", in.component, ".", output));
      continue;
    }
    n.input_paths[in.name] = prev->uri;
    n.input_fps[in.name] = prev->fingerprint;
  }
  const bool wants_baseline =
      n.kind && n.kind->name == "evaluate" && !c.args.count("baseline") &&
      std::none_of(c.inputs.begin(), c.inputs.end(),
                   [](const InputRef& in) { return in.name == "baseline"; });
  if (wants_baseline) {
    std::string candidate;
    if (auto it = n.input_fps.find("model"); it != n.input_fps.end()) {
      candidate = it->second;
    } else if (auto a = c.args.find("model"); a != c.args.end()) {
      const std::string& v = a->second.values[0];
      auto f = fp_.Of(v.front() == '/' ? v : JoinPath(p_.dir, v));
      if (f.ok()) candidate = *f;
    }
    KILN_ASSIGN_OR_RETURN(
        auto blessed, records_->FindBlessedModel(candidate, [&](const std::string& uri) {
          return env_->FileExists(uri) ? fp_.Of(uri)
                                       : absl::StatusOr<std::string>(absl::NotFoundError(uri));
        }));
    if (blessed) {
      n.input_paths["baseline"] = blessed->uri;
      n.input_fps["baseline"] = blessed->fingerprint;
      notes.push_back(StrCat("baseline: the latest blessed model, ", blessed->uri));
    } else {
      notes.push_back("baseline: none blessed yet");
    }
  }
  n.history_note = StrJoin(notes, "; ");
  return absl::OkStatus();
}

absl::StatusOr<bool> Runner::Prepare(Node& n) {
  const Component& c = *n.c;
  for (const InputRef& in : c.inputs) {
    if (in.previous) continue;  // ResolveFromHistory
    const Node& up = nodes_[p_.Find(in.component)];
    const std::string output = in.output.empty() ? up.c->outputs[0].name : in.output;
    auto it = up.produced.find(output);
    if (it == up.produced.end()) {
      return absl::InternalError(StrCat(in.component, " left no output ", output));
    }
    n.input_paths[in.name] = it->second.first;
    n.input_fps[in.name] = it->second.second;
  }
  KILN_RETURN_IF_ERROR(ResolveFromHistory(n));
  n.outputs = OutputsOf(c, run_dir_);
  KILN_ASSIGN_OR_RETURN(n.inv, BuildInvocation(p_, c, n.input_paths, n.outputs, ctx_));
  KILN_ASSIGN_OR_RETURN(
      n.result.cache_key,
      CacheKey(p_, c, n.input_fps, n.kind ? "" : n.inv.executable, &fp_, &n.cache_recipe));
  if (!o_.use_cache || !c.cache) return false;
  std::vector<std::string> names;
  for (const OutputPaths& o : n.outputs) names.push_back(o.name);
  auto verify = [&](const std::string& uri, const std::string& fingerprint) {
    if (!env_->FileExists(uri)) return false;
    auto f = fp_.Of(uri);
    return f.ok() && *f == fingerprint;
  };
  KILN_ASSIGN_OR_RETURN(auto hit, records_->FindCached(n.result.cache_key, names, verify));
  if (!hit) return false;
  for (const auto& [name, o] : hit->outputs) {
    n.produced[name] = {o.uri, o.fingerprint};
    n.result.outputs[name] = o.uri;
  }
  n.result.exit_code = hit->exit_code;
  KILN_ASSIGN_OR_RETURN(n.result.execution_id, records_->RecordCached(c.name, *hit));
  n.result.note =
      StrCat("execution ", hit->execution_id, hit->run.empty() ? "" : StrCat(" of run ", hit->run));
  return true;
}

void Runner::Start(Node& n) {
  const Component& c = *n.c;
  const int64_t now = Now();
  ++n.result.attempts;
  const std::string dir = ComponentDir(run_dir_, c);
  const std::string staging = StagingDir(run_dir_, c);
  n.result.log = JoinPath(dir, "log.txt");
  if (n.result.attempts == 1) n.first_start_us = now;
  absl::Status s = env_->CreateDirs(dir);
  // What the cache key was made of, to answer "why did this run again?".
  if (s.ok() && n.result.attempts == 1) {
    s = WriteFileAtomically(env_, JoinPath(dir, "cache_key.txt"),
                            StrCat(n.result.cache_key, "\n", n.cache_recipe));
  }
  // A fresh staging directory per attempt: nothing of a failed one is carried over.
  if (s.ok()) s = RemoveAll(staging);
  if (s.ok()) s = env_->CreateDirs(staging);
  for (const OutputPaths& o : n.outputs) {
    if (s.ok() && o.precreate) s = env_->CreateDirs(o.staging_dir);
  }
  std::vector<std::string> env;
  std::map<std::string, std::string> extra;
  for (const auto& [k, v] : n.inv.env) extra[k] = v;
  extra["KILN_ATTEMPT"] = StrCat(n.result.attempts);
  for (char** e = environ; *e; ++e) {
    const std::string_view kv(*e);
    if (!extra.count(std::string(kv.substr(0, kv.find('='))))) env.emplace_back(kv);
  }
  for (const auto& [k, v] : extra) env.push_back(StrCat(k, "=", v));
  std::vector<std::string> quoted;
  for (const std::string& a : n.inv.argv) {
    quoted.push_back(a.find_first_of(" '\"\\$") == std::string::npos ? a
                                                                     : nlohmann::json(a).dump());
  }
  AppendToFile(n.result.log, StrCat("=== kiln run: ", c.name, " attempt ", n.result.attempts, "/",
                                    c.retries + 1, " at ", UtcTime(now, "%Y-%m-%dT%H:%M:%SZ"), ": ",
                                    StrJoin(quoted, " "), "\n"));
  if (!n.history_note.empty()) {
    AppendToFile(n.result.log, StrCat("=== kiln run: from earlier runs: ", n.history_note, "\n"));
  }
  if (s.ok()) {
    auto proc = Subprocess::Spawn({.executable = n.inv.executable,
                                   .argv = n.inv.argv,
                                   .env = std::move(env),
                                   .cwd = p_.dir,
                                   .log_path = n.result.log});
    if (proc.ok()) {
      n.proc = std::move(*proc);
    } else {
      s = proc.status();
    }
  }
  if (!s.ok()) {
    AppendToFile(n.result.log, StrCat("=== kiln run: cannot start: ", s.message(), "\n"));
    Finish(n, ComponentState::kFailed, StrCat("cannot start: ", s.message()));
    return;
  }
  n.phase = Phase::kRunning;
  n.result.state = ComponentState::kRunning;
  n.attempt_start_us = Now();
  n.timed_out = false;
  n.kill_at_us = 0;
  n.deadline_us = c.timeout_seconds > 0
                      ? n.attempt_start_us + static_cast<int64_t>(c.timeout_seconds * 1e6)
                      : 0;
  ++running_;
  if (n.result.attempts == 1) WriteRunJson();  // a dashboard shows it running
}

absl::Status Runner::Publish(Node& n, int exit_code) {
  for (const OutputPaths& o : n.outputs) {
    if (!env_->FileExists(o.staging_path)) {
      return absl::FailedPreconditionError(StrCat("exited ", exit_code, " but wrote no output '",
                                                  o.name, "' (", o.staging_path, ")"));
    }
  }
  for (const OutputPaths& o : n.outputs) {
    // Left by an attempt of this run killed between rename and record: not trusted.
    KILN_RETURN_IF_ERROR(RemoveAll(o.final_dir));
    KILN_RETURN_IF_ERROR(env_->RenameFile(o.staging_dir, o.final_dir));
  }
  KILN_RETURN_IF_ERROR(env_->SyncDir(ComponentDir(run_dir_, *n.c)));
  RemoveAll(StagingDir(run_dir_, *n.c)).IgnoreError();
  for (const OutputPaths& o : n.outputs) {
    KILN_ASSIGN_OR_RETURN(std::string f, fp_.Of(o.final_path));
    n.produced[o.name] = {o.final_path, f};
    n.result.outputs[o.name] = o.final_path;
  }
  return absl::OkStatus();
}

absl::Status Runner::RekeyAfterWrite(Node& n) {
  bool wrote = false;
  for (const std::string& key : n.kind->inout_args) {
    auto it = n.c->args.find(ArgKey(key));
    if (it == n.c->args.end()) continue;
    for (const std::string& v : it->second.values) {
      fp_.Forget(v.front() == '/' ? v : JoinPath(p_.dir, v));
      wrote = true;
    }
  }
  if (!wrote) return absl::OkStatus();
  KILN_ASSIGN_OR_RETURN(n.result.cache_key,
                        CacheKey(p_, *n.c, n.input_fps, "", &fp_, &n.cache_recipe));
  return WriteFileAtomically(env_, JoinPath(ComponentDir(run_dir_, *n.c), "cache_key.txt"),
                             StrCat(n.result.cache_key, "\n", n.cache_recipe));
}

RunRecords::Completion Runner::CompletionOf(const Node& n, int exit_code) const {
  const Component& c = *n.c;
  RunRecords::Completion r;
  r.component = c.name;
  r.execution_type = n.kind ? n.kind->execution_type : "Command";
  r.cache_key = c.cache ? n.result.cache_key : "";
  r.exit_code = exit_code;
  r.attempts = n.result.attempts;
  r.started_ms = n.attempt_start_us / 1000;
  r.adopt = n.inv.records_itself;
  r.staging_root = StagingDir(run_dir_, c);
  r.parameters["kind"] = c.kind;
  for (const auto& [key, arg] : c.args)
    r.parameters[StrCat("arg.", key)] = StrJoin(arg.values, ",");
  if (!n.kind) {
    r.parameters["command"] = StrJoin(c.command, " ");
    r.parameters["executable"] = n.inv.executable;
  }
  for (const InputRef& in : c.inputs) {
    const Node& up = nodes_[p_.Find(in.component)];
    const std::string output = in.output.empty() ? up.c->outputs[0].name : in.output;
    std::string type;
    for (const OutputDecl& o : up.c->outputs) {
      if (o.name == output) type = o.artifact_type;
    }
    auto path = n.input_paths.find(in.name);
    if (path == n.input_paths.end()) continue;  // @previous on a first run
    r.inputs.push_back({in.name, path->second, type});
  }
  // Inputs the runner found in the store rather than in the file (evaluate's baseline).
  for (const auto& entry : n.input_paths) {
    const std::string& name = entry.first;
    if (std::none_of(c.inputs.begin(), c.inputs.end(),
                     [&](const InputRef& in) { return in.name == name; })) {
      r.inputs.push_back({name, entry.second, name == "baseline" ? "Model" : ""});
    }
  }
  for (const OutputPaths& o : n.outputs) {
    auto it = n.produced.find(o.name);
    r.outputs.push_back({o.name, o.artifact_type, o.staging_path, o.final_path,
                         it == n.produced.end() ? "" : it->second.second});
  }
  return r;
}

void Runner::Findings(Node& n) {
  n.result.findings = true;
  const std::string what = StrCat(n.kind ? n.kind->findings : "found problems", " (exit 3)");
  if (n.kind && n.kind->name == "validate" && n.c->on_drift != OnDrift::kStop) {
    auto out = n.result.outputs.find("out");
    auto drift = out == n.result.outputs.end() ? std::nullopt : DriftOnly(env_, out->second);
    if (drift) {
      n.result.drift = *drift;
      const std::string features = StrJoin(*drift, ", ");
      if (n.c->on_drift == OnDrift::kContinue) {
        n.result.note = StrCat("drift in ", features, "; on_drift: continue");
        return;
      }
      if (drift_by_.empty()) drift_by_ = n.c->name;
      n.result.note = StrCat("drift in ", features,
                             approved_ ? "; the run is approved: pushes go ahead"
                                       : "; pushes are held until `kiln approve`");
      return;
    }
  }
  if (n.c->on_findings == OnFindings::kStop) {
    if (!stop_) {
      stop_ = true;
      stopped_by_ = n.c->name;
    }
    n.result.note = StrCat(what, ": the run stops here");
  } else {
    n.result.note = StrCat(what, "; on_findings: continue");
  }
}

void Runner::OnExit(Node& n) {
  const Component& c = *n.c;
  const ExitStatus st = n.proc->status();
  n.proc.reset();
  --running_;
  const double took = (Now() - n.attempt_start_us) / 1e6;
  n.result.exit_code = st.signal ? 128 + st.signal : st.code;
  std::string how = st.signal ? StrCat("killed by signal ", st.signal) : StrCat("exit ", st.code);
  if (n.timed_out) how = StrCat("timed out after ", c.timeout_seconds, " s");
  AppendToFile(n.result.log, StrCat("=== kiln run: ", how, " after ", Seconds(took), " s\n"));

  if (interrupted_by_) {
    Finish(n, ComponentState::kCanceled, "interrupted");
    return;
  }
  if (st.signal == 0 && !n.timed_out && (st.code == 0 || st.code == kExitFindings)) {
    absl::Status s = Publish(n, st.code);
    if (s.ok() && n.kind && !n.kind->inout_args.empty()) s = RekeyAfterWrite(n);
    absl::StatusOr<int64_t> id = absl::UnknownError("");
    if (s.ok()) {
      id = records_->RecordCompleted(CompletionOf(n, st.code));
      if (!id.ok()) s = id.status();
    }
    if (!s.ok()) {
      AppendToFile(n.result.log, StrCat("=== kiln run: ", s.message(), "\n"));
      n.produced.clear();
      n.result.outputs.clear();
      Finish(n, ComponentState::kFailed, std::string(s.message()));
      return;
    }
    n.result.execution_id = *id;
    if (st.code == kExitFindings) Findings(n);
    Finish(n, ComponentState::kRan, "");
    return;
  }
  const bool retryable = n.timed_out || st.signal != 0 || st.code == kExitTempFail ||
                         (n.kind != nullptr && st.code == 1);
  if (retryable && n.result.attempts <= c.retries) {
    const double delay = std::min(kMaxBackoffSeconds,
                                  c.retry_backoff_seconds * std::pow(2.0, n.result.attempts - 1));
    AppendToFile(n.result.log, StrCat("=== kiln run: retryable; attempt ", n.result.attempts + 1,
                                      " in ", Seconds(delay), " s\n"));
    n.phase = Phase::kReady;
    n.next_attempt_us = Now() + static_cast<int64_t>(delay * 1e6);
    return;
  }
  std::string note = how;
  if (n.result.attempts > 1) StrAppend(&note, " (", n.result.attempts, " attempts)");
  if (st.code == 2) StrAppend(&note, ": bad usage or input");
  StrAppend(&note, "; see ", n.result.log);
  auto recorded = records_->RecordFailed(CompletionOf(n, n.result.exit_code), how);
  if (recorded.ok()) {
    n.result.execution_id = *recorded;
  } else {
    AppendToFile(
        n.result.log,
        StrCat("=== kiln run: not recorded as failed: ", recorded.status().message(), "\n"));
  }
  Finish(n, ComponentState::kFailed, note);
}

RunResult Runner::Snapshot() const {
  RunResult r;
  r.pipeline = p_.name;
  r.pipeline_file = std::filesystem::absolute(p_.file).lexically_normal().string();
  r.run_id = run_id_;
  r.run_dir = run_dir_;
  r.metadata_url = records_ ? records_->url() : "";
  r.state = state_;
  r.stopped_by = stopped_by_;
  r.held_by = held_ ? drift_by_ : "";
  r.approved = approved_;
  r.signal = interrupted_by_;
  r.seconds = (env_->NowMicros() - start_us_) / 1e6;
  for (const Node& n : nodes_) r.components.push_back(n.result);
  return r;
}

void Runner::WriteRunJson() {
  WriteFileAtomically(env_, JoinPath(run_dir_, "run.json"), RunJson(Snapshot())).IgnoreError();
}

absl::StatusOr<RunResult> Runner::Run() {
  start_us_ = Now();
  if (!o_.catalog) return absl::InvalidArgumentError("RunOptions::catalog is required");
  run_id_ = o_.run_id.empty() ? NewRunId(env_) : o_.run_id;
  if (!ValidRunId(run_id_)) {
    return absl::InvalidArgumentError(
        StrCat("run id '", run_id_, "': use letters, digits, '-', '_' and '.'"));
  }
  run_dir_ = JoinPath(p_.root, run_id_);
  parallel_ = o_.parallel > 0 ? o_.parallel : NumCpus();
  std::string url = o_.metadata_url.empty() ? p_.metadata : o_.metadata_url;
  KILN_ASSIGN_OR_RETURN(records_, RunRecords::Open(url, p_.name, run_id_));
  KILN_ASSIGN_OR_RETURN(approved_, records_->Approved());
  KILN_RETURN_IF_ERROR(env_->CreateDirs(run_dir_));
  ctx_.kiln_binary = o_.kiln_binary;
  ctx_.metadata_url = records_->url();
  ctx_.catalog = o_.catalog;
  ctx_.run_id = run_id_;
  ctx_.run_dir = run_dir_;
  const char* path = std::getenv("PATH");
  ctx_.path_env = path ? path : "/usr/local/bin:/usr/bin:/bin";

  nodes_.resize(p_.components.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    nodes_[i].c = &p_.components[i];
    nodes_[i].kind = FindKind(p_.components[i].kind);
    nodes_[i].result.name = p_.components[i].name;
    nodes_[i].result.kind = p_.components[i].kind;
    for (int u : p_.dag.upstream[i]) nodes_[i].result.upstream.push_back(p_.components[u].name);
  }
  // Before anything runs, and before the history lookups that must see only earlier runs.
  KILN_RETURN_IF_ERROR(records_->RecordRunStart(run_dir_, start_us_ / 1000));
  WriteRunJson();

  SignalScope signals;
  for (;;) {
    if (SignalScope::last_signal() && !interrupted_by_) {
      interrupted_by_ = SignalScope::last_signal();
      for (Node& n : nodes_) {
        if (n.phase == Phase::kRunning) {
          n.proc->SignalGroup(SIGTERM);
          n.kill_at_us = Now() + static_cast<int64_t>(o_.kill_grace_seconds * 1e6);
        }
      }
    }
    // Settle every component that can be settled without running it: skip what can no
    // longer run, answer from the cache what can.
    for (bool changed = true; changed;) {
      changed = false;
      for (int i : p_.dag.order) {
        Node& n = nodes_[i];
        if (n.phase == Phase::kReady && n.result.attempts == 0 && (stop_ || interrupted_by_)) {
          Finish(n, ComponentState::kSkipped,
                 interrupted_by_ ? "interrupted" : StrCat("the run stopped at ", stopped_by_));
          changed = true;
          continue;
        }
        if (n.phase == Phase::kReady && interrupted_by_) {  // waiting to retry
          Finish(n, ComponentState::kCanceled, "interrupted");
          changed = true;
          continue;
        }
        if (n.phase != Phase::kWaiting) continue;
        const Node* blocker = nullptr;
        bool ready = true;
        for (int u : p_.dag.upstream[i]) {
          if (!Done(nodes_[u])) {
            ready = false;
          } else if (!Succeeded(nodes_[u]) && !blocker) {
            blocker = &nodes_[u];
          }
        }
        if (blocker) {
          Finish(n, ComponentState::kSkipped,
                 StrCat(blocker->c->name, " ", StateName(blocker->result.state)));
          changed = true;
          continue;
        }
        if (stop_ || interrupted_by_) {
          Finish(n, ComponentState::kSkipped,
                 interrupted_by_ ? "interrupted" : StrCat("the run stopped at ", stopped_by_));
          changed = true;
          continue;
        }
        if (!ready) continue;
        if (n.kind && n.kind->name == "push") {
          if (!GatesSettled(i)) continue;
          if (!drift_by_.empty() && !approved_) {
            held_ = true;
            Finish(n, ComponentState::kHeld,
                   StrCat("held: ", drift_by_, " found drift; to push: kiln approve ", run_id_,
                          " --pipeline ",
                          std::filesystem::absolute(p_.file).lexically_normal().string()));
            changed = true;
            continue;
          }
        }
        const int64_t t0 = Now();
        auto cached = Prepare(n);
        changed = true;
        if (!cached.ok()) {
          Finish(n, ComponentState::kFailed, std::string(cached.status().message()));
        } else if (*cached) {
          n.result.seconds = (Now() - t0) / 1e6;
          if (n.result.exit_code == kExitFindings) Findings(n);
          Finish(n, ComponentState::kCached, "");
        } else {
          n.phase = Phase::kReady;
          n.next_attempt_us = 0;
        }
      }
    }
    // Start what is ready, in file order among equals, while slots are free.
    int64_t now = Now();
    int64_t wake = -1;  // the earliest timer, or -1
    auto at = [&](int64_t t) { wake = wake < 0 ? t : std::min(wake, t); };
    for (int i : p_.dag.order) {
      Node& n = nodes_[i];
      if (n.phase != Phase::kReady || running_ >= parallel_) continue;
      if (n.next_attempt_us > now) {
        at(n.next_attempt_us);
        continue;
      }
      Start(n);
    }
    if (finished_ == static_cast<int>(nodes_.size())) break;

    std::vector<pollfd> fds;
    std::vector<Node*> polled;
    if (signals.read_fd() >= 0) fds.push_back({signals.read_fd(), POLLIN, 0});
    bool must_poll = false;
    for (Node& n : nodes_) {
      if (n.phase == Phase::kReady && n.next_attempt_us > now) at(n.next_attempt_us);
      if (n.phase != Phase::kRunning) continue;
      if (n.deadline_us && !n.timed_out) at(n.deadline_us);
      if (n.kill_at_us) at(n.kill_at_us);
      if (n.proc->wait_fd() >= 0) {
        fds.push_back({n.proc->wait_fd(), POLLIN, 0});
      } else {
        must_poll = true;
      }
    }
    int timeout_ms =
        wake < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, (wake - now + 999) / 1000));
    if (must_poll) timeout_ms = timeout_ms < 0 ? 10 : std::min(timeout_ms, 10);
    // A signal that arrived before poll() started has written to the pipe: no lost wakeup.
    if (!SignalScope::last_signal() || interrupted_by_) poll(fds.data(), fds.size(), timeout_ms);
    signals.Drain();

    now = Now();
    for (Node& n : nodes_) {
      if (n.phase != Phase::kRunning) continue;
      if (n.proc->Poll()) {
        OnExit(n);
        continue;
      }
      if (n.deadline_us && !n.timed_out && now >= n.deadline_us) {
        n.timed_out = true;
        n.proc->SignalGroup(SIGTERM);
        n.kill_at_us = now + static_cast<int64_t>(o_.kill_grace_seconds * 1e6);
      } else if (n.kill_at_us && now >= n.kill_at_us) {
        n.proc->SignalGroup(SIGKILL);
        n.kill_at_us = 0;
      }
    }
  }
  bool failed = false;
  for (const Node& n : nodes_) failed |= n.result.state == ComponentState::kFailed;
  state_ = interrupted_by_ ? "interrupted"
           : failed        ? "failed"
           : stop_         ? "stopped"
           : held_         ? "held"
                           : "succeeded";
  if (absl::Status s = records_->RecordRunState(state_); !s.ok() && o_.progress) {
    std::fprintf(o_.progress, "kiln run: warning: the run's state is not recorded: %s\n",
                 std::string(s.message()).c_str());
  }
  RunResult result = Snapshot();
  std::tie(result.pipeline_context_id, result.run_context_id) = records_->ContextIds();
  WriteFileAtomically(env_, JoinPath(run_dir_, "run.json"), RunJson(result)).IgnoreError();
  return result;
}

}  // namespace

std::string_view StateName(ComponentState s) {
  switch (s) {
    case ComponentState::kPending:
      return "pending";
    case ComponentState::kRunning:
      return "running";
    case ComponentState::kRan:
      return "ran";
    case ComponentState::kCached:
      return "cached";
    case ComponentState::kFailed:
      return "failed";
    case ComponentState::kSkipped:
      return "skipped";
    case ComponentState::kCanceled:
      return "canceled";
    case ComponentState::kHeld:
      return "held";
  }
  return "unknown";
}

int RunResult::ExitCode() const {
  if (state == "succeeded") return 0;
  if (state == "stopped" || state == "held") return kExitFindings;
  if (state == "interrupted") return 128 + signal;
  return 1;
}

absl::StatusOr<RunResult> RunPipeline(const Pipeline& pipeline, const RunOptions& options) {
  Runner runner(pipeline, options);
  return runner.Run();
}

std::string RunJson(const RunResult& r) {
  nlohmann::json j;
  j["pipeline"] = r.pipeline;
  j["run_id"] = r.run_id;
  j["run_dir"] = r.run_dir;
  j["state"] = r.state;
  if (!r.stopped_by.empty()) j["stopped_by"] = r.stopped_by;
  if (!r.held_by.empty()) j["held_by"] = r.held_by;
  if (r.approved) j["approved"] = true;
  j["pipeline_file"] = r.pipeline_file;
  j["seconds"] = std::round(r.seconds * 1000) / 1000;
  j["metadata"] = r.metadata_url;
  if (r.pipeline_context_id) j["pipeline_context_id"] = r.pipeline_context_id;
  if (r.run_context_id) j["run_context_id"] = r.run_context_id;
  j["components"] = nlohmann::json::array();
  for (const ComponentResult& c : r.components) {
    nlohmann::json cj;
    cj["name"] = c.name;
    cj["kind"] = c.kind;
    cj["state"] = std::string(StateName(c.state));
    cj["seconds"] = std::round(c.seconds * 1000) / 1000;
    cj["attempts"] = c.attempts;
    cj["upstream"] = c.upstream;
    if (c.exit_code >= 0) cj["exit_code"] = c.exit_code;
    if (c.findings) cj["findings"] = true;
    if (!c.drift.empty()) cj["drift"] = c.drift;
    if (!c.note.empty()) cj["note"] = c.note;
    if (!c.log.empty()) cj["log"] = c.log;
    if (!c.cache_key.empty()) cj["cache_key"] = c.cache_key;
    if (c.execution_id) cj["execution_id"] = c.execution_id;
    cj["outputs"] = c.outputs;
    j["components"].push_back(std::move(cj));
  }
  return j.dump(2) + "\n";
}

std::string SummaryTable(const RunResult& r) {
  std::vector<std::vector<std::string>> rows = {
      {"component", "kind", "state", "seconds", "attempts", "note"}};
  for (const ComponentResult& c : r.components) {
    const bool timed = c.state == ComponentState::kRan || c.state == ComponentState::kCached ||
                       c.state == ComponentState::kFailed || c.state == ComponentState::kCanceled;
    rows.push_back({c.name, c.kind, std::string(StateName(c.state)),
                    timed ? Seconds(c.seconds) : "-", StrCat(c.attempts), c.note});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const bool right = i == 3 || i == 4;
      const std::string pad(width[i] - row[i].size(), ' ');
      if (i) line += "  ";
      line += right ? pad + row[i] : (i + 1 == row.size() ? row[i] : row[i] + pad);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

}  // namespace kiln::pipeline
