// The URL of the PostgreSQL server ctest starts for the tests (the "postgres" fixture,
// scripts/pg_test_server), read from ${KILN_BINARY_DIR}/pgtest/url.
#ifndef KILN_TESTING_POSTGRES_H_
#define KILN_TESTING_POSTGRES_H_

#include <fstream>
#include <string>

namespace kiln::testing {

// "postgresql://kiln@127.0.0.1:PORT/kiln_test", or "" when no test server is running
// (the test binary was not started by ctest, which starts the server first).
inline std::string PostgresTestUrl() {
#ifdef KILN_BINARY_DIR
  std::ifstream in(std::string(KILN_BINARY_DIR) + "/pgtest/url");
  std::string url;
  if (in && std::getline(in, url)) {
    while (!url.empty() && (url.back() == '\r' || url.back() == ' ')) url.pop_back();
    return url;
  }
#endif
  return "";
}

}  // namespace kiln::testing

#endif  // KILN_TESTING_POSTGRES_H_
