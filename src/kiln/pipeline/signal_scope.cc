#include "kiln/pipeline/signal_scope.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace kiln::pipeline {
namespace {

// Written by the handler, read by the loop.
volatile sig_atomic_t g_signal = 0;
volatile sig_atomic_t g_count = 0;
int g_wake_fd = -1;

void OnSignal(int sig) {
  g_signal = sig;
  g_count = g_count + 1;
  if (g_wake_fd >= 0) {
    const int saved = errno;
    ssize_t ignored = write(g_wake_fd, "x", 1);
    (void)ignored;
    errno = saved;
  }
}

}  // namespace

SignalScope::SignalScope() {
  g_signal = 0;
  g_count = 0;
  if (pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) == 0) g_wake_fd = pipe_[1];
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int_);
  sigaction(SIGTERM, &sa, &old_term_);
}

SignalScope::~SignalScope() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
  g_wake_fd = -1;
  if (pipe_[0] >= 0) close(pipe_[0]);
  if (pipe_[1] >= 0) close(pipe_[1]);
}

void SignalScope::Drain() {
  char buf[64];
  while (pipe_[0] >= 0 && read(pipe_[0], buf, sizeof(buf)) > 0) {
  }
}

void SignalScope::Wait(int timeout_ms, int fd) {
  pollfd fds[2] = {{pipe_[0], POLLIN, 0}, {fd, POLLIN, 0}};
  poll(fds, fd >= 0 ? 2 : 1, timeout_ms);
  Drain();
}

int SignalScope::last_signal() { return g_signal; }
int SignalScope::count() { return g_count; }

}  // namespace kiln::pipeline
