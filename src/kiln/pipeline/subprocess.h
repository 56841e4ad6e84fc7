// A child process for one attempt of a pipeline component: started in its own process
// group (so a signal reaches everything it started, and the terminal's Ctrl-C reaches only
// the runner, which decides), stdout and stderr appended to a log file, stdin from
// /dev/null, killed by the kernel if the runner dies (PR_SET_PDEATHSIG), and waitable
// through a pidfd so one poll() waits for many children and a timer at once.
// Not thread-safe; create and poll children from one thread.
#ifndef KILN_PIPELINE_SUBPROCESS_H_
#define KILN_PIPELINE_SUBPROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kiln::pipeline {

struct SpawnOptions {
  std::string executable;         // a path execve() accepts; no PATH search
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // the complete environment, NAME=VALUE
  std::string cwd;                // "" keeps the runner's
  std::string log_path;           // stdout and stderr are appended here
};

// How a child ended.
struct ExitStatus {
  int code = -1;   // exit code, or -1 when killed by a signal
  int signal = 0;  // the signal that killed it, or 0
};

class Subprocess {
 public:
  // Starts the child. Errors: kNotFound / kPermissionDenied for an executable that does
  // not exist or cannot run; kInternal when fork fails; I/O errors opening the log.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Spawn(const SpawnOptions& options);

  // Kills the process group and reaps the child when it is still running.
  ~Subprocess();

  pid_t pid() const { return pid_; }
  // Readable once the child has exited; -1 when pidfds are unavailable (then Poll()
  // must be called periodically).
  int wait_fd() const { return pidfd_; }

  // Reaps the child without blocking; true (and status() set) once it has exited.
  bool Poll();
  bool exited() const { return exited_; }
  const ExitStatus& status() const { return status_; }

  // Sends `sig` to the child's whole process group (no-op after it exited).
  void SignalGroup(int sig);

 private:
  Subprocess(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}
  pid_t pid_;
  int pidfd_;
  bool exited_ = false;
  ExitStatus status_;
};

// The executable `name` would run as: a name with a '/' relative to `cwd`, otherwise
// the first executable file of that name on `path_env` (the PATH value).
// Errors: kNotFound.
absl::StatusOr<std::string> ResolveExecutable(const std::string& name, const std::string& cwd,
                                              const std::string& path_env);

}  // namespace kiln::pipeline

#endif  // KILN_PIPELINE_SUBPROCESS_H_
