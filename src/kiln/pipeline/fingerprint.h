// Content fingerprints of files and directories, the currency of the pipeline cache: two
// artifacts with equal fingerprints hold the same files with the same bytes. Thread-safe
// (pure functions over the file system).
#ifndef KILN_PIPELINE_FINGERPRINT_H_
#define KILN_PIPELINE_FINGERPRINT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/base/env.h"

namespace kiln::pipeline {

// SHA-256 (hex) over what `path` holds. A file: its size and bytes. A directory: every
// entry below it in sorted order — each directory's relative path, each file's relative
// path, size and bytes — so the value depends on names and contents only, never on
// timestamps, inode numbers or the order files were written in. Symbolic links are
// followed. Errors: kNotFound when `path` does not exist; I/O errors from reading.
absl::StatusOr<std::string> ContentFingerprint(Env* env, const std::string& path);

// The same over a list of files (e.g. the matches of a glob), each named by its full
// path as given.
absl::StatusOr<std::string> FilesFingerprint(Env* env, const std::vector<std::string>& files);

}  // namespace kiln::pipeline

#endif  // KILN_PIPELINE_FINGERPRINT_H_
