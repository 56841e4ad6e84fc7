// SQLite-specific behaviour of the metadata store: many processes on one file, files
// that are not stores, and the default location.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/metadata/open_store.h"
#include "kiln/metadata/recorder.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::metadata {
namespace {

using ::testing::HasSubstr;

TEST(SqliteStoreTest, EightProcessesRecordingConcurrentlyLoseNothing) {
  kiln::testing::TempDir dir;
  const std::string url = "sqlite:" + dir.File("shared.sqlite");
  constexpr int kProcesses = 8;
  constexpr int kPerProcess = 1000;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Every child opens (and races to initialise) the store itself.
      auto store = OpenStore(url);
      if (!store.ok()) {
        std::fprintf(stderr, "child %d: %s\n", p, std::string(store.status().message()).c_str());
        _exit(1);
      }
      Recorder recorder(store->get());
      for (int i = 0; i < kPerProcess; ++i) {
        ExecutionRecord r;
        r.type = "Trainer";
        r.pipeline = "shared";
        r.run = StrCat("run-", p);
        r.parameters = {{"i", int64_t{i}}, {"process", int64_t{p}}};
        Artifact model{.type = "Model", .uri = StrCat("/m/", p, "/", i)};
        model.properties = {{"step", int64_t{i}}};
        r.outputs = {{"model", model}};
        auto done = recorder.Record(r);
        if (!done.ok()) {
          std::fprintf(stderr, "child %d record %d: %s\n", p, i,
                       std::string(done.status().message()).c_str());
          _exit(2);
        }
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  auto store = OpenStore(url);
  ASSERT_TRUE(store.ok()) << store.status();
  auto executions = (*store)->GetExecutions();
  ASSERT_TRUE(executions.ok());
  EXPECT_EQ(executions->size(), size_t{kProcesses * kPerProcess});
  EXPECT_EQ((*store)->GetArtifacts()->size(), size_t{kProcesses * kPerProcess});
  // Every (process, i) pair exactly once.
  std::set<std::pair<int64_t, int64_t>> seen;
  for (const Execution& e : *executions) {
    seen.emplace(std::get<int64_t>(e.custom_properties.at("process")),
                 std::get<int64_t>(e.custom_properties.at("i")));
  }
  EXPECT_EQ(seen.size(), size_t{kProcesses * kPerProcess});
  Query runs;
  runs.type = "pipeline_run";
  EXPECT_EQ((*store)->GetContexts(runs)->size(), size_t{kProcesses});
  Query pipelines;
  pipelines.type = "pipeline";
  auto pipeline = (*store)->GetContexts(pipelines);
  ASSERT_EQ(pipeline->size(), 1u);
  Query in_pipeline;
  in_pipeline.context_id = (*pipeline)[0].id;
  EXPECT_EQ((*store)->GetExecutions(in_pipeline)->size(), size_t{kProcesses * kPerProcess});
}

TEST(SqliteStoreTest, FileThatIsNotADatabaseIsRefusedAndUntouched) {
  kiln::testing::TempDir dir;
  std::string contents = "id,label\n1,0\n2,1\n";
  for (int i = 0; i < 200; ++i) contents += "padding line so the file is over one page long\n";
  std::string path = dir.Write("data.csv", contents);
  auto store = OpenStore("sqlite:" + path);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("not a SQLite database"));
  EXPECT_THAT(store.status().message(), HasSubstr(path));
  EXPECT_EQ(kiln::testing::ReadAll(path), contents);
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(path + "-journal"));
}

TEST(SqliteStoreTest, DirectoryIsRefused) {
  kiln::testing::TempDir dir;
  auto store = OpenStore("sqlite:" + dir.path());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("is a directory"));
}

TEST(SqliteStoreTest, UsesWalJournal) {
  kiln::testing::TempDir dir;
  auto store = OpenStore(dir.File("m.sqlite"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->PutType({.kind = TypeKind::kArtifact, .name = "X"}).ok());
  EXPECT_TRUE(std::filesystem::exists(dir.File("m.sqlite-wal")));
}

TEST(OpenStoreTest, DefaultLivesInKilnHome) {
  kiln::testing::TempDir dir;
  std::string saved = std::getenv("KILN_HOME") ? std::getenv("KILN_HOME") : "";
  setenv("KILN_HOME", dir.File("home").c_str(), 1);
  EXPECT_EQ(DefaultStorePath(), dir.File("home/metadata.sqlite"));
  auto store = OpenStore("");
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->Describe(), "sqlite:" + dir.File("home/metadata.sqlite"));
  EXPECT_TRUE(std::filesystem::exists(dir.File("home/metadata.sqlite")));
  unsetenv("KILN_HOME");
  const char* home = std::getenv("HOME");
  EXPECT_EQ(DefaultStorePath(), std::string(home ? home : ".") + "/.kiln/metadata.sqlite");
  if (!saved.empty()) setenv("KILN_HOME", saved.c_str(), 1);
}

TEST(OpenStoreTest, MustExistRefusesAMissingFileWithoutCreatingIt) {
  kiln::testing::TempDir dir;
  StoreOptions options;
  options.must_exist = true;
  for (const std::string& url : {"sqlite:" + dir.File("a.sqlite"), dir.File("a.sqlite")}) {
    auto store = OpenStore(url, options);
    EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound) << url;
    EXPECT_THAT(store.status().message(),
                HasSubstr("no metadata store at " + dir.File("a.sqlite")));
  }
  EXPECT_FALSE(std::filesystem::exists(dir.File("a.sqlite")));
  ASSERT_TRUE(OpenStore(dir.File("a.sqlite")).ok());  // created by a recording open
  EXPECT_TRUE(OpenStore(dir.File("a.sqlite"), options).ok());
}

TEST(OpenStoreTest, UrlForms) {
  kiln::testing::TempDir dir;
  for (const std::string& url : {"sqlite:" + dir.File("a.sqlite"),
                                 "sqlite://" + dir.File("b.sqlite"), dir.File("c.sqlite")}) {
    auto store = OpenStore(url);
    ASSERT_TRUE(store.ok()) << url << ": " << store.status();
  }
  EXPECT_TRUE(std::filesystem::exists(dir.File("a.sqlite")));
  EXPECT_TRUE(std::filesystem::exists(dir.File("b.sqlite")));
  EXPECT_TRUE(std::filesystem::exists(dir.File("c.sqlite")));
  auto mysql = OpenStore("mysql://root@localhost/db");
  EXPECT_EQ(mysql.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mysql.status().message(), HasSubstr("unsupported metadata store 'mysql://"));
  EXPECT_EQ(OpenStore("sqlite:").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kiln::metadata
