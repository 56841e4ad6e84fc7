#include "kiln/base/publish_dir.h"

#include <unistd.h>

#include <filesystem>

#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln {

std::string StagingDirFor(const std::string& target) {
  return StrCat(target, ".kiln-staging-", static_cast<int64_t>(getpid()));
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
