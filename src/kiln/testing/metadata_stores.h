// Per-test metadata store locations on each backend, for conformance suites that run
// the same tests against SQLite and PostgreSQL (TestWithParam over a location factory).
#ifndef KILN_TESTING_METADATA_STORES_H_
#define KILN_TESTING_METADATA_STORES_H_

#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "kiln/base/str.h"
#include "kiln/metadata/open_store.h"
#include "kiln/metadata/postgres_backend.h"
#include "kiln/testing/postgres.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::testing {

// An empty place for one store; removed when destroyed.
class StoreLocation {
 public:
  virtual ~StoreLocation() = default;
  // The --metadata URL of the store.
  virtual std::string url() const = 0;
};

class SqliteLocation : public StoreLocation {
 public:
  std::string url() const override { return "sqlite:" + dir_.File("store/metadata.sqlite"); }
  std::string path() const { return dir_.File("store/metadata.sqlite"); }

 private:
  TempDir dir_;
};

// A fresh PostgreSQL schema on the test server, selected through the URL's search_path.
class PostgresLocation : public StoreLocation {
 public:
  PostgresLocation() {
    static std::atomic<int> counter{0};
    schema_ = StrCat("kiln_t", getpid(), "_", counter++);
    base_ = PostgresTestUrl();
    if (!base_.empty())
      Admin(StrCat("DROP SCHEMA IF EXISTS ", schema_, " CASCADE; CREATE SCHEMA ", schema_));
  }
  ~PostgresLocation() override {
    if (!base_.empty()) Admin(StrCat("DROP SCHEMA IF EXISTS ", schema_, " CASCADE"));
  }
  std::string url() const override {
    if (base_.empty()) return "postgresql://postgres-test-server-not-running.invalid/x";
    return StrCat(base_, "?options=-c%20search_path%3D", schema_);
  }

 private:
  void Admin(const std::string& sql) {
    metadata::PostgresOptions o;
    o.url = base_;
    auto db = metadata::OpenPostgresBackend(o);
    if (db.ok()) (void)(*db)->ExecuteScript(sql);
  }
  std::string base_;
  std::string schema_;
};

struct BackendParam {
  std::string name;
  std::function<std::unique_ptr<StoreLocation>()> make;
};

// gtest prints the backend's name, not the bytes of the struct.
inline void PrintTo(const BackendParam& p, std::ostream* os) { *os << p.name; }

inline std::vector<BackendParam> AllBackends() {
  return {{"Sqlite", [] { return std::make_unique<SqliteLocation>(); }},
          {"Postgres", [] { return std::make_unique<PostgresLocation>(); }}};
}

}  // namespace kiln::testing

#endif  // KILN_TESTING_METADATA_STORES_H_
