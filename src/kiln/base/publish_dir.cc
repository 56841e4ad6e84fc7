#include "kiln/base/publish_dir.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln {

std::string StagingDirFor(const std::string& target) {
  return StrCat(target, ".kiln-staging-", static_cast<int64_t>(getpid()));
}

namespace {

// The pid at the end of NAME.kiln-staging-PID / NAME.kiln-old-PID when `entry` is one of
// `base`'s, else 0.
pid_t WriterPid(const std::string& entry, const std::string& base, std::string_view kind) {
  const std::string prefix = StrCat(base, kind);
  if (entry.size() <= prefix.size() || entry.compare(0, prefix.size(), prefix) != 0) return 0;
  pid_t pid = 0;
  for (size_t i = prefix.size(); i < entry.size(); ++i) {
    if (entry[i] < '0' || entry[i] > '9' || pid > 100000000) return 0;
    pid = pid * 10 + (entry[i] - '0');
  }
  return pid;
}

bool Running(pid_t pid) { return pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH; }

}  // namespace

void RecoverFromDeadWriters(const std::string& target) {
  namespace fs = std::filesystem;
  std::string t = target;
  while (t.size() > 1 && t.back() == '/') t.pop_back();
  const fs::path path(t);
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const std::string base = path.filename().string();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    if (pid_t pid = WriterPid(name, base, ".kiln-staging-"); pid > 0 && !Running(pid)) {
      std::error_code rm;
      fs::remove_all(entry.path(), rm);
    } else if (pid_t old = WriterPid(name, base, ".kiln-old-"); old > 0 && !Running(old)) {
      std::error_code mv;
      if (!fs::exists(path, mv)) {
        fs::rename(entry.path(), path, mv);
      } else {
        fs::remove_all(entry.path(), mv);
      }
    }
  }
}

absl::Status PublishDirectory(Env* env, const std::string& staging, const std::string& target,
                              bool replace) {
  if (!env->FileExists(target)) {
    KILN_RETURN_IF_ERROR(env->RenameFile(staging, target));
    return env->SyncDir(Dirname(target));
  }
  if (!replace) {
    return absl::AlreadyExistsError(
        StrCat(target, " already exists; pass --overwrite to replace it"));
  }
  // Two renames: between them `target` briefly does not exist.
  const std::string old = StrCat(target, ".kiln-old-", static_cast<int64_t>(getpid()));
  KILN_RETURN_IF_ERROR(env->RenameFile(target, old));
  absl::Status moved = env->RenameFile(staging, target);
  if (!moved.ok()) {
    env->RenameFile(old, target).IgnoreError();  // put the old contents back
    return moved;
  }
  KILN_RETURN_IF_ERROR(env->SyncDir(Dirname(target)));
  std::error_code ec;
  std::filesystem::remove_all(old, ec);  // best effort: the swap is already done
  return absl::OkStatus();
}

}  // namespace kiln
