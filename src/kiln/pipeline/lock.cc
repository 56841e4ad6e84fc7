#include "kiln/pipeline/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "nlohmann/json.hpp"

namespace kiln::pipeline {
namespace {

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

// "pid N since TIME" (and "on HOST" when that is not this host), from the lock file.
std::string Holder(int fd) {
  std::string text(4096, '\0');
  const ssize_t n = pread(fd, text.data(), text.size(), 0);
  text.resize(n > 0 ? n : 0);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("pid") || !j["pid"].is_number_integer()) {
    return "holder unknown: it is just starting";
  }
  std::string out = StrCat("pid ", j["pid"].get<int64_t>());
  if (j.contains("since") && j["since"].is_string()) {
    StrAppend(&out, " since ", j["since"].get<std::string>());
  }
  if (j.contains("host") && j["host"].is_string() && j["host"].get<std::string>() != HostName()) {
    StrAppend(&out, " on ", j["host"].get<std::string>());
  }
  return out;
}

// Opens and locks `path`. *busy tells a lock held by someone else from an I/O error.
absl::StatusOr<int> TryLock(const std::string& path, bool* busy) {
  *busy = false;
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(StrCat("cannot open lock file ", path, ": ", strerror(errno)));
  }
  int r;
  while ((r = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
  }
  if (r == 0) return fd;
  const int err = errno;
  std::string holder;
  if (err == EWOULDBLOCK) {
    *busy = true;
    holder = Holder(fd);
  }
  close(fd);
  if (*busy) return absl::UnavailableError(holder);
  return absl::UnavailableError(StrCat("cannot lock ", path, ": ", strerror(err)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PipelineLock>> PipelineLock::Acquire(const std::string& path,
                                                                    const std::string& busy_message,
                                                                    bool* busy) {
  KILN_RETURN_IF_ERROR(Env::Default()->CreateDirs(Dirname(path)));
  auto fd = TryLock(path, busy);
  if (!fd.ok()) {
    if (!*busy) return fd.status();
    return absl::UnavailableError(StrCat(busy_message, " (", fd.status().message(), ")"));
  }
  nlohmann::json j;
  j["pid"] = static_cast<int64_t>(getpid());
  j["host"] = HostName();
  j["since"] = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  const std::string text = j.dump() + "\n";
  // Best effort: the lock holds whether or not its holder could be written down.
  if (ftruncate(*fd, 0) == 0) {
    ssize_t ignored = pwrite(*fd, text.data(), text.size(), 0);
    (void)ignored;
  }
  return std::unique_ptr<PipelineLock>(new PipelineLock(path, *fd));
}

absl::StatusOr<std::unique_ptr<PipelineLock>> PipelineLock::AcquireRun(
    const std::string& root, const std::string& pipeline) {
  bool busy;
  return Acquire(JoinPath(root, ".lock"), StrCat("pipeline ", pipeline, " is already running"),
                 &busy);
}

absl::StatusOr<std::unique_ptr<PipelineLock>> PipelineLock::AcquireRunOrInherit(
    const std::string& root, const std::string& pipeline) {
  const char* v = std::getenv(kLockParentEnv);
  const std::string parent = v ? v : "";
  unsetenv(kLockParentEnv);
  const std::string path = JoinPath(root, ".lock");
  bool busy = false;
  auto lock = Acquire(path, StrCat("pipeline ", pipeline, " is already running"), &busy);
  // The parent says it holds the lock for us: believed only when the lock is held.
  if (busy && !parent.empty() && parent == std::to_string(getppid())) {
    return std::unique_ptr<PipelineLock>(new PipelineLock(path, -1));
  }
  return lock;
}

absl::StatusOr<std::unique_ptr<PipelineLock>> PipelineLock::AcquireSchedule(
    const std::string& root, const std::string& pipeline) {
  bool busy;
  return Acquire(JoinPath(root, ".schedule.lock"),
                 StrCat("pipeline ", pipeline, " is already scheduled"), &busy);
}

PipelineLock::~PipelineLock() {
  if (fd_ < 0) return;
  if (ftruncate(fd_, 0) != 0) {
    // The stale holder text is harmless: whoever takes the lock next rewrites it.
  }
  close(fd_);
}

std::string PipelineLock::ChildEnv() { return StrCat(kLockParentEnv, "=", getpid()); }

}  // namespace kiln::pipeline
