// The PostgreSQL backend of the metadata store: one libpq connection.
#ifndef KILN_METADATA_POSTGRES_BACKEND_H_
#define KILN_METADATA_POSTGRES_BACKEND_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "kiln/metadata/backend.h"

namespace kiln::metadata {

struct PostgresOptions {
  // A URL (postgresql://user:pw@host:port/db?sslmode=...) or a libpq conninfo string
  // ("host=... dbname=..."). Unset parts come from libpq's defaults (PGHOST, ...).
  std::string url;
  // Seconds to wait for the connection; overrides a connect_timeout in `url`.
  int connect_timeout_s = 10;
};

// Connects. application_name is "kiln" unless `url` sets one. Describe() of the result is
// "postgresql://host:port/db" (never the user or password).
// Errors: kInvalidArgument when `url` cannot be parsed; kUnavailable when the server
// cannot be reached or refuses the connection (message names the server and libpq's
// reason).
absl::StatusOr<std::unique_ptr<Backend>> OpenPostgresBackend(const PostgresOptions& options);

}  // namespace kiln::metadata

#endif  // KILN_METADATA_POSTGRES_BACKEND_H_
