// The bottom layer of the metadata store: one connection to one SQL database. The
// layers above never see SQLite or libpq types, only this interface.
//
// SQL reaching a backend uses `?` placeholders for every value (the PostgreSQL backend
// renumbers them to $1, $2, ...); no value is ever spliced into SQL text.
#ifndef KILN_METADATA_BACKEND_H_
#define KILN_METADATA_BACKEND_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kiln::metadata {

using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;
using SqlRow = std::vector<SqlValue>;

enum class Dialect { kSqlite, kPostgres };

// Not thread-safe: one connection, used by one thread at a time.
class Backend {
 public:
  virtual ~Backend() = default;

  virtual Dialect dialect() const = 0;
  // Where the store lives, for messages ("sqlite:/home/u/.kiln/metadata.sqlite",
  // "postgresql://host:port/db"); never contains a password.
  virtual std::string Describe() const = 0;

  // Starts a transaction. `write` transactions take the write lock up front where the
  // database has one (SQLite BEGIN IMMEDIATE), so two writers never deadlock upgrading.
  // Errors: kUnavailable when the database stays busy (the caller may retry).
  virtual absl::Status Begin(bool write) = 0;
  virtual absl::Status Commit() = 0;
  // Never fails in a way the caller can act on; safe to call after a failed statement.
  virtual void Rollback() = 0;

  // Runs one statement with bound parameters and returns its rows (none for DML without
  // RETURNING). Errors: kAlreadyExists for a unique-constraint violation, kUnavailable for
  // lock contention or a lost connection (retry the transaction), kFailedPrecondition
  // when the database is not usable (not a database, read-only), kInternal otherwise.
  virtual absl::StatusOr<std::vector<SqlRow>> Query(std::string_view sql,
                                                    std::span<const SqlValue> params) = 0;

  // Runs a script of statements without parameters (schema DDL).
  virtual absl::Status ExecuteScript(std::string_view sql) = 0;

  // Names of the tables in the database (the current schema for PostgreSQL).
  virtual absl::StatusOr<std::vector<std::string>> ListTables() = 0;

  // Called once the store has checked the database is a kiln store (or an empty one it
  // may initialise): the point where a backend may change database-level settings, such
  // as SQLite's journal mode. Nothing may be written to the database before this.
  virtual absl::Status Prepare() = 0;
};

}  // namespace kiln::metadata

#endif  // KILN_METADATA_BACKEND_H_
