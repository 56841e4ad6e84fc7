#include "kiln/data/input.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "kiln/testing/temp_dir.h"

namespace kiln::data {
namespace {

using kiln::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ResolveInputTest, FileGlobAndFormatDetection) {
  TempDir dir;
  std::string a = dir.Write("a.csv", "x\n1\n");
  std::string b = dir.Write("b.csv", "x\n2\n");
  auto one = ResolveInput(Env::Default(), a);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->format, Format::kCsv);
  auto glob = ResolveInput(Env::Default(), dir.File("*.csv"));
  ASSERT_TRUE(glob.ok());
  EXPECT_THAT(glob->files, ElementsAre(a, b));
  dir.Write("c.jsonl", "{}\n");
  auto mixed = ResolveInput(Env::Default(), dir.path());
  ASSERT_FALSE(mixed.ok());
  EXPECT_THAT(std::string(mixed.status().message()), HasSubstr("mixes"));
  EXPECT_EQ(ResolveInput(Env::Default(), dir.File("*.tfrecord")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ResolveInput(Env::Default(), dir.File("nope.csv")).status().code(),
            absl::StatusCode::kNotFound);
  dir.Write("data.bin", "");
  EXPECT_EQ(ResolveInput(Env::Default(), dir.File("data.bin")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ResolveInputTest, NewestSpanUnlessOneIsNamed) {
  TempDir dir;
  dir.Write("data/span-1/part.csv", "x\n1\n");
  dir.Write("data/span-2/part.csv", "x\n2\n");
  dir.Write("data/span-10/part-a.csv", "x\n3\n");
  dir.Write("data/span-10/part-b.csv", "x\n4\n");
  auto newest = ResolveInput(Env::Default(), dir.File("data/span-{SPAN}/*.csv"));
  ASSERT_TRUE(newest.ok()) << newest.status();
  EXPECT_EQ(newest->span, 10);
  EXPECT_EQ(newest->files.size(), 2u);
  ResolveOptions opts;
  opts.span = 2;
  auto two = ResolveInput(Env::Default(), dir.File("data"), opts);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->span, 2);
  EXPECT_THAT(two->files, ElementsAre(dir.File("data/span-2/part.csv")));
  opts.span = 7;
  auto missing = ResolveInput(Env::Default(), dir.File("data"), opts);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("spans present: 1, 2, 10"));
}

TEST(ResolveInputTest, EmptyNewestSpanIsAnErrorNotAnOlderSpan) {
  TempDir dir;
  dir.Write("data/span-1/part.csv", "x\n1\n");
  std::filesystem::create_directories(dir.File("data/span-2"));
  auto r = ResolveInput(Env::Default(), dir.File("data"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("the newest span, 2"));
  ResolveOptions opts;
  opts.span = 1;
  EXPECT_TRUE(ResolveInput(Env::Default(), dir.File("data"), opts).ok());
}

TEST(ResolveInputTest, DirectoryWithoutManifestIsNamedAsAnUnfinishedDataset) {
  TempDir dir;
  dir.Write("ds/train/data-00000.kds", "x");
  auto r = ResolveInput(Env::Default(), dir.File("ds"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("not a kiln dataset"));
}

TEST(InferTableSchemaTest, WidestTypeOverAllBlocksInHeaderOrder) {
  TempDir dir;
  std::string text = "a,b,c\n";
  for (int i = 0; i < 20000; ++i) text += std::to_string(i) + ",1,x\n";
  text += "7,2.5,y\n";   // b becomes FLOAT only at the end
  text += "oops,3,z\n";  // a becomes STRING only at the end
  std::string path = dir.Write("w.csv", text);
  auto input = ResolveInput(Env::Default(), path);
  ASSERT_TRUE(input.ok());
  ReadOptions opts;
  opts.block_bytes = 16 << 10;
  BadRowSink bad(BadRowPolicy::kError);
  auto schema = InferTableSchema(Env::Default(), *input, opts, &bad);
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_EQ(*schema,
            (TableSchema{
                {"a", ValueType::kString}, {"b", ValueType::kFloat}, {"c", ValueType::kString}}));
}

}  // namespace
}  // namespace kiln::data
