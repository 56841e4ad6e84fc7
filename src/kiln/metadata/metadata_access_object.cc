#include "kiln/metadata/metadata_access_object.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <type_traits>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::metadata {
namespace {

std::optional<std::string> NonEmpty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

}  // namespace

absl::StatusOr<const Type*> MetadataAccessObject::TypeById(int64_t id) {
  auto it = types_by_id_.find(id);
  if (it != types_by_id_.end()) return &it->second;
  KILN_ASSIGN_OR_RETURN(std::optional<Type> t, executor_->SelectTypeById(id));
  if (!t) return absl::NotFoundError(StrCat("no type with id ", id));
  type_ids_[{t->kind, t->name}] = id;
  return &(types_by_id_[id] = std::move(*t));
}

absl::StatusOr<const Type*> MetadataAccessObject::TypeByName(TypeKind kind,
                                                             const std::string& name) {
  auto it = type_ids_.find({kind, name});
  if (it != type_ids_.end()) return TypeById(it->second);
  KILN_ASSIGN_OR_RETURN(std::optional<Type> t, executor_->SelectType(kind, name));
  if (!t) {
    return absl::NotFoundError(StrCat("unknown ", TypeKindName(kind), " type '", name,
                                      "' (register it with PutType first)"));
  }
  int64_t id = t->id;
  type_ids_[{kind, name}] = id;
  types_by_id_[id] = std::move(*t);
  return &types_by_id_[id];
}

absl::StatusOr<int64_t> MetadataAccessObject::PutType(const Type& type) {
  if (type.name.empty()) return absl::InvalidArgumentError("a type needs a name");
  for (const auto& [name, t] : type.properties) {
    if (name.empty()) {
      return absl::InvalidArgumentError(StrCat("type '", type.name, "': empty property name"));
    }
    if (t == PropertyType::kUnknown) {
      return absl::InvalidArgumentError(
          StrCat("type '", type.name, "': property '", name, "' has no data type"));
    }
  }
  KILN_ASSIGN_OR_RETURN(std::optional<Type> existing, executor_->SelectType(type.kind, type.name));
  int64_t id;
  if (existing) {
    id = existing->id;
    for (const auto& [name, t] : type.properties) {
      auto it = existing->properties.find(name);
      if (it != existing->properties.end() && it->second != t) {
        return absl::AlreadyExistsError(
            StrCat(TypeKindName(type.kind), " type '", type.name, "' already has property '", name,
                   "' of type ", PropertyTypeName(it->second), ", not ", PropertyTypeName(t)));
      }
    }
  } else {
    KILN_ASSIGN_OR_RETURN(id, executor_->InsertType(type));
  }
  for (const auto& [name, t] : type.properties) {
    if (!existing || !existing->properties.count(name)) {
      KILN_RETURN_IF_ERROR(executor_->InsertTypeProperty(id, name, t));
    }
  }
  types_by_id_.erase(id);
  type_ids_.erase({type.kind, type.name});
  return id;
}

absl::StatusOr<Type> MetadataAccessObject::GetType(TypeKind kind, const std::string& name) {
  KILN_ASSIGN_OR_RETURN(const Type* t, TypeByName(kind, name));
  return *t;
}

absl::StatusOr<std::vector<Type>> MetadataAccessObject::GetTypes(TypeKind kind) {
  return executor_->SelectTypes(kind);
}

absl::StatusOr<int64_t> MetadataAccessObject::PutNode(TypeKind kind, const std::string& type,
                                                      NodeRow row, const Properties& properties,
                                                      const Properties& custom) {
  if (type.empty()) {
    return absl::InvalidArgumentError(StrCat("an ", TypeKindName(kind), " needs a type name"));
  }
  KILN_ASSIGN_OR_RETURN(const Type* t, TypeByName(kind, type));
  row.type_id = t->id;
  for (const auto& [name, value] : properties) {
    auto it = t->properties.find(name);
    if (it == t->properties.end()) {
      return absl::InvalidArgumentError(
          StrCat(TypeKindName(kind), " type '", type, "' has no property '", name,
                 "' (declare it in the type, or record it as a custom property)"));
    }
    if (it->second != TypeOf(value)) {
      return absl::InvalidArgumentError(StrCat(TypeKindName(kind), " type '", type, "': property '",
                                               name, "' is ", PropertyTypeName(it->second),
                                               ", got a ", PropertyTypeName(TypeOf(value))));
    }
  }
  int64_t now = now_ms_();
  row.update_time_ms = now;
  std::string what = StrCat(TypeKindName(kind), " of type '", type, "'");
  if (row.id == 0) {
    row.create_time_ms = now;
    auto id = executor_->InsertNode(kind, row);
    if (absl::IsAlreadyExists(id.status())) {
      return absl::AlreadyExistsError(
          StrCat("an ", what, " named '", row.name.value_or(""), "' already exists"));
    }
    KILN_RETURN_IF_ERROR(id.status());
    row.id = *id;
  } else {
    NodeFilter f;
    f.ids = {row.id};
    KILN_ASSIGN_OR_RETURN(auto existing, executor_->SelectNodes(kind, f));
    if (existing.empty())
      return absl::NotFoundError(StrCat("no ", TypeKindName(kind), " ", row.id));
    if (existing[0].type_id != row.type_id) {
      return absl::InvalidArgumentError(
          StrCat(TypeKindName(kind), " ", row.id, " has another type; types cannot change"));
    }
    row.create_time_ms = existing[0].create_time_ms;
    absl::Status s = executor_->UpdateNode(kind, row);
    if (absl::IsAlreadyExists(s)) {
      return absl::AlreadyExistsError(
          StrCat("an ", what, " named '", row.name.value_or(""), "' already exists"));
    }
    KILN_RETURN_IF_ERROR(s);
    KILN_RETURN_IF_ERROR(executor_->DeleteProperties(kind, row.id));
  }
  std::vector<PropertyRow> rows;
  rows.reserve(properties.size() + custom.size());
  for (const auto& [name, value] : properties) rows.push_back({row.id, name, false, value});
  for (const auto& [name, value] : custom) {
    if (name.empty()) return absl::InvalidArgumentError("empty custom property name");
    rows.push_back({row.id, name, true, value});
  }
  KILN_RETURN_IF_ERROR(executor_->InsertProperties(kind, rows));
  return row.id;
}

absl::StatusOr<int64_t> MetadataAccessObject::PutArtifact(const Artifact& a) {
  NodeRow row;
  row.id = a.id;
  row.uri = a.uri;
  row.name = NonEmpty(a.name);
  row.state = static_cast<int>(a.state);
  return PutNode(TypeKind::kArtifact, a.type, row, a.properties, a.custom_properties);
}

absl::StatusOr<int64_t> MetadataAccessObject::PutExecution(const Execution& e) {
  NodeRow row;
  row.id = e.id;
  row.name = NonEmpty(e.name);
  row.state = static_cast<int>(e.state);
  return PutNode(TypeKind::kExecution, e.type, row, e.properties, e.custom_properties);
}

absl::StatusOr<int64_t> MetadataAccessObject::PutContext(const Context& c) {
  if (c.name.empty()) {
    return absl::InvalidArgumentError(StrCat("context of type '", c.type, "' needs a name"));
  }
  NodeRow row;
  row.id = c.id;
  row.name = c.name;
  return PutNode(TypeKind::kContext, c.type, row, c.properties, c.custom_properties);
}

absl::StatusOr<int64_t> MetadataAccessObject::GetOrCreateContext(const Context& c) {
  if (c.id != 0) return c.id;
  KILN_ASSIGN_OR_RETURN(const Type* t, TypeByName(TypeKind::kContext, c.type));
  NodeFilter f;
  f.type_id = t->id;
  f.name = c.name;
  KILN_ASSIGN_OR_RETURN(auto found, executor_->SelectNodes(TypeKind::kContext, f));
  if (!found.empty()) return found[0].id;
  return PutContext(c);
}

absl::StatusOr<std::vector<MetadataAccessObject::NodeData>> MetadataAccessObject::FindNodes(
    TypeKind kind, const Query& q) {
  NodeFilter f;
  if (!q.type.empty()) {
    auto t = TypeByName(kind, q.type);
    if (absl::IsNotFound(t.status())) return std::vector<NodeData>();
    KILN_RETURN_IF_ERROR(t.status());
    f.type_id = (*t)->id;
  }
  if (q.uri && kind != TypeKind::kArtifact) {
    return absl::InvalidArgumentError(StrCat(TypeKindName(kind), "s have no uri"));
  }
  f.name = q.name;
  f.uri = q.uri;
  f.context_id = q.context_id;
  f.property = q.property;
  f.created_from_ms = q.created_from_ms;
  f.created_until_ms = q.created_until_ms;
  f.ids = q.ids;
  f.newest_first = q.newest_first;
  f.limit = q.limit;
  KILN_ASSIGN_OR_RETURN(std::vector<NodeRow> rows, executor_->SelectNodes(kind, f));
  std::vector<NodeData> out(rows.size());
  std::vector<int64_t> ids;
  std::map<int64_t, size_t> index;
  for (size_t i = 0; i < rows.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(const Type* t, TypeById(rows[i].type_id));
    out[i].type = t->name;
    ids.push_back(rows[i].id);
    index[rows[i].id] = i;
    out[i].row = std::move(rows[i]);
  }
  if (ids.empty()) return out;
  KILN_ASSIGN_OR_RETURN(std::vector<PropertyRow> props, executor_->SelectProperties(kind, ids));
  for (PropertyRow& p : props) {
    NodeData& n = out[index[p.node_id]];
    (p.is_custom ? n.custom : n.properties)[p.name] = std::move(p.value);
  }
  return out;
}

template <typename T>
absl::StatusOr<std::vector<T>> MetadataAccessObject::FindAs(TypeKind kind, const Query& q) {
  KILN_ASSIGN_OR_RETURN(auto nodes, FindNodes(kind, q));
  std::vector<T> out(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    NodeData& n = nodes[i];
    T& t = out[i];
    t.id = n.row.id;
    t.type = std::move(n.type);
    t.name = n.row.name.value_or("");
    t.properties = std::move(n.properties);
    t.custom_properties = std::move(n.custom);
    t.create_time_ms = n.row.create_time_ms;
    t.update_time_ms = n.row.update_time_ms;
    if constexpr (std::is_same_v<T, Artifact>) t.uri = n.row.uri.value_or("");
    if constexpr (!std::is_same_v<T, Context>)
      t.state = static_cast<decltype(t.state)>(n.row.state);
  }
  return out;
}

absl::StatusOr<std::vector<Artifact>> MetadataAccessObject::FindArtifacts(const Query& q) {
  return FindAs<Artifact>(TypeKind::kArtifact, q);
}

absl::StatusOr<std::vector<Execution>> MetadataAccessObject::FindExecutions(const Query& q) {
  return FindAs<Execution>(TypeKind::kExecution, q);
}

absl::StatusOr<std::vector<Context>> MetadataAccessObject::FindContexts(const Query& q) {
  return FindAs<Context>(TypeKind::kContext, q);
}

absl::Status MetadataAccessObject::CheckExists(TypeKind kind, int64_t id) {
  NodeFilter f;
  f.ids = {id};
  KILN_ASSIGN_OR_RETURN(auto found, executor_->SelectNodes(kind, f));
  if (found.empty()) return absl::NotFoundError(StrCat("no ", TypeKindName(kind), " with id ", id));
  return absl::OkStatus();
}

absl::Status MetadataAccessObject::PutEvents(std::vector<Event> events) {
  for (const Event& e : events) {
    absl::Status s = CheckExists(TypeKind::kArtifact, e.artifact_id);
    if (s.ok()) s = CheckExists(TypeKind::kExecution, e.execution_id);
    if (!s.ok()) return absl::NotFoundError(StrCat("event names a missing node: ", s.message()));
  }
  return PutEventsOfKnownNodes(std::move(events));
}

absl::Status MetadataAccessObject::PutEventsOfKnownNodes(std::vector<Event> events) {
  int64_t now = 0;
  for (Event& e : events) {
    if (e.type != EventType::kInput && e.type != EventType::kOutput) {
      return absl::InvalidArgumentError("an event is INPUT or OUTPUT");
    }
    if (e.time_ms == 0) e.time_ms = now ? now : (now = now_ms_());
  }
  return executor_->InsertEvents(events);
}

absl::StatusOr<std::vector<Event>> MetadataAccessObject::EventsOfArtifacts(
    const std::vector<int64_t>& ids) {
  return executor_->SelectEventsByArtifacts(ids, EventType::kUnknown);
}

absl::StatusOr<std::vector<Event>> MetadataAccessObject::EventsOfExecutions(
    const std::vector<int64_t>& ids) {
  return executor_->SelectEventsByExecutions(ids, EventType::kUnknown);
}

absl::Status MetadataAccessObject::PutMemberships(
    TypeKind kind, const std::vector<std::pair<int64_t, int64_t>>& pairs) {
  return executor_->InsertMemberships(kind, pairs);
}

absl::StatusOr<std::vector<int64_t>> MetadataAccessObject::ContextsOf(TypeKind kind,
                                                                      int64_t node_id) {
  return executor_->SelectContextIds(kind, node_id);
}

absl::Status MetadataAccessObject::Walk(int64_t artifact_id, int max_hops, bool downstream,
                                        std::map<int64_t, bool>* artifacts,
                                        std::map<int64_t, bool>* executions,
                                        std::vector<Event>* events) {
  // Downstream: artifact is INPUT of execution, which OUTPUTs artifacts.
  EventType into = downstream ? EventType::kInput : EventType::kOutput;
  EventType out_of = downstream ? EventType::kOutput : EventType::kInput;
  std::vector<int64_t> frontier = {artifact_id};
  for (int hop = 0; hop < max_hops && !frontier.empty(); ++hop) {
    KILN_ASSIGN_OR_RETURN(auto first, executor_->SelectEventsByArtifacts(frontier, into));
    std::vector<int64_t> next_executions;
    for (const Event& e : first) {
      events->push_back(e);
      if (executions->emplace(e.execution_id, true).second) {
        next_executions.push_back(e.execution_id);
      }
    }
    frontier.clear();
    if (next_executions.empty()) break;
    KILN_ASSIGN_OR_RETURN(auto second,
                          executor_->SelectEventsByExecutions(next_executions, out_of));
    for (const Event& e : second) {
      events->push_back(e);
      if (artifacts->emplace(e.artifact_id, true).second) frontier.push_back(e.artifact_id);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LineageGraph> MetadataAccessObject::Lineage(int64_t artifact_id,
                                                           const LineageOptions& options) {
  Query self;
  self.ids = {artifact_id};
  KILN_ASSIGN_OR_RETURN(auto start, FindArtifacts(self));
  if (start.empty()) return absl::NotFoundError(StrCat("no artifact ", artifact_id));
  if (options.max_hops < 0) return absl::InvalidArgumentError("max_hops must be >= 0");
  std::map<int64_t, bool> artifacts = {{artifact_id, true}};
  std::map<int64_t, bool> executions;
  std::vector<Event> events;
  if (options.direction != LineageDirection::kDownstream) {
    KILN_RETURN_IF_ERROR(
        Walk(artifact_id, options.max_hops, false, &artifacts, &executions, &events));
  }
  if (options.direction != LineageDirection::kUpstream) {
    KILN_RETURN_IF_ERROR(
        Walk(artifact_id, options.max_hops, true, &artifacts, &executions, &events));
  }
  // One event can be reached from both directions; keep each once, in id-ish order.
  std::set<std::tuple<int64_t, int64_t, int, std::string>> seen;
  LineageGraph g;
  for (Event& e : events) {
    if (seen.emplace(e.execution_id, e.artifact_id, static_cast<int>(e.type), e.path).second) {
      g.events.push_back(std::move(e));
    }
  }
  std::sort(g.events.begin(), g.events.end(), [](const Event& a, const Event& b) {
    return std::tie(a.execution_id, a.type, a.artifact_id, a.path) <
           std::tie(b.execution_id, b.type, b.artifact_id, b.path);
  });
  Query qa;
  for (const auto& [id, unused] : artifacts) qa.ids.push_back(id);
  KILN_ASSIGN_OR_RETURN(g.artifacts, FindArtifacts(qa));
  if (!executions.empty()) {
    Query qe;
    for (const auto& [id, unused] : executions) qe.ids.push_back(id);
    KILN_ASSIGN_OR_RETURN(g.executions, FindExecutions(qe));
  }
  return g;
}

}  // namespace kiln::metadata
