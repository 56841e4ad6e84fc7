#include "kiln/metadata/sqlite_backend.h"

#include <sqlite3.h>

#include <filesystem>
#include <unordered_map>

#include "absl/status/status.h"
#include "kiln/base/str.h"

namespace kiln::metadata {
namespace {

class SqliteBackend : public Backend {
 public:
  SqliteBackend(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteBackend() override {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  Dialect dialect() const override { return Dialect::kSqlite; }
  std::string Describe() const override { return StrCat("sqlite:", path_); }

  absl::Status Begin(bool write) override {
    return ExecuteScript(write ? "BEGIN IMMEDIATE" : "BEGIN");
  }
  absl::Status Commit() override { return ExecuteScript("COMMIT"); }
  void Rollback() override {
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  absl::StatusOr<std::vector<SqlRow>> Query(std::string_view sql,
                                            std::span<const SqlValue> params) override {
    sqlite3_stmt* stmt = nullptr;
    auto it = statements_.find(std::string(sql));
    if (it != statements_.end()) {
      stmt = it->second;
    } else {
      int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                  SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return Error(rc, sql);
      statements_.emplace(std::string(sql), stmt);
    }
    // Reset on every exit so the statement never holds a read lock between calls.
    struct Resetter {
      sqlite3_stmt* s;
      ~Resetter() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
      }
    } resetter{stmt};
    if (static_cast<size_t>(sqlite3_bind_parameter_count(stmt)) != params.size()) {
      return absl::InternalError(StrCat(Describe(), ": statement has ",
                                        sqlite3_bind_parameter_count(stmt), " parameters, ",
                                        params.size(), " given: ", sql));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      int idx = static_cast<int>(i) + 1;
      int rc = SQLITE_OK;
      const SqlValue& p = params[i];
      if (const auto* v = std::get_if<int64_t>(&p)) {
        rc = sqlite3_bind_int64(stmt, idx, *v);
      } else if (const auto* d = std::get_if<double>(&p)) {
        rc = sqlite3_bind_double(stmt, idx, *d);
      } else if (const auto* s = std::get_if<std::string>(&p)) {
        rc = sqlite3_bind_text64(stmt, idx, s->data(), s->size(), SQLITE_STATIC, SQLITE_UTF8);
      } else {
        rc = sqlite3_bind_null(stmt, idx);
      }
      if (rc != SQLITE_OK) return Error(rc, sql);
    }
    std::vector<SqlRow> rows;
    for (;;) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Error(rc, sql);
      int n = sqlite3_column_count(stmt);
      SqlRow row(n);
      for (int c = 0; c < n; ++c) {
        switch (sqlite3_column_type(stmt, c)) {
          case SQLITE_INTEGER:
            row[c] = static_cast<int64_t>(sqlite3_column_int64(stmt, c));
            break;
          case SQLITE_FLOAT:
            row[c] = sqlite3_column_double(stmt, c);
            break;
          case SQLITE_NULL:
            break;
          default: {
            const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
            row[c] = std::string(text, sqlite3_column_bytes(stmt, c));
          }
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  absl::Status ExecuteScript(std::string_view sql) override {
    std::string script(sql);
    char* message = nullptr;
    int rc = sqlite3_exec(db_, script.c_str(), nullptr, nullptr, &message);
    std::string text = message ? message : "";
    sqlite3_free(message);
    if (rc == SQLITE_OK) return absl::OkStatus();
    return Error(rc, sql, text);
  }

  absl::StatusOr<std::vector<std::string>> ListTables() override {
    SqlValue kind = std::string("table");
    auto rows = Query("SELECT name FROM sqlite_master WHERE type = ? ORDER BY name", {&kind, 1});
    if (!rows.ok()) return rows.status();
    std::vector<std::string> names;
    for (const SqlRow& r : *rows) names.push_back(std::get<std::string>(r[0]));
    return names;
  }

  absl::Status Prepare() override {
    // WAL lets readers run beside a writer; NORMAL sync is durable against a killed
    // process (the case that matters for a CLI) and much faster than FULL.
    return ExecuteScript(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");
  }

 private:
  absl::Status Error(int rc, std::string_view sql, std::string message = "") const {
    if (message.empty()) message = sqlite3_errmsg(db_);
    int primary = rc & 0xff;
    std::string text = StrCat(Describe(), ": ", message);
    switch (primary) {
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return absl::UnavailableError(text + " (another process holds the lock)");
      case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
          return absl::AlreadyExistsError(text);
        }
        return absl::InvalidArgumentError(text);
      case SQLITE_NOTADB:
        return absl::FailedPreconditionError(
            StrCat(Describe(), " is not a kiln metadata store: the file is not a SQLite database"));
      case SQLITE_CORRUPT:
        return absl::DataLossError(text);
      case SQLITE_READONLY:
      case SQLITE_CANTOPEN:
      case SQLITE_PERM:
        return absl::FailedPreconditionError(text);
      case SQLITE_FULL:
      case SQLITE_IOERR:
        return absl::UnavailableError(text);
      default:
        return absl::InternalError(StrCat(text, " in: ", sql));
    }
  }

  sqlite3* db_;
  std::string path_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> OpenSqliteBackend(const SqliteOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("sqlite: empty path");
  if (options.path != ":memory:") {
    std::filesystem::path parent = std::filesystem::path(options.path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) {
      return absl::FailedPreconditionError(StrCat("sqlite:", options.path,
                                                  ": cannot create directory ", parent.string(),
                                                  ": ", ec.message()));
    }
    if (std::filesystem::is_directory(options.path, ec)) {
      return absl::FailedPreconditionError(
          StrCat("sqlite:", options.path, " is a directory, not a metadata store file"));
    }
  }
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(options.path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return absl::FailedPreconditionError(
        StrCat("sqlite:", options.path, ": cannot open: ", message));
  }
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  sqlite3_extended_result_codes(db, 1);
  return std::make_unique<SqliteBackend>(db, options.path);
}

}  // namespace kiln::metadata
