// Publishing a directory built elsewhere: the directory form of write-to-temp-then-rename.
// A reader of `target` sees the old contents, the new ones, or (for an instant during a
// replacement) nothing — never a mixture; a killed process leaves the old contents.
#ifndef KILN_BASE_PUBLISH_DIR_H_
#define KILN_BASE_PUBLISH_DIR_H_

#include <string>

#include "absl/status/status.h"
#include "kiln/base/env.h"

namespace kiln {

// A sibling of `target` to build the new contents in ("TARGET.kiln-staging-PID").
std::string StagingDirFor(const std::string& target);

// Tidies up after writers of `target` that were killed: removes their staging
// directories, and when one died between the two renames of a replacement (so `target`
// is missing and its old contents wait under TARGET.kiln-old-PID), puts the old contents
// back. Only directories of processes no longer running are touched. Best effort.
void RecoverFromDeadWriters(const std::string& target);

// Moves the complete directory `staging` to `target`. When `target` exists it is
// replaced if `replace`, else kAlreadyExists; the old directory is removed afterwards
// (best effort). On failure the old `target` is put back.
absl::Status PublishDirectory(Env* env, const std::string& staging, const std::string& target,
                              bool replace);

}  // namespace kiln

#endif  // KILN_BASE_PUBLISH_DIR_H_
