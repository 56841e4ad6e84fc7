#include "kiln/base/publish_dir.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "kiln/base/str.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

class PublishDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            StrCat("publish_dir_test_", static_cast<int64_t>(getpid()), "_",
                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // A directory holding one file `name` with `text`.
  void MakeDir(const fs::path& dir, const std::string& text) {
    fs::create_directories(dir);
    std::ofstream(dir / "file") << text;
  }
  std::string Read(const fs::path& dir) {
    std::ifstream in(dir / "file");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // The pid of a process that has exited.
  static pid_t DeadPid() {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, nullptr, 0);
    return pid;
  }

  fs::path root_;
};

TEST_F(PublishDirTest, PublishesAndRefusesToReplaceUnlessAsked) {
  Env* env = Env::Default();
  const std::string target = (root_ / "model").string();
  MakeDir(StagingDirFor(target), "one");
  ASSERT_TRUE(PublishDirectory(env, StagingDirFor(target), target, false).ok());
  EXPECT_EQ(Read(target), "one");
  MakeDir(StagingDirFor(target), "two");
  EXPECT_TRUE(absl::IsAlreadyExists(PublishDirectory(env, StagingDirFor(target), target, false)));
  EXPECT_EQ(Read(target), "one");
  ASSERT_TRUE(PublishDirectory(env, StagingDirFor(target), target, true).ok());
  EXPECT_EQ(Read(target), "two");
  EXPECT_FALSE(fs::exists(StagingDirFor(target)));
}

TEST_F(PublishDirTest, RemovesStagingOfDeadWritersOnly) {
  const fs::path target = root_ / "model";
  MakeDir(target, "good");
  const fs::path dead = root_ / StrCat("model.kiln-staging-", static_cast<int64_t>(DeadPid()));
  const fs::path live = root_ / StrCat("model.kiln-staging-", static_cast<int64_t>(getppid()));
  const fs::path other = root_ / "modelx.kiln-staging-1";  // another target's
  MakeDir(dead, "half");
  MakeDir(live, "in progress");
  MakeDir(other, "x");
  RecoverFromDeadWriters(target.string() + "/");
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(other));
  EXPECT_EQ(Read(target), "good");
}

TEST_F(PublishDirTest, PutsBackTheOldContentsOfAWriterKilledBetweenItsRenames) {
  const fs::path target = root_ / "model";
  const fs::path old = root_ / StrCat("model.kiln-old-", static_cast<int64_t>(DeadPid()));
  MakeDir(old, "previous");
  RecoverFromDeadWriters(target.string());
  EXPECT_EQ(Read(target), "previous");
  EXPECT_FALSE(fs::exists(old));

  // With the new contents in place, a leftover old copy is just removed.
  MakeDir(old, "stale");
  RecoverFromDeadWriters(target.string());
  EXPECT_EQ(Read(target), "previous");
  EXPECT_FALSE(fs::exists(old));
}

}  // namespace
}  // namespace kiln
