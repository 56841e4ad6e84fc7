#include "kiln/metadata/postgres_backend.h"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::metadata {
namespace {

// Type OIDs from PostgreSQL's catalog/pg_type.h (a server header libpq does not ship).
constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kTextOid = 25;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kNumericOid = 1700;

// Prepared statements kept per connection before they are all deallocated.
constexpr size_t kMaxCachedStatements = 512;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

struct ConninfoDeleter {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};

std::string FirstLine(std::string_view s) {
  size_t nl = s.find('\n');
  if (nl != std::string_view::npos) s = s.substr(0, nl);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

// `text` with every occurrence of each non-empty secret replaced by "***".
std::string Scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    for (size_t pos = text.find(secret); pos != std::string::npos;
         pos = text.find(secret, pos + 3)) {
      text.replace(pos, secret.size(), "***");
    }
  }
  return text;
}

// Best-effort extraction of the password (and whole user-info part) from a connection
// string libpq could not parse, so its error message can be scrubbed of them.
std::vector<std::string> CrudeSecrets(std::string_view url) {
  std::vector<std::string> secrets;
  size_t scheme = url.find("://");
  if (scheme != std::string_view::npos) {
    std::string_view rest = url.substr(scheme + 3);
    std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
    size_t at = authority.rfind('@');
    if (at != std::string_view::npos) {
      std::string_view userinfo = authority.substr(0, at);
      size_t colon = userinfo.find(':');
      if (colon != std::string_view::npos) secrets.emplace_back(userinfo.substr(colon + 1));
    }
  }
  // password=... in a conninfo string or a URL query.
  for (size_t pos = url.find("password"); pos != std::string_view::npos;
       pos = url.find("password", pos + 1)) {
    size_t i = pos + 8;
    while (i < url.size() && url[i] == ' ') ++i;
    if (i >= url.size() || url[i] != '=') continue;
    ++i;
    while (i < url.size() && url[i] == ' ') ++i;
    size_t end = url.find_first_of(" &", i);
    std::string_view value = url.substr(i, end == std::string_view::npos ? url.npos : end - i);
    if (value.size() >= 2 && value.front() == '\'') value = value.substr(1, value.size() - 2);
    secrets.emplace_back(value);
  }
  return secrets;
}

// "postgresql://host:port/db" for a connection (attempted or made), with a Unix-socket
// directory percent-encoded as libpq's URLs expect.
std::string DescribeConnection(PGconn* conn) {
  const char* host = PQhost(conn);
  const char* port = PQport(conn);
  const char* db = PQdb(conn);
  std::string out = "postgresql://";
  for (const char* p = host ? host : ""; *p != '\0'; ++p) {
    if (*p == '/') {
      out += "%2F";
    } else {
      out += *p;
    }
  }
  if (port != nullptr && *port != '\0') StrAppend(&out, ":", port);
  StrAppend(&out, "/", db ? db : "");
  return out;
}

bool IsIdentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || static_cast<unsigned char>(c) >= 0x80;
}

// Rewrites the `?` placeholders of `sql` to $1, $2, ..., leaving alone any `?` inside
// string literals ('...', E'...', $tag$...$tag$), quoted identifiers and comments.
std::string RenumberPlaceholders(std::string_view sql, int* count) {
  std::string out;
  out.reserve(sql.size() + 16);
  *count = 0;
  size_t i = 0;
  const size_t n = sql.size();
  auto copy_until = [&](size_t end) {
    out.append(sql.substr(i, end - i));
    i = end;
  };
  while (i < n) {
    char c = sql[i];
    if (c == '?') {
      StrAppend(&out, "$", ++*count);
      ++i;
    } else if (c == '\'') {
      // E'...' strings take backslash escapes; plain ones (standard_conforming_strings)
      // only '' which the scan handles as the end of one literal and the start of another.
      bool escapes =
          i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') && (i == 1 || !IsIdentChar(sql[i - 2]));
      size_t j = i + 1;
      while (j < n && sql[j] != '\'') j += (escapes && sql[j] == '\\') ? 2 : 1;
      copy_until(std::min(j + 1, n));
    } else if (c == '"') {
      size_t j = sql.find('"', i + 1);
      copy_until(j == std::string_view::npos ? n : j + 1);
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      size_t j = sql.find('\n', i);
      copy_until(j == std::string_view::npos ? n : j + 1);
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      // Block comments nest in PostgreSQL.
      int depth = 0;
      size_t j = i;
      while (j < n) {
        if (sql.substr(j, 2) == "/*") {
          ++depth;
          j += 2;
        } else if (sql.substr(j, 2) == "*/") {
          j += 2;
          if (--depth == 0) break;
        } else {
          ++j;
        }
      }
      copy_until(std::min(j, n));
    } else if (c == '$' && (i == 0 || !IsIdentChar(sql[i - 1]))) {
      // A dollar quote $tag$ (tag empty or an identifier not starting with a digit);
      // anything else ($1, a$b) is copied as is.
      size_t j = i + 1;
      if (j < n && !(sql[j] >= '0' && sql[j] <= '9')) {
        while (j < n && sql[j] != '$' && IsIdentChar(sql[j])) ++j;
      }
      if (j < n && sql[j] == '$') {
        std::string_view tag = sql.substr(i, j - i + 1);
        size_t close = sql.find(tag, j + 1);
        copy_until(close == std::string_view::npos ? n : close + tag.size());
      } else {
        copy_until(i + 1);
      }
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

// A result value in text format, converted by its column type.
absl::StatusOr<SqlValue> ConvertValue(const char* text, int len, Oid type) {
  const char* end = text + len;
  switch (type) {
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid: {
      int64_t v = 0;
      auto r = std::from_chars(text, end, v);
      if (r.ec != std::errc() || r.ptr != end) break;
      return SqlValue(v);
    }
    case kFloat4Oid:
    case kFloat8Oid:
    case kNumericOid: {
      double v = 0;
      auto r = std::from_chars(text, end, v);
      if (r.ec != std::errc() || r.ptr != end) break;
      return SqlValue(v);
    }
    case kBoolOid:
      return SqlValue(int64_t{len > 0 && text[0] == 't' ? 1 : 0});
    default:
      return SqlValue(std::string(text, len));
  }
  return absl::InternalError(
      StrCat("cannot convert \"", std::string_view(text, len), "\" of type oid ", type));
}

class PostgresBackend final : public Backend {
 public:
  PostgresBackend(PGconn* conn, std::string describe, std::vector<std::string> secrets)
      : conn_(conn), describe_(std::move(describe)), secrets_(std::move(secrets)) {}
  ~PostgresBackend() override { PQfinish(conn_); }

  Dialect dialect() const override { return Dialect::kPostgres; }
  std::string Describe() const override { return describe_; }

  absl::Status Begin(bool write) override {
    KILN_RETURN_IF_ERROR(EnsureConnected());
    KILN_RETURN_IF_ERROR(Exec("BEGIN"));
    in_transaction_ = true;
    return absl::OkStatus();
  }

  absl::Status Commit() override {
    in_transaction_ = false;
    if (PQtransactionStatus(conn_) == PQTRANS_INERROR) {
      Rollback();
      return absl::InternalError(
          StrCat(describe_, ": COMMIT of a transaction a statement failed in; rolled back"));
    }
    Result r(PQexec(conn_, "COMMIT"));
    KILN_RETURN_IF_ERROR(Check(r.get()));
    // The server answers COMMIT of a failed transaction with ROLLBACK, not an error.
    if (std::string_view(PQcmdStatus(r.get())) == "ROLLBACK") {
      return absl::InternalError(StrCat(describe_, ": the transaction was rolled back"));
    }
    return absl::OkStatus();
  }

  void Rollback() override {
    in_transaction_ = false;
    if (PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE) {
      Result r(PQexec(conn_, "ROLLBACK"));
    }
  }

  absl::StatusOr<std::vector<SqlRow>> Query(std::string_view sql,
                                            std::span<const SqlValue> params) override {
    if (!in_transaction_) KILN_RETURN_IF_ERROR(EnsureConnected());

    std::vector<std::string> texts(params.size());
    std::vector<const char*> values(params.size());
    std::vector<Oid> types(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      const SqlValue& p = params[i];
      if (std::holds_alternative<std::monostate>(p)) {
        values[i] = nullptr;
        types[i] = 0;  // the server infers it from the context
        continue;
      }
      if (const auto* v = std::get_if<int64_t>(&p)) {
        texts[i] = StrCat(*v);
        types[i] = kInt8Oid;
      } else if (const auto* d = std::get_if<double>(&p)) {
        texts[i] = StrCat(*d);  // shortest round-trip form; inf and nan are accepted
        types[i] = kFloat8Oid;
      } else {
        texts[i] = std::get<std::string>(p);
        if (texts[i].find('\0') != std::string::npos) {
          return absl::InvalidArgumentError(
              StrCat(describe_, ": parameter ", i + 1, " holds a NUL byte, which text cannot"));
        }
        types[i] = kTextOid;
      }
      values[i] = texts[i].c_str();
    }

    for (int attempt = 0;; ++attempt) {
      KILN_ASSIGN_OR_RETURN(const Statement* stmt, GetStatement(sql, types));
      Result r(PQexecPrepared(conn_, stmt->name.c_str(), static_cast<int>(values.size()),
                              values.data(), nullptr, nullptr, /*resultFormat=*/0));
      if (r != nullptr && (PQresultStatus(r.get()) == PGRES_TUPLES_OK ||
                           PQresultStatus(r.get()) == PGRES_COMMAND_OK)) {
        return Rows(r.get());
      }
      // A table the statement reads was altered under it: prepare it afresh. Outside a
      // transaction that can happen right away; inside, the transaction is already
      // aborted, so the caller retries it.
      if (r != nullptr && SqlState(r.get()) == "0A000" &&
          FirstLine(PQresultErrorMessage(r.get())).find("cached plan must not change") !=
              std::string::npos) {
        Forget(sql, stmt);
        if (!in_transaction_ && attempt == 0) continue;
        return absl::UnavailableError(
            StrCat(describe_, ": a table changed under a prepared statement; retry"));
      }
      return Check(r.get());
    }
  }

  absl::Status ExecuteScript(std::string_view sql) override {
    if (!in_transaction_) KILN_RETURN_IF_ERROR(EnsureConnected());
    KILN_RETURN_IF_ERROR(Exec(std::string(sql).c_str()));
    // DDL may change what cached statements return; drop them rather than meet
    // "cached plan must not change result type" later.
    if (!statements_.empty()) DeallocateAll();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListTables() override {
    KILN_ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                          Query("SELECT tablename FROM pg_catalog.pg_tables "
                                "WHERE schemaname = current_schema() ORDER BY tablename",
                                {}));
    std::vector<std::string> names;
    names.reserve(rows.size());
    for (SqlRow& row : rows) names.push_back(std::get<std::string>(std::move(row[0])));
    return names;
  }

  absl::Status Prepare() override { return absl::OkStatus(); }

  // Session settings, run once after connecting (and after a reconnect).
  absl::Status InitSession() {
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    return Exec("SET client_min_messages = warning");
  }

 private:
  struct Statement {
    std::string name;
    std::vector<Oid> types;  // 0 where the server inferred the type (a NULL argument)
  };

  static std::string_view SqlState(const PGresult* r) {
    const char* s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    return s ? std::string_view(s) : std::string_view();
  }

  // OK for a successful result, else the error it reports, mapped to a status code.
  absl::Status Check(const PGresult* r) const {
    if (r != nullptr) {
      ExecStatusType s = PQresultStatus(r);
      if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY) {
        return absl::OkStatus();
      }
    }
    const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    std::string text = primary        ? primary
                       : r != nullptr ? PQresultErrorMessage(r)
                                      : PQerrorMessage(conn_);
    if (text.empty()) text = PQerrorMessage(conn_);
    std::string_view state = SqlState(r);
    std::string msg = Scrub(StrCat(describe_, ": ", FirstLine(text)), secrets_);
    if (!state.empty()) StrAppend(&msg, " (SQLSTATE ", state, ")");

    if (state == "23505") return absl::AlreadyExistsError(msg);
    if (PQstatus(conn_) != CONNECTION_OK || state.starts_with("08") || state == "40001" ||
        state == "40P01" || state == "55P03" || state == "57014" || state == "57P01" ||
        state == "57P02" || state == "57P03" || state == "53300") {
      return absl::UnavailableError(msg);
    }
    if (state == "25006") return absl::FailedPreconditionError(msg);
    return absl::InternalError(msg);
  }

  absl::Status Exec(const char* sql) {
    Result r(PQexec(conn_, sql));
    return Check(r.get());
  }

  // Reconnects a connection that was lost; only between transactions (a transaction
  // cannot survive a reconnect, so inside one the lost connection is the caller's error).
  absl::Status EnsureConnected() {
    if (PQstatus(conn_) == CONNECTION_OK) return absl::OkStatus();
    statements_.clear();
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      return absl::UnavailableError(Scrub(
          StrCat(describe_, ": cannot reconnect: ", FirstLine(PQerrorMessage(conn_))), secrets_));
    }
    return InitSession();
  }

  // The prepared statement for `sql` with these parameter types, prepared on first use.
  // A NULL argument (type 0) fits a statement prepared for any type at that position.
  absl::StatusOr<const Statement*> GetStatement(std::string_view sql,
                                                const std::vector<Oid>& types) {
    auto it = statements_.find(std::string(sql));
    if (it != statements_.end()) {
      for (const Statement& s : it->second) {
        bool fits = true;
        for (size_t i = 0; i < types.size() && fits; ++i) {
          fits = types[i] == 0 || s.types[i] == types[i];
        }
        if (fits) return &s;
      }
    }

    int count = 0;
    std::string rewritten = RenumberPlaceholders(sql, &count);
    if (static_cast<size_t>(count) != types.size()) {
      return absl::InternalError(StrCat(describe_, ": statement has ", count, " placeholders but ",
                                        types.size(), " parameters: ", sql));
    }
    if (num_statements_ >= kMaxCachedStatements) DeallocateAll();
    Statement stmt{StrCat("kiln_", next_statement_++), types};
    Result r(PQprepare(conn_, stmt.name.c_str(), rewritten.c_str(), count, types.data()));
    KILN_RETURN_IF_ERROR(Check(r.get()));
    ++num_statements_;
    std::vector<Statement>& variants = statements_[std::string(sql)];
    variants.push_back(std::move(stmt));
    return &variants.back();
  }

  void Forget(std::string_view sql, const Statement* stmt) {
    auto it = statements_.find(std::string(sql));
    if (it == statements_.end()) return;
    std::erase_if(it->second, [&](const Statement& s) { return &s == stmt; });
    --num_statements_;
    if (it->second.empty()) statements_.erase(it);
  }

  void DeallocateAll() {
    // DEALLOCATE is not transactional, but fails in an aborted transaction: then the
    // statements stay (and stay valid) until a later call.
    Result r(PQexec(conn_, "DEALLOCATE ALL"));
    if (r != nullptr && PQresultStatus(r.get()) == PGRES_COMMAND_OK) {
      statements_.clear();
      num_statements_ = 0;
    }
  }

  static absl::StatusOr<std::vector<SqlRow>> Rows(const PGresult* r) {
    const int nrows = PQntuples(r);
    const int ncols = PQnfields(r);
    std::vector<Oid> types(ncols);
    for (int c = 0; c < ncols; ++c) types[c] = PQftype(r, c);
    std::vector<SqlRow> rows(nrows);
    for (int i = 0; i < nrows; ++i) {
      rows[i].reserve(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(r, i, c)) {
          rows[i].emplace_back(std::monostate());
          continue;
        }
        KILN_ASSIGN_OR_RETURN(SqlValue v,
                              ConvertValue(PQgetvalue(r, i, c), PQgetlength(r, i, c), types[c]));
        rows[i].push_back(std::move(v));
      }
    }
    return rows;
  }

  PGconn* conn_;
  const std::string describe_;
  const std::vector<std::string> secrets_;  // scrubbed from every message
  bool in_transaction_ = false;
  // Prepared statements by SQL text; variants differ in parameter types.
  std::unordered_map<std::string, std::vector<Statement>> statements_;
  size_t num_statements_ = 0;
  int64_t next_statement_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> OpenPostgresBackend(const PostgresOptions& options) {
  // Parse first so a malformed string is an argument error, not a connection failure.
  char* parse_error = nullptr;
  std::unique_ptr<PQconninfoOption, ConninfoDeleter> parsed(
      PQconninfoParse(options.url.c_str(), &parse_error));
  if (parsed == nullptr) {
    std::string why = parse_error ? FirstLine(parse_error) : "out of memory";
    PQfreemem(parse_error);
    return absl::InvalidArgumentError(
        Scrub(StrCat("invalid PostgreSQL connection string: ", why), CrudeSecrets(options.url)));
  }
  std::vector<std::string> secrets = CrudeSecrets(options.url);
  for (const PQconninfoOption* o = parsed.get(); o->keyword != nullptr; ++o) {
    if (std::strcmp(o->keyword, "password") == 0 && o->val != nullptr) secrets.push_back(o->val);
  }

  // Later keywords override the URL's; fallback_application_name yields to one it sets.
  std::string timeout = StrCat(options.connect_timeout_s);
  std::vector<const char*> keys = {"fallback_application_name", "dbname", "client_encoding"};
  std::vector<const char*> values = {"kiln", options.url.c_str(), "UTF8"};
  if (options.connect_timeout_s > 0) {
    keys.push_back("connect_timeout");
    values.push_back(timeout.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (conn == nullptr) return absl::ResourceExhaustedError("libpq: out of memory");
  std::string describe = DescribeConnection(conn);
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg =
        Scrub(StrCat(describe, ": cannot connect: ", FirstLine(PQerrorMessage(conn))), secrets);
    PQfinish(conn);
    return absl::UnavailableError(msg);
  }
  auto backend = std::make_unique<PostgresBackend>(conn, std::move(describe), std::move(secrets));
  KILN_RETURN_IF_ERROR(backend->InitSession());
  return backend;
}

}  // namespace kiln::metadata
