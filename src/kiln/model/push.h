// Pushing a model bundle to a serving base path (TFX Pusher): the bundle becomes the next
// numeric version directory under the base path, the layout `kiln serve` (and TF Serving)
// polls. The copy is built in a hidden staging directory beside the versions and renamed
// into place, so the server sees the whole new version or none of it, and a killed push
// leaves no version behind.
#ifndef KILN_MODEL_PUSH_H_
#define KILN_MODEL_PUSH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/base/env.h"

namespace kiln::model {

struct PushResult {
  int64_t version = 0;
  std::string dir;     // base_path/version
  uint64_t bytes = 0;  // copied, the manifest included
};

// The versions published under `base_path`, ascending: directories whose name is all
// digits and that hold a bundle manifest (staging directories and anything else are not
// versions). Empty when there is none, or no `base_path`. The server serves these.
std::vector<int64_t> ScanVersions(const std::string& base_path);
// The largest of them; 0 when there is none.
int64_t LatestVersion(const std::string& base_path);

// Copies the bundle at `bundle_dir` to `base_path`/N, N = LatestVersion + 1, creating
// `base_path` if needed. Every file the manifest lists is checked against its SHA-256
// and size while it is copied (so a corrupt bundle is never pushed; an encrypted bundle
// is pushed sealed, without its key). Files the manifest does not list (TensorBoard logs)
// are left behind. When another push takes N first, the next free number is used.
// Errors: kNotFound / kDataLoss for a missing or corrupt bundle (naming the file), and
// those of the file system.
absl::StatusOr<PushResult> PushBundle(Env* env, const std::string& bundle_dir,
                                      const std::string& base_path);

}  // namespace kiln::model

#endif  // KILN_MODEL_PUSH_H_
