#include "kiln/data/example_codec.h"

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/testing/temp_dir.h"
#include "tensorflow/core/example/example.pb.h"

namespace kiln::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// --- building records

tensorflow::Feature Ints(std::vector<int64_t> v) {
  tensorflow::Feature f;
  auto* l = f.mutable_int64_list();
  for (int64_t x : v) l->add_value(x);
  return f;
}
tensorflow::Feature Floats(std::vector<float> v) {
  tensorflow::Feature f;
  auto* l = f.mutable_float_list();
  for (float x : v) l->add_value(x);
  return f;
}
tensorflow::Feature Strs(std::vector<std::string> v) {
  tensorflow::Feature f;
  auto* l = f.mutable_bytes_list();
  for (auto& x : v) l->add_value(x);
  return f;
}
tensorflow::Feature NoKind() { return tensorflow::Feature(); }

std::string Ex(const std::map<std::string, tensorflow::Feature>& features) {
  tensorflow::Example ex;
  auto& m = *ex.mutable_features()->mutable_feature();
  for (const auto& [k, v] : features) m[k] = v;
  return ex.SerializeAsString();
}

void WriteFile(const std::string& path, const std::vector<std::string>& records,
               bool gzip = false) {
  TFRecordWriter::Options o;
  o.gzip = gzip;
  auto w = TFRecordWriter::Create(Env::Default(), path, o);
  ASSERT_TRUE(w.ok()) << w.status();
  for (const auto& r : records) ASSERT_TRUE((*w)->Write(r).ok());
  ASSERT_TRUE((*w)->Close().ok());
}

// --- describing batches exactly

std::string Row(const Column& c, size_t r) {
  if (!c.is_present(r)) return "-";
  std::vector<std::string> v;
  for (uint32_t i = c.offsets[r]; i < c.offsets[r + 1]; ++i) {
    switch (c.type) {
      case ValueType::kInt:
        v.push_back(kiln::StrCat(c.ints[i]));
        break;
      case ValueType::kFloat:
        v.push_back(absl::StrFormat("%.17g", c.floats[i]));
        break;
      case ValueType::kString: {
        const std::string_view sv = c.str(i);
        v.push_back(
            kiln::StrCat("'", absl::CHexEscape(absl::string_view(sv.data(), sv.size())), "'"));
        break;
      }
    }
  }
  return kiln::StrCat("[", absl::StrJoin(v, ","), "]");
}

// "name:TYPE row0 row1 ..." with "-" for missing rows.
std::string Describe(const Column& c) {
  std::string out = kiln::StrCat(c.name, ":", ValueTypeName(c.type));
  for (size_t r = 0; r < c.num_rows(); ++r) kiln::StrAppend(&out, " ", Row(c, r));
  return out;
}

std::vector<std::string> Describe(const Batch& b) {
  std::vector<std::string> out;
  for (const Column& c : b.columns) {
    EXPECT_EQ(c.num_rows(), b.num_rows) << c.name;
    out.push_back(Describe(c));
  }
  return out;
}

// Reads every batch of a source serially.
struct ReadAll {
  std::vector<Batch> batches;
  std::vector<RawBlock> blocks;  // data dropped
  absl::Status status;
};

ReadAll ReadSource(BlockSource& source, BadRowSink* sink) {
  ReadAll out;
  for (;;) {
    RawBlock block;
    absl::StatusOr<bool> more = source.NextBlock(&block);
    if (!more.ok()) {
      out.status = more.status();
      return out;
    }
    if (!*more) return out;
    Batch batch;
    out.status = source.Decode(block, &batch, sink);
    block.data.clear();
    out.blocks.push_back(block);
    if (!out.status.ok()) return out;
    out.batches.push_back(std::move(batch));
  }
}

ReadAll ReadFiles(std::vector<std::string> files, const ReadOptions& options, BadRowSink* sink) {
  auto source = OpenTfRecordSource(Env::Default(), std::move(files), options);
  if (!source.ok()) return {{}, {}, source.status()};
  return ReadSource(**source, sink);
}

// --- the fixture written by TensorBoard's RecordWriter (see make_fixture.py)

class TfRecordFixtureTest : public ::testing::TestWithParam<const char*> {};

TEST_P(TfRecordFixtureTest, ReadsIndependentlyWrittenExamplesExactly) {
  const std::string path = testing::SourcePath(GetParam());
  BadRowSink sink(BadRowPolicy::kError);
  ReadAll r = ReadFiles({path}, {}, &sink);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.batches.size(), 1u);
  const Batch& b = r.batches[0];
  EXPECT_EQ(b.num_rows, 5u);
  EXPECT_EQ(b.source, path);
  EXPECT_THAT(b.row_positions, ElementsAre(0, 1, 2, 3, 4));
  EXPECT_EQ(r.blocks[0].first_line, 0u);
  EXPECT_EQ(r.blocks[0].byte_offset, 0u);
  EXPECT_THAT(Describe(b),
              ElementsAre("age:INT [34] [-7] - [0] -", "emb:FLOAT [1,-2.5,3.25] [0,0,0] - - -",
                          "name:STRING ['alice'] ['bob'] [''] ['\\xff\\x00z'] -",
                          "score:FLOAT [0.5] - [0.10000000149011612] - -",
                          "tags:STRING ['x','y'] [] - ['z'] -", "nokind:INT - [] - - -",
                          "ids:INT - - [1,2,9223372036854775807,-9223372036854775808] - -"));
  EXPECT_EQ(sink.count(), 0u);
}

INSTANTIATE_TEST_SUITE_P(PlainAndGzip, TfRecordFixtureTest,
                         ::testing::Values("tests/fixtures/tfrecord/examples.tfrecord",
                                           "tests/fixtures/tfrecord/examples.tfrecord.gz"));

// --- writer round trip

Batch SampleBatch() {
  Batch b;
  b.num_rows = 4;
  Column& i = b.columns.emplace_back();
  i.name = "i";
  i.type = ValueType::kInt;
  i.AddInt(5);
  i.AddMissing();
  i.ints.insert(i.ints.end(), {-1, 0, INT64_MAX});
  i.EndRow(3);
  i.EndRow(0);
  Column& f = b.columns.emplace_back();
  f.name = "f";
  f.type = ValueType::kFloat;
  f.AddFloat(0.1);  // narrowed to float32 on write
  f.AddFloat(-2.5);
  f.AddMissing();
  f.floats.insert(f.floats.end(), {1e30, 0.25});
  f.EndRow(2);
  Column& s = b.columns.emplace_back();
  s.name = "s";
  s.type = ValueType::kString;
  s.AddMissing();
  s.AddString(std::string("a\0b", 3));
  s.PushString("");
  s.PushString("zz");
  s.EndRow(2);
  s.AddMissing();
  return b;
}

TEST(ExampleWriterTest, RoundTripsPlainAndGzip) {
  testing::TempDir dir;
  for (bool gzip : {false, true}) {
    std::string path = dir.File(gzip ? "out.tfrecord.gz" : "out.tfrecord");
    auto w = ExampleWriter::Create(Env::Default(), path, {.gzip = gzip});
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Write(SampleBatch()).ok());
    ASSERT_TRUE((*w)->Write(SampleBatch()).ok());
    ASSERT_TRUE((*w)->Close().ok());
    EXPECT_EQ((*w)->rows_written(), 8u);

    BadRowSink sink(BadRowPolicy::kError);
    ReadAll r = ReadFiles({path}, {}, &sink);
    ASSERT_TRUE(r.status.ok()) << r.status;
    ASSERT_EQ(r.batches.size(), 1u);
    const Batch& b = r.batches[0];
    EXPECT_EQ(b.num_rows, 8u);
    // Features come back in name order within a record: f, i, s. Each column holds the
    // sample's four rows twice.
    auto twice = [](std::string head, std::string rows) { return head + rows + rows; };
    EXPECT_THAT(Describe(b), ElementsAre(twice("f:FLOAT",
                                               " [0.10000000149011612] [-2.5] - "
                                               "[1.0000000150474662e+30,0.25]"),
                                         twice("i:INT", " [5] - [-1,0,9223372036854775807] []"),
                                         twice("s:STRING", " - ['a\\x00\\x62'] ['','zz'] -")))
        << "gzip=" << gzip;
  }
}

TEST(ExampleWriterTest, SameRowsGiveSameBytes) {
  testing::TempDir dir;
  for (const char* name : {"a.tfrecord", "b.tfrecord"}) {
    auto w = ExampleWriter::Create(Env::Default(), dir.File(name));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(SampleBatch()).ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  EXPECT_EQ(testing::ReadAll(dir.File("a.tfrecord")), testing::ReadAll(dir.File("b.tfrecord")));
}

TEST(ExampleWriterTest, RejectsRaggedBatchAndDuplicateNames) {
  testing::TempDir dir;
  auto w = ExampleWriter::Create(Env::Default(), dir.File("a.tfrecord"));
  ASSERT_TRUE(w.ok());
  Batch ragged = SampleBatch();
  ragged.columns[1].AddFloat(1);
  absl::Status s = (*w)->Write(ragged);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("column 'f' has 5 rows but the batch has 4"));
  Batch dup = SampleBatch();
  dup.columns[2].name = "i";
  dup.columns[2].type = ValueType::kInt;
  s = (*w)->Write(dup);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("column 'i' appears twice"));
  EXPECT_EQ((*w)->rows_written(), 0u);
}

// --- blocks

TEST(TfRecordSourceTest, SplitsBlocksByBytesWithRecordIndexAndOffset) {
  testing::TempDir dir;
  std::vector<std::string> records;
  for (int i = 0; i < 10; ++i) records.push_back(Ex({{"n", Ints({i})}}));
  const size_t rec_bytes = records[0].size();  // every record has the same size
  for (const auto& r : records) ASSERT_EQ(r.size(), rec_bytes);
  std::string path = dir.File("a.tfrecord");
  WriteFile(path, records);

  ReadOptions o;
  o.block_bytes = 3 * (rec_bytes + 4);  // 3 records per block (4 = packing prefix)
  BadRowSink sink(BadRowPolicy::kError);
  ReadAll r = ReadFiles({path}, o, &sink);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.blocks.size(), 4u);
  const uint64_t framed = rec_bytes + 16;
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(r.blocks[k].first_line, 3 * k);
    EXPECT_EQ(r.blocks[k].byte_offset, 3 * k * framed);
    EXPECT_EQ(r.blocks[k].file, path);
  }
  EXPECT_EQ(Describe(r.batches[3]), std::vector<std::string>{"n:INT [9]"});
  EXPECT_THAT(r.batches[1].row_positions, ElementsAre(3, 4, 5));
  EXPECT_EQ(Describe(r.batches[1]), std::vector<std::string>{"n:INT [3] [4] [5]"});
}

TEST(TfRecordSourceTest, CapsRecordsPerBlock) {
  std::string bytes;
  const size_t n = TfRecordSource::kMaxRecordsPerBlock + 7;
  for (size_t i = 0; i < n; ++i) AppendTfRecord(&bytes, "");  // empty Examples
  auto source = TfRecordSource::FromMemory(bytes, "mem", {});
  ASSERT_TRUE(source.ok());
  BadRowSink sink(BadRowPolicy::kError);
  ReadAll r = ReadSource(**source, &sink);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.batches.size(), 2u);
  EXPECT_EQ(r.batches[0].num_rows, TfRecordSource::kMaxRecordsPerBlock);
  EXPECT_EQ(r.batches[1].num_rows, 7u);
  EXPECT_EQ(r.blocks[1].first_line, TfRecordSource::kMaxRecordsPerBlock);
  EXPECT_EQ(r.blocks[1].byte_offset, TfRecordSource::kMaxRecordsPerBlock * 16);
  EXPECT_THAT(r.batches[0].columns, IsEmpty());
}

TEST(TfRecordSourceTest, ReadsFilesInOrderSkippingEmptyOnes) {
  testing::TempDir dir;
  WriteFile(dir.File("a.tfrecord"), {Ex({{"x", Ints({1})}}), Ex({{"x", Ints({2})}})});
  WriteFile(dir.File("b.tfrecord"), {});
  WriteFile(dir.File("c.tfrecord.gz"), {Ex({{"y", Strs({"q"})}})}, true);
  BadRowSink sink(BadRowPolicy::kError);
  ReadAll r = ReadFiles({dir.File("a.tfrecord"), dir.File("b.tfrecord"), dir.File("c.tfrecord.gz")},
                        {}, &sink);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.batches.size(), 2u);
  EXPECT_EQ(r.batches[0].source, dir.File("a.tfrecord"));
  EXPECT_EQ(Describe(r.batches[0]), std::vector<std::string>{"x:INT [1] [2]"});
  EXPECT_EQ(r.batches[1].source, dir.File("c.tfrecord.gz"));
  EXPECT_EQ(r.blocks[1].first_line, 0u);  // record indexes restart per file
  EXPECT_EQ(Describe(r.batches[1]), std::vector<std::string>{"y:STRING ['q']"});
}

TEST(TfRecordSourceTest, MissingFileIsNotFoundAtOpen) {
  testing::TempDir dir;
  auto source = OpenTfRecordSource(Env::Default(), {dir.File("gone.tfrecord")}, {});
  EXPECT_EQ(source.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(source.status().message(), HasSubstr("gone.tfrecord"));
}

TEST(TfRecordSourceTest, ParallelDecodeSeesEveryRow) {
  testing::TempDir dir;
  std::vector<std::string> records;
  for (int i = 0; i < 1000; ++i) records.push_back(Ex({{"n", Ints({i})}}));
  WriteFile(dir.File("a.tfrecord"), records);
  ReadOptions o;
  o.block_bytes = 500;
  auto source = OpenTfRecordSource(Env::Default(), {dir.File("a.tfrecord")}, o);
  ASSERT_TRUE(source.ok());
  BadRowSink sink(BadRowPolicy::kError);
  std::atomic<int64_t> rows{0}, sum{0};
  absl::Status s = ForEachBatchParallel(source->get(), &sink, 3, [&](int, Batch& b) {
    rows += static_cast<int64_t>(b.num_rows);
    for (int64_t v : b.columns[0].ints) sum += v;
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(rows.load(), 1000);
  EXPECT_EQ(sum.load(), 999 * 1000 / 2);
}

// --- value mapping

TEST(TfRecordSourceTest, FeatureWithoutKindTakesTypeSeenLater) {
  std::string bytes;
  AppendTfRecord(&bytes, Ex({{"k", NoKind()}}));
  AppendTfRecord(&bytes, Ex({}));
  AppendTfRecord(&bytes, Ex({{"k", Floats({1.5f})}}));
  auto source = TfRecordSource::FromMemory(bytes, "mem", {});
  BadRowSink sink(BadRowPolicy::kError);
  ReadAll r = ReadSource(**source, &sink);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(Describe(r.batches[0]), std::vector<std::string>{"k:FLOAT [] - [1.5]"});
}

// --- bad rows: record 1 is valid framing around bytes that are not a tf.Example.

class TfRecordBadRowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("bad.tfrecord");
    records_ = {Ex({{"a", Ints({1})}}), "not a proto", Ex({{"a", Ints({3})}})};
    WriteFile(path_, records_);
  }
  uint64_t OffsetOf(size_t i) const {
    uint64_t off = 0;
    for (size_t k = 0; k < i; ++k) off += records_[k].size() + 16;
    return off;
  }
  testing::TempDir dir_;
  std::string path_;
  std::vector<std::string> records_;
};

TEST_F(TfRecordBadRowTest, ErrorPolicyStopsNamingFileRecordAndOffset) {
  BadRowSink sink(BadRowPolicy::kError);
  ReadAll r = ReadFiles({path_}, {}, &sink);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status.message(),
              HasSubstr(kiln::StrCat(path_, ":1: record 1 at byte offset ", OffsetOf(1),
                                     ": not a parseable tf.Example")));
}

TEST_F(TfRecordBadRowTest, SkipPolicyLeavesRowOutAndCountsIt) {
  BadRowSink sink(BadRowPolicy::kSkip);
  ReadAll r = ReadFiles({path_}, {}, &sink);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.batches.size(), 1u);
  EXPECT_EQ(Describe(r.batches[0]), std::vector<std::string>{"a:INT [1] [3]"});
  EXPECT_THAT(r.batches[0].row_positions, ElementsAre(0, 2));
  EXPECT_EQ(sink.count(), 1u);
  ASSERT_EQ(sink.samples().size(), 1u);
  EXPECT_EQ(sink.samples()[0].file, path_);
  EXPECT_EQ(sink.samples()[0].line, 1u);
  EXPECT_EQ(sink.samples()[0].message,
            kiln::StrCat("record 1 at byte offset ", OffsetOf(1), ": not a parseable tf.Example"));
}

TEST_F(TfRecordBadRowTest, QuarantinePolicyWritesRawRecord) {
  std::string qpath = dir_.File("quarantine.bin");
  BadRowSink sink(BadRowPolicy::kQuarantine, qpath);
  ReadAll r = ReadFiles({path_}, {}, &sink);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.batches[0].num_rows, 2u);
  ASSERT_TRUE(sink.Finish().ok());
  EXPECT_EQ(testing::ReadAll(qpath), "not a proto\n");
}

TEST_F(TfRecordBadRowTest, BadRowBeforeCorruptionIsReportedFirst) {
  std::string bytes = testing::ReadAll(path_);
  bytes.resize(bytes.size() - 2);  // truncate record 2
  std::string path = dir_.Write("bad2.tfrecord", bytes);
  {
    BadRowSink sink(BadRowPolicy::kError);
    ReadAll r = ReadFiles({path}, {}, &sink);
    EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << r.status;
    EXPECT_THAT(r.status.message(), HasSubstr("record 1 at byte offset"));
  }
  {
    BadRowSink sink(BadRowPolicy::kSkip);
    ReadAll r = ReadFiles({path}, {}, &sink);
    EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss) << r.status;
    EXPECT_THAT(r.status.message(),
                HasSubstr(kiln::StrCat(path, ": record 2 at byte offset ", OffsetOf(2))));
    ASSERT_EQ(r.batches.size(), 1u);  // the good record came out before the error
    EXPECT_EQ(Describe(r.batches[0]), std::vector<std::string>{"a:INT [1]"});
  }
}

TEST(TfRecordSourceTest, KindChangeWithinBlockWidensTheColumn) {
  std::string bytes;
  AppendTfRecord(&bytes, Ex({{"x", Ints({1})}, {"y", Strs({"p"})}}));
  AppendTfRecord(&bytes, Ex({{"x", Floats({2.5f})}, {"y", Strs({"q"})}}));
  AppendTfRecord(&bytes, Ex({{"x", Ints({3})}, {"y", Ints({7})}}));
  {
    auto source = TfRecordSource::FromMemory(bytes, "mem", {});
    BadRowSink sink(BadRowPolicy::kError);
    ReadAll r = ReadSource(**source, &sink);
    ASSERT_TRUE(r.status.ok()) << r.status;
    // Nothing is dropped: INT and FLOAT meet as FLOAT, numbers among strings as text.
    EXPECT_THAT(Describe(r.batches[0]),
                ElementsAre("x:FLOAT [1] [2.5] [3]", "y:STRING ['p'] ['q'] ['7']"));
  }
  {
    ReadOptions o;
    o.block_bytes = 1;  // one record per block: each block has its own type
    auto source = TfRecordSource::FromMemory(bytes, "mem", o);
    BadRowSink sink(BadRowPolicy::kError);
    ReadAll r = ReadSource(**source, &sink);
    ASSERT_TRUE(r.status.ok()) << r.status;
    ASSERT_EQ(r.batches.size(), 3u);
    EXPECT_THAT(Describe(r.batches[1]), ElementsAre("x:FLOAT [2.5]", "y:STRING ['q']"));
    EXPECT_THAT(Describe(r.batches[2]), ElementsAre("x:INT [3]", "y:INT [7]"));
  }
}

TEST(TfRecordSourceTest, TypeOverridesWidenAndRejectNarrowing) {
  std::string bytes;
  AppendTfRecord(&bytes, Ex({{"f", Ints({2, -3})}, {"s", Strs({"a"})}, {"i", NoKind()}}));
  AppendTfRecord(&bytes, Ex({{"f", Floats({0.5f})}}));
  AppendTfRecord(&bytes, Ex({{"s", Ints({1})}, {"f", Floats({0.1f})}}));  // read as text
  AppendTfRecord(&bytes, Ex({{"i", Floats({1})}}));  // FLOAT where INT is required
  ReadOptions o;
  o.type_overrides = {{"f", ValueType::kFloat}, {"s", ValueType::kString}, {"i", ValueType::kInt}};
  auto source = TfRecordSource::FromMemory(bytes, "mem", o);
  BadRowSink sink(BadRowPolicy::kSkip);
  ReadAll r = ReadSource(**source, &sink);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.batches[0].num_rows, 3u);
  const Column& s_col = r.batches[0].columns[r.batches[0].FindColumn("s")];
  EXPECT_EQ(s_col.str(1), "1");
  std::vector<BadRow> bad = sink.samples();
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].line, 3u);
  EXPECT_THAT(bad[0].message,
              HasSubstr("feature 'i' holds FLOAT values but its type is set to INT"));
}

// Hand-encoded: Example{features{feature{key: <key>, value{int64_list{value: [1]}}}}}.
std::string ExampleWithKey(char key) {
  return std::string("\x0a\x0c\x0a\x0a\x0a\x01", 6) + key +
         std::string("\x12\x05\x1a\x03\x0a\x01\x01", 7);
}

TEST(TfRecordSourceTest, FeatureNameThatIsNotUtf8IsBadRow) {
  std::string bytes;
  AppendTfRecord(&bytes, ExampleWithKey('k'));
  AppendTfRecord(&bytes, ExampleWithKey('\xff'));  // proto3 string keys must be UTF-8
  auto source = TfRecordSource::FromMemory(bytes, "mem", {});
  BadRowSink sink(BadRowPolicy::kSkip);
  ReadAll r = ReadSource(**source, &sink);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(Describe(r.batches[0]), std::vector<std::string>{"k:INT [1]"});
  ASSERT_EQ(sink.samples().size(), 1u);
  EXPECT_EQ(sink.samples()[0].line, 1u);
  EXPECT_EQ(sink.samples()[0].message, "record 1 at byte offset 30: not a parseable tf.Example");
}

TEST(TfRecordSourceTest, FramingCorruptionIsDataLossEvenWhenSkipping) {
  std::string bytes;
  AppendTfRecord(&bytes, Ex({{"a", Ints({1})}}));
  bytes[3] = 9;  // length byte: the length CRC no longer matches
  auto source = TfRecordSource::FromMemory(bytes, "mem.tfrecord", {});
  BadRowSink sink(BadRowPolicy::kSkip);
  ReadAll r = ReadSource(**source, &sink);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status.message(), HasSubstr("mem.tfrecord: record 0 at byte offset 0"));
  EXPECT_THAT(r.batches, IsEmpty());
  // It stays failed.
  RawBlock block;
  EXPECT_EQ((*source)->NextBlock(&block).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace kiln::data
