// The model bundle: the directory a trained model lives in, and the only thing the
// server, `kiln predict` and the evaluator load.
//
//   MODEL_DIR/manifest.json   written last; lists every file with its SHA-256
//   MODEL_DIR/<files>         transform, backend weights, warm-up requests, ...
//
// The manifest carries the format version, backend, signature, provenance and, for an
// encrypted bundle, the fingerprint of its key. Every listed file is checked against its
// SHA-256 when the bundle is opened, so a tampered or truncated file is refused before any
// byte of it is used. With a key, files are sealed with AES-256-GCM (their names bound as
// authenticated data); the manifest stays readable so tools can list what a bundle is.
//
// A bundle is built in a staging directory beside MODEL_DIR and published with a
// rename, so a killed writer leaves the previous bundle (or nothing), never half of one.
#ifndef KILN_MODEL_BUNDLE_H_
#define KILN_MODEL_BUNDLE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/base/env.h"
#include "nlohmann/json.hpp"

namespace kiln::model {

inline constexpr int kBundleFormatVersion = 1;
inline constexpr const char* kBundleManifestName = "manifest.json";

struct BundleFile {
  std::string path;    // relative to the bundle directory, '/'-separated
  std::string sha256;  // of the bytes on disk (sealed bytes when encrypted)
  uint64_t bytes = 0;
};

struct BundleManifest {
  int format_version = kBundleFormatVersion;
  std::string backend;     // "torch", "xgboost", ...
  std::string model_type;  // "linear", "gbdt", ...
  // Model-specific description: signature (inputs and outputs with dtypes and shapes),
  // task, classes, ... kept as JSON so backends own their fields.
  nlohmann::json signature = nlohmann::json::object();
  nlohmann::json config = nlohmann::json::object();
  std::map<std::string, std::string> provenance;  // dataset fingerprint, kiln version, ...
  std::vector<BundleFile> files;                  // filled in by BundleWriter
  std::string created;                            // UTC, RFC 3339; filled in by BundleWriter
  // Set for encrypted bundles: "AES-256-GCM" and the first 16 hex digits of SHA-256(key).
  std::string encryption;
  std::string key_fingerprint;
};

// The model key from the environment: KILN_MODEL_KEY (64 hex digits or base64), else
// the file `key_file` when non-empty. nullopt when neither is given.
// Errors: kInvalidArgument for a malformed key, kNotFound for a missing key file.
absl::StatusOr<std::optional<std::string>> LoadModelKey(Env* env, const std::string& key_file);

struct BundleWriteOptions {
  bool overwrite = false;          // replace an existing bundle at the target
  std::optional<std::string> key;  // 32 bytes: seal every file with AES-256-GCM
};

class BundleWriter {
 public:
  // Starts a bundle that will be published at `dir`. Errors: kAlreadyExists when `dir`
  // exists and !overwrite (checked again at Finish); kInvalidArgument for a bad key.
  static absl::StatusOr<std::unique_ptr<BundleWriter>> Create(Env* env, const std::string& dir,
                                                              BundleWriteOptions options = {});
  ~BundleWriter();  // removes the staging directory unless Finish succeeded

  // Adds a file with these contents. Errors: kInvalidArgument for a path that escapes
  // the bundle or repeats one already added.
  absl::Status AddFile(const std::string& path, std::string_view contents);
  // A path in the staging directory for a backend that must write a file itself (e.g.
  // torch::save); the file is hashed (and sealed) at Finish.
  absl::StatusOr<std::string> FilePathForWriting(const std::string& path);

  // A directory in the bundle for files that are published with it but not listed or
  // checked (TensorBoard logs, which tools append to). Created on the first call.
  absl::StatusOr<std::string> UnlistedDir(const std::string& path);

  // Writes the manifest (files, hashes, creation time filled in) and publishes the
  // bundle. Errors: those of the file system; kAlreadyExists as in Create.
  absl::Status Finish(BundleManifest manifest);

 private:
  BundleWriter(Env* env, std::string dir, std::string staging, BundleWriteOptions options);
  absl::Status CheckNewPath(const std::string& path);

  Env* env_;
  std::string dir_;
  std::string staging_;
  BundleWriteOptions options_;
  std::vector<std::string> paths_;  // in the order added
  bool finished_ = false;
};

class Bundle {
 public:
  // Opens and verifies the bundle at `dir`. Errors: kNotFound (no bundle there),
  // kDataLoss (a file's SHA-256 or size differs from the manifest, a file is missing, or
  // the manifest is malformed: the message names the file), kFailedPrecondition (newer
  // format version; encrypted bundle without a key), kPermissionDenied (wrong key).
  static absl::StatusOr<std::unique_ptr<Bundle>> Open(Env* env, const std::string& dir,
                                                      std::optional<std::string> key = {});

  const BundleManifest& manifest() const { return manifest_; }
  const std::string& dir() const { return dir_; }
  bool HasFile(const std::string& path) const;
  // The file's contents, decrypted when the bundle is sealed. Errors: kNotFound for a
  // path the manifest does not list; kDataLoss / kPermissionDenied as in Open.
  absl::StatusOr<std::string> ReadFile(const std::string& path) const;

 private:
  Bundle(Env* env, std::string dir, BundleManifest manifest, std::optional<std::string> key)
      : env_(env), dir_(std::move(dir)), manifest_(std::move(manifest)), key_(std::move(key)) {}

  Env* env_;
  std::string dir_;
  BundleManifest manifest_;
  std::optional<std::string> key_;
};

std::string ManifestToJson(const BundleManifest& m);
// Errors: kDataLoss naming what is malformed; kFailedPrecondition for a newer version.
absl::StatusOr<BundleManifest> ManifestFromJson(std::string_view json);

}  // namespace kiln::model

#endif  // KILN_MODEL_BUNDLE_H_
