// SQLite backend: the embedded default. One file, WAL journal, safe for several kiln
// processes at once (writers serialise on SQLite's write lock; readers never block).
#ifndef KILN_METADATA_SQLITE_BACKEND_H_
#define KILN_METADATA_SQLITE_BACKEND_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "kiln/metadata/backend.h"

namespace kiln::metadata {

struct SqliteOptions {
  std::string path;  // created (with its directory) when missing; ":memory:" for tests
  // How long one statement waits for another process's lock before reporting
  // kUnavailable. The store retries whole transactions on top of this.
  int busy_timeout_ms = 10000;
};

// Errors: kFailedPrecondition when the file cannot be opened as a database.
absl::StatusOr<std::unique_ptr<Backend>> OpenSqliteBackend(const SqliteOptions& options);

}  // namespace kiln::metadata

#endif  // KILN_METADATA_SQLITE_BACKEND_H_
