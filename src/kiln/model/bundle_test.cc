#include "kiln/model/bundle.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/sha256.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::model {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class BundleTest : public ::testing::Test {
 protected:
  std::string Dir() const { return tmp_.File("model"); }

  absl::Status Write(std::optional<std::string> key = {}, bool overwrite = false,
                     std::string weights = "WEIGHTS-v1") {
    BundleWriteOptions o;
    o.key = std::move(key);
    o.overwrite = overwrite;
    auto w = BundleWriter::Create(Env::Default(), Dir(), o);
    if (!w.ok()) return w.status();
    if (auto s = (*w)->AddFile("transform.json", R"({"features": []})"); !s.ok()) return s;
    auto path = (*w)->FilePathForWriting("model/weights.bin");
    if (!path.ok()) return path.status();
    std::ofstream(*path, std::ios::binary) << weights;
    BundleManifest m;
    m.backend = "torch";
    m.model_type = "linear";
    m.signature = {{"outputs", {{{"name", "scores"}, {"dtype", "float32"}}}}};
    m.provenance = {{"dataset_fingerprint", "abc"}, {"kiln_version", "0.1.0"}};
    return (*w)->Finish(m);
  }

  kiln::testing::TempDir tmp_;
  const std::string key_ = std::string(32, '\x42');
};

TEST_F(BundleTest, RoundTripsFilesAndManifest) {
  ASSERT_TRUE(Write().ok());
  auto b = Bundle::Open(Env::Default(), Dir());
  ASSERT_TRUE(b.ok()) << b.status();
  const BundleManifest& m = (*b)->manifest();
  EXPECT_EQ(m.format_version, kBundleFormatVersion);
  EXPECT_EQ(m.backend, "torch");
  EXPECT_EQ(m.model_type, "linear");
  EXPECT_EQ(m.signature["outputs"][0]["name"], "scores");
  EXPECT_EQ(m.provenance.at("dataset_fingerprint"), "abc");
  EXPECT_EQ(m.created.size(), 20u);  // 2026-11-25T19:00:00Z
  ASSERT_EQ(m.files.size(), 2u);
  EXPECT_EQ(m.files[1].path, "model/weights.bin");
  EXPECT_EQ(m.files[1].sha256, Sha256Hex("WEIGHTS-v1"));
  EXPECT_EQ(m.files[1].bytes, 10u);
  EXPECT_TRUE(m.encryption.empty());
  EXPECT_EQ(*(*b)->ReadFile("model/weights.bin"), "WEIGHTS-v1");
  EXPECT_EQ(*(*b)->ReadFile("transform.json"), R"({"features": []})");
  EXPECT_EQ((*b)->ReadFile("nope").status().code(), absl::StatusCode::kNotFound);
  // Nothing is left beside the bundle.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(tmp_.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(BundleTest, TamperedTruncatedOrMissingFilesAreRefused) {
  ASSERT_TRUE(Write().ok());
  const std::string weights = Dir() + "/model/weights.bin";
  std::ofstream(weights, std::ios::binary) << "WEIGHTS-v2";  // same size, other bytes
  auto b = Bundle::Open(Env::Default(), Dir());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(b.status().message(), HasSubstr("model/weights.bin does not match its SHA-256"));
  std::ofstream(weights, std::ios::binary) << "WEIGHTS";
  EXPECT_EQ(Bundle::Open(Env::Default(), Dir()).status().code(), absl::StatusCode::kDataLoss);
  fs::remove(weights);
  b = Bundle::Open(Env::Default(), Dir());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(b.status().message(), HasSubstr("missing"));
  EXPECT_EQ(Bundle::Open(Env::Default(), tmp_.File("nothing")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(BundleTest, MalformedOrNewerManifestIsRefused) {
  ASSERT_TRUE(Write().ok());
  const std::string manifest = Dir() + "/manifest.json";
  std::string text = kiln::testing::ReadAll(manifest);
  std::ofstream(manifest) << text.substr(0, text.size() / 2);
  EXPECT_EQ(Bundle::Open(Env::Default(), Dir()).status().code(), absl::StatusCode::kDataLoss);
  std::string newer = text;
  newer.replace(newer.find("\"format_version\": 1"), 19, "\"format_version\": 9");
  std::ofstream(manifest) << newer;
  auto b = Bundle::Open(Env::Default(), Dir());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(b.status().message(), HasSubstr("newer"));
  std::string escape = text;
  escape.replace(escape.find("\"model/weights.bin\""), 19, "\"../weights.bin\"");
  std::ofstream(manifest) << escape;
  EXPECT_EQ(Bundle::Open(Env::Default(), Dir()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BundleTest, EncryptedBundleNeedsTheRightKey) {
  ASSERT_TRUE(Write(key_).ok());
  // The weights are not on disk in the clear.
  std::string stored = kiln::testing::ReadAll(Dir() + "/model/weights.bin");
  EXPECT_EQ(stored.find("WEIGHTS"), std::string::npos);
  auto b = Bundle::Open(Env::Default(), Dir(), key_);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->manifest().encryption, "AES-256-GCM");
  EXPECT_EQ((*b)->manifest().key_fingerprint, Sha256Hex(key_).substr(0, 16));
  EXPECT_EQ(*(*b)->ReadFile("model/weights.bin"), "WEIGHTS-v1");

  auto no_key = Bundle::Open(Env::Default(), Dir());
  EXPECT_EQ(no_key.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(no_key.status().message(), HasSubstr("KILN_MODEL_KEY"));
  auto wrong = Bundle::Open(Env::Default(), Dir(), std::string(32, 'x'));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kPermissionDenied);

  // Swapping two sealed files (and their manifest entries) is caught by the
  // authenticated file names.
  fs::rename(Dir() + "/transform.json", tmp_.File("t"));
  fs::rename(Dir() + "/model/weights.bin", Dir() + "/transform.json");
  fs::rename(tmp_.File("t"), Dir() + "/model/weights.bin");
  std::string m = kiln::testing::ReadAll(Dir() + "/manifest.json");
  size_t a = m.find("\"transform.json\"");
  size_t w = m.find("\"model/weights.bin\"");
  m.replace(w, 19, "\"transform.json\"");
  m.replace(a, 16, "\"model/weights.bin\"");
  std::ofstream(Dir() + "/manifest.json") << m;
  b = Bundle::Open(Env::Default(), Dir(), key_);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->ReadFile("model/weights.bin").status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(BundleTest, OverwriteAndKilledWriter) {
  ASSERT_TRUE(Write().ok());
  EXPECT_EQ(Write().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(Write({}, /*overwrite=*/true, "WEIGHTS-v2").ok());
  EXPECT_EQ(*(*Bundle::Open(Env::Default(), Dir()))->ReadFile("model/weights.bin"), "WEIGHTS-v2");
  {
    // A writer that never finishes (the process died) leaves the old bundle alone.
    BundleWriteOptions o;
    o.overwrite = true;
    auto w = BundleWriter::Create(Env::Default(), Dir(), o);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->AddFile("model/weights.bin", "HALF").ok());
  }
  EXPECT_EQ(*(*Bundle::Open(Env::Default(), Dir()))->ReadFile("model/weights.bin"), "WEIGHTS-v2");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(tmp_.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(BundleTest, RejectsBadPaths) {
  auto w = BundleWriter::Create(Env::Default(), Dir());
  ASSERT_TRUE(w.ok());
  for (std::string bad : {"", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "manifest.json"}) {
    EXPECT_EQ((*w)->AddFile(bad, "x").code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  ASSERT_TRUE((*w)->AddFile("a/b.txt", "x").ok());
  EXPECT_EQ((*w)->AddFile("a/b.txt", "y").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BundleTest, LoadsKeyFromEnvironmentOrFile) {
  unsetenv("KILN_MODEL_KEY");
  EXPECT_FALSE(LoadModelKey(Env::Default(), "")->has_value());
  std::string hex(64, 'a');
  std::string file = tmp_.Write("key.txt", hex + "\n");
  EXPECT_EQ(**LoadModelKey(Env::Default(), file), std::string(32, '\xaa'));
  EXPECT_EQ(LoadModelKey(Env::Default(), tmp_.File("missing")).status().code(),
            absl::StatusCode::kNotFound);
  setenv("KILN_MODEL_KEY", std::string(64, 'b').c_str(), 1);
  EXPECT_EQ(**LoadModelKey(Env::Default(), file), std::string(32, '\xbb'));
  setenv("KILN_MODEL_KEY", "nope", 1);
  auto bad = LoadModelKey(Env::Default(), "");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("KILN_MODEL_KEY"));
  unsetenv("KILN_MODEL_KEY");
}

}  // namespace
}  // namespace kiln::model
