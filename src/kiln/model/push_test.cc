#include "kiln/model/push.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/model/bundle.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class PushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto w = BundleWriter::Create(Env::Default(), BundleDir());
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->AddFile("transform.json", R"({"features": []})").ok());
    ASSERT_TRUE((*w)->AddFile("model/weights.bin", std::string(3 << 20, 'w')).ok());  // > 1 chunk
    auto logs = (*w)->UnlistedDir("logs");
    ASSERT_TRUE(logs.ok());
    std::ofstream(*logs + "/events") << "tensorboard";
    BundleManifest m;
    m.backend = "torch";
    m.model_type = "linear";
    ASSERT_TRUE((*w)->Finish(m).ok());
  }
  std::string BundleDir() const { return tmp_.File("bundle"); }
  std::string Base() const { return tmp_.File("serving/clicks"); }

  testing::TempDir tmp_;
};

TEST_F(PushTest, EachPushIsTheNextVersionAndAnExactCopyOfTheListedFiles) {
  auto first = PushBundle(Env::Default(), BundleDir(), Base());  // base path created
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->version, 1);
  EXPECT_EQ(first->dir, Base() + "/1");
  auto second = PushBundle(Env::Default(), BundleDir(), Base());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->version, 2);
  EXPECT_EQ(LatestVersion(Base()), 2);
  EXPECT_THAT(Names(Base()), ElementsAre("1", "2"));  // no staging left behind
  EXPECT_THAT(Names(Base() + "/2"), ElementsAre("manifest.json", "model", "transform.json"));
  for (const char* f : {"manifest.json", "transform.json", "model/weights.bin"}) {
    EXPECT_EQ(Slurp(Base() + "/2/" + f), Slurp(BundleDir() + "/" + f)) << f;
  }
  EXPECT_EQ(second->bytes, fs::file_size(BundleDir() + "/manifest.json") +
                               fs::file_size(BundleDir() + "/transform.json") + (3 << 20));
  // The copy is a bundle that opens and verifies.
  EXPECT_TRUE(Bundle::Open(Env::Default(), second->dir).ok());
}

TEST_F(PushTest, NumbersFollowTheLargestServableVersion) {
  fs::create_directories(Base() + "/7");
  std::ofstream(Base() + "/7/manifest.json") << "{}";
  fs::create_directories(Base() + "/12");  // no manifest: not a version the server sees...
  fs::create_directories(Base() + "/junk");
  EXPECT_EQ(LatestVersion(Base()), 7);
  fs::create_directories(Base() + "/8");  // ...and a taken name is skipped, never replaced
  std::ofstream(Base() + "/8/keep") << "mine";
  auto pushed = PushBundle(Env::Default(), BundleDir(), Base());
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(pushed->version, 9);
  EXPECT_EQ(Slurp(Base() + "/8/keep"), "mine");
  EXPECT_EQ(LatestVersion(tmp_.File("nowhere")), 0);
}

TEST_F(PushTest, CorruptBundleIsRefusedAndLeavesNothing) {
  std::ofstream(BundleDir() + "/transform.json") << R"({"features": [1]})";
  auto pushed = PushBundle(Env::Default(), BundleDir(), Base());
  EXPECT_EQ(pushed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(pushed.status().message()), HasSubstr("transform.json"));
  EXPECT_TRUE(Names(Base()).empty());

  auto missing = PushBundle(Env::Default(), tmp_.File("no-bundle"), Base());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

// ManifestFromJson refuses such paths; the push must not get around it.
TEST_F(PushTest, ManifestPathsOutsideTheBundleAreRefused) {
  std::string m = Slurp(BundleDir() + "/manifest.json");
  const size_t at = m.find("\"transform.json\"");
  ASSERT_NE(at, std::string::npos);
  m.replace(at, 16, "\"../escape.json\"");
  std::ofstream(BundleDir() + "/manifest.json", std::ios::trunc) << m;
  auto pushed = PushBundle(Env::Default(), BundleDir(), Base());
  EXPECT_EQ(pushed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(pushed.status().message()), HasSubstr("inside the bundle"));
  EXPECT_FALSE(fs::exists(tmp_.File("serving/escape.json")));
}

TEST_F(PushTest, ConcurrentPushesGetDistinctVersions) {
  std::vector<std::thread> threads;
  std::vector<int64_t> versions(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto r = PushBundle(Env::Default(), BundleDir(), Base());
      versions[i] = r.ok() ? r->version : -1;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::set<int64_t>(versions.begin(), versions.end()), (std::set<int64_t>{1, 2, 3, 4}));
  EXPECT_THAT(Names(Base()), ElementsAre("1", "2", "3", "4"));
}

TEST_F(PushTest, StagingOfAKilledPushIsRemovedAndNeverServed) {
  // A PID that is not running: fork a child that exits at once, and reap it.
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  const std::string left = Base() + "/.kiln-push-" + std::to_string(dead) + "-1";
  fs::create_directories(left + "/model");
  std::ofstream(left + "/manifest.json") << "{}";
  EXPECT_EQ(LatestVersion(Base()), 0);
  ASSERT_TRUE(PushBundle(Env::Default(), BundleDir(), Base()).ok());
  EXPECT_FALSE(fs::exists(left));
  EXPECT_THAT(Names(Base()), ElementsAre("1"));
}

}  // namespace
}  // namespace kiln::model
