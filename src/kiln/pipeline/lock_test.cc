#include "kiln/pipeline/lock.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "kiln/base/str.h"
#include "kiln/testing/temp_dir.h"
#include "nlohmann/json.hpp"

namespace kiln::pipeline {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// Runs `body` in a forked child; returns its exit code.
template <typename F>
int InChild(F body) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body());
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(LockTest, SecondHolderIsRefusedWithTheFirstOnesPid) {
  testing::TempDir dir;
  const std::string root = dir.File("runs/p");
  auto first = PipelineLock::AcquireRun(root, "p");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)->path(), root + "/.lock");
  const auto holder = nlohmann::json::parse(testing::ReadAll(root + "/.lock"));
  EXPECT_EQ(holder["pid"].get<int64_t>(), getpid());
  EXPECT_FALSE(holder["host"].get<std::string>().empty());

  auto second = PipelineLock::AcquireRun(root, "p");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()),
              MatchesRegex(StrCat("pipeline p is already running \\(pid ", getpid(),
                                  " since [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\\)")));
  // Another process is refused too.
  EXPECT_EQ(InChild([&] { return PipelineLock::AcquireRun(root, "p").ok() ? 0 : 7; }), 7);

  first->reset();
  auto third = PipelineLock::AcquireRun(root, "p");
  EXPECT_TRUE(third.ok()) << third.status();
}

TEST(LockTest, ScheduleLockIsSeparateFromTheRunLock) {
  testing::TempDir dir;
  auto run = PipelineLock::AcquireRun(dir.path(), "p");
  ASSERT_TRUE(run.ok());
  auto sched = PipelineLock::AcquireSchedule(dir.path(), "p");
  ASSERT_TRUE(sched.ok()) << sched.status();
  auto again = PipelineLock::AcquireSchedule(dir.path(), "p");
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(std::string(again.status().message()),
              HasSubstr("pipeline p is already scheduled (pid "));
}

TEST(LockTest, ReleasedWhenTheHolderDies) {
  testing::TempDir dir;
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    auto lock = PipelineLock::AcquireRun(dir.path(), "p");
    ssize_t ignored = write(pipe_fds[1], lock.ok() ? "y" : "n", 1);
    (void)ignored;
    pause();  // killed below, lock still held
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(pipe_fds[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  auto busy = PipelineLock::AcquireRun(dir.path(), "p");
  ASSERT_FALSE(busy.ok());
  EXPECT_THAT(std::string(busy.status().message()), HasSubstr(StrCat("(pid ", pid, " since")));
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  EXPECT_TRUE(PipelineLock::AcquireRun(dir.path(), "p").ok());
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST(LockTest, ChildInheritsOnlyWhenItsParentHoldsTheLock) {
  testing::TempDir dir;
  // Without a holder, the variable changes nothing: the child takes the lock itself.
  setenv(kLockParentEnv, std::to_string(getpid()).c_str(), 1);
  EXPECT_EQ(InChild([&] {
              auto lock = PipelineLock::AcquireRunOrInherit(dir.path(), "p");
              if (!lock.ok()) return 1;
              if ((*lock)->inherited()) return 2;
              return std::getenv(kLockParentEnv) ? 3 : 0;
            }),
            0);
  auto held = PipelineLock::AcquireRun(dir.path(), "p");
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(PipelineLock::ChildEnv(), StrCat(kLockParentEnv, "=", getpid()));
  // The parent holds it and says so: the child runs under it.
  EXPECT_EQ(InChild([&] {
              auto lock = PipelineLock::AcquireRunOrInherit(dir.path(), "p");
              return lock.ok() && (*lock)->inherited() ? 0 : 1;
            }),
            0);
  // Naming someone else (not the parent) is refused.
  setenv(kLockParentEnv, "1", 1);
  EXPECT_EQ(InChild([&] {
              auto lock = PipelineLock::AcquireRunOrInherit(dir.path(), "p");
              return !lock.ok() && lock.status().code() == absl::StatusCode::kUnavailable ? 0 : 1;
            }),
            0);
  // No variable: refused.
  unsetenv(kLockParentEnv);
  EXPECT_EQ(InChild([&] { return PipelineLock::AcquireRunOrInherit(dir.path(), "p").ok(); }), 0);
  // The variable is consumed by this process, never passed on.
  setenv(kLockParentEnv, "1", 1);
  held->reset();
  auto mine = PipelineLock::AcquireRunOrInherit(dir.path(), "p");
  EXPECT_TRUE(mine.ok());
  EXPECT_EQ(std::getenv(kLockParentEnv), nullptr);
}

TEST(LockTest, UnwritableRootIsAnError) {
  testing::TempDir dir;
  const std::string file = dir.Write("file", "not a directory");
  auto lock = PipelineLock::AcquireRun(file + "/root", "p");
  ASSERT_FALSE(lock.ok());
  EXPECT_THAT(std::string(lock.status().message()), HasSubstr(file + "/root"));
}

}  // namespace
}  // namespace kiln::pipeline
