#include "kiln/data/jsonl.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kiln/testing/temp_dir.h"

namespace kiln::data {
namespace {

using kiln::testing::TempDir;
using ::testing::HasSubstr;

absl::StatusOr<Batch> ReadOne(const std::string& path, BadRowPolicy policy = BadRowPolicy::kError,
                              uint64_t* bad_count = nullptr, ReadOptions opts = {}) {
  opts.bad_rows = policy;
  BadRowSink bad(policy);
  KILN_ASSIGN_OR_RETURN(auto source, OpenJsonlSource(Env::Default(), {path}, opts));
  BatchReader reader(std::move(source), &bad);
  Batch b;
  KILN_ASSIGN_OR_RETURN(bool more, reader.Next(&b));
  if (!more) b.Clear();
  if (bad_count) *bad_count = bad.count();
  return b;
}

TEST(JsonlTest, ScalarsListsNullsAndAbsentKeys) {
  TempDir dir;
  auto b = ReadOne(dir.Write("a.jsonl",
                             "{\"i\": 1, \"f\": 2.5, \"s\": \"x\", \"l\": [1, 2, 3], \"b\": true}\n"
                             "{\"i\": null, \"f\": 3, \"l\": [], \"b\": false}\n"
                             "\n"
                             "{\"s\": \"z\", \"new\": \"late\"}\n"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->num_rows, 3u);
  const Column& i = b->columns[b->FindColumn("i")];
  EXPECT_EQ(i.type, ValueType::kInt);
  EXPECT_EQ(i.present, (std::vector<uint8_t>{1, 0, 0}));
  const Column& f = b->columns[b->FindColumn("f")];
  EXPECT_EQ(f.type, ValueType::kFloat);  // 2.5 then 3: widened
  EXPECT_EQ(f.floats, (std::vector<double>{2.5, 3.0}));
  const Column& l = b->columns[b->FindColumn("l")];
  EXPECT_EQ(l.offsets, (std::vector<uint32_t>{0, 3, 3, 3}));
  EXPECT_EQ(l.present, (std::vector<uint8_t>{1, 1, 0}));
  const Column& bo = b->columns[b->FindColumn("b")];
  EXPECT_EQ(bo.ints, (std::vector<int64_t>{1, 0}));
  const Column& n = b->columns[b->FindColumn("new")];
  EXPECT_EQ(n.present, (std::vector<uint8_t>{0, 0, 1}));
  EXPECT_EQ(b->row_positions, (std::vector<uint64_t>{1, 2, 4}));
}

TEST(JsonlTest, NumbersMixedWithStringsBecomeStrings) {
  TempDir dir;
  auto b = ReadOne(dir.Write("m.jsonl", "{\"v\": 7}\n{\"v\": \"seven\"}\n"));
  ASSERT_TRUE(b.ok());
  const Column& v = b->columns[0];
  EXPECT_EQ(v.type, ValueType::kString);
  EXPECT_EQ(v.str(0), "7");
  EXPECT_EQ(v.str(1), "seven");
}

TEST(JsonlTest, MalformedLinesNameFileAndLine) {
  TempDir dir;
  std::string path = dir.Write("bad.jsonl", "{\"a\": 1}\n{\"a\": \n{\"a\": 3}\n");
  auto b = ReadOne(path);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(std::string(b.status().message()), HasSubstr(path + ":2: invalid JSON"));
  uint64_t bad = 0;
  b = ReadOne(path, BadRowPolicy::kSkip, &bad);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(bad, 1u);
  EXPECT_EQ(b->num_rows, 2u);
}

TEST(JsonlTest, NestedObjectsArraysOfObjectsAndNonObjectsAreBadRows) {
  TempDir dir;
  for (const char* line : {"{\"a\": {\"b\": 1}}", "{\"a\": [{\"b\": 1}]}", "[1, 2]", "42",
                           "{\"a\": 1, \"a\": 2}", "{\"a\": [null]}"}) {
    std::string path = dir.Write("x.jsonl", std::string(line) + "\n");
    auto b = ReadOne(path);
    EXPECT_FALSE(b.ok()) << line;
    EXPECT_THAT(std::string(b.status().message()), HasSubstr(path + ":1:")) << line;
  }
}

TEST(JsonlTest, SchemaTypeMismatchIsABadRow) {
  TempDir dir;
  ReadOptions opts;
  opts.type_overrides = {{"n", ValueType::kInt}};
  std::string path = dir.Write("t.jsonl", "{\"n\": 1}\n{\"n\": 1.5}\n");
  auto b = ReadOne(path, BadRowPolicy::kError, nullptr, opts);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(std::string(b.status().message()), HasSubstr(":2: field 'n': FLOAT value"));
}

TEST(JsonlTest, MalformedLineErrorNamesTheColumn) {
  TempDir dir;
  for (const auto& [line, column] :
       std::vector<std::pair<std::string, int>>{{"{\"a\": 1e400}", 7},
                                                {"{\"a\": [1, 2,, 3]}", 13},
                                                {"{\"a\": tru}", 7},
                                                {"{\"abc\": 12, \"b\": 3x}", 18}}) {
    std::string path = dir.Write("c.jsonl", line + "\n");
    auto b = ReadOne(path);
    ASSERT_FALSE(b.ok()) << line;
    EXPECT_THAT(std::string(b.status().message()),
                HasSubstr(path + ":1: invalid JSON at column " + std::to_string(column)))
        << line;
  }
}

TEST(JsonlTest, ByteOrderMarkIsSkipped) {
  TempDir dir;
  auto b = ReadOne(dir.Write("bom.jsonl", "\xEF\xBB\xBF{\"a\": 1}\n{\"a\": 2}\n"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->columns[0].ints, (std::vector<int64_t>{1, 2}));
}

TEST(JsonlTest, SmallBlocksKeepEveryLineAndItsNumber) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 3000; ++i) text += "{\"i\": " + std::to_string(i) + "}\n";
  ReadOptions opts;
  opts.block_bytes = 4096;
  BadRowSink bad(BadRowPolicy::kError);
  auto source = OpenJsonlSource(Env::Default(), {dir.Write("s.jsonl", text)}, opts);
  ASSERT_TRUE(source.ok());
  BatchReader reader(std::move(*source), &bad);
  int64_t next = 0;
  size_t blocks = 0;
  for (;;) {
    Batch b;
    auto more = reader.Next(&b);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    ++blocks;
    for (size_t r = 0; r < b.num_rows; ++r) {
      EXPECT_EQ(b.columns[0].ints[r], next);
      EXPECT_EQ(b.row_positions[r], static_cast<uint64_t>(next + 1));
      ++next;
    }
  }
  EXPECT_EQ(next, 3000);
  EXPECT_GT(blocks, 5u);
}

TEST(JsonlTest, EmptyFileHasNoRows) {
  TempDir dir;
  auto b = ReadOne(dir.Write("e.jsonl", ""));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->num_rows, 0u);
}

TEST(JsonlTest, InvalidUtf8IsABadRow) {
  TempDir dir;
  std::string path = dir.Write("u.jsonl", "{\"s\": \"\xff\"}\n");
  auto b = ReadOne(path);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(std::string(b.status().message()), HasSubstr(path + ":1: invalid JSON"));
}

}  // namespace
}  // namespace kiln::data
