// PipelineLock: one run of a pipeline at a time. An exclusive flock(2) on a file in the
// pipeline's runs root (ROOT/.lock for runs, ROOT/.schedule.lock for `kiln schedule`),
// taken without waiting; the kernel releases it when the holder exits, kill -9 included,
// so a lock is never stale. The file names its holder (pid, host, start time) for the
// message of whoever finds it busy; it is never deleted (deleting a locked file would let
// a second process lock a new file of the same name). flock is per host: two machines
// sharing ROOT over NFS are not excluded. Not thread-safe; one object per holder.
#ifndef KILN_PIPELINE_LOCK_H_
#define KILN_PIPELINE_LOCK_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace kiln::pipeline {

// The environment variable by which a lock holder tells its child `kiln run` that it
// runs under the parent's lock (value: the parent's pid).
inline constexpr const char* kLockParentEnv = "KILN_RUN_LOCK_PARENT";

class PipelineLock {
 public:
  // Takes ROOT/.lock, creating ROOT. Errors: kUnavailable "pipeline NAME is already
  // running (pid N since TIME)" when another process (or another PipelineLock in this
  // one) holds it; kUnavailable for I/O errors.
  static absl::StatusOr<std::unique_ptr<PipelineLock>> AcquireRun(const std::string& root,
                                                                  const std::string& pipeline);

  // For `kiln run`: as AcquireRun, except that when $KILN_RUN_LOCK_PARENT names this
  // process's parent and ROOT/.lock is held, the parent's lock is used (the returned
  // object holds nothing). Always removes the variable from the environment, so the
  // run's components never see it.
  static absl::StatusOr<std::unique_ptr<PipelineLock>> AcquireRunOrInherit(
      const std::string& root, const std::string& pipeline);

  // Takes ROOT/.schedule.lock: one `kiln schedule` per pipeline. Errors as AcquireRun,
  // "pipeline NAME is already scheduled (pid N since TIME)".
  static absl::StatusOr<std::unique_ptr<PipelineLock>> AcquireSchedule(const std::string& root,
                                                                       const std::string& pipeline);

  // Releases the lock.
  ~PipelineLock();
  PipelineLock(const PipelineLock&) = delete;
  PipelineLock& operator=(const PipelineLock&) = delete;

  // "KILN_RUN_LOCK_PARENT=PID" for a child `kiln run` of this process.
  static std::string ChildEnv();

  const std::string& path() const { return path_; }
  bool inherited() const { return fd_ < 0; }

 private:
  PipelineLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  // *busy: false when the error is not another holder but an I/O error.
  static absl::StatusOr<std::unique_ptr<PipelineLock>> Acquire(const std::string& path,
                                                               const std::string& busy_message,
                                                               bool* busy);

  std::string path_;
  int fd_;  // -1: inherited from the parent
};

}  // namespace kiln::pipeline

#endif  // KILN_PIPELINE_LOCK_H_
