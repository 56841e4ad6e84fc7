#include "kiln/metadata/postgres_backend.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/testing/postgres.h"

namespace kiln::metadata {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

// The URL of the fixture's server with its port replaced by `port`.
std::string WithPort(const std::string& url, int port) {
  size_t colon = url.rfind(':');
  size_t slash = url.find('/', colon);
  return StrCat(url.substr(0, colon + 1), port, url.substr(slash));
}

int PortOf(const std::string& url) {
  size_t colon = url.rfind(':');
  return std::stoi(url.substr(colon + 1));
}

// Why a test fails when the fixture's server is not there.
std::string NoServer() {
  return StrCat("no PostgreSQL test server (", KILN_BINARY_DIR,
                "/pgtest/url is missing): run the tests through ctest, whose fixture "
                "metadata_postgres_start starts one, e.g. ctest -R Postgres");
}

// A TCP port on 127.0.0.1 nothing listens on: bound, then released.
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// Each test works in a schema of its own (tests run in parallel under ctest -j against
// one server), dropped at the end.
class PostgresBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = testing::PostgresTestUrl();
    ASSERT_FALSE(url_.empty()) << NoServer();
    auto backend = Open();
    ASSERT_TRUE(backend.ok()) << backend.status();
    db_ = std::move(backend).value();
    static int counter = 0;
    schema_ = StrCat("t_", getpid(), "_", counter++);
    ASSERT_TRUE(
        db_->ExecuteScript(StrCat("CREATE SCHEMA ", schema_, "; SET search_path TO ", schema_))
            .ok());
  }

  void TearDown() override {
    if (db_ == nullptr || schema_.empty()) return;
    db_->Rollback();
    EXPECT_TRUE(db_->ExecuteScript(StrCat("DROP SCHEMA IF EXISTS ", schema_, " CASCADE")).ok());
  }

  absl::StatusOr<std::unique_ptr<Backend>> Open() {
    return OpenPostgresBackend({.url = url_, .connect_timeout_s = 10});
  }

  // Rows of a statement that must succeed.
  std::vector<SqlRow> Rows(std::string_view sql, std::vector<SqlValue> params = {}) {
    auto rows = db_->Query(sql, params);
    EXPECT_TRUE(rows.ok()) << sql << ": " << rows.status();
    return rows.ok() ? *std::move(rows) : std::vector<SqlRow>{};
  }
  void Exec(std::string_view sql, std::vector<SqlValue> params = {}) {
    EXPECT_THAT(Rows(sql, std::move(params)), ::testing::IsEmpty());
  }
  int64_t Count(std::string_view table) {
    auto rows = Rows(StrCat("SELECT COUNT(*) FROM ", table));
    return rows.size() == 1 ? std::get<int64_t>(rows[0][0]) : -1;
  }

  std::string url_;
  std::unique_ptr<Backend> db_;
  std::string schema_;
};

TEST_F(PostgresBackendTest, DescribesServerWithoutCredentials) {
  EXPECT_EQ(db_->dialect(), Dialect::kPostgres);
  EXPECT_EQ(db_->Describe(), StrCat("postgresql://127.0.0.1:", PortOf(url_), "/kiln_test"));
  // A password in the URL (ignored by the trust-auth test server) appears nowhere.
  std::string with_password = url_;
  with_password.replace(with_password.find("kiln@"), 5, "kiln:s3cret-pw@");
  auto other = OpenPostgresBackend({.url = with_password});
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ((*other)->Describe(), db_->Describe());
}

TEST_F(PostgresBackendTest, SetsApplicationName) {
  EXPECT_THAT(Rows("SELECT current_setting('application_name')"),
              ElementsAre(ElementsAre(SqlValue(std::string("kiln")))));
}

TEST_F(PostgresBackendTest, RoundTripsInt64Extremes) {
  Exec("CREATE TABLE v (i BIGINT)");
  const std::vector<int64_t> values = {std::numeric_limits<int64_t>::min(), -1, 0, 1,
                                       std::numeric_limits<int64_t>::max()};
  for (int64_t v : values) Exec("INSERT INTO v (i) VALUES (?)", {v});
  std::vector<SqlRow> rows = Rows("SELECT i FROM v ORDER BY i");
  ASSERT_EQ(rows.size(), values.size());
  for (size_t k = 0; k < values.size(); ++k) EXPECT_EQ(rows[k][0], SqlValue(values[k]));
  // A value compares with its typed parameter exactly (no float detour).
  EXPECT_EQ(Rows("SELECT COUNT(*) FROM v WHERE i = ?", {std::numeric_limits<int64_t>::max()}),
            std::vector<SqlRow>{{SqlValue(int64_t{1})}});
}

TEST_F(PostgresBackendTest, RoundTripsDoubles) {
  Exec("CREATE TABLE v (k BIGINT, d DOUBLE PRECISION)");
  const std::vector<double> values = {0.1,
                                      1e300,
                                      -0.0,
                                      -2.5,
                                      std::numeric_limits<double>::denorm_min(),
                                      std::numeric_limits<double>::max(),
                                      1.0 / 3,
                                      std::numeric_limits<double>::infinity(),
                                      -std::numeric_limits<double>::infinity()};
  for (size_t k = 0; k < values.size(); ++k) {
    Exec("INSERT INTO v (k, d) VALUES (?, ?)", {static_cast<int64_t>(k), values[k]});
  }
  Exec("INSERT INTO v (k, d) VALUES (?, ?)", {int64_t{100}, std::nan("")});
  std::vector<SqlRow> rows = Rows("SELECT d FROM v ORDER BY k");
  ASSERT_EQ(rows.size(), values.size() + 1);
  for (size_t k = 0; k < values.size(); ++k) {
    ASSERT_TRUE(std::holds_alternative<double>(rows[k][0])) << k;
    double got = std::get<double>(rows[k][0]);
    EXPECT_EQ(got, values[k]) << k;
    EXPECT_EQ(std::signbit(got), std::signbit(values[k])) << k;
  }
  EXPECT_TRUE(std::isnan(std::get<double>(rows.back()[0])));
}

TEST_F(PostgresBackendTest, RoundTripsStrings) {
  Exec("CREATE TABLE v (k BIGINT, s TEXT)");
  std::string big;
  for (int i = 0; i < 10 * 1024; ++i) big += static_cast<char>('a' + i % 26);
  const std::vector<std::string> values = {
      "",
      "it's a 'quote'",
      "\"double\" and \\backslash\\",
      "a; DROP TABLE v; --",
      "question? $1 marks?",
      "h\xC3\xA9llo \xE2\x9C\x93 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x8E\x89",
      "tab\tnewline\ncr\r",
      big};
  for (size_t k = 0; k < values.size(); ++k) {
    Exec("INSERT INTO v (k, s) VALUES (?, ?)", {static_cast<int64_t>(k), values[k]});
  }
  std::vector<SqlRow> rows = Rows("SELECT s, length(s) FROM v ORDER BY k");
  ASSERT_EQ(rows.size(), values.size());
  for (size_t k = 0; k < values.size(); ++k) EXPECT_EQ(rows[k][0], SqlValue(values[k])) << k;
  // Unicode arrives as characters, not bytes: 5 + 1 + 1 + 1 + 2 + 1 + 1 code points.
  EXPECT_EQ(rows[5][1], SqlValue(int64_t{12}));
  EXPECT_EQ(rows[7][1], SqlValue(int64_t{10 * 1024}));
}

TEST_F(PostgresBackendTest, RoundTripsNull) {
  Exec("CREATE TABLE v (k BIGINT, i BIGINT, d DOUBLE PRECISION, s TEXT)");
  const SqlValue null;
  // The same statement with NULLs and with values in the same positions.
  Exec("INSERT INTO v (k, i, d, s) VALUES (?, ?, ?, ?)", {int64_t{1}, null, null, null});
  Exec("INSERT INTO v (k, i, d, s) VALUES (?, ?, ?, ?)",
       {int64_t{2}, int64_t{7}, 1.5, std::string("x")});
  Exec("INSERT INTO v (k, i, d, s) VALUES (?, ?, ?, ?)", {int64_t{3}, null, 2.5, null});
  EXPECT_EQ(Rows("SELECT i, d, s FROM v ORDER BY k"),
            (std::vector<SqlRow>{{null, null, null},
                                 {SqlValue(int64_t{7}), SqlValue(1.5), SqlValue(std::string("x"))},
                                 {null, SqlValue(2.5), null}}));
  EXPECT_EQ(Rows("SELECT k FROM v WHERE s IS NOT DISTINCT FROM ?", {null}),
            (std::vector<SqlRow>{{SqlValue(int64_t{1})}, {SqlValue(int64_t{3})}}));
  EXPECT_EQ(Rows("SELECT NULL"), std::vector<SqlRow>{{null}});
}

TEST_F(PostgresBackendTest, MapsResultColumnTypes) {
  EXPECT_EQ(
      Rows("SELECT 1::int2, 2::int4, 3::int8, 1.5::float4, 2.5::float8, 3.25::numeric, "
           "true, false, 'x'::varchar, 'y'::text, 'z'::name"),
      (std::vector<SqlRow>{{SqlValue(int64_t{1}), SqlValue(int64_t{2}), SqlValue(int64_t{3}),
                            SqlValue(1.5), SqlValue(2.5), SqlValue(3.25), SqlValue(int64_t{1}),
                            SqlValue(int64_t{0}), SqlValue(std::string("x")),
                            SqlValue(std::string("y")), SqlValue(std::string("z"))}}));
}

TEST_F(PostgresBackendTest, RenumbersPlaceholdersOutsideLiterals) {
  EXPECT_EQ(Rows("SELECT ?, '?', ? /* ? */, 'it''s ?', E'\\'?', \"?\".x, $$?$$, ? -- ?\n"
                 "FROM (SELECT 5 AS x) AS \"?\"",
                 {int64_t{1}, std::string("b"), 2.5}),
            (std::vector<SqlRow>{{SqlValue(int64_t{1}), SqlValue(std::string("?")),
                                  SqlValue(std::string("b")), SqlValue(std::string("it's ?")),
                                  SqlValue(std::string("'?")), SqlValue(int64_t{5}),
                                  SqlValue(std::string("?")), SqlValue(2.5)}}));
}

TEST_F(PostgresBackendTest, PlaceholderCountMismatchIsInternal) {
  auto rows = db_->Query("SELECT ?, ?", std::vector<SqlValue>{int64_t{1}});
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(Message(rows.status()), HasSubstr("2 placeholders but 1 parameters"));
}

TEST_F(PostgresBackendTest, NulByteInStringIsInvalidArgument) {
  auto rows = db_->Query("SELECT ?", std::vector<SqlValue>{std::string("a\0b", 3)});
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PostgresBackendTest, UniqueViolationIsAlreadyExists) {
  Exec("CREATE TABLE u (name TEXT PRIMARY KEY)");
  Exec("INSERT INTO u (name) VALUES (?)", {std::string("a")});
  auto again = db_->Query("INSERT INTO u (name) VALUES (?)", std::vector<SqlValue>{"a"});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  EXPECT_THAT(Message(again.status()), HasSubstr(db_->Describe() + ": duplicate key value"));
  EXPECT_THAT(Message(again.status()), HasSubstr("(SQLSTATE 23505)"));
  EXPECT_EQ(Count("u"), 1);
}

TEST_F(PostgresBackendTest, RollbackDiscardsAndCommitKeeps) {
  Exec("CREATE TABLE v (i BIGINT)");
  ASSERT_TRUE(db_->Begin(/*write=*/true).ok());
  Exec("INSERT INTO v (i) VALUES (?)", {int64_t{1}});
  EXPECT_EQ(Count("v"), 1);
  db_->Rollback();
  EXPECT_EQ(Count("v"), 0);
  db_->Rollback();  // harmless outside a transaction

  ASSERT_TRUE(db_->Begin(/*write=*/true).ok());
  Exec("INSERT INTO v (i) VALUES (?)", {int64_t{2}});
  ASSERT_TRUE(db_->Commit().ok());
  EXPECT_EQ(Count("v"), 1);
}

TEST_F(PostgresBackendTest, CommitAfterFailedStatementFailsAndWritesNothing) {
  Exec("CREATE TABLE u (name TEXT PRIMARY KEY)");
  Exec("INSERT INTO u (name) VALUES ('a')");
  ASSERT_TRUE(db_->Begin(/*write=*/true).ok());
  Exec("INSERT INTO u (name) VALUES ('b')");
  EXPECT_EQ(db_->Query("INSERT INTO u (name) VALUES ('a')", {}).status().code(),
            absl::StatusCode::kAlreadyExists);
  absl::Status commit = db_->Commit();
  EXPECT_EQ(commit.code(), absl::StatusCode::kInternal) << commit;
  EXPECT_EQ(Rows("SELECT name FROM u"), std::vector<SqlRow>{{SqlValue(std::string("a"))}});
}

TEST_F(PostgresBackendTest, ReadOnlyTransactionIsFailedPrecondition) {
  Exec("CREATE TABLE v (i BIGINT)");
  ASSERT_TRUE(db_->Begin(/*write=*/false).ok());
  Exec("SET TRANSACTION READ ONLY");
  auto insert = db_->Query("INSERT INTO v (i) VALUES (1)", {});
  EXPECT_EQ(insert.status().code(), absl::StatusCode::kFailedPrecondition) << insert.status();
  db_->Rollback();
}

TEST_F(PostgresBackendTest, LockContentionIsUnavailable) {
  Exec("CREATE TABLE v (i BIGINT)");
  auto other = Open();
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE((*other)->ExecuteScript(StrCat("SET search_path TO ", schema_)).ok());

  ASSERT_TRUE(db_->Begin(/*write=*/true).ok());
  Exec("LOCK TABLE v IN ACCESS EXCLUSIVE MODE");
  ASSERT_TRUE((*other)->Begin(/*write=*/true).ok());
  auto locked = (*other)->Query("LOCK TABLE v IN ACCESS EXCLUSIVE MODE NOWAIT", {});
  EXPECT_EQ(locked.status().code(), absl::StatusCode::kUnavailable) << locked.status();
  EXPECT_THAT(Message(locked.status()), HasSubstr("(SQLSTATE 55P03)"));
  (*other)->Rollback();
  db_->Rollback();
}

TEST_F(PostgresBackendTest, SyntaxErrorIsInternalAndNamesServer) {
  auto rows = db_->Query("SELEC 1", {});
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(Message(rows.status()),
            StrCat(db_->Describe(), ": syntax error at or near \"SELEC\" (SQLSTATE 42601)"));
}

TEST_F(PostgresBackendTest, ExecuteScriptRunsEveryStatement) {
  ASSERT_TRUE(db_->ExecuteScript("CREATE TABLE a (i BIGINT);\n"
                                 "CREATE TABLE b (s TEXT);\n"
                                 "INSERT INTO a VALUES (1), (2);\n")
                  .ok());
  EXPECT_EQ(Count("a"), 2);
  absl::Status bad = db_->ExecuteScript("CREATE TABLE c (i BIGINT); CREATE TABLE a (i BIGINT);");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(Message(bad), HasSubstr("relation \"a\" already exists"));
  // The script ran as one implicit transaction: c was not kept.
  auto tables = db_->ListTables();
  ASSERT_TRUE(tables.ok()) << tables.status();
  EXPECT_THAT(*tables, ElementsAre("a", "b"));
}

TEST_F(PostgresBackendTest, ListTablesListsTheCurrentSchemaOnly) {
  auto empty = db_->ListTables();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_THAT(*empty, ::testing::IsEmpty());
  std::string other_schema = schema_ + "_other";
  ASSERT_TRUE(db_->ExecuteScript(StrCat("CREATE TABLE zeta (i BIGINT); CREATE TABLE alpha (i "
                                        "BIGINT); CREATE SCHEMA ",
                                        other_schema, "; CREATE TABLE ", other_schema,
                                        ".elsewhere (i BIGINT); CREATE VIEW w AS SELECT 1 AS x"))
                  .ok());
  auto tables = db_->ListTables();
  ASSERT_TRUE(tables.ok()) << tables.status();
  EXPECT_THAT(*tables, ElementsAre("alpha", "zeta"));
  EXPECT_TRUE(db_->ExecuteScript(StrCat("DROP SCHEMA ", other_schema, " CASCADE")).ok());
}

TEST_F(PostgresBackendTest, CachedStatementsFollowSchemaChanges) {
  Exec("CREATE TABLE v (i BIGINT)");
  Exec("INSERT INTO v (i) VALUES (?)", {int64_t{1}});
  EXPECT_EQ(Rows("SELECT * FROM v"), std::vector<SqlRow>{{SqlValue(int64_t{1})}});
  // Altered through ExecuteScript...
  ASSERT_TRUE(db_->ExecuteScript("ALTER TABLE v ADD COLUMN s TEXT DEFAULT 'x'").ok());
  EXPECT_EQ(Rows("SELECT * FROM v"),
            (std::vector<SqlRow>{{SqlValue(int64_t{1}), SqlValue(std::string("x"))}}));
  // ...and through Query, which the cached SELECT does not hear about.
  Exec("ALTER TABLE v ADD COLUMN d DOUBLE PRECISION DEFAULT 0.5");
  EXPECT_EQ(
      Rows("SELECT * FROM v"),
      (std::vector<SqlRow>{{SqlValue(int64_t{1}), SqlValue(std::string("x")), SqlValue(0.5)}}));
  // Inside a transaction the failed statement has aborted it: the caller retries it.
  Exec("ALTER TABLE v DROP COLUMN d");
  ASSERT_TRUE(db_->Begin(/*write=*/false).ok());
  auto changed = db_->Query("SELECT * FROM v", {});
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kUnavailable) << changed.status();
  db_->Rollback();
  ASSERT_TRUE(db_->Begin(/*write=*/false).ok());
  EXPECT_EQ(Rows("SELECT * FROM v"),
            (std::vector<SqlRow>{{SqlValue(int64_t{1}), SqlValue(std::string("x"))}}));
  EXPECT_TRUE(db_->Commit().ok());
}

TEST_F(PostgresBackendTest, LostConnectionIsUnavailableThenReconnects) {
  auto killer = Open();
  ASSERT_TRUE(killer.ok()) << killer.status();
  std::vector<SqlRow> pid = Rows("SELECT pg_backend_pid()");
  ASSERT_EQ(pid.size(), 1u);
  auto killed = (*killer)->Query("SELECT pg_terminate_backend(?::int4)", pid[0]);
  ASSERT_TRUE(killed.ok()) << killed.status();

  auto lost = db_->Query("SELECT 1", {});
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_THAT(Message(lost.status()), HasSubstr(db_->Describe()));
  // The next statement outside a transaction reconnects.
  EXPECT_EQ(Rows("SELECT 1"), std::vector<SqlRow>{{SqlValue(int64_t{1})}});
  ASSERT_TRUE(db_->Begin(/*write=*/true).ok());
  db_->Rollback();
  // The session settings of the lost connection (our search_path) are gone; restore them
  // so TearDown drops the schema.
  ASSERT_TRUE(db_->ExecuteScript(StrCat("SET search_path TO ", schema_)).ok());
}

TEST(PostgresBackendOpenTest, ClosedPortIsUnavailableWithoutPassword) {
  std::string url = testing::PostgresTestUrl();
  ASSERT_FALSE(url.empty()) << NoServer();
  int port = ClosedPort();
  std::string bad = WithPort(url, port);
  bad.replace(bad.find("kiln@"), 5, "kiln:s3cret-pw@");
  auto backend = OpenPostgresBackend({.url = bad, .connect_timeout_s = 5});
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(backend.status()),
              HasSubstr(StrCat("postgresql://127.0.0.1:", port, "/kiln_test: cannot connect: ")));
  EXPECT_THAT(Message(backend.status()), HasSubstr("Connection refused"));
  EXPECT_THAT(Message(backend.status()), Not(HasSubstr("s3cret")));
  EXPECT_THAT(Message(backend.status()), Not(HasSubstr("\n")));
}

TEST(PostgresBackendOpenTest, MissingDatabaseIsUnavailable) {
  std::string url = testing::PostgresTestUrl();
  ASSERT_FALSE(url.empty()) << NoServer();
  url.replace(url.rfind("/kiln_test"), 10, "/no_such_db");
  auto backend = OpenPostgresBackend({.url = url});
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(backend.status()), HasSubstr("database \"no_such_db\" does not exist"));
}

TEST(PostgresBackendOpenTest, MalformedUrlIsInvalidArgumentWithoutPassword) {
  auto backend = OpenPostgresBackend({.url = "postgresql://kiln:s3cret-pw@[::1/db"});
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(backend.status()), HasSubstr("invalid PostgreSQL connection string"));
  EXPECT_THAT(Message(backend.status()), Not(HasSubstr("s3cret")));

  auto conninfo = OpenPostgresBackend({.url = "host=x password=s3cret-pw dbname"});
  EXPECT_EQ(conninfo.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(conninfo.status()), Not(HasSubstr("s3cret")));
}

}  // namespace
}  // namespace kiln::metadata
