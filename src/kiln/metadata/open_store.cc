#include "kiln/metadata/open_store.h"

#include <cstdlib>
#include <filesystem>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/metadata/postgres_backend.h"
#include "kiln/metadata/sqlite_backend.h"

namespace kiln::metadata {

std::string DefaultStorePath() {
  const char* kiln_home = std::getenv("KILN_HOME");
  if (kiln_home && *kiln_home) return StrCat(kiln_home, "/metadata.sqlite");
  const char* home = std::getenv("HOME");
  return StrCat(home && *home ? home : ".", "/.kiln/metadata.sqlite");
}

absl::StatusOr<std::unique_ptr<MetadataStore>> OpenStore(const std::string& url,
                                                         StoreOptions options) {
  std::unique_ptr<Backend> backend;
  std::string_view u = url;
  if (u.starts_with("postgresql://") || u.starts_with("postgres://")) {
    PostgresOptions pg;
    pg.url = url;
    KILN_ASSIGN_OR_RETURN(backend, OpenPostgresBackend(pg));
  } else {
    std::string path;
    if (u.empty()) {
      path = DefaultStorePath();
    } else if (u.starts_with("sqlite://")) {
      path = std::string(u.substr(9));
    } else if (u.starts_with("sqlite:")) {
      path = std::string(u.substr(7));
    } else if (size_t colon = u.find("://"); colon != std::string_view::npos) {
      return absl::InvalidArgumentError(
          StrCat("unsupported metadata store '", u.substr(0, colon),
                 "://...'; use sqlite:PATH or postgresql://USER@HOST:PORT/DB"));
    } else {
      path = url;
    }
    if (path.empty()) return absl::InvalidArgumentError("--metadata sqlite: needs a file path");
    std::error_code ec;
    if (options.must_exist && path != ":memory:" && !std::filesystem::exists(path, ec)) {
      return absl::NotFoundError(
          StrCat("no metadata store at ", path,
                 "; run a kiln command that records (import, stats, train, ...) or pass "
                 "--metadata"));
    }
    SqliteOptions sq;
    sq.path = path;
    KILN_ASSIGN_OR_RETURN(backend, OpenSqliteBackend(sq));
  }
  return MetadataStore::Create(std::move(backend), std::move(options));
}

}  // namespace kiln::metadata
