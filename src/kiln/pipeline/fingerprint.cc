#include "kiln/pipeline/fingerprint.h"

#include <algorithm>

#include "kiln/base/sha256.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::pipeline {
namespace {

// Feeds one length-prefixed field, so ("ab", "c") and ("a", "bc") hash differently.
void Field(Sha256* h, std::string_view tag, std::string_view value) {
  h->Update(StrCat(tag, " ", value.size(), ":"));
  h->Update(value);
  h->Update("\n");
}

absl::Status HashFile(Env* env, const std::string& path, std::string_view name, Sha256* h) {
  KILN_ASSIGN_OR_RETURN(uint64_t size, env->FileSize(path));
  Field(h, "file", name);
  h->Update(StrCat("size ", size, "\n"));
  KILN_ASSIGN_OR_RETURN(auto file, env->NewSequentialFile(path));
  std::string buf(1 << 20, '\0');
  uint64_t total = 0;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(size_t n, file->Read(buf.size(), buf.data()));
    if (n == 0) break;
    h->Update(std::string_view(buf.data(), n));
    total += n;
  }
  if (total != size) {
    return absl::UnavailableError(StrCat(path, " changed while it was being fingerprinted"));
  }
  return absl::OkStatus();
}

absl::Status HashDir(Env* env, const std::string& dir, const std::string& rel, int depth,
                     Sha256* h) {
  // Links are followed; a link to an ancestor would recurse forever.
  if (depth > 64) return absl::InvalidArgumentError(StrCat(dir, ": directories nested too deep"));
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(dir));
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string path = JoinPath(dir, name);
    const std::string child = rel.empty() ? name : StrCat(rel, "/", name);
    if (env->IsDirectory(path)) {
      Field(h, "dir", child);
      KILN_RETURN_IF_ERROR(HashDir(env, path, child, depth + 1, h));
    } else {
      KILN_RETURN_IF_ERROR(HashFile(env, path, child, h));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ContentFingerprint(Env* env, const std::string& path) {
  if (!env->FileExists(path)) return absl::NotFoundError(StrCat(path, " does not exist"));
  Sha256 h;
  if (env->IsDirectory(path)) {
    h.Update("kiln-dir-v1\n");
    KILN_RETURN_IF_ERROR(HashDir(env, path, "", 0, &h));
  } else {
    h.Update("kiln-file-v1\n");
    KILN_RETURN_IF_ERROR(HashFile(env, path, "", &h));
  }
  return h.HexDigest();
}

absl::StatusOr<std::string> FilesFingerprint(Env* env, const std::vector<std::string>& files) {
  Sha256 h;
  h.Update("kiln-files-v1\n");
  for (const std::string& f : files) KILN_RETURN_IF_ERROR(HashFile(env, f, f, &h));
  return h.HexDigest();
}

}  // namespace kiln::pipeline
