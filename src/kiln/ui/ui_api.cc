#include "kiln/ui/ui_api.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/data/tfrecord.h"
#include "kiln/metadata/json.h"
#include "kiln/serving/webhook.h"
#include "kiln/ui/url.h"
#include "kiln/validation/comparator.h"
#include "kiln/validation/schema_infer.h"
#include "kiln/validation/statistics_io.h"
#include "kiln/validation/stats_view.h"
#include "nlohmann/json.hpp"
#include "tensorflow/core/framework/summary.pb.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow/core/util/event.pb.h"
#include "tensorflow_metadata/proto/v0/statistics.pb.h"

namespace kiln::ui {
namespace {

namespace md = ::kiln::metadata;
namespace tfmd = ::tensorflow::metadata::v0;
// Keys keep the order they are written in, as docs/ui.md lists them.
using Json = nlohmann::ordered_json;

// Artifact and execution types the API reads (the names the recorder writes).
constexpr char kStatisticsType[] = "ExampleStatistics";
constexpr char kAnomaliesType[] = "ExampleAnomalies";
constexpr char kModelType[] = "Model";
constexpr char kBlessingType[] = "ModelBlessing";
constexpr char kTrainerType[] = "Trainer";
constexpr char kPusherType[] = "Pusher";
constexpr char kRunContextType[] = "pipeline_run";
constexpr char kPipelineContextType[] = "pipeline";
constexpr int kMaxLineageHops = 20;
constexpr int64_t kMaxArtifactLimit = 100000;

UiResponse JsonOk(const Json& body) {
  return UiResponse{.status = 200,
                    .content_type = "application/json",
                    .body = body.dump(-1, ' ', false, Json::error_handler_t::replace)};
}

// ---------------------------------------------------------------------------------------
// Request parsing.

// A decimal integer in [min, max]. Errors: kInvalidArgument naming `what`.
absl::StatusOr<int64_t> ParseInt(std::string_view text, std::string_view what, int64_t min,
                                 int64_t max) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || v < min || v > max) {
    return absl::InvalidArgumentError(
        StrCat("bad ", what, " '", text, "': expected an integer from ", min, " to ", max));
  }
  return v;
}

absl::StatusOr<int64_t> ParseId(std::string_view text, std::string_view what) {
  return ParseInt(text, what, 1, INT64_MAX);
}

// A name that may become one path component: not empty, no '/', not "." or "..".
absl::Status CheckPathComponent(std::string_view name, std::string_view what) {
  if (name.empty() || name == "." || name == ".." ||
      name.find_first_of(std::string_view("/\0", 2)) != std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat("bad ", what, " '", name, "'"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Store records as JSON.

Json NameOrNull(const std::string& name) { return name.empty() ? Json(nullptr) : Json(name); }

Json ArtifactJson(const md::Artifact& a) {
  return Json{{"id", a.id},
              {"type", a.type},
              {"uri", a.uri},
              {"create_time_ms", a.create_time_ms},
              {"properties", md::PropertiesToJson(a.properties)},
              {"custom_properties", md::PropertiesToJson(a.custom_properties)},
              {"name", NameOrNull(a.name)},
              {"state", md::ArtifactStateName(a.state)},
              {"update_time_ms", a.update_time_ms}};
}

Json ExecutionJson(const md::Execution& e) {
  return Json{{"id", e.id},
              {"type", e.type},
              {"state", md::ExecutionStateName(e.state)},
              {"create_time_ms", e.create_time_ms},
              {"properties", md::PropertiesToJson(e.properties)},
              {"custom_properties", md::PropertiesToJson(e.custom_properties)},
              {"name", NameOrNull(e.name)},
              {"update_time_ms", e.update_time_ms}};
}

Json ContextJson(const md::Context& c) {
  return Json{{"id", c.id},
              {"type", c.type},
              {"name", c.name},
              {"create_time_ms", c.create_time_ms},
              {"properties", md::PropertiesToJson(c.properties)},
              {"custom_properties", md::PropertiesToJson(c.custom_properties)},
              {"update_time_ms", c.update_time_ms}};
}

// A property, typed or custom (typed first), if it holds a T.
template <typename T>
std::optional<T> Prop(const md::Properties& typed, const md::Properties& custom,
                      const std::string& key) {
  for (const md::Properties* props : {&typed, &custom}) {
    auto it = props->find(key);
    if (it == props->end()) continue;
    if (const T* v = std::get_if<T>(&it->second)) return *v;
  }
  return std::nullopt;
}
template <typename T, typename Node>
std::optional<T> Prop(const Node& n, const std::string& key) {
  return Prop<T>(n.properties, n.custom_properties, key);
}
std::string StringProp(const md::Context& c, const std::string& key) {
  return Prop<std::string>(c, key).value_or("");
}

// Queries of a type nobody recorded yet find nothing rather than fail.
template <typename T>
absl::StatusOr<std::vector<T>> NoneIfUnknownType(absl::StatusOr<std::vector<T>> found) {
  if (absl::IsNotFound(found.status())) return std::vector<T>();
  return found;
}

absl::StatusOr<md::Artifact> FindArtifact(md::MetadataStore* store, int64_t id) {
  absl::StatusOr<md::Artifact> a = store->GetArtifact(id);
  if (absl::IsNotFound(a.status())) return absl::NotFoundError(StrCat("no artifact ", id));
  return a;
}

// The artifact `id`, which must be of `type`. Errors: kNotFound, kInvalidArgument.
absl::StatusOr<md::Artifact> FindArtifactOfType(md::MetadataStore* store, int64_t id,
                                                std::string_view type) {
  KILN_ASSIGN_OR_RETURN(md::Artifact a, FindArtifact(store, id));
  if (a.type != type) {
    return absl::InvalidArgumentError(StrCat("artifact ", id, " is a ", a.type, ", not a ", type));
  }
  return a;
}

// ---------------------------------------------------------------------------------------
// Files.

namespace fs = std::filesystem;

// The file an artifact names: `uri` when it is a file, else `name` inside it.
std::string FileOf(Env* env, const std::string& uri, const std::string& name) {
  return env->IsDirectory(uri) ? JoinPath(uri, name) : uri;
}

// The directory an artifact names: `uri`, or the directory of the file it names.
std::string DirOf(Env* env, const std::string& uri) {
  return env->IsDirectory(uri) ? uri : Dirname(uri);
}

// A JSON file. Errors: kNotFound naming `what` when it does not exist; kDataLoss when it
// does not parse.
absl::StatusOr<Json> ReadJsonFile(Env* env, const std::string& path, std::string_view what) {
  absl::StatusOr<std::string> text = ReadFileToString(env, path);
  if (absl::IsNotFound(text.status())) {
    return absl::NotFoundError(StrCat("no ", what, " at ", path));
  }
  KILN_RETURN_IF_ERROR(text.status());
  Json j = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::DataLossError(StrCat(path, ": not valid JSON"));
  return j;
}

// The last `max_bytes` bytes of a file. Errors: kNotFound, kInternal on a read error.
absl::StatusOr<std::string> Tail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(StrCat("no file ", path));
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > static_cast<std::streamoff>(max_bytes)
                                   ? size - static_cast<std::streamoff>(max_bytes)
                                   : 0;
  std::string out(static_cast<size_t>(size - start), '\0');
  in.seekg(start);
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  if (!in) return absl::InternalError(StrCat(path, ": read error"));
  return out;
}

// ---------------------------------------------------------------------------------------
// Runs.

struct Run {
  md::Context context;
  std::string pipeline;
  std::string run_dir;
  std::string state;  // the context's; run.json's takes over where it exists
  int64_t started_ms = 0;
  std::optional<Json> run_json;  // run_dir/run.json when it exists and parses
  std::string run_json_text;     // and as written
};

// A run recorded before kiln run wrote `run_dir` on its context: the directory above
// the component directory of an output of one of its executions (outputs live in
// RUN_DIR/COMPONENT/...).
absl::StatusOr<std::string> RunDirFromOutputs(md::MetadataStore* store, int64_t context_id) {
  md::Query q;
  q.context_id = context_id;
  KILN_ASSIGN_OR_RETURN(std::vector<md::Execution> executions,
                        NoneIfUnknownType(store->GetExecutions(q)));
  for (const md::Execution& e : executions) {
    const std::optional<std::string> component = Prop<std::string>(e, "component");
    if (!component || component->empty()) continue;
    for (const auto& [key, value] : e.custom_properties) {
      const std::string* uri = std::get_if<std::string>(&value);
      if (!key.starts_with("output.") || key.ends_with(".fingerprint") || uri == nullptr) continue;
      for (fs::path p = fs::path(*uri); p.has_relative_path(); p = p.parent_path()) {
        if (p.filename() == *component) return p.parent_path().string();
      }
    }
  }
  return std::string();
}

absl::StatusOr<Run> MakeRun(md::MetadataStore* store, Env* env, md::Context c) {
  Run r;
  r.pipeline = StringProp(c, "pipeline");
  r.run_dir = StringProp(c, "run_dir");
  r.state = StringProp(c, "state");
  r.started_ms = Prop<int64_t>(c, "started_ms").value_or(c.create_time_ms);
  if (r.run_dir.empty()) {
    KILN_ASSIGN_OR_RETURN(r.run_dir, RunDirFromOutputs(store, c.id));
  }
  if (!r.run_dir.empty()) {
    absl::StatusOr<std::string> text = ReadFileToString(env, JoinPath(r.run_dir, "run.json"));
    Json j = text.ok() ? Json::parse(*text, nullptr, /*allow_exceptions=*/false) : Json();
    if (j.is_object()) {
      r.run_json = std::move(j);
      r.run_json_text = *std::move(text);
      const Json& rj = *r.run_json;
      if (rj.contains("state") && rj["state"].is_string()) r.state = rj["state"];
      if (r.pipeline.empty() && rj.contains("pipeline") && rj["pipeline"].is_string()) {
        r.pipeline = rj["pipeline"];
      }
    }
  }
  if (r.state.empty()) r.state = "unknown";
  r.context = std::move(c);
  return r;
}

// Every run, or only those of `pipeline` when it is set. A context naming another
// pipeline is skipped before its run.json is read.
absl::StatusOr<std::vector<Run>> AllRuns(md::MetadataStore* store, Env* env,
                                         const std::string* pipeline = nullptr) {
  md::Query q;
  q.type = kRunContextType;
  KILN_ASSIGN_OR_RETURN(std::vector<md::Context> contexts,
                        NoneIfUnknownType(store->GetContexts(q)));
  std::vector<Run> runs;
  for (md::Context& c : contexts) {
    if (pipeline != nullptr) {
      const std::string recorded = StringProp(c, "pipeline");
      if (!recorded.empty() && recorded != *pipeline) continue;
    }
    KILN_ASSIGN_OR_RETURN(Run r, MakeRun(store, env, std::move(c)));
    if (pipeline != nullptr && r.pipeline != *pipeline) continue;
    runs.push_back(std::move(r));
  }
  return runs;
}

// Errors: kNotFound when no run `run_id` of `pipeline` is recorded.
absl::StatusOr<Run> FindRun(md::MetadataStore* store, Env* env, const std::string& pipeline,
                            const std::string& run_id) {
  md::Query q;
  q.type = kRunContextType;
  q.name = run_id;
  KILN_ASSIGN_OR_RETURN(std::vector<md::Context> found, NoneIfUnknownType(store->GetContexts(q)));
  for (md::Context& c : found) {
    KILN_ASSIGN_OR_RETURN(Run r, MakeRun(store, env, std::move(c)));
    if (r.pipeline == pipeline) return r;
  }
  return absl::NotFoundError(StrCat("no run '", run_id, "' of pipeline '", pipeline, "'"));
}

absl::StatusOr<UiResponse> Runs(md::MetadataStore* store, Env* env,
                                const std::map<std::string, std::string>& query) {
  auto pipeline = query.find("pipeline");
  KILN_ASSIGN_OR_RETURN(std::vector<Run> runs,
                        AllRuns(store, env, pipeline != query.end() ? &pipeline->second : nullptr));
  std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) {
    return std::pair(a.started_ms, a.context.id) > std::pair(b.started_ms, b.context.id);
  });
  Json out = Json::array();
  for (const Run& r : runs) {
    Json components = Json::object();
    Json seconds = nullptr;
    if (r.run_json) {
      if (r.run_json->contains("seconds")) seconds = (*r.run_json)["seconds"];
      if (r.run_json->contains("components") && (*r.run_json)["components"].is_array()) {
        for (const Json& c : (*r.run_json)["components"]) {
          if (!c.is_object() || !c.contains("state") || !c["state"].is_string()) continue;
          const std::string state = c["state"];
          components[state] = components.value(state, 0) + 1;
        }
      }
    }
    out.push_back(Json{{"pipeline", r.pipeline},
                       {"run_id", r.context.name},
                       {"state", r.state},
                       {"started_ms", r.started_ms},
                       {"seconds", seconds},
                       {"run_dir", r.run_dir},
                       {"components", components}});
  }
  return JsonOk(out);
}

absl::StatusOr<UiResponse> RunDetail(md::MetadataStore* store, Env* env,
                                     const std::string& pipeline, const std::string& run_id) {
  KILN_ASSIGN_OR_RETURN(Run r, FindRun(store, env, pipeline, run_id));
  // As kiln run wrote it, not re-serialised, so nothing is lost.
  if (r.run_json) return UiResponse{.body = std::move(r.run_json_text)};
  // Started, but no component has finished yet (or the run directory is gone).
  return JsonOk(Json{{"pipeline", r.pipeline},
                     {"run_id", r.context.name},
                     {"run_dir", r.run_dir},
                     {"state", r.state},
                     {"components", Json::array()}});
}

absl::StatusOr<UiResponse> RunLog(md::MetadataStore* store, Env* env, size_t tail_bytes,
                                  const std::string& pipeline, const std::string& run_id,
                                  const std::string& component) {
  KILN_RETURN_IF_ERROR(CheckPathComponent(component, "component"));
  KILN_ASSIGN_OR_RETURN(Run r, FindRun(store, env, pipeline, run_id));
  if (r.run_json && r.run_json->contains("components")) {
    bool listed = false;
    for (const Json& c : (*r.run_json)["components"]) {
      listed = listed || (c.is_object() && c.value("name", "") == component);
    }
    if (!listed) {
      return absl::NotFoundError(StrCat("run '", run_id, "' has no component '", component, "'"));
    }
  }
  if (r.run_dir.empty()) {
    return absl::NotFoundError(StrCat("run '", run_id, "' has no run directory on record"));
  }
  const std::string path = JoinPath(JoinPath(r.run_dir, component), "log.txt");
  absl::StatusOr<std::string> tail = Tail(path, tail_bytes);
  if (absl::IsNotFound(tail.status())) {
    return absl::NotFoundError(StrCat("no log for component '", component, "' (", path, ")"));
  }
  KILN_RETURN_IF_ERROR(tail.status());
  return UiResponse{.content_type = "text/plain; charset=utf-8", .body = *std::move(tail)};
}

// ---------------------------------------------------------------------------------------
// Artifacts and lineage.

absl::StatusOr<UiResponse> Artifacts(md::MetadataStore* store, int64_t default_limit,
                                     const std::map<std::string, std::string>& query) {
  md::Query q;
  q.newest_first = true;
  q.limit = default_limit;
  if (auto it = query.find("type"); it != query.end()) q.type = it->second;
  if (auto it = query.find("limit"); it != query.end()) {
    KILN_ASSIGN_OR_RETURN(q.limit, ParseInt(it->second, "limit", 1, kMaxArtifactLimit));
  }
  KILN_ASSIGN_OR_RETURN(std::vector<md::Artifact> found, NoneIfUnknownType(store->GetArtifacts(q)));
  Json out = Json::array();
  for (const md::Artifact& a : found) out.push_back(ArtifactJson(a));
  return JsonOk(out);
}

absl::StatusOr<UiResponse> ArtifactDetail(md::MetadataStore* store, int64_t id) {
  KILN_ASSIGN_OR_RETURN(md::Artifact a, FindArtifact(store, id));
  KILN_ASSIGN_OR_RETURN(std::vector<md::Event> events, store->GetEventsByArtifactIds({id}));
  Json produced_by = nullptr;
  for (const md::Event& e : events) {
    if (e.type != md::EventType::kOutput) continue;
    KILN_ASSIGN_OR_RETURN(md::Execution x, store->GetExecution(e.execution_id));
    produced_by = ExecutionJson(x);
    produced_by["role"] = e.path;
    break;
  }
  KILN_ASSIGN_OR_RETURN(std::vector<md::Context> contexts, store->GetContextsOfArtifact(id));
  Json cj = Json::array();
  for (const md::Context& c : contexts) cj.push_back(ContextJson(c));
  return JsonOk(
      Json{{"artifact", ArtifactJson(a)}, {"produced_by", produced_by}, {"contexts", cj}});
}

absl::StatusOr<UiResponse> Lineage(md::MetadataStore* store, int64_t id,
                                   const std::map<std::string, std::string>& query) {
  md::LineageOptions options;
  if (auto it = query.find("hops"); it != query.end()) {
    KILN_ASSIGN_OR_RETURN(int64_t hops, ParseInt(it->second, "hops", 0, kMaxLineageHops));
    options.max_hops = static_cast<int>(hops);
  }
  absl::StatusOr<md::LineageGraph> g = store->GetLineage(id, options);
  if (absl::IsNotFound(g.status())) return absl::NotFoundError(StrCat("no artifact ", id));
  KILN_RETURN_IF_ERROR(g.status());
  Json artifacts = Json::array(), executions = Json::array(), events = Json::array();
  for (const md::Artifact& a : g->artifacts) artifacts.push_back(ArtifactJson(a));
  for (const md::Execution& e : g->executions) executions.push_back(ExecutionJson(e));
  for (const md::Event& e : g->events) {
    events.push_back(Json{{"artifact_id", e.artifact_id},
                          {"execution_id", e.execution_id},
                          {"type", md::EventTypeName(e.type)},
                          {"path", e.path}});
  }
  return JsonOk(Json{{"artifacts", artifacts}, {"executions", executions}, {"events", events}});
}

// ---------------------------------------------------------------------------------------
// Statistics, drift, anomalies.

Json BucketsJson(const std::optional<tfmd::Histogram>& h) {
  Json out = Json::array();
  if (!h) return out;
  for (const auto& b : h->buckets()) {
    out.push_back(
        Json{{"low", b.low_value()}, {"high", b.high_value()}, {"count", b.sample_count()}});
  }
  return out;
}

std::string FeatureTypeName(const tfmd::FeatureNameStatistics& f) {
  return tfmd::FeatureNameStatistics::Type_Name(f.type());
}

Json FeatureJson(const tfmd::FeatureNameStatistics& f, uint64_t num_examples) {
  const tfmd::CommonStatistics& common = validation::Common(f);
  Json j{{"name", validation::FeatureName(f)},
         {"type", FeatureTypeName(f)},
         {"num_missing", common.num_missing()},
         {"missing_pct", num_examples == 0 ? 0.0
                                           : 100.0 * static_cast<double>(common.num_missing()) /
                                                 static_cast<double>(num_examples)}};
  if (f.has_num_stats()) {
    const tfmd::NumericStatistics& n = f.num_stats();
    j["numeric"] =
        Json{{"mean", n.mean()},
             {"std_dev", n.std_dev()},
             {"min", n.min()},
             {"median", n.median()},
             {"max", n.max()},
             {"num_zeros", n.num_zeros()},
             {"histogram", BucketsJson(validation::GetHistogram(f, tfmd::Histogram::STANDARD))},
             {"quantiles", BucketsJson(validation::GetHistogram(f, tfmd::Histogram::QUANTILES))}};
  } else if (f.has_string_stats()) {
    const tfmd::StringStatistics& s = f.string_stats();
    Json top = Json::array();
    for (const auto& v : s.top_values()) {
      top.push_back(Json{{"value", v.value()}, {"frequency", v.frequency()}});
    }
    j["string"] = Json{{"unique", s.unique()}, {"avg_length", s.avg_length()}, {"top_values", top}};
  }
  return j;
}

absl::StatusOr<tfmd::DatasetFeatureStatisticsList> LoadStatisticsArtifact(md::MetadataStore* store,
                                                                          Env* env, int64_t id) {
  KILN_ASSIGN_OR_RETURN(md::Artifact a, FindArtifactOfType(store, id, kStatisticsType));
  absl::StatusOr<tfmd::DatasetFeatureStatisticsList> list = validation::LoadStatistics(env, a.uri);
  if (absl::IsNotFound(list.status())) {
    return absl::NotFoundError(StrCat("artifact ", id, ": no statistics at ", a.uri, " (",
                                      std::string(list.status().message()), ")"));
  }
  if (!list.ok()) {
    // Not the client's fault: the file is damaged.
    return absl::InternalError(StrCat("artifact ", id, ": ", std::string(list.status().message())));
  }
  return list;
}

absl::StatusOr<UiResponse> Statistics(md::MetadataStore* store, Env* env, int64_t id) {
  KILN_ASSIGN_OR_RETURN(tfmd::DatasetFeatureStatisticsList list,
                        LoadStatisticsArtifact(store, env, id));
  Json datasets = Json::array();
  for (const tfmd::DatasetFeatureStatistics& d : list.datasets()) {
    Json features = Json::array();
    for (const tfmd::FeatureNameStatistics& f : d.features()) {
      features.push_back(FeatureJson(f, d.num_examples()));
    }
    datasets.push_back(
        Json{{"name", d.name()}, {"num_examples", d.num_examples()}, {"features", features}});
  }
  return JsonOk(Json{{"datasets", datasets}});
}

std::vector<std::string> DatasetNames(const tfmd::DatasetFeatureStatisticsList& list) {
  std::vector<std::string> names;
  for (const auto& d : list.datasets()) names.push_back(d.name());
  return names;
}

// The split to compare when none is asked for: "train" when both have it; the only
// dataset of each; "all"; else the first of a's that b has too.
absl::StatusOr<std::pair<tfmd::DatasetFeatureStatistics, tfmd::DatasetFeatureStatistics>>
PickDatasets(const tfmd::DatasetFeatureStatisticsList& a,
             const tfmd::DatasetFeatureStatisticsList& b, const std::string& split) {
  if (!split.empty()) {
    KILN_ASSIGN_OR_RETURN(auto da, validation::SelectDataset(a, split));
    KILN_ASSIGN_OR_RETURN(auto db, validation::SelectDataset(b, split));
    return std::pair(std::move(da), std::move(db));
  }
  const std::vector<std::string> na = DatasetNames(a), nb = DatasetNames(b);
  auto in = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  std::string chosen;
  if (in(na, "train") && in(nb, "train")) {
    chosen = "train";
  } else if (na.size() == 1 && nb.size() == 1) {
    return std::pair(a.datasets(0), b.datasets(0));
  } else {
    for (const std::string& n : na) {
      if (in(nb, n) && (chosen.empty() || n == "all")) chosen = n;
    }
  }
  if (chosen.empty()) {
    return absl::InvalidArgumentError(
        StrCat("the statistics have no split in common (a: ", StrJoin(na, ", "),
               "; b: ", StrJoin(nb, ", "), "); pass ?split="));
  }
  return PickDatasets(a, b, chosen);
}

absl::StatusOr<UiResponse> Drift(md::MetadataStore* store, Env* env,
                                 const std::map<std::string, std::string>& query) {
  auto a_it = query.find("a"), b_it = query.find("b");
  if (a_it == query.end() || b_it == query.end()) {
    return absl::InvalidArgumentError("drift needs ?a=ID&b=ID (two ExampleStatistics artifacts)");
  }
  KILN_ASSIGN_OR_RETURN(int64_t a_id, ParseId(a_it->second, "artifact id a"));
  KILN_ASSIGN_OR_RETURN(int64_t b_id, ParseId(b_it->second, "artifact id b"));
  auto split = query.find("split");
  KILN_ASSIGN_OR_RETURN(auto a, LoadStatisticsArtifact(store, env, a_id));
  KILN_ASSIGN_OR_RETURN(auto b, LoadStatisticsArtifact(store, env, b_id));
  KILN_ASSIGN_OR_RETURN(auto datasets,
                        PickDatasets(a, b, split == query.end() ? "" : split->second));
  const auto& [control, current] = datasets;
  // What `kiln validate --previous A --drift-threshold T` measures for B: every feature
  // of B's inferred schema, categorical (BYTES) by L-infinity, the rest by Jensen-Shannon.
  KILN_ASSIGN_OR_RETURN(tfmd::Schema schema, validation::InferSchema(current));
  validation::CompareOptions options;
  options.threshold = 1.0;  // any value: the scores are wanted, not the verdicts
  Json features = Json::array();
  for (const validation::FeatureComparison& c :
       validation::Compare(current, control, schema, validation::ComparisonKind::kDrift, options)) {
    const tfmd::Feature* sf = validation::FindSchemaFeature(schema, c.feature);
    const tfmd::FeatureNameStatistics* f = validation::FindFeature(current, c.feature);
    Json j{{"name", c.feature},
           {"type", f ? FeatureTypeName(*f) : ""},
           {"measure", sf && sf->type() == tfmd::BYTES ? "L_infinity" : "jensen_shannon"},
           {"score", nullptr}};
    if (!c.measurements.empty()) {
      const auto& m = c.measurements[0];
      j["measure"] =
          m.type() == tfmd::DriftSkewInfo::Measurement::L_INFTY ? "L_infinity" : "jensen_shannon";
      j["score"] = m.value();
    }
    if (!c.note.empty()) {
      j["note"] = c.note;
    } else if (validation::FindFeature(control, c.feature) == nullptr) {
      j["note"] = "not in a";
    }
    features.push_back(std::move(j));
  }
  return JsonOk(Json{{"split", current.name()}, {"features", features}});
}

absl::StatusOr<UiResponse> Anomalies(md::MetadataStore* store, Env* env, int64_t id) {
  KILN_ASSIGN_OR_RETURN(md::Artifact a, FindArtifactOfType(store, id, kAnomaliesType));
  const std::string path = FileOf(env, a.uri, "anomalies.json");
  KILN_ASSIGN_OR_RETURN(Json j, ReadJsonFile(env, path, "anomalies.json"));
  return JsonOk(j);
}

absl::StatusOr<UiResponse> Evaluation(md::MetadataStore* store, Env* env, int64_t id) {
  KILN_ASSIGN_OR_RETURN(md::Artifact a, FindArtifactOfType(store, id, kBlessingType));
  const std::string dir = DirOf(env, a.uri);
  Json out;
  bool any = false;
  for (const char* name : {"evaluation", "blessing"}) {
    absl::StatusOr<Json> j = ReadJsonFile(env, JoinPath(dir, StrCat(name, ".json")), name);
    if (absl::IsNotFound(j.status())) {
      out[name] = nullptr;
      continue;
    }
    if (!j.ok()) return absl::InternalError(std::string(j.status().message()));
    out[name] = *std::move(j);
    any = true;
  }
  if (!any) {
    return absl::NotFoundError(
        StrCat("artifact ", id, ": no evaluation.json or blessing.json in ", dir));
  }
  return JsonOk(out);
}

// ---------------------------------------------------------------------------------------
// Training and pushed models.

// Bookkeeping the recorder and the runner add to every execution: not hyperparameters.
bool IsBookkeeping(const std::string& key) {
  static const std::set<std::string>* const kKeys =
      new std::set<std::string>{"kiln_version", "git_sha",  "component", "run",
                                "exit_code",    "attempts", "cache_key", "cached_from"};
  return kKeys->count(key) > 0 || key.starts_with("env.") || key.starts_with("output.");
}

// Events of `executions`, grouped by execution id.
absl::StatusOr<std::map<int64_t, std::vector<md::Event>>> EventsOf(
    md::MetadataStore* store, const std::vector<md::Execution>& executions) {
  std::map<int64_t, std::vector<md::Event>> out;
  if (executions.empty()) return out;
  std::vector<int64_t> ids;
  for (const md::Execution& e : executions) ids.push_back(e.id);
  KILN_ASSIGN_OR_RETURN(std::vector<md::Event> events, store->GetEventsByExecutionIds(ids));
  for (md::Event& e : events) out[e.execution_id].push_back(std::move(e));
  return out;
}

// The artifacts `events` name, by id.
absl::StatusOr<std::map<int64_t, md::Artifact>> ArtifactsOf(
    md::MetadataStore* store, const std::map<int64_t, std::vector<md::Event>>& events) {
  std::map<int64_t, md::Artifact> out;
  md::Query q;
  for (const auto& [_, list] : events) {
    for (const md::Event& e : list) q.ids.push_back(e.artifact_id);
  }
  if (q.ids.empty()) return out;
  KILN_ASSIGN_OR_RETURN(std::vector<md::Artifact> found, store->GetArtifacts(q));
  for (md::Artifact& a : found) out.emplace(a.id, std::move(a));
  return out;
}

// The artifact of the first event of `type` and `role`, or null.
const md::Artifact* EventArtifact(const std::vector<md::Event>* events, md::EventType type,
                                  std::string_view role,
                                  const std::map<int64_t, md::Artifact>& artifacts) {
  if (events == nullptr) return nullptr;
  for (const md::Event& e : *events) {
    if (e.type != type || e.path != role) continue;
    auto it = artifacts.find(e.artifact_id);
    if (it != artifacts.end()) return &it->second;
  }
  return nullptr;
}

// Executions of `type`, newest first, without the runner's cache hits (which copy an
// earlier execution's outputs and record no parameters of their own).
absl::StatusOr<std::vector<md::Execution>> OwnExecutions(md::MetadataStore* store,
                                                         const std::string& type) {
  md::Query q;
  q.type = type;
  q.newest_first = true;
  KILN_ASSIGN_OR_RETURN(std::vector<md::Execution> found,
                        NoneIfUnknownType(store->GetExecutions(q)));
  std::erase_if(found, [](const md::Execution& e) {
    return e.state == md::ExecutionState::kCached || e.custom_properties.count("cached_from");
  });
  return found;
}

absl::StatusOr<UiResponse> Training(md::MetadataStore* store) {
  KILN_ASSIGN_OR_RETURN(std::vector<md::Execution> trainers, OwnExecutions(store, kTrainerType));
  KILN_ASSIGN_OR_RETURN(auto events, EventsOf(store, trainers));
  KILN_ASSIGN_OR_RETURN(auto artifacts, ArtifactsOf(store, events));
  Json out = Json::array();
  for (const md::Execution& e : trainers) {
    Json run = nullptr, pipeline = nullptr;
    KILN_ASSIGN_OR_RETURN(std::vector<md::Context> contexts, store->GetContextsOfExecution(e.id));
    for (const md::Context& c : contexts) {
      if (c.type == kRunContextType) run = c.name;
      if (c.type == kPipelineContextType) pipeline = c.name;
    }
    auto it = events.find(e.id);
    const md::Artifact* model = EventArtifact(it == events.end() ? nullptr : &it->second,
                                              md::EventType::kOutput, "model", artifacts);
    Json hyper = Json::object();
    for (const md::Properties* props : {&e.properties, &e.custom_properties}) {
      for (const auto& [k, v] : *props) {
        if (!IsBookkeeping(k)) hyper[k] = md::ValueToJson(v);
      }
    }
    Json metrics = Json::object();
    if (model != nullptr) {
      for (const auto& [k, v] : model->custom_properties) {
        if (k.starts_with("eval.")) metrics[k.substr(5)] = md::ValueToJson(v);
      }
    }
    out.push_back(Json{{"execution_id", e.id},
                       {"run", run},
                       {"pipeline", pipeline},
                       {"model_id", model ? Json(model->id) : Json(nullptr)},
                       {"model_uri", model ? Json(model->uri) : Json(nullptr)},
                       {"hyperparameters", hyper},
                       {"metrics", metrics},
                       {"state", md::ExecutionStateName(e.state)},
                       {"create_time_ms", e.create_time_ms}});
  }
  return JsonOk(out);
}

// The value of a rank-0 numeric tensor or a simple_value, if `v` is a scalar.
std::optional<double> ScalarOf(const tensorflow::Summary::Value& v) {
  if (v.value_case() == tensorflow::Summary::Value::kSimpleValue) return v.simple_value();
  if (v.value_case() != tensorflow::Summary::Value::kTensor) return std::nullopt;
  const tensorflow::TensorProto& t = v.tensor();
  if (t.tensor_shape().dim_size() != 0) return std::nullopt;
  // The first typed value, or the packed bytes of the one value.
  auto first = [&t](const auto& values) -> std::optional<double> {
    using T = std::decay_t<decltype(values[0])>;
    if (values.size() > 0) return values[0];
    if (t.tensor_content().size() != sizeof(T)) return std::nullopt;
    T v;
    std::memcpy(&v, t.tensor_content().data(), sizeof v);
    return v;
  };
  switch (t.dtype()) {
    case tensorflow::DT_FLOAT:
      return first(t.float_val());
    case tensorflow::DT_DOUBLE:
      return first(t.double_val());
    default:
      return std::nullopt;
  }
}

absl::StatusOr<UiResponse> Scalars(md::MetadataStore* store, Env* env, int64_t id) {
  KILN_ASSIGN_OR_RETURN(md::Artifact a, FindArtifactOfType(store, id, kModelType));
  // Event files anywhere under the bundle's logs/; those in a subdirectory (a TensorBoard
  // "run") get its path as a tag prefix.
  const fs::path logs = fs::path(DirOf(env, a.uri)) / "logs";
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(logs, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) &&
        it->path().filename().string().starts_with("events.out.tfevents.")) {
      files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());
  std::map<std::string, std::vector<std::tuple<int64_t, double, double>>> tags;
  for (const fs::path& file : files) {
    const std::string prefix = file.parent_path() == logs
                                   ? std::string()
                                   : file.parent_path().lexically_relative(logs).string() + "/";
    auto reader = data::TFRecordReader::Open(env, file.string());
    if (!reader.ok()) continue;  // gone since it was listed
    std::string record;
    for (;;) {
      // A file being written may end in a torn record: what came before it counts.
      absl::StatusOr<bool> more = (*reader)->Next(&record);
      if (!more.ok() || !*more) break;
      tensorflow::Event event;
      if (!event.ParseFromString(record) || !event.has_summary()) continue;
      for (const tensorflow::Summary::Value& v : event.summary().value()) {
        if (std::optional<double> x = ScalarOf(v)) {
          tags[prefix + v.tag()].emplace_back(event.step(), event.wall_time(), *x);
        }
      }
    }
  }
  Json out = Json::object();
  for (auto& [tag, points] : tags) {
    std::stable_sort(points.begin(), points.end(),
                     [](const auto& x, const auto& y) { return std::get<0>(x) < std::get<0>(y); });
    Json list = Json::array();
    for (const auto& [step, wall_time, value] : points) {
      list.push_back(Json::array({step, wall_time, value}));
    }
    out[tag] = std::move(list);
  }
  return JsonOk(out);
}

// What blessing.json at a ModelBlessing artifact says: its "blessed", or null.
Json Blessed(Env* env, const md::Artifact& blessing) {
  absl::StatusOr<Json> j =
      ReadJsonFile(env, FileOf(env, blessing.uri, "blessing.json"), "blessing.json");
  if (!j.ok() || !j->is_object() || !j->contains("blessed") || !(*j)["blessed"].is_boolean()) {
    return nullptr;
  }
  return (*j)["blessed"];
}

struct Destination {
  std::string base_path;
  std::vector<std::pair<int64_t, Json>> versions;  // (version, entry)
};

absl::StatusOr<std::map<std::string, Destination>> PushDestinations(md::MetadataStore* store,
                                                                    Env* env) {
  KILN_ASSIGN_OR_RETURN(std::vector<md::Execution> pushes, OwnExecutions(store, kPusherType));
  KILN_ASSIGN_OR_RETURN(auto events, EventsOf(store, pushes));
  KILN_ASSIGN_OR_RETURN(auto artifacts, ArtifactsOf(store, events));
  std::map<std::string, Destination> out;  // by base path
  for (const md::Execution& e : pushes) {
    const std::optional<std::string> destination = Prop<std::string>(e, "destination");
    const std::optional<int64_t> version = Prop<int64_t>(e, "version");
    if (!destination || !version || e.state != md::ExecutionState::kComplete) continue;
    auto it = events.find(e.id);
    const std::vector<md::Event>* ev = it == events.end() ? nullptr : &it->second;
    const md::Artifact* model = EventArtifact(ev, md::EventType::kInput, "model", artifacts);
    const md::Artifact* blessing = EventArtifact(ev, md::EventType::kInput, "blessing", artifacts);
    auto str = [&](const char* key) {
      std::optional<std::string> s = Prop<std::string>(e, key);
      return s ? Json(*s) : Json(nullptr);
    };
    Destination& d = out[*destination];
    d.base_path = *destination;
    d.versions.emplace_back(*version,
                            Json{{"version", *version},
                                 {"model_id", model ? Json(model->id) : Json(nullptr)},
                                 {"model_uri", model ? Json(model->uri) : Json(nullptr)},
                                 {"pushed_ms", e.create_time_ms},
                                 {"user", str("env.user")},
                                 {"host", str("env.host")},
                                 {"forced", Prop<bool>(e, "forced").value_or(false)},
                                 {"blessing_id", blessing ? Json(blessing->id) : Json(nullptr)},
                                 {"blessed", blessing ? Blessed(env, *blessing) : Json(nullptr)},
                                 {"execution_id", e.id}});
  }
  return out;
}

absl::StatusOr<UiResponse> Models(md::MetadataStore* store, Env* env) {
  KILN_ASSIGN_OR_RETURN(auto destinations, PushDestinations(store, env));
  std::vector<Destination*> sorted;
  for (auto& [_, d] : destinations) sorted.push_back(&d);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Destination* x, const Destination* y) {
    return Basename(x->base_path) < Basename(y->base_path);
  });
  Json out = Json::array();
  for (Destination* d : sorted) {
    // Newest version first; a version pushed twice (a re-created base path) newest push
    // first, as recorded.
    std::stable_sort(d->versions.begin(), d->versions.end(),
                     [](const auto& x, const auto& y) { return x.first > y.first; });
    Json versions = Json::array();
    for (auto& [_, v] : d->versions) versions.push_back(std::move(v));
    out.push_back(Json{
        {"name", Basename(d->base_path)}, {"base_path", d->base_path}, {"versions", versions}});
  }
  return JsonOk(out);
}

// ---------------------------------------------------------------------------------------
// Summary.

absl::StatusOr<UiResponse> Summary(md::MetadataStore* store) {
  auto count_contexts = [&](const char* type) -> absl::StatusOr<int64_t> {
    md::Query q;
    q.type = type;
    KILN_ASSIGN_OR_RETURN(auto found, NoneIfUnknownType(store->GetContexts(q)));
    return static_cast<int64_t>(found.size());
  };
  KILN_ASSIGN_OR_RETURN(int64_t pipelines, count_contexts(kPipelineContextType));
  KILN_ASSIGN_OR_RETURN(int64_t runs, count_contexts(kRunContextType));
  KILN_ASSIGN_OR_RETURN(auto all, store->GetArtifacts());
  const auto models = std::count_if(all.begin(), all.end(),
                                    [](const md::Artifact& a) { return a.type == kModelType; });
  return JsonOk(Json{{"store", store->Describe()},
                     {"pipelines", pipelines},
                     {"runs", runs},
                     {"models", static_cast<int64_t>(models)},
                     {"artifacts", static_cast<int64_t>(all.size())}});
}

// Names a model may have in a URL path (what `kiln serve` accepts is narrower still).
bool IsUrlSafeName(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

}  // namespace

int HttpStatusOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    default:
      return 500;
  }
}

UiApi::UiApi(metadata::MetadataStore* store, UiApiOptions options)
    : store_(store), options_(std::move(options)) {}

bool UiApi::IsApiTarget(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  return path == "/api" || path.starts_with("/api/");
}

UiResponse UiApi::Handle(std::string_view method, std::string_view target) {
  auto error = [](int status, std::string_view message) {
    return UiResponse{
        .status = status,
        .body = Json{{"error", message}}.dump(-1, ' ', false, Json::error_handler_t::replace)};
  };
  if (method != "GET") return error(405, StrCat(method, " is not supported: the API is GET only"));
  const size_t q = target.find('?');
  absl::StatusOr<UiResponse> r =
      Route(target.substr(0, q), q == std::string_view::npos ? "" : target.substr(q + 1));
  if (!r.ok()) return error(HttpStatusOf(r.status()), std::string(r.status().message()));
  return *std::move(r);
}

absl::StatusOr<UiResponse> UiApi::Route(std::string_view path, std::string_view raw_query) {
  KILN_ASSIGN_OR_RETURN(const auto query, ParseQuery(raw_query));
  // Segments after "/api/", %-decoded one by one (so %2F stays inside its segment); a
  // trailing slash is ignored.
  std::vector<std::string> seg;
  if (!path.starts_with("/api/")) return absl::NotFoundError(StrCat("no such endpoint: ", path));
  std::string_view rest = path.substr(5);
  if (rest.ends_with('/')) rest.remove_suffix(1);
  while (true) {
    const size_t slash = rest.find('/');
    KILN_ASSIGN_OR_RETURN(std::string s, PercentDecode(rest.substr(0, slash), false));
    seg.push_back(std::move(s));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  const std::string& what = seg[0];
  const size_t n = seg.size();
  Env* env = options_.env;

  if (what == "serving" && n == 1) return Serving();

  std::lock_guard<std::mutex> lock(mu_);
  if (what == "summary" && n == 1) return Summary(store_);
  if (what == "runs") {
    if (n == 1) return Runs(store_, env, query);
    if (n == 3) return RunDetail(store_, env, seg[1], seg[2]);
    if (n == 5 && seg[3] == "log") {
      return RunLog(store_, env, options_.log_tail_bytes, seg[1], seg[2], seg[4]);
    }
  }
  if (what == "artifacts") {
    if (n == 1) return Artifacts(store_, options_.default_artifact_limit, query);
    if (n == 2) {
      KILN_ASSIGN_OR_RETURN(int64_t id, ParseId(seg[1], "artifact id"));
      return ArtifactDetail(store_, id);
    }
  }
  if (what == "training") {
    if (n == 1) return Training(store_);
    if (n == 3 && seg[2] == "scalars") {
      KILN_ASSIGN_OR_RETURN(int64_t id, ParseId(seg[1], "model id"));
      return Scalars(store_, env, id);
    }
  }
  if (what == "models" && n == 1) return Models(store_, env);
  if (what == "drift" && n == 1) return Drift(store_, env, query);
  if (n == 2) {
    if (what == "statistics" || what == "anomalies" || what == "evaluations" || what == "lineage") {
      KILN_ASSIGN_OR_RETURN(int64_t id, ParseId(seg[1], "artifact id"));
      if (what == "statistics") return Statistics(store_, env, id);
      if (what == "anomalies") return Anomalies(store_, env, id);
      if (what == "evaluations") return Evaluation(store_, env, id);
      return Lineage(store_, id, query);
    }
  }
  return absl::NotFoundError(StrCat("no such endpoint: ", path, " (see docs/ui.md)"));
}

absl::StatusOr<UiResponse> UiApi::Serving() {
  if (options_.serving_url.empty()) return JsonOk(Json{{"configured", false}});
  std::string base = options_.serving_url;
  while (base.ends_with('/')) base.pop_back();
  Json out{{"configured", true}, {"url", base}};

  // The models to ask about: those the store saw served (kiln serve --metadata records
  // version events as ModelServing executions) or pushed, and those with a traffic split.
  std::set<std::string> names;
  {
    std::lock_guard<std::mutex> lock(mu_);
    md::Query q;
    q.type = "ModelServing";
    q.newest_first = true;
    q.limit = 1000;
    KILN_ASSIGN_OR_RETURN(auto served, NoneIfUnknownType(store_->GetExecutions(q)));
    for (const md::Execution& e : served) {
      if (auto name = Prop<std::string>(e, "model_name")) names.insert(*name);
    }
    KILN_ASSIGN_OR_RETURN(auto destinations, PushDestinations(store_, options_.env));
    for (const auto& [base_path, _] : destinations) names.insert(Basename(base_path));
  }

  auto get = [&](const std::string& path) -> absl::StatusOr<std::pair<int, Json>> {
    KILN_ASSIGN_OR_RETURN(serving::HttpResult r,
                          serving::HttpGet(base + path, options_.serving_timeout));
    Json j = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) j = Json{{"error", r.body}};
    return std::pair(r.status, std::move(j));
  };
  absl::StatusOr<std::pair<int, Json>> traffic = get("/kiln/traffic");
  if (!traffic.ok()) {
    out["error"] = StrCat("kiln serve at ", base,
                          " cannot be reached: ", std::string(traffic.status().message()));
    return JsonOk(out);
  }
  std::map<std::string, Json> splits;
  if (traffic->first == 200 && traffic->second.contains("models")) {
    for (const Json& t : traffic->second["models"]) {
      if (t.is_object() && t.contains("model") && t["model"].is_string()) {
        splits[t["model"]] = t;
        names.insert(t["model"].get<std::string>());
      }
    }
  }
  Json models = Json::array();
  for (const std::string& name : names) {
    if (!IsUrlSafeName(name)) continue;
    absl::StatusOr<std::pair<int, Json>> status = get(StrCat("/v1/models/", name));
    if (!status.ok()) {
      out["error"] = StrCat("kiln serve at ", base, ": ", std::string(status.status().message()));
      return JsonOk(out);
    }
    if (status->first == 404) continue;  // not served there
    Json m{{"name", name}};
    if (status->first == 200) {
      m["status"] = status->second;
    } else {
      m["error"] = status->second.value("error", StrCat("answered ", status->first));
    }
    auto split = splits.find(name);
    m["traffic"] = split == splits.end() ? Json(nullptr) : split->second;
    models.push_back(std::move(m));
  }
  out["models"] = std::move(models);
  return JsonOk(out);
}

}  // namespace kiln::ui
