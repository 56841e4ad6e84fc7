// What one component runs: the paths of its outputs in a run, its command line and
// environment (built-in kinds become `kiln <subcommand>` with flags; command components
// run their argv under the KILN_* contract), and its cache key. Thread-compatible.
#ifndef KILN_PIPELINE_INVOCATION_H_
#define KILN_PIPELINE_INVOCATION_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/base/env.h"
#include "kiln/pipeline/kinds.h"
#include "kiln/pipeline/pipeline_spec.h"

namespace kiln::pipeline {

// Where an output lives: written under the component's staging directory, renamed into
// place when the attempt succeeds.
struct OutputPaths {
  std::string name;
  std::string artifact_type;
  std::string staging_dir;   // RUN/COMPONENT/.staging/NAME
  std::string final_dir;     // RUN/COMPONENT/NAME
  std::string staging_path;  // the artifact while written: staging_dir[/file]
  std::string final_path;    // the artifact: final_dir[/file]
  bool precreate = false;    // the runner creates staging_dir (file outputs, commands)
};

// RUN_DIR/COMPONENT and its outputs.
std::string ComponentDir(const std::string& run_dir, const Component& c);
std::string StagingDir(const std::string& run_dir, const Component& c);
std::vector<OutputPaths> OutputsOf(const Component& c, const std::string& run_dir);

struct InvocationContext {
  std::string kiln_binary = "/proc/self/exe";  // runs the built-in kinds
  std::string metadata_url;                    // given to kiln commands as --metadata
  const FlagCatalog* catalog = nullptr;        // which commands take --metadata
  std::string run_id;
  std::string run_dir;
  std::string path_env;  // PATH, to find a command's executable
};

struct Invocation {
  std::string executable;         // resolved path
  std::vector<std::string> argv;  // argv[0] is the executable as written
  // Added to the runner's environment: KILN_PIPELINE, KILN_RUN_ID, KILN_RUN_DIR,
  // KILN_COMPONENT, KILN_INPUT_<NAME>, KILN_OUTPUT_<NAME>, and a command's env:.
  std::vector<std::pair<std::string, std::string>> env;
  bool records_itself = false;  // a kiln command that records its own execution
};

// `inputs` maps each input name to the artifact path it resolves to in this run.
// Errors: kNotFound for a command's executable that cannot be found.
absl::StatusOr<Invocation> BuildInvocation(const Pipeline& p, const Component& c,
                                           const std::map<std::string, std::string>& inputs,
                                           const std::vector<OutputPaths>& outputs,
                                           const InvocationContext& ctx);

// Content fingerprints of paths, each computed once per Fingerprinter.
class Fingerprinter {
 public:
  explicit Fingerprinter(Env* env) : env_(env) {}
  // ContentFingerprint of an absolute path.
  absl::StatusOr<std::string> Of(const std::string& path);
  // Drops what is known about `path`: it was written since.
  void Forget(const std::string& path) { memo_.erase(path); }
  Env* env() const { return env_; }

 private:
  Env* env_;
  std::map<std::string, std::string> memo_;
};

// The cache key of a component: SHA-256 over everything that decides what it writes —
// the pipeline and component names, the kind, kiln's version and git sha, every arg (and
// the content fingerprint of each arg naming a file, directory or file pattern, except
// destinations the command writes to), the content fingerprint of every input, and for a
// command component its argv, env, declared outputs, the executable's content and that of
// every argument naming a regular file. `input_fingerprints` maps input names to the
// content fingerprints of the artifacts they resolve to. `recipe`, when given, receives
// the text that was hashed (one line per ingredient).
absl::StatusOr<std::string> CacheKey(const Pipeline& p, const Component& c,
                                     const std::map<std::string, std::string>& input_fingerprints,
                                     const std::string& executable, Fingerprinter* fp,
                                     std::string* recipe = nullptr);

}  // namespace kiln::pipeline

#endif  // KILN_PIPELINE_INVOCATION_H_
