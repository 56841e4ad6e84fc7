// The metadata store conformance suite: every test runs against SQLite and against a
// real PostgreSQL server (started by ctest's "postgres" fixture).
#include "kiln/metadata/metadata_store.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/metadata/open_store.h"
#include "kiln/metadata/postgres_backend.h"
#include "kiln/metadata/sqlite_backend.h"
#include "kiln/testing/metadata_stores.h"

namespace kiln::metadata {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// A clock the test moves by hand.
class FakeClockEnv : public EnvWrapper {
 public:
  FakeClockEnv() : EnvWrapper(Env::Default()) {}
  int64_t NowMicros() override { return now_ms * 1000; }
  int64_t now_ms = 1'700'000'000'000;
};

class MetadataStoreTest : public ::testing::TestWithParam<kiln::testing::BackendParam> {
 protected:
  void SetUp() override {
    location_ = GetParam().make();
    if (GetParam().name == "Postgres" && kiln::testing::PostgresTestUrl().empty()) {
      FAIL() << "no PostgreSQL test server: run these tests through ctest, whose "
                "'postgres' fixture starts one (scripts/pg_test_server)";
    }
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<MetadataStore> Open(StoreOptions options = {}) {
    if (!options.env || options.env == Env::Default()) options.env = &clock_;
    auto store = OpenStore(location_->url(), std::move(options));
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // A plain connection to the test's database, beside the store, to change it behind
  // the store's back.
  std::unique_ptr<Backend> RawBackend() {
    if (GetParam().name == "Sqlite") {
      return *OpenSqliteBackend({.path = location_->url().substr(7)});
    }
    PostgresOptions o;
    o.url = location_->url();
    return *OpenPostgresBackend(o);
  }

  // Registers the types the tests use.
  void RegisterTypes() {
    Type examples{.kind = TypeKind::kArtifact, .name = "Examples"};
    examples.properties = {{"span", PropertyType::kInt},
                           {"fingerprint", PropertyType::kString},
                           {"weight", PropertyType::kDouble},
                           {"split", PropertyType::kBool}};
    ASSERT_TRUE(store_->PutType(examples).ok());
    Type model{.kind = TypeKind::kArtifact, .name = "Model"};
    model.properties = {{"framework", PropertyType::kString}};
    ASSERT_TRUE(store_->PutType(model).ok());
    for (std::string name : {"Import", "Trainer", "Evaluator"}) {
      Type t{.kind = TypeKind::kExecution, .name = name};
      t.properties = {{"steps", PropertyType::kInt}};
      ASSERT_TRUE(store_->PutType(t).ok());
    }
    ASSERT_TRUE(store_->PutType({.kind = TypeKind::kContext, .name = "pipeline"}).ok());
    ASSERT_TRUE(store_->PutType({.kind = TypeKind::kContext, .name = "pipeline_run"}).ok());
  }

  int64_t PutExamples(const std::string& uri, int64_t span, const std::string& fingerprint) {
    Artifact a{.type = "Examples", .uri = uri};
    a.properties = {{"span", span}, {"fingerprint", fingerprint}};
    auto ids = store_->PutArtifacts({a});
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? (*ids)[0] : 0;
  }

  FakeClockEnv clock_;
  std::unique_ptr<kiln::testing::StoreLocation> location_;
  std::unique_ptr<MetadataStore> store_;
};

TEST_P(MetadataStoreTest, NewStoreHasCurrentSchemaVersion) {
  EXPECT_EQ(store_->schema_version(), kSchemaVersion);
}

TEST_P(MetadataStoreTest, PutTypeIsIdempotentAndExtends) {
  Type t{.kind = TypeKind::kArtifact, .name = "Schema"};
  t.properties = {{"version", PropertyType::kInt}};
  auto id1 = store_->PutType(t);
  ASSERT_TRUE(id1.ok()) << id1.status();
  auto id2 = store_->PutType(t);
  ASSERT_TRUE(id2.ok());
  EXPECT_EQ(*id1, *id2);
  t.properties["source"] = PropertyType::kString;
  ASSERT_TRUE(store_->PutType(t).ok());
  auto got = store_->GetType(TypeKind::kArtifact, "Schema");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->id, *id1);
  EXPECT_EQ(got->properties.size(), 2u);
  EXPECT_EQ(got->properties.at("source"), PropertyType::kString);

  t.properties["version"] = PropertyType::kString;
  auto conflict = store_->PutType(t);
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(conflict.status().message(), HasSubstr("'version' of type INT"));

  // Kinds are separate namespaces.
  auto exec = store_->PutType({.kind = TypeKind::kExecution, .name = "Schema"});
  ASSERT_TRUE(exec.ok());
  EXPECT_NE(*exec, *id1);
  EXPECT_EQ(store_->GetType(TypeKind::kContext, "Schema").status().code(),
            absl::StatusCode::kNotFound);
  auto all = store_->GetTypes(TypeKind::kArtifact);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].name, "Schema");
}

TEST_P(MetadataStoreTest, ArtifactRoundTripsEveryField) {
  RegisterTypes();
  Artifact a{.type = "Examples", .uri = "/data/span-7", .name = "examples-7"};
  a.state = ArtifactState::kPending;
  a.properties = {{"span", int64_t{7}},
                  {"fingerprint", std::string("sha256:abc")},
                  {"weight", 0.1},
                  {"split", true}};
  a.custom_properties = {{"min", std::numeric_limits<int64_t>::min()},
                         {"max", std::numeric_limits<int64_t>::max()},
                         {"tiny", 5e-324},
                         {"big", -1.7976931348623157e308},
                         {"flag", false},
                         {"note", std::string("")}};
  auto ids = store_->PutArtifacts({a});
  ASSERT_TRUE(ids.ok()) << ids.status();
  auto got = store_->GetArtifact((*ids)[0]);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, (*ids)[0]);
  EXPECT_EQ(got->type, "Examples");
  EXPECT_EQ(got->uri, "/data/span-7");
  EXPECT_EQ(got->name, "examples-7");
  EXPECT_EQ(got->state, ArtifactState::kPending);
  EXPECT_EQ(got->properties, a.properties);
  EXPECT_EQ(got->custom_properties, a.custom_properties);
  EXPECT_EQ(got->create_time_ms, clock_.now_ms);
  EXPECT_EQ(got->update_time_ms, clock_.now_ms);

  // An update replaces state and properties, keeps the create time.
  int64_t created = clock_.now_ms;
  clock_.now_ms += 5000;
  Artifact b = *got;
  b.state = ArtifactState::kLive;
  b.properties = {{"span", int64_t{8}}};
  b.custom_properties.clear();
  ASSERT_TRUE(store_->PutArtifacts({b}).ok());
  got = store_->GetArtifact(b.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, ArtifactState::kLive);
  EXPECT_EQ(got->properties, b.properties);
  EXPECT_THAT(got->custom_properties, IsEmpty());
  EXPECT_EQ(got->create_time_ms, created);
  EXPECT_EQ(got->update_time_ms, created + 5000);
}

TEST_P(MetadataStoreTest, RejectsBadNodesAndWritesNothing) {
  RegisterTypes();
  Artifact good{.type = "Examples", .uri = "a"};
  Artifact undeclared{.type = "Examples", .uri = "b"};
  undeclared.properties = {{"colour", std::string("red")}};
  auto r = store_->PutArtifacts({good, undeclared});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("no property 'colour'"));
  // All or nothing: the good one was rolled back with the bad one.
  EXPECT_THAT(*store_->GetArtifacts(), IsEmpty());

  Artifact mistyped{.type = "Examples", .uri = "c"};
  mistyped.properties = {{"span", std::string("7")}};
  r = store_->PutArtifacts({mistyped});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("'span' is INT, got a STRING"));

  r = store_->PutArtifacts({{.type = "Nope", .uri = "d"}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);

  Artifact missing{.id = 424242, .type = "Examples", .uri = "e"};
  EXPECT_EQ(store_->PutArtifacts({missing}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetArtifact(424242).status().code(), absl::StatusCode::kNotFound);

  Artifact named{.type = "Examples", .uri = "f", .name = "same"};
  ASSERT_TRUE(store_->PutArtifacts({named}).ok());
  r = store_->PutArtifacts({named});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(r.status().message(), HasSubstr("named 'same' already exists"));

  EXPECT_EQ(store_->PutContexts({{.type = "pipeline"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(MetadataStoreTest, QueriesByEveryFilter) {
  RegisterTypes();
  int64_t a1 = PutExamples("/d/1", 1, "f1");
  clock_.now_ms += 1000;
  int64_t a2 = PutExamples("/d/2", 2, "f2");
  clock_.now_ms += 1000;
  Artifact m{.type = "Model", .uri = "/m/1", .name = "m1"};
  m.properties = {{"framework", std::string("torch")}};
  m.custom_properties = {{"auc", 0.75}, {"blessed", true}};
  int64_t m1 = (*store_->PutArtifacts({m}))[0];
  auto ids = [](const std::vector<Artifact>& v) {
    std::vector<int64_t> out;
    for (const Artifact& a : v) out.push_back(a.id);
    return out;
  };
  Query q;
  q.type = "Examples";
  EXPECT_THAT(ids(*store_->GetArtifacts(q)), ElementsAre(a1, a2));
  q = {};
  q.name = "m1";
  EXPECT_THAT(ids(*store_->GetArtifacts(q)), ElementsAre(m1));
  q = {};
  q.uri = "/d/2";
  EXPECT_THAT(ids(*store_->GetArtifacts(q)), ElementsAre(a2));
  q = {};
  q.property = {"span", int64_t{1}};
  EXPECT_THAT(ids(*store_->GetArtifacts(q)), ElementsAre(a1));
  q.property = {"fingerprint", std::string("f2")};
  EXPECT_THAT(ids(*store_->GetArtifacts(q)), ElementsAre(a2));
  q.property = {"auc", 0.75};
  EXPECT_THAT(ids(*store_->GetArtifacts(q)), ElementsAre(m1));
  q.property = {"blessed", true};
  EXPECT_THAT(ids(*store_->GetArtifacts(q)), ElementsAre(m1));
  q.property = {"blessed", false};
  EXPECT_THAT(ids(*store_->GetArtifacts(q)), IsEmpty());
  q.property = {"span", std::string("1")};  // same name, other data type: no match
  EXPECT_THAT(ids(*store_->GetArtifacts(q)), IsEmpty());
  q = {};
  q.created_from_ms = clock_.now_ms - 1000;
  EXPECT_THAT(ids(*store_->GetArtifacts(q)), ElementsAre(a2, m1));
  q.created_until_ms = clock_.now_ms;
  EXPECT_THAT(ids(*store_->GetArtifacts(q)), ElementsAre(a2));
  q = {};
  q.newest_first = true;
  q.limit = 2;
  EXPECT_THAT(ids(*store_->GetArtifacts(q)), ElementsAre(m1, a2));
  q = {};
  q.ids = {m1, a1, 999999};
  EXPECT_THAT(ids(*store_->GetArtifacts(q)), ElementsAre(a1, m1));
  q = {};
  q.type = "NoSuchType";
  EXPECT_THAT(ids(*store_->GetArtifacts(q)), IsEmpty());
  q = {};
  q.uri = "/d/1";
  EXPECT_EQ(store_->GetContexts(q).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(MetadataStoreTest, ManyIdsQueryCrossesChunks) {
  RegisterTypes();
  std::vector<Artifact> many;
  for (int i = 0; i < 1300; ++i) many.push_back({.type = "Examples", .uri = StrCat("/d/", i)});
  auto ids = store_->PutArtifacts(many);
  ASSERT_TRUE(ids.ok()) << ids.status();
  Query q;
  q.ids = *ids;
  q.newest_first = true;
  auto got = store_->GetArtifacts(q);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1300u);
  EXPECT_EQ(got->front().id, ids->back());
  EXPECT_EQ(got->back().uri, "/d/0");
}

TEST_P(MetadataStoreTest, ManyPropertiesAndRepeatedInputsRoundTrip) {
  RegisterTypes();
  // More properties than one multi-row INSERT carries, of every value type.
  Artifact a{.type = "Examples", .uri = "/wide"};
  for (int i = 0; i < 150; ++i) {
    std::string key = StrCat("k", i);
    switch (i % 4) {
      case 0:
        a.custom_properties[key] = int64_t{i} * 1'000'000'007;
        break;
      case 1:
        a.custom_properties[key] = i / 7.0;
        break;
      case 2:
        a.custom_properties[key] = StrCat("v'", i);
        break;
      default:
        a.custom_properties[key] = i % 8 == 3;
    }
  }
  auto ids = store_->PutArtifacts({a});
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(store_->GetArtifact((*ids)[0])->custom_properties, a.custom_properties);
  // The same artifact as two inputs of one execution, in two contexts.
  auto r = store_->PutExecution(
      {.type = "Trainer"},
      {{.artifact = {.id = (*ids)[0]}, .event = EventType::kInput, .path = "a"},
       {.artifact = {.id = (*ids)[0]}, .event = EventType::kInput, .path = "b"}},
      {{.type = "pipeline", .name = "p"}, {.type = "pipeline_run", .name = "r"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(store_->GetEventsByExecutionIds({r->execution_id})->size(), 2u);
  EXPECT_EQ(store_->GetContextsOfArtifact((*ids)[0])->size(), 2u);
}

TEST_P(MetadataStoreTest, PutExecutionWritesEverythingInOneTransaction) {
  RegisterTypes();
  int64_t examples = PutExamples("/d/1", 1, "f1");
  Execution trainer{.type = "Trainer"};
  trainer.properties = {{"steps", int64_t{100}}};
  Artifact model{.type = "Model", .uri = "/m/1"};
  std::vector<ArtifactAndEvent> artifacts = {
      {.artifact = {.id = examples}, .event = EventType::kInput, .path = "examples"},
      {.artifact = model, .event = EventType::kOutput, .path = "model"}};
  std::vector<Context> contexts = {{.type = "pipeline", .name = "ctr"},
                                   {.type = "pipeline_run", .name = "run-1"}};
  auto r = store_->PutExecution(trainer, artifacts, contexts);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->artifact_ids.size(), 2u);
  EXPECT_EQ(r->artifact_ids[0], examples);
  ASSERT_EQ(r->context_ids.size(), 2u);

  auto events = store_->GetEventsByExecutionIds({r->execution_id});
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].artifact_id, examples);
  EXPECT_EQ((*events)[0].type, EventType::kInput);
  EXPECT_EQ((*events)[0].path, "examples");
  EXPECT_EQ((*events)[0].time_ms, clock_.now_ms);
  EXPECT_EQ((*events)[1].artifact_id, r->artifact_ids[1]);
  EXPECT_EQ((*events)[1].type, EventType::kOutput);

  Query in_run;
  in_run.context_id = r->context_ids[1];
  EXPECT_EQ(store_->GetExecutions(in_run)->size(), 1u);
  EXPECT_EQ(store_->GetArtifacts(in_run)->size(), 2u);
  auto ctx = store_->GetContextsOfExecution(r->execution_id);
  ASSERT_TRUE(ctx.ok());
  ASSERT_EQ(ctx->size(), 2u);
  EXPECT_EQ((*ctx)[0].name, "ctr");
  EXPECT_EQ((*store_->GetContextsOfArtifact(examples)).size(), 2u);

  // A second execution in the same pipeline reuses the pipeline context by name.
  auto r2 = store_->PutExecution(
      {.type = "Evaluator"},
      {{.artifact = {.id = r->artifact_ids[1]}, .event = EventType::kInput, .path = "model"}},
      {{.type = "pipeline", .name = "ctr"}});
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->context_ids[0], r->context_ids[0]);
  Query in_pipeline;
  in_pipeline.context_id = r->context_ids[0];
  EXPECT_EQ(store_->GetExecutions(in_pipeline)->size(), 2u);
}

TEST_P(MetadataStoreTest, FailedPutExecutionLeavesNoTrace) {
  RegisterTypes();
  Artifact bad{.type = "Model", .uri = "/m/bad"};
  bad.properties = {{"undeclared", int64_t{1}}};
  auto r = store_->PutExecution(
      {.type = "Trainer"},
      {{.artifact = {.type = "Model", .uri = "/m/ok"}, .event = EventType::kOutput},
       {.artifact = bad, .event = EventType::kOutput}},
      {{.type = "pipeline", .name = "p"}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(*store_->GetExecutions(), IsEmpty());
  EXPECT_THAT(*store_->GetArtifacts(), IsEmpty());
  EXPECT_THAT(*store_->GetContexts(), IsEmpty());

  auto missing_input = store_->PutExecution(
      {.type = "Trainer"}, {{.artifact = {.id = 777}, .event = EventType::kInput}}, {});
  EXPECT_EQ(missing_input.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(*store_->GetExecutions(), IsEmpty());
  EXPECT_EQ(
      store_->PutEvents({{.artifact_id = 1, .execution_id = 1, .type = EventType::kInput}}).code(),
      absl::StatusCode::kNotFound);
}

// raw -> Import -> examples -> Trainer (+ schema) -> model -> Evaluator -> blessing
class LineageTest : public MetadataStoreTest {
 protected:
  void SetUp() override {
    MetadataStoreTest::SetUp();
    RegisterTypes();
    ASSERT_TRUE(store_->PutType({.kind = TypeKind::kArtifact, .name = "Raw"}).ok());
    ASSERT_TRUE(store_->PutType({.kind = TypeKind::kArtifact, .name = "Blessing"}).ok());
    raw = (*store_->PutArtifacts({{.type = "Raw", .uri = "/raw"}}))[0];
    schema = (*store_->PutArtifacts({{.type = "Raw", .uri = "/schema.pbtxt"}}))[0];
    auto imp =
        store_->PutExecution({.type = "Import"},
                             {{.artifact = {.id = raw}, .event = EventType::kInput, .path = "data"},
                              {.artifact = {.type = "Examples", .uri = "/ex"},
                               .event = EventType::kOutput,
                               .path = "examples"}},
                             {});
    ASSERT_TRUE(imp.ok()) << imp.status();
    import_exec = imp->execution_id;
    examples = imp->artifact_ids[1];
    auto train = store_->PutExecution(
        {.type = "Trainer"},
        {{.artifact = {.id = examples}, .event = EventType::kInput, .path = "examples"},
         {.artifact = {.id = schema}, .event = EventType::kInput, .path = "schema"},
         {.artifact = {.type = "Model", .uri = "/model"},
          .event = EventType::kOutput,
          .path = "model"}},
        {});
    ASSERT_TRUE(train.ok()) << train.status();
    trainer_exec = train->execution_id;
    model = train->artifact_ids[2];
    auto eval = store_->PutExecution(
        {.type = "Evaluator"},
        {{.artifact = {.id = model}, .event = EventType::kInput, .path = "model"},
         {.artifact = {.type = "Blessing", .uri = "/blessing"},
          .event = EventType::kOutput,
          .path = "blessing"}},
        {});
    ASSERT_TRUE(eval.ok()) << eval.status();
    eval_exec = eval->execution_id;
    blessing = eval->artifact_ids[1];
  }

  static std::vector<int64_t> Ids(const std::vector<Artifact>& v) {
    std::vector<int64_t> out;
    for (const Artifact& a : v) out.push_back(a.id);
    return out;
  }
  static std::vector<int64_t> Ids(const std::vector<Execution>& v) {
    std::vector<int64_t> out;
    for (const Execution& e : v) out.push_back(e.id);
    return out;
  }

  int64_t raw = 0, schema = 0, examples = 0, model = 0, blessing = 0;
  int64_t import_exec = 0, trainer_exec = 0, eval_exec = 0;
};

TEST_P(LineageTest, UpstreamByHops) {
  LineageOptions o{.max_hops = 1, .direction = LineageDirection::kUpstream};
  auto g = store_->GetLineage(model, o);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(Ids(g->artifacts), UnorderedElementsAre(model, examples, schema));
  EXPECT_THAT(Ids(g->executions), ElementsAre(trainer_exec));
  EXPECT_EQ(g->events.size(), 3u);

  o.max_hops = 2;
  g = store_->GetLineage(model, o);
  ASSERT_TRUE(g.ok());
  EXPECT_THAT(Ids(g->artifacts), UnorderedElementsAre(model, examples, schema, raw));
  EXPECT_THAT(Ids(g->executions), UnorderedElementsAre(trainer_exec, import_exec));
  EXPECT_EQ(g->events.size(), 5u);

  o.max_hops = 0;
  g = store_->GetLineage(model, o);
  ASSERT_TRUE(g.ok());
  EXPECT_THAT(Ids(g->artifacts), ElementsAre(model));
  EXPECT_THAT(g->executions, IsEmpty());
}

TEST_P(LineageTest, DownstreamAndBoth) {
  LineageOptions o{.max_hops = 5, .direction = LineageDirection::kDownstream};
  auto g = store_->GetLineage(examples, o);
  ASSERT_TRUE(g.ok());
  EXPECT_THAT(Ids(g->artifacts), UnorderedElementsAre(examples, model, blessing));
  EXPECT_THAT(Ids(g->executions), UnorderedElementsAre(trainer_exec, eval_exec));

  o.direction = LineageDirection::kBoth;
  g = store_->GetLineage(examples, o);
  ASSERT_TRUE(g.ok());
  // Upstream reaches raw through Import; the schema is a sibling input, not an
  // ancestor or descendant of the examples, so it is not part of their lineage.
  EXPECT_THAT(Ids(g->artifacts), UnorderedElementsAre(raw, examples, model, blessing));
  EXPECT_EQ(store_->GetLineage(999999).status().code(), absl::StatusCode::kNotFound);
  o.max_hops = -1;
  EXPECT_EQ(store_->GetLineage(model, o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(MetadataStoreTest, DiffNamesWhatDiffersBetweenTwoModels) {
  RegisterTypes();
  auto train = [&](int64_t examples, int64_t steps, const std::string& lr, const std::string& sha) {
    Execution e{.type = "Trainer"};
    e.properties = {{"steps", steps}};
    e.custom_properties = {{"learning_rate", lr},
                           {"kiln_version", std::string("0.1.0")},
                           {"git_sha", sha},
                           {"env.host", std::string("box")}};
    Artifact m{.type = "Model", .uri = StrCat("/m/", steps)};
    m.properties = {{"framework", std::string("torch")}};
    auto r = store_->PutExecution(
        e,
        {{.artifact = {.id = examples}, .event = EventType::kInput, .path = "examples"},
         {.artifact = m, .event = EventType::kOutput, .path = "model"}},
        {});
    EXPECT_TRUE(r.ok()) << r.status();
    return r->artifact_ids[1];
  };
  int64_t e1 = PutExamples("/d/span-1", 1, "sha256:aaa");
  int64_t e2 = PutExamples("/d/span-2", 2, "sha256:bbb");
  int64_t m1 = train(e1, 100, "0.1", "abc123");
  int64_t m2 = train(e2, 100, "0.05", "def456");
  auto diff = store_->Diff(m1, m2);
  ASSERT_TRUE(diff.ok()) << diff.status();
  std::vector<std::string> lines;
  for (const DiffEntry& d : diff->differences) {
    lines.push_back(
        StrCat(d.category, " ", d.key, ": ", d.a.value_or("-"), " -> ", d.b.value_or("-")));
  }
  EXPECT_THAT(lines, ElementsAre("code git_sha: abc123 -> def456",
                                 "input examples.fingerprint: sha256:aaa -> sha256:bbb",
                                 "input examples.span: 1 -> 2",
                                 "input examples.uri: /d/span-1 -> /d/span-2",
                                 "parameter learning_rate: 0.1 -> 0.05"));
  // component, steps, kiln_version, env.host, model type and framework agree.
  EXPECT_EQ(diff->same, 6);
  auto self = store_->Diff(m1, m1);
  ASSERT_TRUE(self.ok());
  EXPECT_THAT(self->differences, IsEmpty());
  EXPECT_EQ(store_->Diff(m1, 999999).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(MetadataStoreTest, HostileStringsRoundTripThroughEveryQuery) {
  const std::string big(10 * 1024, 'x');
  const std::vector<std::string> hostile = {
      "it's",      "a\"b",   "'; DROP TABLE artifacts; --", "semi;colon",
      "?",         "$1",     "línea \xE2\x9C\x93 日本語",   "back\\slash",
      "new\nline", big + "'"};
  for (size_t i = 0; i < hostile.size(); ++i) {
    const std::string& s = hostile[i];
    Type t{.kind = TypeKind::kArtifact, .name = s};
    t.properties = {{s, PropertyType::kString}};
    ASSERT_TRUE(store_->PutType(t).ok()) << i;
    auto got_type = store_->GetType(TypeKind::kArtifact, s);
    ASSERT_TRUE(got_type.ok()) << i;
    EXPECT_EQ(got_type->properties.count(s), 1u);

    Artifact a{.type = s, .uri = s, .name = s};
    a.properties = {{s, s}};
    a.custom_properties = {{s + "c", s}};
    auto ids = store_->PutArtifacts({a});
    ASSERT_TRUE(ids.ok()) << i << ": " << ids.status();
    for (int filter = 0; filter < 4; ++filter) {
      Query q;
      if (filter == 0) q.type = s;
      if (filter == 1) q.name = s;
      if (filter == 2) q.uri = s;
      if (filter == 3) q.property = {s + "c", s};
      auto found = store_->GetArtifacts(q);
      ASSERT_TRUE(found.ok()) << i << "/" << filter << ": " << found.status();
      ASSERT_EQ(found->size(), 1u) << i << "/" << filter;
      EXPECT_EQ((*found)[0].uri, s);
      EXPECT_EQ((*found)[0].properties, a.properties);
      EXPECT_EQ((*found)[0].custom_properties, a.custom_properties);
    }
    ASSERT_TRUE(store_->PutType({.kind = TypeKind::kContext, .name = "ctx"}).ok());
    auto c = store_->PutContexts({{.type = "ctx", .name = s}});
    ASSERT_TRUE(c.ok()) << i << ": " << c.status();
    EXPECT_EQ(store_->GetContext((*c)[0])->name, s);
  }
  // Every table is still there and holds exactly what was put.
  EXPECT_EQ(store_->GetArtifacts()->size(), hostile.size());
}

TEST_P(MetadataStoreTest, ReopenKeepsEverything) {
  RegisterTypes();
  int64_t id = PutExamples("/d/1", 1, "f");
  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  auto a = store_->GetArtifact(id);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->properties.at("fingerprint"), Value(std::string("f")));
}

TEST_P(MetadataStoreTest, MigratesOlderSchemaForwardKeepingData) {
  // Build a version-1 store, write to it, then open it with the current kiln.
  store_.reset();
  location_ = GetParam().make();
  StoreOptions v1;
  v1.schema_version_for_testing = 1;
  store_ = Open(v1);
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->schema_version(), 1);
  RegisterTypes();
  int64_t id = PutExamples("/d/old", 3, "old");
  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->schema_version(), kSchemaVersion);
  auto a = store_->GetArtifact(id);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->uri, "/d/old");
  EXPECT_EQ(PutExamples("/d/new", 4, "new"), id + 1);
}

TEST_P(MetadataStoreTest, RefusesNewerSchemaAndChangesNothing) {
  RegisterTypes();
  PutExamples("/d/1", 1, "f");
  store_.reset();
  // Pretend a future kiln wrote this store.
  auto bump = [&](int version) {
    std::unique_ptr<Backend> b = RawBackend();
    SqlValue v = int64_t{version};
    ASSERT_TRUE(b->Query("UPDATE kiln_schema_version SET version = ?", {&v, 1}).ok());
  };
  bump(kSchemaVersion + 1);
  auto refused = OpenStore(location_->url());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(),
              HasSubstr(StrCat("schema version ", kSchemaVersion + 1, ", newer than this kiln")));
  EXPECT_THAT(refused.status().message(), HasSubstr("was not changed"));
  // And it was not: the version is still the future one.
  auto version = RawBackend()->Query("SELECT version FROM kiln_schema_version", {});
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(std::get<int64_t>((*version)[0][0]), kSchemaVersion + 1);
  bump(kSchemaVersion);
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->GetArtifacts()->size(), 1u);
}

TEST_P(MetadataStoreTest, RefusesDatabaseWithForeignTables) {
  store_.reset();
  location_ = GetParam().make();
  std::unique_ptr<Backend> b = RawBackend();
  ASSERT_TRUE(b->ExecuteScript("CREATE TABLE customers (id INTEGER); "
                               "INSERT INTO customers VALUES (1)")
                  .ok());
  auto refused = OpenStore(location_->url());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("not a kiln metadata store"));
  EXPECT_THAT(refused.status().message(), HasSubstr("customers"));
  auto tables = b->ListTables();
  ASSERT_TRUE(tables.ok());
  EXPECT_THAT(*tables, ElementsAre("customers"));
}

TEST_P(MetadataStoreTest, KilledMidTransactionLeavesNoPartialExecution) {
  RegisterTypes();
  int64_t examples = PutExamples("/d/1", 1, "f");
  store_.reset();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    StoreOptions o;
    o.before_commit_for_testing = [] { raise(SIGKILL); };
    auto s = OpenStore(location_->url(), std::move(o));
    if (!s.ok()) _exit(3);
    (void)(*s)->PutExecution(
        {.type = "Trainer"},
        {{.artifact = {.id = examples}, .event = EventType::kInput, .path = "examples"},
         {.artifact = {.type = "Model", .uri = "/m"}, .event = EventType::kOutput}},
        {{.type = "pipeline", .name = "p"}});
    _exit(4);  // not reached: the hook kills the process before COMMIT
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_THAT(*store_->GetExecutions(), IsEmpty());
  EXPECT_EQ(store_->GetArtifacts()->size(), 1u);
  EXPECT_THAT(*store_->GetContexts(), IsEmpty());
  EXPECT_THAT(*store_->GetEventsByArtifactIds({examples}), IsEmpty());
  // And the store still takes writes.
  auto r = store_->PutExecution({.type = "Trainer"}, {}, {});
  EXPECT_TRUE(r.ok()) << r.status();
}

INSTANTIATE_TEST_SUITE_P(Backends, MetadataStoreTest,
                         ::testing::ValuesIn(kiln::testing::AllBackends()),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(Backends, LineageTest, ::testing::ValuesIn(kiln::testing::AllBackends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace kiln::metadata
