#include "kiln/model/push.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <system_error>
#include <vector>

#include "kiln/base/sha256.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/model/bundle.h"

namespace kiln::model {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kStagingPrefix = ".kiln-push-";

bool AllDigits(std::string_view s) {
  return !s.empty() && s.size() <= 18 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Removes the staging directories of pushes whose process is gone (killed mid-copy).
// Named .kiln-push-PID-RANDOM; a live PID's directory is someone's push in progress.
void RemoveDeadStaging(const std::string& base_path) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(base_path, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kStagingPrefix, 0) != 0) continue;
    const std::string rest = name.substr(kStagingPrefix.size());
    const size_t dash = rest.find('-');
    if (dash == std::string::npos || !AllDigits(rest.substr(0, dash))) continue;
    const pid_t pid = static_cast<pid_t>(std::stoll(rest.substr(0, dash)));
    if (::kill(pid, 0) != 0 && errno == ESRCH) {
      std::error_code e2;
      fs::remove_all(entry.path(), e2);
    }
  }
}

// Copies `from` to `to`, checking the bytes against the manifest's entry for it.
absl::Status CopyChecked(Env* env, const std::string& from, const std::string& to,
                         const BundleFile& expected, uint64_t* bytes) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<SequentialFile> in, env->NewSequentialFile(from));
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> out, env->NewWritableFile(to));
  Sha256 sha;
  std::vector<char> buf(1 << 20);
  uint64_t n = 0;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(size_t got, in->Read(buf.size(), buf.data()));
    if (got == 0) break;
    const std::string_view chunk(buf.data(), got);
    sha.Update(chunk);
    KILN_RETURN_IF_ERROR(out->Append(chunk));
    n += got;
  }
  if (n != expected.bytes || sha.HexDigest() != expected.sha256) {
    return absl::DataLossError(StrCat("bundle file ", expected.path, " does not match its ",
                                      kBundleManifestName, " entry (", n, " bytes, expected ",
                                      expected.bytes, "): the bundle is corrupt"));
  }
  KILN_RETURN_IF_ERROR(out->Sync());
  KILN_RETURN_IF_ERROR(out->Close());
  *bytes += n;
  return absl::OkStatus();
}

// Moves `staging` to `target` unless `target` exists. false when it exists.
absl::StatusOr<bool> RenameNoReplace(const std::string& staging, const std::string& target) {
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) == 0) {
    return true;
  }
  if (errno == EEXIST || errno == ENOTEMPTY) return false;
  return absl::InternalError(
      StrCat("cannot rename ", staging, " to ", target, ": ", std::strerror(errno)));
}

}  // namespace

std::vector<int64_t> ScanVersions(const std::string& base_path) {
  std::vector<int64_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(base_path, ec)) {
    const std::string name = entry.path().filename().string();
    std::error_code e2;
    if (AllDigits(name) && entry.is_directory(e2) &&
        fs::exists(entry.path() / kBundleManifestName, e2)) {
      out.push_back(std::stoll(name));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

int64_t LatestVersion(const std::string& base_path) {
  const std::vector<int64_t> versions = ScanVersions(base_path);
  return versions.empty() ? 0 : versions.back();
}

absl::StatusOr<PushResult> PushBundle(Env* env, const std::string& bundle_dir,
                                      const std::string& base_path) {
  const std::string manifest_path = JoinPath(bundle_dir, kBundleManifestName);
  if (!env->FileExists(manifest_path)) {
    return absl::NotFoundError(
        StrCat(bundle_dir, " is not a model bundle (no ", kBundleManifestName, ")"));
  }
  KILN_ASSIGN_OR_RETURN(std::string manifest_text, ReadFileToString(env, manifest_path));
  auto manifest = ManifestFromJson(manifest_text);
  if (!manifest.ok()) {
    return absl::DataLossError(StrCat(bundle_dir, ": ", manifest.status().message()));
  }
  KILN_RETURN_IF_ERROR(env->CreateDirs(base_path));
  RemoveDeadStaging(base_path);
  std::random_device rd;
  const std::string staging =
      JoinPath(base_path, StrCat(kStagingPrefix, getpid(), "-", std::to_string(rd())));
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      if (!dir.empty()) fs::remove_all(dir, ec);
    }
  } cleanup{staging};

  PushResult result;
  KILN_RETURN_IF_ERROR(env->CreateDirs(staging));
  for (const BundleFile& f : manifest->files) {
    const std::string to = JoinPath(staging, f.path);
    KILN_RETURN_IF_ERROR(env->CreateDirs(Dirname(to)));
    KILN_RETURN_IF_ERROR(CopyChecked(env, JoinPath(bundle_dir, f.path), to, f, &result.bytes));
  }
  // The manifest last, as BundleWriter writes it.
  KILN_RETURN_IF_ERROR(
      WriteFileAtomically(env, JoinPath(staging, kBundleManifestName), manifest_text));
  result.bytes += manifest_text.size();
  KILN_RETURN_IF_ERROR(env->SyncDir(staging));

  // Another push may take a number between our look and our rename: then the next one.
  int64_t version = LatestVersion(base_path) + 1;
  for (int attempt = 0;; ++attempt) {
    const std::string target = JoinPath(base_path, StrCat(version));
    KILN_ASSIGN_OR_RETURN(bool moved, RenameNoReplace(staging, target));
    if (moved) {
      cleanup.dir.clear();
      result.version = version;
      result.dir = target;
      break;
    }
    if (attempt == 1000) {
      return absl::InternalError(StrCat("no free version number under ", base_path));
    }
    version = std::max(version + 1, LatestVersion(base_path) + 1);
  }
  KILN_RETURN_IF_ERROR(env->SyncDir(base_path));
  return result;
}

}  // namespace kiln::model
