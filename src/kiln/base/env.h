// Env is kiln's access to the file system and the clock. Everything that touches a file
// goes through an Env so tests can substitute one that fails on demand (a full disk, a
// crash between write and rename). Env::Default() is thread-safe and never deleted.
#ifndef KILN_BASE_ENV_H_
#define KILN_BASE_ENV_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/base/status.h"

namespace kiln {

// A file read front to back. Not thread-safe.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to n bytes into scratch; returns the number read, 0 at end of file.
  virtual absl::StatusOr<size_t> Read(size_t n, char* scratch) = 0;
};

// A file written front to back. Not thread-safe. Close() must be called and checked;
// the destructor closes silently.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual absl::Status Append(std::string_view data) = 0;
  virtual absl::Status Sync() = 0;
  virtual absl::Status Close() = 0;
};

class Env {
 public:
  virtual ~Env() = default;
  static Env* Default();

  virtual absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) = 0;
  // Creates or truncates `path`.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  virtual absl::Status RenameFile(const std::string& from, const std::string& to) = 0;
  virtual absl::Status DeleteFile(const std::string& path) = 0;
  // Creates `path` and any missing parents; OK if it exists.
  virtual absl::Status CreateDirs(const std::string& path) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  virtual bool IsDirectory(const std::string& path) = 0;
  virtual absl::StatusOr<uint64_t> FileSize(const std::string& path) = 0;
  // Names (not paths) of the entries of a directory, sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) = 0;
  // Fsyncs a directory so a rename inside it survives a power cut.
  virtual absl::Status SyncDir(const std::string& path) = 0;
  virtual int64_t NowMicros() = 0;
};

// An Env that forwards every call to another one. Tests derive from it and override
// just the calls they want to fail or observe (leveldb's EnvWrapper habit).
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }

  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    return target_->NewSequentialFile(path);
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return target_->NewWritableFile(path);
  }
  absl::Status RenameFile(const std::string& from, const std::string& to) override {
    return target_->RenameFile(from, to);
  }
  absl::Status DeleteFile(const std::string& path) override { return target_->DeleteFile(path); }
  absl::Status CreateDirs(const std::string& path) override { return target_->CreateDirs(path); }
  bool FileExists(const std::string& path) override { return target_->FileExists(path); }
  bool IsDirectory(const std::string& path) override { return target_->IsDirectory(path); }
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    return target_->FileSize(path);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override {
    return target_->ListDir(path);
  }
  absl::Status SyncDir(const std::string& path) override { return target_->SyncDir(path); }
  int64_t NowMicros() override { return target_->NowMicros(); }

 private:
  Env* target_;
};

// Reads a whole file into memory.
absl::StatusOr<std::string> ReadFileToString(Env* env, const std::string& path);

// Writes `contents` to `path` atomically: a temporary file in the same directory is
// written, synced and renamed over `path`. A reader sees the old or the new file, never a
// mixture; a crash leaves the old file.
absl::Status WriteFileAtomically(Env* env, const std::string& path, std::string_view contents);

// Streams a file into place atomically. Append() as often as needed, then Commit();
// destroying an uncommitted writer removes the temporary file.
class AtomicFileWriter {
 public:
  static absl::StatusOr<std::unique_ptr<AtomicFileWriter>> Create(Env* env,
                                                                  const std::string& path);
  ~AtomicFileWriter();
  absl::Status Append(std::string_view data);
  absl::Status Commit();
  uint64_t bytes_written() const { return bytes_; }

 private:
  AtomicFileWriter(Env* env, std::string path, std::string tmp, std::unique_ptr<WritableFile> f)
      : env_(env), path_(std::move(path)), tmp_(std::move(tmp)), file_(std::move(f)) {}
  Env* env_;
  std::string path_, tmp_;
  std::unique_ptr<WritableFile> file_;
  uint64_t bytes_ = 0;
  bool committed_ = false;
};

// The machine's hardware threads (std::thread::hardware_concurrency(), at least 1), asked
// once: the standard call reads sysfs every time, which shows on per-request paths.
int NumCpus();

// Gives memory the allocator holds free back to the system: tcmalloc's
// MallocExtension_ReleaseFreeMemory when the process runs on tcmalloc (the kiln binary),
// glibc's malloc_trim otherwise. For after a large release, e.g. a model version unloaded;
// it takes a lock in the allocator, so not for hot paths.
void ReleaseFreeMemory();

// Path helpers.
std::string JoinPath(std::string_view a, std::string_view b);
std::string Dirname(std::string_view path);
std::string Basename(std::string_view path);

}  // namespace kiln

#endif  // KILN_BASE_ENV_H_
