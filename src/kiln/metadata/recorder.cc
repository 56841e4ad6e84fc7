#include "kiln/metadata/recorder.h"

#include <pwd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "kiln/base/build_info.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::metadata {
namespace {

// Where and by what this process runs; the same for every record it makes, so it is
// worked out once (getpwuid reads /etc/passwd on every call).
const Properties& Provenance() {
  static const Properties* const provenance = [] {
    auto* p = new Properties;
    (*p)["kiln_version"] = std::string(KilnVersion());
    (*p)["git_sha"] = std::string(GitSha());
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) == 0) (*p)["env.host"] = std::string(host);
    struct utsname u;
    if (uname(&u) == 0) (*p)["env.os"] = StrCat(u.sysname, " ", u.release, " ", u.machine);
    if (const struct passwd* pw = getpwuid(geteuid())) (*p)["env.user"] = std::string(pw->pw_name);
    return p;
  }();
  return *provenance;
}

Context NamedContext(std::string type, std::string name) {
  Context c;
  c.type = std::move(type);
  c.name = std::move(name);
  return c;
}

}  // namespace

absl::Status Recorder::EnsureType(TypeKind kind, const std::string& name) {
  if (name.empty()) {
    return absl::InvalidArgumentError(StrCat("a recorded ", TypeKindName(kind), " needs a type"));
  }
  if (store_->GetType(kind, name).ok()) return absl::OkStatus();
  Type t;
  t.kind = kind;
  t.name = name;
  return store_->PutType(t).status();
}

absl::Status Recorder::EnsureArtifactType(const Artifact& a) {
  if (a.type.empty()) return absl::InvalidArgumentError("a recorded artifact needs a type");
  auto existing = store_->GetType(TypeKind::kArtifact, a.type);
  bool complete = existing.ok();
  if (complete) {
    for (const auto& [name, value] : a.properties) {
      auto it = existing->properties.find(name);
      if (it == existing->properties.end()) {
        complete = false;
      } else if (it->second != TypeOf(value)) {
        return absl::InvalidArgumentError(StrCat(
            "artifact type '", a.type, "': property '", name, "' was first recorded as ",
            PropertyTypeName(it->second), ", now given a ", PropertyTypeName(TypeOf(value))));
      }
    }
  }
  if (complete) return absl::OkStatus();
  Type t;
  t.kind = TypeKind::kArtifact;
  t.name = a.type;
  for (const auto& [name, value] : a.properties) t.properties[name] = TypeOf(value);
  return store_->PutType(t).status();
}

absl::StatusOr<RecordedExecution> Recorder::Record(const ExecutionRecord& record) {
  if (record.type.empty()) return absl::InvalidArgumentError("a recorded execution needs a type");
  for (const auto& [role, artifact] : record.outputs) {
    if (artifact.type.empty()) {
      return absl::InvalidArgumentError("a recorded artifact needs a type");
    }
  }
  if (record.pipeline.empty() && !record.run.empty()) {
    return absl::InvalidArgumentError("a run id needs a pipeline name");
  }
  Execution e;
  e.type = record.type;
  e.name = record.name;
  e.state = record.state;
  e.custom_properties = Provenance();
  for (const auto& [k, v] : record.parameters) e.custom_properties[k] = v;

  std::vector<ArtifactAndEvent> artifacts;
  for (const auto& [role, id] : record.inputs) {
    ArtifactAndEvent ae;
    ae.artifact.id = id;
    ae.event = EventType::kInput;
    ae.path = role;
    artifacts.push_back(std::move(ae));
  }
  for (const auto& [role, artifact] : record.outputs) {
    ArtifactAndEvent ae;
    ae.artifact = artifact;
    ae.artifact.id = 0;
    ae.event = EventType::kOutput;
    ae.path = role;
    artifacts.push_back(std::move(ae));
  }
  std::vector<Context> contexts;
  if (!record.pipeline.empty()) {
    contexts.push_back(NamedContext("pipeline", record.pipeline));
    contexts.push_back(NamedContext(
        "component",
        StrCat(record.pipeline, ".", record.component.empty() ? record.type : record.component)));
    if (!record.run.empty()) contexts.push_back(NamedContext("pipeline_run", record.run));
  }
  // The types are registered on first use. Checking them before every write would cost
  // a read transaction per type (six for a pipeline execution with two outputs), so the
  // write goes first; only when it fails for want of a type or a declared property
  // (kNotFound, kInvalidArgument) are the types ensured and the write tried once more.
  // A failed write leaves nothing behind, and ensuring reports mistyped properties.
  auto ensure_types = [&]() -> absl::Status {
    KILN_RETURN_IF_ERROR(EnsureType(TypeKind::kExecution, record.type));
    for (const auto& [role, artifact] : record.outputs) {
      KILN_RETURN_IF_ERROR(EnsureArtifactType(artifact));
    }
    if (!record.pipeline.empty()) {
      KILN_RETURN_IF_ERROR(EnsureType(TypeKind::kContext, "pipeline"));
      KILN_RETURN_IF_ERROR(EnsureType(TypeKind::kContext, "component"));
      if (!record.run.empty()) KILN_RETURN_IF_ERROR(EnsureType(TypeKind::kContext, "pipeline_run"));
    }
    return absl::OkStatus();
  };
  auto r = store_->PutExecution(e, artifacts, contexts);
  if (absl::IsNotFound(r.status()) || absl::IsInvalidArgument(r.status())) {
    KILN_RETURN_IF_ERROR(ensure_types());
    r = store_->PutExecution(e, artifacts, contexts);
  }
  KILN_RETURN_IF_ERROR(r.status());
  RecordedExecution out;
  out.execution_id = r->execution_id;
  out.output_ids.assign(r->artifact_ids.begin() + record.inputs.size(), r->artifact_ids.end());
  return out;
}

absl::StatusOr<int64_t> Recorder::RegisterExternal(const Artifact& artifact) {
  KILN_RETURN_IF_ERROR(EnsureArtifactType(artifact));
  Query q;
  q.type = artifact.type;
  q.uri = artifact.uri;
  q.newest_first = true;
  KILN_ASSIGN_OR_RETURN(auto same_uri, store_->GetArtifacts(q));
  for (const Artifact& a : same_uri) {
    if (a.properties == artifact.properties && a.custom_properties == artifact.custom_properties &&
        a.name == artifact.name) {
      return a.id;
    }
  }
  Artifact fresh = artifact;
  fresh.id = 0;
  KILN_ASSIGN_OR_RETURN(auto ids, store_->PutArtifacts({fresh}));
  return ids[0];
}

}  // namespace kiln::metadata
