#include "kiln/pipeline/fingerprint.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "kiln/testing/temp_dir.h"

namespace kiln::pipeline {
namespace {

using kiln::testing::TempDir;

std::string Fp(const std::string& path) {
  auto f = ContentFingerprint(Env::Default(), path);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *f : "";
}

TEST(FingerprintTest, SameContentSameValueWhateverTheOrderOfWriting) {
  TempDir a, b;
  a.Write("d/x.csv", "1,2\n");
  a.Write("d/sub/y.bin", std::string(3 << 20, 'y'));  // more than one read buffer
  a.Write("d/z", "");
  b.Write("d/z", "");
  b.Write("d/sub/y.bin", std::string(3 << 20, 'y'));
  b.Write("d/x.csv", "1,2\n");
  const std::string fa = Fp(a.File("d"));
  EXPECT_EQ(fa.size(), 64u);
  EXPECT_EQ(fa, Fp(b.File("d")));
  // Stable across calls and timestamps.
  std::filesystem::last_write_time(
      b.File("d/x.csv"), std::filesystem::file_time_type::clock::now() - std::chrono::hours(5));
  EXPECT_EQ(fa, Fp(b.File("d")));
}

TEST(FingerprintTest, ContentNamesAndEmptyDirectoriesCount) {
  TempDir t;
  t.Write("d/x.csv", "1,2\n");
  const std::string base = Fp(t.File("d"));
  t.Write("d/x.csv", "1,3\n");
  const std::string changed = Fp(t.File("d"));
  EXPECT_NE(base, changed);
  t.Write("d/x.csv", "1,2\n");
  EXPECT_EQ(base, Fp(t.File("d")));
  std::filesystem::rename(t.File("d/x.csv"), t.File("d/w.csv"));
  EXPECT_NE(base, Fp(t.File("d")));
  std::filesystem::rename(t.File("d/w.csv"), t.File("d/x.csv"));
  std::filesystem::create_directories(t.File("d/empty"));
  EXPECT_NE(base, Fp(t.File("d")));
}

TEST(FingerprintTest, BoundariesBetweenFilesMatter) {
  TempDir a, b;
  a.Write("d/f1", "ab");
  a.Write("d/f2", "c");
  b.Write("d/f1", "a");
  b.Write("d/f2", "bc");
  EXPECT_NE(Fp(a.File("d")), Fp(b.File("d")));
}

TEST(FingerprintTest, FileAndDirectoryHoldingItDiffer) {
  TempDir t;
  const std::string f = t.Write("d/x.csv", "1,2\n");
  EXPECT_NE(Fp(f), Fp(t.File("d")));
  TempDir u;
  EXPECT_EQ(Fp(f), Fp(u.Write("other-name.csv", "1,2\n")));  // a file's name is not content
}

TEST(FingerprintTest, KnownValuesNeverChange) {
  // Cache keys stored in metadata stores depend on these values staying the same. They
  // are SHA-256 of the documented layout, computed independently:
  //   sha256(b"kiln-file-v1\nfile 0:\nsize 6\nhello\n")
  //   sha256(b"kiln-dir-v1\nfile 5:a.txt\nsize 6\nhello\n")
  TempDir t;
  t.Write("d/a.txt", "hello\n");
  EXPECT_EQ(Fp(t.File("d/a.txt")),
            "8239965448b666e4832d34ab72bf09f63342e0caa10c6bfd5d27ee8f465db39c");
  EXPECT_EQ(Fp(t.File("d")), "86b0d586d4b26935053eb8d0f09984668c4bec68f41fe9713f68807fb1c67d9c");
}

TEST(FingerprintTest, MissingPathIsNotFound) {
  TempDir t;
  EXPECT_EQ(ContentFingerprint(Env::Default(), t.File("nope")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(FingerprintTest, FilesFingerprintNamesFiles) {
  TempDir t;
  const std::string a = t.Write("a.csv", "1\n");
  const std::string b = t.Write("b.csv", "2\n");
  auto ab = FilesFingerprint(Env::Default(), {a, b});
  auto ba = FilesFingerprint(Env::Default(), {b, a});
  auto just_a = FilesFingerprint(Env::Default(), {a});
  ASSERT_TRUE(ab.ok() && ba.ok() && just_a.ok());
  EXPECT_NE(*ab, *ba);
  EXPECT_NE(*ab, *just_a);
  EXPECT_EQ(*ab, *FilesFingerprint(Env::Default(), {a, b}));
}

}  // namespace
}  // namespace kiln::pipeline
