// SIGINT and SIGTERM for a process's event loop (`kiln run`'s runner, `kiln schedule`): while
// a SignalScope lives, the signals are caught, counted and written to a self-pipe, so a
// loop that polls read_fd() never misses one that arrives just before it sleeps. The
// handlers it replaced are restored when it ends. One at a time per process (the state is
// process-wide, as signal handlers are).
#ifndef KILN_PIPELINE_SIGNAL_SCOPE_H_
#define KILN_PIPELINE_SIGNAL_SCOPE_H_

#include <signal.h>

namespace kiln::pipeline {

class SignalScope {
 public:
  SignalScope();
  ~SignalScope();
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;

  // The read end of the self-pipe: readable once a signal arrived (-1 if there is none).
  int read_fd() const { return pipe_[0]; }
  // Empties the pipe (after a poll() woke on it).
  void Drain();
  // Waits up to `timeout_ms`, until a signal arrives or `fd` (when >= 0) is readable, then
  // drains the pipe.
  void Wait(int timeout_ms, int fd = -1);

  // The last signal caught since this scope began (0: none) and how many were caught.
  static int last_signal();
  static int count();

 private:
  int pipe_[2] = {-1, -1};
  struct sigaction old_int_ = {}, old_term_ = {};
};

}  // namespace kiln::pipeline

#endif  // KILN_PIPELINE_SIGNAL_SCOPE_H_
