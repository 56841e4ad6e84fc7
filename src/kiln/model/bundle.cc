#include "kiln/model/bundle.h"

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <set>

#include "absl/status/status.h"
#include "kiln/base/aes_gcm.h"
#include "kiln/base/publish_dir.h"
#include "kiln/base/sha256.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::model {
namespace {

std::string KeyFingerprint(std::string_view key) { return Sha256Hex(key).substr(0, 16); }

std::string NowRfc3339(Env* env) {
  time_t t = static_cast<time_t>(env->NowMicros() / 1000000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A bundle-relative path: non-empty, relative, no "." or ".." components, no empty
// components, and not the manifest itself.
absl::Status CheckRelativePath(const std::string& path) {
  bool ok = !path.empty() && path.front() != '/' && path != kBundleManifestName;
  size_t start = 0;
  while (ok && start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part = std::string_view(path).substr(start, end - start);
    ok = !part.empty() && part != "." && part != "..";
    start = end + 1;
  }
  if (!ok) {
    return absl::InvalidArgumentError(StrCat("bundle file path '", path,
                                             "' must be relative, inside the bundle, and not ",
                                             kBundleManifestName));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::optional<std::string>> LoadModelKey(Env* env, const std::string& key_file) {
  if (const char* k = std::getenv("KILN_MODEL_KEY"); k && *k) {
    auto key = ParseAesKey(k);
    if (!key.ok())
      return absl::InvalidArgumentError(StrCat("KILN_MODEL_KEY: ", key.status().message()));
    return std::optional<std::string>(*key);
  }
  if (key_file.empty()) return std::optional<std::string>();
  auto text = ReadFileToString(env, key_file);
  if (!text.ok()) {
    return absl::NotFoundError(StrCat("model key file ", key_file, ": ", text.status().message()));
  }
  auto key = ParseAesKey(*text);
  if (!key.ok()) return absl::InvalidArgumentError(StrCat(key_file, ": ", key.status().message()));
  return std::optional<std::string>(*key);
}

std::string ManifestToJson(const BundleManifest& m) {
  nlohmann::json j;
  j["format"] = "kiln-model-bundle";
  j["format_version"] = m.format_version;
  j["backend"] = m.backend;
  j["model_type"] = m.model_type;
  j["created"] = m.created;
  j["signature"] = m.signature;
  j["config"] = m.config;
  j["provenance"] = m.provenance;
  if (!m.encryption.empty()) {
    j["encryption"] = {{"algorithm", m.encryption}, {"key_fingerprint", m.key_fingerprint}};
  }
  nlohmann::json files = nlohmann::json::array();
  for (const BundleFile& f : m.files) {
    files.push_back({{"path", f.path}, {"sha256", f.sha256}, {"bytes", f.bytes}});
  }
  j["files"] = files;
  return j.dump(2) + "\n";
}

absl::StatusOr<BundleManifest> ManifestFromJson(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(StrCat(kBundleManifestName, " is not a JSON object"));
  }
  if (j.value("format", "") != "kiln-model-bundle") {
    return absl::DataLossError(StrCat(kBundleManifestName, " is not a kiln model bundle manifest"));
  }
  BundleManifest m;
  try {
    m.format_version = j.at("format_version").get<int>();
    if (m.format_version > kBundleFormatVersion) {
      return absl::FailedPreconditionError(StrCat("model bundle format version ", m.format_version,
                                                  " is newer than this kiln reads (",
                                                  kBundleFormatVersion, "); upgrade kiln"));
    }
    m.backend = j.at("backend").get<std::string>();
    m.model_type = j.at("model_type").get<std::string>();
    m.created = j.value("created", "");
    m.signature = j.value("signature", nlohmann::json::object());
    m.config = j.value("config", nlohmann::json::object());
    m.provenance = j.value("provenance", std::map<std::string, std::string>());
    if (j.contains("encryption")) {
      m.encryption = j["encryption"].at("algorithm").get<std::string>();
      m.key_fingerprint = j["encryption"].at("key_fingerprint").get<std::string>();
    }
    for (const auto& f : j.at("files")) {
      BundleFile bf;
      bf.path = f.at("path").get<std::string>();
      bf.sha256 = f.at("sha256").get<std::string>();
      bf.bytes = f.at("bytes").get<uint64_t>();
      KILN_RETURN_IF_ERROR(CheckRelativePath(bf.path));
      m.files.push_back(std::move(bf));
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(StrCat(kBundleManifestName, " is malformed: ", e.what()));
  }
  if (!m.encryption.empty() && m.encryption != "AES-256-GCM") {
    return absl::FailedPreconditionError(StrCat("unknown bundle encryption '", m.encryption, "'"));
  }
  return m;
}

BundleWriter::BundleWriter(Env* env, std::string dir, std::string staging,
                           BundleWriteOptions options)
    : env_(env), dir_(std::move(dir)), staging_(std::move(staging)), options_(std::move(options)) {}

BundleWriter::~BundleWriter() {
  if (!finished_) {
    std::error_code ec;
    std::filesystem::remove_all(staging_, ec);
  }
}

absl::StatusOr<std::unique_ptr<BundleWriter>> BundleWriter::Create(Env* env, const std::string& dir,
                                                                   BundleWriteOptions options) {
  if (dir.empty()) return absl::InvalidArgumentError("no bundle directory given");
  if (env->FileExists(dir) && !options.overwrite) {
    return absl::AlreadyExistsError(StrCat(dir, " already exists; pass --overwrite to replace it"));
  }
  if (options.key && options.key->size() != kAesKeyBytes) {
    return absl::InvalidArgumentError("a model key is 32 bytes");
  }
  RecoverFromDeadWriters(dir);
  std::string staging = StagingDirFor(dir);
  std::error_code ec;
  std::filesystem::remove_all(staging, ec);  // a leftover of a killed writer of this pid
  KILN_RETURN_IF_ERROR(env->CreateDirs(staging));
  return std::unique_ptr<BundleWriter>(
      new BundleWriter(env, dir, std::move(staging), std::move(options)));
}

absl::Status BundleWriter::CheckNewPath(const std::string& path) {
  KILN_RETURN_IF_ERROR(CheckRelativePath(path));
  for (const std::string& p : paths_) {
    if (p == path)
      return absl::InvalidArgumentError(StrCat("bundle file '", path, "' added twice"));
  }
  paths_.push_back(path);
  std::string parent = Dirname(JoinPath(staging_, path));
  return env_->CreateDirs(parent);
}

absl::Status BundleWriter::AddFile(const std::string& path, std::string_view contents) {
  KILN_RETURN_IF_ERROR(CheckNewPath(path));
  return WriteFileAtomically(env_, JoinPath(staging_, path), contents);
}

absl::StatusOr<std::string> BundleWriter::FilePathForWriting(const std::string& path) {
  KILN_RETURN_IF_ERROR(CheckNewPath(path));
  return JoinPath(staging_, path);
}

absl::StatusOr<std::string> BundleWriter::UnlistedDir(const std::string& path) {
  KILN_RETURN_IF_ERROR(CheckRelativePath(path));
  std::string full = JoinPath(staging_, path);
  KILN_RETURN_IF_ERROR(env_->CreateDirs(full));
  return full;
}

absl::Status BundleWriter::Finish(BundleManifest manifest) {
  manifest.files.clear();
  manifest.created = NowRfc3339(env_);
  if (options_.key) {
    manifest.encryption = "AES-256-GCM";
    manifest.key_fingerprint = KeyFingerprint(*options_.key);
  } else {
    manifest.encryption.clear();
    manifest.key_fingerprint.clear();
  }
  for (const std::string& path : paths_) {
    std::string full = JoinPath(staging_, path);
    KILN_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(env_, full));
    if (options_.key) {
      KILN_ASSIGN_OR_RETURN(bytes, AesGcmSeal(*options_.key, path, bytes));
      KILN_RETURN_IF_ERROR(WriteFileAtomically(env_, full, bytes));
    }
    manifest.files.push_back({path, Sha256Hex(bytes), bytes.size()});
  }
  KILN_RETURN_IF_ERROR(
      WriteFileAtomically(env_, JoinPath(staging_, kBundleManifestName), ManifestToJson(manifest)));
  KILN_RETURN_IF_ERROR(PublishDirectory(env_, staging_, dir_, options_.overwrite));
  finished_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Bundle>> Bundle::Open(Env* env, const std::string& dir,
                                                     std::optional<std::string> key) {
  std::string manifest_path = JoinPath(dir, kBundleManifestName);
  if (!env->FileExists(manifest_path)) {
    return absl::NotFoundError(
        StrCat(dir, " is not a model bundle (no ", kBundleManifestName, ")"));
  }
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(env, manifest_path));
  auto manifest = ManifestFromJson(text);
  if (!manifest.ok()) {
    return absl::Status(manifest.status().code(), StrCat(dir, ": ", manifest.status().message()));
  }
  if (!manifest->encryption.empty()) {
    if (!key) {
      return absl::FailedPreconditionError(
          StrCat(dir, " is encrypted (AES-256-GCM, key fingerprint ", manifest->key_fingerprint,
                 "); set KILN_MODEL_KEY or pass --key-file"));
    }
    if (KeyFingerprint(*key) != manifest->key_fingerprint) {
      return absl::PermissionDeniedError(
          StrCat(dir, " was encrypted with key ", manifest->key_fingerprint,
                 ", but the key given has fingerprint ", KeyFingerprint(*key)));
    }
  } else {
    key.reset();  // a plain bundle needs none
  }
  // Verify every file before anything is used.
  for (const BundleFile& f : manifest->files) {
    std::string path = JoinPath(dir, f.path);
    auto bytes = ReadFileToString(env, path);
    if (!bytes.ok()) {
      return absl::DataLossError(StrCat(dir, ": bundle file ", f.path,
                                        " is missing or unreadable: ", bytes.status().message()));
    }
    if (bytes->size() != f.bytes || Sha256Hex(*bytes) != f.sha256) {
      return absl::DataLossError(StrCat(dir, ": bundle file ", f.path,
                                        " does not match its SHA-256 in the manifest (",
                                        bytes->size(), " bytes, manifest says ", f.bytes,
                                        "); the bundle was altered or is incomplete"));
    }
  }
  return std::unique_ptr<Bundle>(new Bundle(env, dir, std::move(*manifest), std::move(key)));
}

bool Bundle::HasFile(const std::string& path) const {
  for (const BundleFile& f : manifest_.files) {
    if (f.path == path) return true;
  }
  return false;
}

absl::StatusOr<std::string> Bundle::ReadFile(const std::string& path) const {
  const BundleFile* file = nullptr;
  for (const BundleFile& f : manifest_.files) {
    if (f.path == path) file = &f;
  }
  if (!file) return absl::NotFoundError(StrCat(dir_, ": the bundle has no file ", path));
  KILN_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(env_, JoinPath(dir_, path)));
  // Checked again: the file may have changed since Open.
  if (Sha256Hex(bytes) != file->sha256) {
    return absl::DataLossError(
        StrCat(dir_, ": bundle file ", path, " changed after the bundle was opened"));
  }
  if (!key_) return bytes;
  auto plain = AesGcmOpen(*key_, path, bytes);
  if (!plain.ok()) {
    return absl::Status(plain.status().code(),
                        StrCat(dir_, ": ", path, ": ", plain.status().message()));
  }
  return plain;
}

}  // namespace kiln::model
