#include "kiln/metadata/metadata_store.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::metadata {

MetadataStore::MetadataStore(std::unique_ptr<Backend> backend, StoreOptions options)
    : backend_(std::move(backend)),
      options_(std::move(options)),
      executor_(backend_.get()),
      mao_(&executor_, [env = options_.env] { return env->NowMicros() / 1000; }) {}

absl::StatusOr<std::unique_ptr<MetadataStore>> MetadataStore::Create(
    std::unique_ptr<Backend> backend, StoreOptions options) {
  if (!backend) return absl::InvalidArgumentError("no backend");
  if (options.schema_version_for_testing < 1 ||
      options.schema_version_for_testing > kSchemaVersion) {
    return absl::InvalidArgumentError("schema_version_for_testing out of range");
  }
  std::unique_ptr<MetadataStore> store(new MetadataStore(std::move(backend), std::move(options)));
  KILN_RETURN_IF_ERROR(store->Open());
  return store;
}

absl::Status MetadataStore::Open() {
  const int target = options_.schema_version_for_testing;
  // Look before touching anything: a database that is not ours, or is newer than this
  // kiln, must be left exactly as it was.
  KILN_ASSIGN_OR_RETURN(std::optional<int> version, executor_.SchemaVersion());
  if (!version) {
    KILN_ASSIGN_OR_RETURN(std::vector<std::string> tables, backend_->ListTables());
    if (!tables.empty()) {
      if (tables.size() > 5) {
        tables.resize(5);
        tables.push_back("...");
      }
      return absl::FailedPreconditionError(
          StrCat(Describe(), " is not a kiln metadata store: it holds other tables (",
                 StrJoin(tables, ", "),
                 "); kiln initialises only an empty database. Point --metadata "
                 "at a new file or an empty database."));
    }
  }
  auto check_newer = [&](int v) -> absl::Status {
    if (v > kSchemaVersion) {
      return absl::FailedPreconditionError(
          StrCat(Describe(), " has metadata schema version ", v, ", newer than this kiln (",
                 "schema version ", kSchemaVersion,
                 ") understands; a newer kiln wrote it. Upgrade kiln to use this store; it "
                 "was not changed."));
    }
    return absl::OkStatus();
  };
  if (version) KILN_RETURN_IF_ERROR(check_newer(*version));
  KILN_RETURN_IF_ERROR(backend_->Prepare());
  if (version && *version >= target) {
    schema_version_ = *version;
    return absl::OkStatus();
  }
  // Initialise or migrate under the write lock; another process may have done it
  // between our look and the lock, so look again inside.
  return Transaction(true, [&]() -> absl::Status {
    KILN_RETURN_IF_ERROR(executor_.LockSchema());
    KILN_ASSIGN_OR_RETURN(std::optional<int> now, executor_.SchemaVersion());
    int from = now.value_or(0);
    KILN_RETURN_IF_ERROR(check_newer(from));
    if (from < target) KILN_RETURN_IF_ERROR(executor_.Migrate(from, target));
    schema_version_ = std::max(from, target);
    return absl::OkStatus();
  });
}

absl::Status MetadataStore::Transaction(bool write, const std::function<absl::Status()>& fn) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.busy_deadline_ms);
  std::minstd_rand jitter(static_cast<unsigned>(Clock::now().time_since_epoch().count()));
  int backoff_ms = 1;
  for (int attempt = 1;; ++attempt) {
    absl::Status s = backend_->Begin(write);
    if (s.ok()) s = fn();
    if (s.ok() && write && options_.before_commit_for_testing) {
      options_.before_commit_for_testing();
    }
    if (s.ok()) s = backend_->Commit();
    if (s.ok()) return s;
    backend_->Rollback();
    mao_.ClearCache();
    if (!absl::IsUnavailable(s)) return s;
    if (Clock::now() >= deadline) {
      return absl::UnavailableError(StrCat(Describe(), ": still busy after ", attempt,
                                           " attempts over ", options_.busy_deadline_ms / 1000,
                                           " s (other processes hold the lock): ", s.message()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1 + jitter() % backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, 100);
  }
}

absl::StatusOr<int64_t> MetadataStore::PutType(const Type& type) {
  return InTransaction<int64_t>(true, [&] { return mao_.PutType(type); });
}

absl::StatusOr<Type> MetadataStore::GetType(TypeKind kind, const std::string& name) {
  return InTransaction<Type>(false, [&] { return mao_.GetType(kind, name); });
}

absl::StatusOr<std::vector<Type>> MetadataStore::GetTypes(TypeKind kind) {
  return InTransaction<std::vector<Type>>(false, [&] { return mao_.GetTypes(kind); });
}

namespace {

// Runs put(node) for every node and collects the ids.
template <typename T, typename Put>
absl::StatusOr<std::vector<int64_t>> PutAll(const std::vector<T>& nodes, Put put) {
  std::vector<int64_t> ids;
  for (const T& n : nodes) {
    KILN_ASSIGN_OR_RETURN(int64_t id, put(n));
    ids.push_back(id);
  }
  return ids;
}

// The single node with `id` from a query result.
template <typename T>
absl::StatusOr<T> One(absl::StatusOr<std::vector<T>> found, std::string_view kind, int64_t id) {
  if (!found.ok()) return found.status();
  if (found->empty()) return absl::NotFoundError(StrCat("no ", kind, " with id ", id));
  return std::move(found->front());
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> MetadataStore::PutArtifacts(
    const std::vector<Artifact>& artifacts) {
  return InTransaction<std::vector<int64_t>>(true, [&] {
    return PutAll(artifacts, [&](const Artifact& n) { return mao_.PutArtifact(n); });
  });
}

absl::StatusOr<std::vector<int64_t>> MetadataStore::PutExecutions(
    const std::vector<Execution>& executions) {
  return InTransaction<std::vector<int64_t>>(true, [&] {
    return PutAll(executions, [&](const Execution& n) { return mao_.PutExecution(n); });
  });
}

absl::StatusOr<std::vector<int64_t>> MetadataStore::PutContexts(
    const std::vector<Context>& contexts) {
  return InTransaction<std::vector<int64_t>>(
      true, [&] { return PutAll(contexts, [&](const Context& n) { return mao_.PutContext(n); }); });
}

absl::StatusOr<std::vector<Artifact>> MetadataStore::GetArtifacts(const Query& query) {
  return InTransaction<std::vector<Artifact>>(false, [&] { return mao_.FindArtifacts(query); });
}

absl::StatusOr<std::vector<Execution>> MetadataStore::GetExecutions(const Query& query) {
  return InTransaction<std::vector<Execution>>(false, [&] { return mao_.FindExecutions(query); });
}

absl::StatusOr<std::vector<Context>> MetadataStore::GetContexts(const Query& query) {
  return InTransaction<std::vector<Context>>(false, [&] { return mao_.FindContexts(query); });
}

absl::StatusOr<Artifact> MetadataStore::GetArtifact(int64_t id) {
  Query q;
  q.ids = {id};
  return One(GetArtifacts(q), "artifact", id);
}

absl::StatusOr<Execution> MetadataStore::GetExecution(int64_t id) {
  Query q;
  q.ids = {id};
  return One(GetExecutions(q), "execution", id);
}

absl::StatusOr<Context> MetadataStore::GetContext(int64_t id) {
  Query q;
  q.ids = {id};
  return One(GetContexts(q), "context", id);
}

absl::Status MetadataStore::PutEvents(const std::vector<Event>& events) {
  return Transaction(true, [&]() -> absl::Status { return mao_.PutEvents(events); });
}

absl::StatusOr<std::vector<Event>> MetadataStore::GetEventsByArtifactIds(
    const std::vector<int64_t>& ids) {
  return InTransaction<std::vector<Event>>(false, [&] { return mao_.EventsOfArtifacts(ids); });
}

absl::StatusOr<std::vector<Event>> MetadataStore::GetEventsByExecutionIds(
    const std::vector<int64_t>& ids) {
  return InTransaction<std::vector<Event>>(false, [&] { return mao_.EventsOfExecutions(ids); });
}

absl::Status MetadataStore::PutAttributionsAndAssociations(
    const std::vector<std::pair<int64_t, int64_t>>& attributions,
    const std::vector<std::pair<int64_t, int64_t>>& associations) {
  return Transaction(true, [&]() -> absl::Status {
    KILN_RETURN_IF_ERROR(mao_.PutMemberships(TypeKind::kArtifact, attributions));
    return mao_.PutMemberships(TypeKind::kExecution, associations);
  });
}

absl::StatusOr<std::vector<Context>> MetadataStore::ContextsOf(TypeKind kind, int64_t node_id) {
  return InTransaction<std::vector<Context>>(false, [&]() -> absl::StatusOr<std::vector<Context>> {
    Query q;
    KILN_ASSIGN_OR_RETURN(q.ids, mao_.ContextsOf(kind, node_id));
    if (q.ids.empty()) return std::vector<Context>();
    return mao_.FindContexts(q);
  });
}

absl::StatusOr<std::vector<Context>> MetadataStore::GetContextsOfArtifact(int64_t artifact_id) {
  return ContextsOf(TypeKind::kArtifact, artifact_id);
}

absl::StatusOr<std::vector<Context>> MetadataStore::GetContextsOfExecution(int64_t execution_id) {
  return ContextsOf(TypeKind::kExecution, execution_id);
}

absl::StatusOr<PutExecutionResult> MetadataStore::PutExecution(
    const Execution& execution, const std::vector<ArtifactAndEvent>& artifacts,
    const std::vector<Context>& contexts) {
  return InTransaction<PutExecutionResult>(true, [&]() -> absl::StatusOr<PutExecutionResult> {
    PutExecutionResult result;
    KILN_ASSIGN_OR_RETURN(result.execution_id, mao_.PutExecution(execution));
    std::vector<Event> events;
    for (const ArtifactAndEvent& ae : artifacts) {
      int64_t id = ae.artifact.id;
      if (id != 0 && ae.artifact.type.empty()) {
        KILN_RETURN_IF_ERROR(mao_.CheckExists(TypeKind::kArtifact, id));
      } else {
        KILN_ASSIGN_OR_RETURN(id, mao_.PutArtifact(ae.artifact));
      }
      result.artifact_ids.push_back(id);
      if (ae.event) {
        events.push_back({.artifact_id = id,
                          .execution_id = result.execution_id,
                          .type = *ae.event,
                          .path = ae.path});
      }
    }
    // Both ends of every event were written or checked above, in this transaction.
    KILN_RETURN_IF_ERROR(mao_.PutEventsOfKnownNodes(std::move(events)));
    std::vector<std::pair<int64_t, int64_t>> attributions, associations;
    for (const Context& c : contexts) {
      KILN_ASSIGN_OR_RETURN(int64_t cid, mao_.GetOrCreateContext(c));
      result.context_ids.push_back(cid);
      associations.emplace_back(cid, result.execution_id);
      for (int64_t aid : result.artifact_ids) attributions.emplace_back(cid, aid);
    }
    KILN_RETURN_IF_ERROR(mao_.PutMemberships(TypeKind::kExecution, associations));
    KILN_RETURN_IF_ERROR(mao_.PutMemberships(TypeKind::kArtifact, attributions));
    return result;
  });
}

absl::StatusOr<LineageGraph> MetadataStore::GetLineage(int64_t artifact_id,
                                                       const LineageOptions& options) {
  return InTransaction<LineageGraph>(false, [&] { return mao_.Lineage(artifact_id, options); });
}

absl::StatusOr<ModelDiff> MetadataStore::Diff(int64_t model_a, int64_t model_b) {
  LineageOptions upstream;
  upstream.direction = LineageDirection::kUpstream;
  upstream.max_hops = 10;
  LineageGraph a, b;
  KILN_RETURN_IF_ERROR(Transaction(false, [&]() -> absl::Status {
    KILN_ASSIGN_OR_RETURN(a, mao_.Lineage(model_a, upstream));
    KILN_ASSIGN_OR_RETURN(b, mao_.Lineage(model_b, upstream));
    return absl::OkStatus();
  }));
  return DiffLineage(model_a, a, model_b, b);
}

namespace {

// Flattens what made `model` into category -> key -> value.
using Facts = std::map<std::pair<std::string, std::string>, std::string>;

void AddProperties(Facts* facts, const std::string& category, const std::string& prefix,
                   const Properties& props) {
  for (const auto& [name, value] : props) {
    (*facts)[{category, prefix + name}] = ValueToString(value);
  }
}

std::string_view ClassifyExecutionProperty(std::string_view name) {
  if (name == "kiln_version" || name == "git_sha" || name.starts_with("code.")) return "code";
  if (name.starts_with("env.")) return "environment";
  return "parameter";
}

Facts FactsOf(int64_t model, const LineageGraph& g) {
  std::map<int64_t, const Artifact*> artifacts;
  for (const Artifact& a : g.artifacts) artifacts[a.id] = &a;
  std::map<int64_t, const Execution*> executions;
  for (const Execution& e : g.executions) executions[e.id] = &e;
  // The latest execution that output each artifact, and each execution's inputs.
  std::map<int64_t, int64_t> producer;
  std::map<int64_t, std::vector<const Event*>> inputs;
  for (const Event& e : g.events) {
    if (e.type == EventType::kOutput) {
      producer[e.artifact_id] = std::max(producer[e.artifact_id], e.execution_id);
    } else if (e.type == EventType::kInput) {
      inputs[e.execution_id].push_back(&e);
    }
  }
  Facts facts;
  if (auto it = artifacts.find(model); it != artifacts.end()) {
    facts[{"model", "type"}] = it->second->type;
    AddProperties(&facts, "model", "", it->second->properties);
    AddProperties(&facts, "model", "", it->second->custom_properties);
  }
  auto p = producer.find(model);
  if (p == producer.end()) return facts;
  if (const Execution* e = executions[p->second]) {
    facts[{"parameter", "component"}] = e->type;
    for (const Properties* props : {&e->properties, &e->custom_properties}) {
      for (const auto& [name, value] : *props) {
        facts[{std::string(ClassifyExecutionProperty(name)), name}] = ValueToString(value);
      }
    }
  }
  // Inputs, walked upstream breadth first; keys are role paths ("examples",
  // "examples/raw") so the same role lines up across the two models.
  std::vector<std::pair<int64_t, std::string>> frontier = {{p->second, ""}};
  std::map<int64_t, bool> visited = {{p->second, true}};
  while (!frontier.empty()) {
    std::vector<std::pair<int64_t, std::string>> next;
    for (const auto& [execution, prefix] : frontier) {
      std::map<std::string, int> seen_paths;
      for (const Event* in : inputs[execution]) {
        std::string role = in->path.empty() ? "input" : in->path;
        int n = seen_paths[role]++;
        if (n > 0) role = StrCat(role, "[", n, "]");
        std::string key = prefix.empty() ? role : StrCat(prefix, "/", role);
        auto a = artifacts.find(in->artifact_id);
        if (a == artifacts.end()) continue;
        facts[{"input", key + ".uri"}] = a->second->uri;
        AddProperties(&facts, "input", key + ".", a->second->properties);
        AddProperties(&facts, "input", key + ".", a->second->custom_properties);
        auto up = producer.find(in->artifact_id);
        if (up != producer.end() && visited.emplace(up->second, true).second) {
          next.emplace_back(up->second, key);
        }
      }
    }
    frontier = std::move(next);
  }
  return facts;
}

}  // namespace

ModelDiff DiffLineage(int64_t model_a, const LineageGraph& a, int64_t model_b,
                      const LineageGraph& b) {
  ModelDiff diff;
  diff.a = model_a;
  diff.b = model_b;
  Facts fa = FactsOf(model_a, a);
  Facts fb = FactsOf(model_b, b);
  auto ia = fa.begin();
  auto ib = fb.begin();
  while (ia != fa.end() || ib != fb.end()) {
    if (ib == fb.end() || (ia != fa.end() && ia->first < ib->first)) {
      diff.differences.push_back({ia->first.first, ia->first.second, ia->second, std::nullopt});
      ++ia;
    } else if (ia == fa.end() || ib->first < ia->first) {
      diff.differences.push_back({ib->first.first, ib->first.second, std::nullopt, ib->second});
      ++ib;
    } else {
      if (ia->second == ib->second) {
        ++diff.same;
      } else {
        diff.differences.push_back({ia->first.first, ia->first.second, ia->second, ib->second});
      }
      ++ia;
      ++ib;
    }
  }
  return diff;
}

}  // namespace kiln::metadata
