#include "kiln/pipeline/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kiln/base/env.h"
#include "kiln/base/str.h"

namespace kiln::pipeline {
namespace {

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

// Async-signal-safe: writes `msg` and errno's number to fd.
void WriteError(int fd, const char* msg, int err) {
  char buf[16];
  int n = 0;
  do {
    buf[sizeof(buf) - 1 - n++] = static_cast<char>('0' + err % 10);
    err /= 10;
  } while (err > 0 && n < 10);
  ssize_t ignored = write(fd, msg, strlen(msg));
  ignored = write(fd, buf + sizeof(buf) - n, n);
  ignored = write(fd, ")\n", 2);
  (void)ignored;
}

}  // namespace

absl::StatusOr<std::string> ResolveExecutable(const std::string& name, const std::string& cwd,
                                              const std::string& path_env) {
  auto usable = [](const std::string& p) { return access(p.c_str(), X_OK) == 0; };
  if (name.find('/') != std::string::npos) {
    const std::string p = name.front() == '/' || cwd.empty() ? name : JoinPath(cwd, name);
    if (!usable(p)) {
      return absl::NotFoundError(StrCat("'", name, "' is not an executable file (", p, ")"));
    }
    return p;
  }
  size_t start = 0;
  while (start <= path_env.size()) {
    size_t end = path_env.find(':', start);
    if (end == std::string::npos) end = path_env.size();
    const std::string dir = end == start ? "." : path_env.substr(start, end - start);
    const std::string p = JoinPath(dir, name);
    if (usable(p) && access(p.c_str(), F_OK) == 0 && !Env::Default()->IsDirectory(p)) return p;
    start = end + 1;
  }
  return absl::NotFoundError(StrCat("'", name, "' is not on PATH"));
}

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Spawn(const SpawnOptions& o) {
  if (o.argv.empty()) return absl::InvalidArgumentError("a child needs argv[0]");
  const int log = open(o.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) {
    return absl::UnavailableError(StrCat("cannot open ", o.log_path, ": ", strerror(errno)));
  }
  const int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0) {
    close(log);
    return absl::InternalError(StrCat("cannot open /dev/null: ", strerror(errno)));
  }
  // Everything the child needs is built before fork: after it, only async-signal-safe
  // calls until execve.
  std::vector<char*> argv, envp;
  for (const std::string& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : o.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const char* exe = o.executable.c_str();
  const char* cwd = o.cwd.empty() ? nullptr : o.cwd.c_str();
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(log);
    close(null);
    return absl::InternalError(StrCat("fork: ", strerror(err)));
  }
  if (pid == 0) {
    setpgid(0, 0);
    // Die with the runner: a kill -9 of `kiln run` must not leave components running
    // (and writing) behind it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the runner died before prctl
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGCHLD, SIGHUP, SIGQUIT}) {
      sigaction(sig, &dfl, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0) _exit(127);
    close_range(3, ~0U, 0);  // nothing of the runner's leaks into the component
    if (cwd && chdir(cwd) != 0) {
      WriteError(2, "kiln run: cannot enter the pipeline directory (errno ", errno);
      _exit(127);
    }
    execve(exe, argv.data(), envp.data());
    WriteError(2, "kiln run: cannot execute the component (errno ", errno);
    _exit(127);
  }
  setpgid(pid, pid);  // also here: whichever of parent and child runs first
  close(log);
  close(null);
  return std::unique_ptr<Subprocess>(new Subprocess(pid, PidfdOpen(pid)));
}

Subprocess::~Subprocess() {
  if (!exited_) {
    SignalGroup(SIGKILL);
    int st;
    while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
  if (pidfd_ >= 0) close(pidfd_);
}

bool Subprocess::Poll() {
  if (exited_) return true;
  // Look without reaping first: while the child is a zombie its pid (and so its process
  // group id) cannot be reused, so whatever it left running in its group can be killed
  // without hitting anyone else.
  siginfo_t info = {};
  if (waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0) {
    return false;
  }
  kill(-pid_, SIGKILL);
  int st = 0;
  pid_t r;
  while ((r = waitpid(pid_, &st, 0)) < 0 && errno == EINTR) {
  }
  exited_ = true;
  if (r < 0) {  // not our child any more: treat it as lost
    status_ = {.code = -1, .signal = SIGKILL};
  } else if (WIFEXITED(st)) {
    status_ = {.code = WEXITSTATUS(st), .signal = 0};
  } else {
    status_ = {.code = -1, .signal = WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL};
  }
  return true;
}

void Subprocess::SignalGroup(int sig) {
  if (!exited_) kill(-pid_, sig);
}

}  // namespace kiln::pipeline
