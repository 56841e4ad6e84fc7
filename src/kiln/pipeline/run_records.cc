#include "kiln/pipeline/run_records.h"

#include <set>

#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/metadata/open_store.h"
#include "kiln/metadata/recorder.h"

namespace kiln::pipeline {
namespace {

namespace md = metadata;

bool Within(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

std::string StringProperty(const md::Properties& props, const std::string& key) {
  auto it = props.find(key);
  if (it == props.end() || !std::holds_alternative<std::string>(it->second)) return "";
  return std::get<std::string>(it->second);
}

int64_t IntProperty(const md::Properties& props, const std::string& key, int64_t dflt) {
  auto it = props.find(key);
  if (it == props.end() || !std::holds_alternative<int64_t>(it->second)) return dflt;
  return std::get<int64_t>(it->second);
}

std::string OutputKey(const std::string& name) { return StrCat("output.", name); }
std::string FingerprintKey(const std::string& name) {
  return StrCat("output.", name, ".fingerprint");
}

}  // namespace

absl::StatusOr<std::unique_ptr<RunRecords>> RunRecords::Open(const std::string& url,
                                                             std::string pipeline,
                                                             std::string run_id) {
  const std::string resolved = url.empty() ? StrCat("sqlite:", md::DefaultStorePath()) : url;
  KILN_ASSIGN_OR_RETURN(auto store, md::OpenStore(resolved));
  for (const char* type : {"pipeline", "component", "pipeline_run"}) {
    if (store->GetType(md::TypeKind::kContext, type).ok()) continue;
    md::Type t;
    t.kind = md::TypeKind::kContext;
    t.name = type;
    KILN_RETURN_IF_ERROR(store->PutType(t).status());
  }
  return std::unique_ptr<RunRecords>(
      new RunRecords(std::move(store), resolved, std::move(pipeline), std::move(run_id)));
}

std::vector<md::Context> RunRecords::Contexts(const std::string& component) const {
  std::vector<md::Context> out(3);
  out[0].type = "pipeline";
  out[0].name = pipeline_;
  out[1].type = "component";
  out[1].name = StrCat(pipeline_, ".", component);
  out[2].type = "pipeline_run";
  out[2].name = run_id_;
  return out;
}

absl::StatusOr<int64_t> RunRecords::NewestAt(const std::string& uri) {
  md::Query q;
  q.uri = uri;
  q.newest_first = true;
  q.limit = 1;
  KILN_ASSIGN_OR_RETURN(auto found, store_->GetArtifacts(q));
  return found.empty() ? 0 : found[0].id;
}

absl::StatusOr<std::optional<RunRecords::CacheHit>> RunRecords::FindCached(
    const std::string& cache_key, const std::vector<std::string>& outputs, const Verify& verify) {
  md::Query q;
  q.property = std::make_pair(std::string(kCacheKeyProperty), md::Value(cache_key));
  q.newest_first = true;
  q.limit = 8;
  KILN_ASSIGN_OR_RETURN(auto found, store_->GetExecutions(q));
  for (const md::Execution& e : found) {
    if (e.state != md::ExecutionState::kComplete) continue;
    CacheHit hit;
    hit.execution_id = e.id;
    hit.type = e.type;
    hit.exit_code = static_cast<int>(IntProperty(e.custom_properties, "exit_code", 0));
    hit.run = StringProperty(e.custom_properties, "run");
    bool usable = true;
    for (const std::string& name : outputs) {
      CachedOutput o{StringProperty(e.custom_properties, OutputKey(name)),
                     StringProperty(e.custom_properties, FingerprintKey(name))};
      if (o.uri.empty() || o.fingerprint.empty() || !verify(o.uri, o.fingerprint)) {
        usable = false;
        break;
      }
      hit.outputs[name] = std::move(o);
    }
    if (usable) return hit;
  }
  return std::nullopt;
}

absl::StatusOr<int64_t> RunRecords::RecordCached(const std::string& component,
                                                 const CacheHit& hit) {
  md::Execution e;
  e.type = hit.type;
  e.state = md::ExecutionState::kCached;
  e.custom_properties = {{kCachedFromProperty, hit.execution_id},
                         {"component", component},
                         {"run", run_id_},
                         {"exit_code", static_cast<int64_t>(hit.exit_code)}};
  std::vector<md::ArtifactAndEvent> artifacts;
  for (const auto& [name, o] : hit.outputs) {
    e.custom_properties[OutputKey(name)] = o.uri;
    KILN_ASSIGN_OR_RETURN(int64_t id, NewestAt(o.uri));
    if (id == 0) continue;
    md::ArtifactAndEvent ae;
    ae.artifact.id = id;  // attributed to this run's contexts; produced by the hit
    artifacts.push_back(std::move(ae));
  }
  KILN_ASSIGN_OR_RETURN(auto r, store_->PutExecution(e, artifacts, Contexts(component)));
  return r.execution_id;
}

absl::StatusOr<std::optional<md::Execution>> RunRecords::FindOwnRecord(const Completion& c) {
  md::Query q;
  q.type = c.execution_type;
  q.created_from_ms = c.started_ms - 1000;  // clocks of one machine; a margin for rounding
  q.newest_first = true;
  q.limit = 32;
  auto found = store_->GetExecutions(q);
  if (absl::IsNotFound(found.status())) return std::nullopt;  // type never recorded
  KILN_RETURN_IF_ERROR(found.status());
  std::set<std::string> input_uris;
  for (const Input& in : c.inputs) input_uris.insert(in.uri);
  for (const md::Execution& e : *found) {
    // Already part of a run (this one or another).
    if (e.custom_properties.count("component") || e.custom_properties.count(kCacheKeyProperty)) {
      continue;
    }
    KILN_ASSIGN_OR_RETURN(auto events, store_->GetEventsByExecutionIds({e.id}));
    md::Query aq;
    for (const md::Event& ev : events) aq.ids.push_back(ev.artifact_id);
    if (aq.ids.empty()) continue;
    KILN_ASSIGN_OR_RETURN(auto artifacts, store_->GetArtifacts(aq));
    std::map<int64_t, std::string> uri;
    for (const md::Artifact& a : artifacts) uri[a.id] = a.uri;
    for (const md::Event& ev : events) {
      const std::string& u = uri[ev.artifact_id];
      // Its outputs are in our staging directory, or (a command with no outputs, like
      // push) it read what we gave it.
      if ((ev.type == md::EventType::kOutput && Within(u, c.staging_root)) ||
          (c.outputs.empty() && ev.type == md::EventType::kInput && input_uris.count(u))) {
        return e;
      }
    }
  }
  return std::nullopt;
}

absl::StatusOr<int64_t> RunRecords::Adopt(const Completion& c, md::Execution e, bool publish) {
  const std::string final_root = c.staging_root.substr(0, c.staging_root.rfind('/'));
  KILN_ASSIGN_OR_RETURN(auto events, store_->GetEventsByExecutionIds({e.id}));
  md::Query aq;
  for (const md::Event& ev : events) aq.ids.push_back(ev.artifact_id);
  std::vector<md::Artifact> artifacts;
  if (!aq.ids.empty()) {
    KILN_ASSIGN_OR_RETURN(artifacts, store_->GetArtifacts(aq));
  }
  std::vector<md::ArtifactAndEvent> members;
  for (md::Artifact& a : artifacts) {
    md::ArtifactAndEvent ae;
    if (publish && Within(a.uri, c.staging_root)) {
      // Written in staging, renamed into place since: point the record at the final path.
      a.uri = final_root + a.uri.substr(c.staging_root.size());
      for (const Output& o : c.outputs) {
        if (a.uri == o.uri || Within(a.uri, o.uri) || Within(o.uri, a.uri)) {
          a.custom_properties["content_fingerprint"] = o.fingerprint;
        }
      }
      ae.artifact = std::move(a);
    } else {
      ae.artifact.id = a.id;  // unchanged; attributed to the run
    }
    members.push_back(std::move(ae));
  }
  e.custom_properties["component"] = c.component;
  e.custom_properties["run"] = run_id_;
  e.custom_properties["exit_code"] = static_cast<int64_t>(c.exit_code);
  e.custom_properties["attempts"] = static_cast<int64_t>(c.attempts);
  if (!c.cache_key.empty()) e.custom_properties[kCacheKeyProperty] = c.cache_key;
  for (const Output& o : c.outputs) {
    e.custom_properties[OutputKey(o.name)] = o.uri;
    e.custom_properties[FingerprintKey(o.name)] = o.fingerprint;
  }
  KILN_ASSIGN_OR_RETURN(auto r, store_->PutExecution(e, members, Contexts(c.component)));
  return r.execution_id;
}

absl::StatusOr<int64_t> RunRecords::RecordByRunner(const Completion& c, md::ExecutionState state,
                                                   md::Properties extra) {
  md::Recorder recorder(store_.get());
  md::ExecutionRecord r;
  r.type = c.execution_type;
  r.pipeline = pipeline_;
  r.run = run_id_;
  r.component = c.component;
  r.state = state;
  r.parameters = c.parameters;
  r.parameters["component"] = c.component;
  r.parameters["run"] = run_id_;
  r.parameters["exit_code"] = static_cast<int64_t>(c.exit_code);
  r.parameters["attempts"] = static_cast<int64_t>(c.attempts);
  for (auto& [k, v] : extra) r.parameters[k] = std::move(v);
  for (const Input& in : c.inputs) {
    KILN_ASSIGN_OR_RETURN(int64_t id, NewestAt(in.uri));
    if (id == 0) {
      md::Artifact a;
      a.type = in.type.empty() ? "Artifact" : in.type;
      a.uri = in.uri;
      KILN_ASSIGN_OR_RETURN(id, recorder.RegisterExternal(a));
    }
    r.inputs.emplace_back(in.role, id);
  }
  for (const Output& o : c.outputs) {
    md::Artifact a;
    a.type = o.artifact_type;
    a.uri = o.uri;
    a.custom_properties["content_fingerprint"] = o.fingerprint;
    r.outputs.emplace_back(o.name, std::move(a));
    r.parameters[OutputKey(o.name)] = o.uri;
    r.parameters[FingerprintKey(o.name)] = o.fingerprint;
  }
  KILN_ASSIGN_OR_RETURN(auto recorded, recorder.Record(r));
  return recorded.execution_id;
}

absl::StatusOr<int64_t> RunRecords::RecordCompleted(const Completion& c) {
  if (c.adopt) {
    KILN_ASSIGN_OR_RETURN(auto own, FindOwnRecord(c));
    if (own) return Adopt(c, std::move(*own), /*publish=*/true);
  }
  md::Properties extra;
  if (!c.cache_key.empty()) extra[kCacheKeyProperty] = c.cache_key;
  return RecordByRunner(c, md::ExecutionState::kComplete, std::move(extra));
}

absl::StatusOr<int64_t> RunRecords::RecordFailed(const Completion& c, const std::string& reason) {
  Completion failed = c;
  failed.outputs.clear();
  failed.cache_key.clear();  // a failure is never reused
  if (c.adopt) {
    KILN_ASSIGN_OR_RETURN(auto own, FindOwnRecord(c));
    if (own) {
      own->state = md::ExecutionState::kFailed;
      own->custom_properties["reason"] = reason;
      // Its outputs stay in staging and are not rewritten: nothing trusts them.
      return Adopt(failed, std::move(*own), /*publish=*/false);
    }
  }
  return RecordByRunner(failed, md::ExecutionState::kFailed, {{"reason", reason}});
}

absl::StatusOr<int64_t> RunRecords::ContextId(const std::string& type, const std::string& name) {
  md::Query q;
  q.type = type;
  q.name = name;
  auto found = store_->GetContexts(q);
  if (absl::IsNotFound(found.status())) return 0;
  KILN_RETURN_IF_ERROR(found.status());
  return found->empty() ? 0 : (*found)[0].id;
}

absl::StatusOr<std::optional<RunRecords::CachedOutput>> RunRecords::FindPrevious(
    const std::string& component, const std::string& output, const std::string& current_fingerprint,
    const Verify& verify) {
  KILN_ASSIGN_OR_RETURN(int64_t context, ContextId("component", StrCat(pipeline_, ".", component)));
  if (context == 0) return std::nullopt;
  md::Query q;
  q.context_id = context;
  KILN_ASSIGN_OR_RETURN(q.created_until_ms, EarlierThan());
  q.newest_first = true;
  q.limit = 64;
  KILN_ASSIGN_OR_RETURN(auto found, store_->GetExecutions(q));
  for (const md::Execution& e : found) {
    if (e.state != md::ExecutionState::kComplete) continue;
    CachedOutput o{StringProperty(e.custom_properties, OutputKey(output)),
                   StringProperty(e.custom_properties, FingerprintKey(output))};
    if (o.uri.empty() || o.fingerprint.empty() || o.fingerprint == current_fingerprint) continue;
    const std::string run = StringProperty(e.custom_properties, "run");
    if (!run.empty() && run != run_id_) {
      md::Query rq;
      rq.type = "pipeline_run";
      rq.name = run;
      KILN_ASSIGN_OR_RETURN(auto runs, store_->GetContexts(rq));
      // Run ids are per pipeline: another pipeline's run of that name says nothing.
      const std::string state =
          runs.empty() || StringProperty(runs[0].custom_properties, "pipeline") != pipeline_
              ? ""
              : StringProperty(runs[0].custom_properties, "state");
      if (state == "stopped" || state == "failed") continue;
    }
    if (verify(o.uri, o.fingerprint)) return o;
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<RunRecords::CachedOutput>> RunRecords::FindBlessedModel(
    const std::string& candidate_fingerprint, const FingerprintFn& fingerprint) {
  KILN_ASSIGN_OR_RETURN(int64_t context, ContextId("pipeline", pipeline_));
  if (context == 0) return std::nullopt;
  md::Query q;
  q.type = "Evaluator";
  q.context_id = context;
  KILN_ASSIGN_OR_RETURN(q.created_until_ms, EarlierThan());
  q.newest_first = true;
  q.limit = 64;
  auto found = store_->GetExecutions(q);
  if (absl::IsNotFound(found.status())) return std::nullopt;  // never evaluated
  KILN_RETURN_IF_ERROR(found.status());
  std::set<int64_t> seen;
  for (const md::Execution& e : *found) {
    if (e.state != md::ExecutionState::kComplete ||
        IntProperty(e.custom_properties, "exit_code", -1) != 0) {
      continue;
    }
    KILN_ASSIGN_OR_RETURN(auto events, store_->GetEventsByExecutionIds({e.id}));
    for (const md::Event& ev : events) {
      if (ev.type != md::EventType::kInput || ev.path != "model") continue;
      if (!seen.insert(ev.artifact_id).second) continue;
      KILN_ASSIGN_OR_RETURN(md::Artifact model, store_->GetArtifact(ev.artifact_id));
      auto f = fingerprint(model.uri);
      if (!f.ok() || *f == candidate_fingerprint) continue;  // gone, or the candidate itself
      return CachedOutput{model.uri, *f};
    }
  }
  return std::nullopt;
}

absl::StatusOr<int64_t> RunRecords::RecordApproval(const std::string& user, const std::string& host,
                                                   const std::string& note) {
  md::Recorder recorder(store_.get());
  md::ExecutionRecord r;
  r.type = kApprovalType;
  r.pipeline = pipeline_;
  r.run = run_id_;
  r.state = md::ExecutionState::kComplete;
  r.parameters["run"] = run_id_;
  r.parameters["user"] = user;
  r.parameters["host"] = host;
  if (!note.empty()) r.parameters["note"] = note;
  KILN_ASSIGN_OR_RETURN(auto recorded, recorder.Record(r));
  return recorded.execution_id;
}

absl::StatusOr<bool> RunRecords::Approved() {
  KILN_ASSIGN_OR_RETURN(int64_t context, ContextId("pipeline", pipeline_));
  if (context == 0) return false;
  md::Query q;
  q.type = kApprovalType;
  q.context_id = context;  // run ids are per pipeline
  q.property = std::make_pair(std::string("run"), md::Value(run_id_));
  q.limit = 1;
  auto found = store_->GetExecutions(q);
  if (absl::IsNotFound(found.status())) return false;  // the type was never recorded
  KILN_RETURN_IF_ERROR(found.status());
  for (const md::Execution& e : *found) {
    if (e.state == md::ExecutionState::kComplete) return true;
  }
  return false;
}

absl::StatusOr<std::optional<int64_t>> RunRecords::EarlierThan() {
  if (earlier_than_) return earlier_than_;  // fixed once the run has started
  md::Query q;
  q.type = "pipeline_run";
  q.name = run_id_;
  KILN_ASSIGN_OR_RETURN(auto found, store_->GetContexts(q));
  for (const md::Context& c : found) {
    if (StringProperty(c.custom_properties, "pipeline") == pipeline_) {
      earlier_than_ = c.create_time_ms;
      return earlier_than_;
    }
  }
  return std::nullopt;  // not started (RecordRunStart): everything recorded so far is earlier
}

absl::Status RunRecords::RecordRunStart(const std::string& run_dir, int64_t started_ms) {
  md::Query q;
  q.type = "pipeline_run";
  q.name = run_id_;
  KILN_ASSIGN_OR_RETURN(auto found, store_->GetContexts(q));
  md::Context c;
  if (!found.empty()) {
    c = found[0];
    const std::string owner = StringProperty(c.custom_properties, "pipeline");
    if (!owner.empty() && owner != pipeline_) return absl::OkStatus();  // another pipeline's id
  } else {
    c.type = "pipeline_run";
    c.name = run_id_;
  }
  c.custom_properties["pipeline"] = pipeline_;
  c.custom_properties["run_dir"] = run_dir;
  c.custom_properties["state"] = std::string("running");
  if (!c.custom_properties.count("started_ms")) c.custom_properties["started_ms"] = started_ms;
  return store_->PutContexts({c}).status();
}

absl::Status RunRecords::RecordRunState(const std::string& state) {
  md::Query q;
  q.type = "pipeline_run";
  q.name = run_id_;
  KILN_ASSIGN_OR_RETURN(auto found, store_->GetContexts(q));
  if (found.empty()) return absl::OkStatus();
  md::Context c = found[0];
  const std::string owner = StringProperty(c.custom_properties, "pipeline");
  if (!owner.empty() && owner != pipeline_) return absl::OkStatus();  // another pipeline's id
  c.custom_properties["state"] = state;
  c.custom_properties["pipeline"] = pipeline_;
  return store_->PutContexts({c}).status();
}

std::pair<int64_t, int64_t> RunRecords::ContextIds() {
  auto id = [&](const char* type, const std::string& name) -> int64_t {
    md::Query q;
    q.type = type;
    q.name = name;
    auto found = store_->GetContexts(q);
    return found.ok() && !found->empty() ? (*found)[0].id : 0;
  };
  return {id("pipeline", pipeline_), id("pipeline_run", run_id_)};
}

}  // namespace kiln::pipeline
