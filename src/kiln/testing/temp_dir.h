// Test helpers: a fresh temporary directory removed at the end of the test, and the
// path of a file in the source tree.
#ifndef KILN_TESTING_TEMP_DIR_H_
#define KILN_TESTING_TEMP_DIR_H_

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace kiln::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "kiln-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Writes `contents` to `name` inside the directory and returns its path.
  std::string Write(const std::string& name, const std::string& contents) const {
    std::string p = File(name);
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    std::ofstream(p, std::ios::binary) << contents;
    return p;
  }

 private:
  std::string path_;
};

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Path of a file in the repository, e.g. SourcePath("tests/data/x.csv").
inline std::string SourcePath(const std::string& rel) {
#ifdef KILN_SOURCE_DIR
  return std::string(KILN_SOURCE_DIR) + "/" + rel;
#else
  return rel;
#endif
}

}  // namespace kiln::testing

#endif  // KILN_TESTING_TEMP_DIR_H_
