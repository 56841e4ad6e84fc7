#include "kiln/data/dataset.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/sha256.h"
#include "kiln/base/str.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Forwards to the default Env but is a different object, so DatasetReader::Open takes its
// read-into-memory path instead of mmap.
class ForwardingEnv : public EnvWrapper {
 public:
  ForwardingEnv() : EnvWrapper(Env::Default()) {}
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& p) override {
    ++opened;
    return EnvWrapper::NewSequentialFile(p);
  }
  int opened = 0;
};

// Rows 0..n-1 of every kind of value: scalars, lists (also empty ones), missing values,
// empty strings, extreme numbers.
Batch MakeBatch(size_t n) {
  Batch b;
  b.num_rows = n;
  b.columns.resize(4);
  Column& i = b.columns[0];
  Column& f = b.columns[1];
  Column& s = b.columns[2];
  Column& l = b.columns[3];
  i.name = "i";
  i.type = ValueType::kInt;
  f.name = "f";
  f.type = ValueType::kFloat;
  s.name = "s";
  s.type = ValueType::kString;
  l.name = "l";
  l.type = ValueType::kInt;
  const double specials[] = {0.0,
                             -0.0,
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(),
                             std::numeric_limits<double>::quiet_NaN(),
                             1e-310,
                             3.25};
  for (size_t r = 0; r < n; ++r) {
    if (r % 7 == 3)
      i.AddMissing();
    else if (r % 11 == 0)
      i.AddInt(std::numeric_limits<int64_t>::min());
    else if (r % 13 == 0)
      i.AddInt(std::numeric_limits<int64_t>::max());
    else
      i.AddInt(static_cast<int64_t>(r) * 1000003 - 5);
    if (r % 5 == 4)
      f.AddMissing();
    else
      f.AddFloat(r < 7 ? specials[r] : r * 0.5);
    if (r % 9 == 1)
      s.AddMissing();
    else if (r % 4 == 0)
      s.AddString("");
    else
      s.AddString("row-" + std::to_string(r));
    // List column: r % 4 values; every 6th row missing (an empty list stays present).
    if (r % 6 == 5) {
      l.AddMissing();
    } else {
      uint32_t k = r % 4;
      for (uint32_t v = 0; v < k; ++v) l.ints.push_back(static_cast<int64_t>(r * 10 + v));
      l.EndRow(k);
    }
  }
  return b;
}

TableSchema SchemaOf(const Batch& b) {
  TableSchema s;
  for (const Column& c : b.columns) s.push_back({c.name, c.type});
  return s;
}

// Appends all rows of `from` to `to` (same schema, by position).
void AppendBatch(const Batch& from, Batch* to) {
  if (to->columns.empty()) {
    for (const Column& c : from.columns) {
      to->columns.emplace_back();
      to->columns.back().name = c.name;
      to->columns.back().type = c.type;
    }
  }
  ASSERT_EQ(to->columns.size(), from.columns.size());
  for (size_t c = 0; c < from.columns.size(); ++c) {
    for (size_t r = 0; r < from.num_rows; ++r) to->columns[c].AppendRowFrom(from.columns[c], r);
  }
  to->num_rows += from.num_rows;
}

// Compares by column name; floats by bit pattern so NaN and -0.0 count.
void ExpectSameRows(const Batch& want, const Batch& got) {
  ASSERT_EQ(want.num_rows, got.num_rows);
  for (const Column& w : want.columns) {
    int gi = got.FindColumn(w.name);
    ASSERT_GE(gi, 0) << w.name;
    const Column& g = got.columns[gi];
    ASSERT_EQ(w.type, g.type) << w.name;
    EXPECT_EQ(w.present, g.present) << w.name;
    EXPECT_EQ(w.offsets, g.offsets) << w.name;
    EXPECT_EQ(w.ints, g.ints) << w.name;
    ASSERT_EQ(w.floats.size(), g.floats.size()) << w.name;
    for (size_t i = 0; i < w.floats.size(); ++i) {
      EXPECT_EQ(std::bit_cast<uint64_t>(w.floats[i]), std::bit_cast<uint64_t>(g.floats[i]))
          << w.name << " value " << i;
    }
    EXPECT_EQ(w.str_offsets, g.str_offsets) << w.name;
    EXPECT_TRUE(w.str_data == g.str_data) << w.name;
  }
}

absl::StatusOr<Batch> ReadAllRandom(const DatasetReader& r) {
  Batch all, chunk;
  for (size_t i = 0; i < r.num_chunks(); ++i) {
    KILN_RETURN_IF_ERROR(r.ReadChunk(i, &chunk));
    AppendBatch(chunk, &all);
  }
  return all;
}

absl::StatusOr<Batch> ReadAllStream(std::unique_ptr<BlockSource> source) {
  BadRowSink bad(BadRowPolicy::kError);
  BatchReader reader(std::move(source), &bad);
  Batch all, chunk;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool more, reader.Next(&chunk));
    if (!more) break;
    AppendBatch(chunk, &all);
  }
  return all;
}

std::string WriteDataset(const std::string& path, const Batch& batch,
                         const DatasetWriterOptions& options = {}) {
  auto w = DatasetWriter::Create(Env::Default(), path, SchemaOf(batch), options);
  EXPECT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE((*w)->Append(batch).ok());
  EXPECT_TRUE((*w)->Finish().ok());
  return path;
}

TEST(DatasetTest, RoundTripsEveryKindOfValueThroughBothReaders) {
  testing::TempDir dir;
  Batch batch = MakeBatch(1000);
  DatasetWriterOptions opt;
  opt.max_chunk_rows = 64;
  std::string path = WriteDataset(dir.File("d.kds"), batch, opt);

  auto reader = DatasetReader::Open(Env::Default(), path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->num_rows(), 1000u);
  EXPECT_EQ((*reader)->num_chunks(), 16u);  // 15 x 64 + 40
  EXPECT_EQ((*reader)->chunk(15).rows, 40u);
  EXPECT_EQ((*reader)->chunk(15).first_row, 960u);
  EXPECT_EQ((*reader)->format_version(), kDatasetFormatVersion);
  EXPECT_EQ((*reader)->schema(), SchemaOf(batch));
  auto random = ReadAllRandom(**reader);
  ASSERT_TRUE(random.ok()) << random.status();
  ExpectSameRows(batch, *random);

  auto source = OpenDatasetFiles(Env::Default(), {path}, {});
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ((*source)->KnownSchema(), SchemaOf(batch));
  auto streamed = ReadAllStream(std::move(*source));
  ASSERT_TRUE(streamed.ok()) << streamed.status();
  ExpectSameRows(batch, *streamed);
}

TEST(DatasetTest, NonDefaultEnvReadsThroughTheEnv) {
  testing::TempDir dir;
  Batch batch = MakeBatch(100);
  std::string path = WriteDataset(dir.File("d.kds"), batch);
  ForwardingEnv env;
  auto reader = DatasetReader::Open(&env, path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ(env.opened, 1);
  auto rows = ReadAllRandom(**reader);
  ASSERT_TRUE(rows.ok());
  ExpectSameRows(batch, *rows);
}

TEST(DatasetTest, BatchColumnsAreMatchedByNameAndAbsentOnesAreMissing) {
  testing::TempDir dir;
  TableSchema schema = {
      {"b", ValueType::kString}, {"a", ValueType::kInt}, {"gone", ValueType::kFloat}};
  auto w = DatasetWriter::Create(Env::Default(), dir.File("d.kds"), schema);
  ASSERT_TRUE(w.ok());
  Batch batch;
  batch.num_rows = 2;
  batch.columns.resize(2);
  batch.columns[0].name = "a";
  batch.columns[0].AddInt(1);
  batch.columns[0].AddInt(2);
  batch.columns[1].name = "b";
  batch.columns[1].type = ValueType::kString;
  batch.columns[1].AddString("x");
  batch.columns[1].AddMissing();
  ASSERT_TRUE((*w)->Append(batch).ok());
  ASSERT_TRUE((*w)->Finish().ok());

  auto r = DatasetReader::Open(Env::Default(), dir.File("d.kds"));
  ASSERT_TRUE(r.ok());
  Batch got;
  ASSERT_TRUE((*r)->ReadChunk(0, &got).ok());
  ASSERT_EQ(got.columns.size(), 3u);
  EXPECT_EQ(got.columns[0].name, "b");
  EXPECT_EQ(got.columns[0].str(0), "x");
  EXPECT_THAT(got.columns[0].present, ElementsAre(1, 0));
  EXPECT_THAT(got.columns[1].ints, ElementsAre(1, 2));
  EXPECT_THAT(got.columns[2].present, ElementsAre(0, 0));
  EXPECT_EQ(got.source, dir.File("d.kds"));
}

TEST(DatasetTest, MegabyteStringsCutChunksBySize) {
  testing::TempDir dir;
  Batch batch;
  batch.num_rows = 10;
  batch.columns.resize(1);
  batch.columns[0].name = "blob";
  batch.columns[0].type = ValueType::kString;
  for (int r = 0; r < 10; ++r) {
    std::string s(1 << 20, static_cast<char>('a' + r));
    s[r] = '!';
    batch.columns[0].AddString(s);
  }
  std::string path = WriteDataset(dir.File("big.kds"), batch);  // 4 MiB chunks
  auto r = DatasetReader::Open(Env::Default(), path);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ((*r)->num_chunks(), 3u);
  EXPECT_EQ((*r)->chunk(0).rows, 4u);
  EXPECT_EQ((*r)->chunk(1).rows, 4u);
  EXPECT_EQ((*r)->chunk(2).rows, 2u);
  auto rows = ReadAllRandom(**r);
  ASSERT_TRUE(rows.ok());
  ExpectSameRows(batch, *rows);
}

TEST(DatasetTest, ZeroRowDatasetKeepsItsSchema) {
  testing::TempDir dir;
  TableSchema schema = {{"x", ValueType::kFloat}, {"y", ValueType::kString}};
  auto w = DatasetWriter::Create(Env::Default(), dir.File("empty.kds"), schema);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Finish().ok());
  auto r = DatasetReader::Open(Env::Default(), dir.File("empty.kds"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->num_rows(), 0u);
  EXPECT_EQ((*r)->num_chunks(), 0u);
  EXPECT_EQ((*r)->schema(), schema);
  auto source = OpenDatasetFiles(Env::Default(), {dir.File("empty.kds")}, {});
  ASSERT_TRUE(source.ok());
  EXPECT_EQ((*source)->KnownSchema(), schema);
  RawBlock block;
  auto more = (*source)->NextBlock(&block);
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_FALSE(*more);
}

TEST(DatasetTest, ZeroColumnRowsAreCounted) {
  testing::TempDir dir;
  auto w = DatasetWriter::Create(Env::Default(), dir.File("d.kds"), {});
  ASSERT_TRUE(w.ok());
  Batch batch;
  batch.num_rows = 5;
  ASSERT_TRUE((*w)->Append(batch).ok());
  ASSERT_TRUE((*w)->Finish().ok());
  auto r = DatasetReader::Open(Env::Default(), dir.File("d.kds"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->num_rows(), 5u);
  Batch got;
  ASSERT_TRUE((*r)->ReadChunk(0, &got).ok());
  EXPECT_EQ(got.num_rows, 5u);
  EXPECT_THAT(got.columns, IsEmpty());
}

TEST(DatasetTest, WriterRejectsBadBatchesWithoutTakingRows) {
  testing::TempDir dir;
  auto w = DatasetWriter::Create(Env::Default(), dir.File("d.kds"), {{"a", ValueType::kInt}});
  ASSERT_TRUE(w.ok());
  Batch wrong_type;
  wrong_type.num_rows = 1;
  wrong_type.columns.resize(1);
  wrong_type.columns[0].name = "a";
  wrong_type.columns[0].type = ValueType::kFloat;
  wrong_type.columns[0].AddFloat(1.5);
  absl::Status s = (*w)->Append(wrong_type);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("column 'a' has type FLOAT, the dataset schema says INT"));

  Batch unknown;
  unknown.num_rows = 1;
  unknown.columns.resize(1);
  unknown.columns[0].name = "zzz";
  unknown.columns[0].AddInt(1);
  s = (*w)->Append(unknown);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'zzz' is not in the dataset schema"));

  Batch ragged;
  ragged.num_rows = 2;
  ragged.columns.resize(1);
  ragged.columns[0].name = "a";
  ragged.columns[0].AddInt(1);
  s = (*w)->Append(ragged);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("has 1 rows, the batch 2"));

  // The writer is still usable and holds none of the rejected rows.
  EXPECT_EQ((*w)->num_rows(), 0u);
  Batch good;
  good.num_rows = 1;
  good.columns.resize(1);
  good.columns[0].name = "a";
  good.columns[0].AddInt(7);
  ASSERT_TRUE((*w)->Append(good).ok());
  ASSERT_TRUE((*w)->Finish().ok());
  EXPECT_EQ((*w)->Finish().code(), absl::StatusCode::kFailedPrecondition);
  auto r = DatasetReader::Open(Env::Default(), dir.File("d.kds"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->num_rows(), 1u);
}

TEST(DatasetTest, CreateRejectsDuplicateColumnsAndBadOptions) {
  testing::TempDir dir;
  auto w = DatasetWriter::Create(Env::Default(), dir.File("d.kds"),
                                 {{"a", ValueType::kInt}, {"a", ValueType::kFloat}});
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
  DatasetWriterOptions opt;
  opt.max_chunk_rows = 0;
  w = DatasetWriter::Create(Env::Default(), dir.File("d.kds"), {}, opt);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
  opt = {};
  opt.zstd_level = 1000;
  w = DatasetWriter::Create(Env::Default(), dir.File("d.kds"), {}, opt);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Env::Default()->FileExists(dir.File("d.kds")));
}

TEST(DatasetTest, UnfinishedWriterLeavesNoFile) {
  testing::TempDir dir;
  {
    auto w = DatasetWriter::Create(Env::Default(), dir.File("d.kds"), SchemaOf(MakeBatch(1)));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(MakeBatch(200000)).ok());  // several chunks already written
    EXPECT_GT((*w)->num_chunks(), 0u);
  }
  auto entries = Env::Default()->ListDir(dir.path());
  ASSERT_TRUE(entries.ok());
  EXPECT_THAT(*entries, IsEmpty());
}

TEST(DatasetTest, SameRowsGiveTheSameBytes) {
  testing::TempDir dir;
  Batch batch = MakeBatch(5000);
  auto w1 = DatasetWriter::Create(Env::Default(), dir.File("a.kds"), SchemaOf(batch));
  auto w2 = DatasetWriter::Create(Env::Default(), dir.File("b.kds"), SchemaOf(batch));
  ASSERT_TRUE(w1.ok() && w2.ok());
  ASSERT_TRUE((*w1)->Append(batch).ok());
  ASSERT_TRUE((*w1)->Finish().ok());
  // Same rows in two batches: chunking depends on rows, not on how they arrived.
  std::vector<uint32_t> first, second;
  for (uint32_t r = 0; r < 5000; ++r) (r < 1234 ? first : second).push_back(r);
  ASSERT_TRUE((*w2)->AppendRows(batch, first).ok());
  ASSERT_TRUE((*w2)->AppendRows(batch, second).ok());
  ASSERT_TRUE((*w2)->Finish().ok());
  std::string a = testing::ReadAll(dir.File("a.kds"));
  EXPECT_TRUE(a == testing::ReadAll(dir.File("b.kds")));
  EXPECT_EQ((*w1)->sha256(), Sha256Hex(a));
  EXPECT_EQ((*w1)->sha256(), (*w2)->sha256());
  EXPECT_EQ((*w1)->file_bytes(), a.size());
}

// ---- Corruption -------------------------------------------------------------------------

class CorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DatasetWriterOptions opt;
    opt.max_chunk_rows = 100;
    path_ = WriteDataset(dir_.File("d.kds"), MakeBatch(300), opt);
    bytes_ = testing::ReadAll(path_);
    auto r = DatasetReader::OpenBuffer("x", bytes_);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ((*r)->num_chunks(), 3u);
    chunk1_ = (*r)->chunk(1).offset;
    chunk2_ = (*r)->chunk(2).offset;
  }
  void Save(const std::string& bytes) { dir_.Write("d.kds", bytes); }
  absl::Status OpenStatus() { return DatasetReader::Open(Env::Default(), path_).status(); }
  // Streams the whole file; returns the first error.
  absl::Status StreamStatus() {
    auto source = OpenDatasetFiles(Env::Default(), {path_}, {});
    if (!source.ok()) return source.status();
    return ReadAllStream(std::move(*source)).status();
  }

  testing::TempDir dir_;
  std::string path_, bytes_;
  uint64_t chunk1_ = 0, chunk2_ = 0;
};

TEST_F(CorruptionTest, FlippedPayloadByteIsDataLossNamingTheChunk) {
  std::string b = bytes_;
  b[chunk1_ + 40] ^= 0x10;  // inside chunk 1's compressed payload
  Save(b);
  auto r = DatasetReader::Open(Env::Default(), path_);
  ASSERT_TRUE(r.ok()) << r.status();  // headers are intact
  Batch batch;
  EXPECT_TRUE((*r)->ReadChunk(0, &batch).ok());
  absl::Status s = (*r)->ReadChunk(1, &batch);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(kiln::StrCat(path_, ": chunk 1 at offset ", chunk1_,
                                                  ": chunk CRC mismatch")));
  EXPECT_TRUE((*r)->ReadChunk(2, &batch).ok());

  s = StreamStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(kiln::StrCat(path_, ": chunk at offset ", chunk1_,
                                                  " (rows from 100): chunk CRC mismatch")));
}

TEST_F(CorruptionTest, FlippedChunkHeaderIsCaughtAtOpen) {
  std::string b = bytes_;
  b[chunk2_ + 4] ^= 0x01;  // chunk 2's row count
  Save(b);
  absl::Status s = OpenStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(kiln::StrCat("chunk 2 at offset ", chunk2_,
                                                  ": chunk header CRC mismatch")));
  s = StreamStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("chunk header CRC mismatch"));
}

TEST_F(CorruptionTest, FlippedFooterByteIsDataLoss) {
  std::string b = bytes_;
  b[b.size() - 30] ^= 0x01;  // last byte of the footer's chunk table
  Save(b);
  absl::Status s = OpenStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("footer at offset"));
  EXPECT_THAT(s.message(), HasSubstr("CRC mismatch"));
  EXPECT_EQ(StreamStatus().code(), absl::StatusCode::kDataLoss);
}

TEST_F(CorruptionTest, TruncatedFileIsDataLoss) {
  for (size_t keep : {bytes_.size() - 1, bytes_.size() - 30, size_t(chunk2_ + 10), size_t(chunk1_),
                      size_t(25), size_t(10), size_t(0)}) {
    Save(bytes_.substr(0, keep));
    absl::Status s = OpenStatus();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << keep << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr(path_)) << keep;
    s = StreamStatus();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << keep << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr("truncated")) << keep << ": " << s;
  }
}

TEST_F(CorruptionTest, BadMagicIsDataLoss) {
  std::string b = bytes_;
  b[1] = 'X';
  Save(b);
  absl::Status s = OpenStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("not a kiln dataset file (bad magic"));
  s = StreamStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("bad magic"));

  Save("a,b\n1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n13,14\n15,16\n");  // a CSV, not a dataset
  EXPECT_THAT(OpenStatus().message(), HasSubstr("not a kiln dataset file"));
}

TEST_F(CorruptionTest, NewerFormatVersionIsFailedPrecondition) {
  std::string b = bytes_;
  b[8] = 2;              // header version
  b[b.size() - 12] = 2;  // trailer version
  Save(b);
  absl::Status s = OpenStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(path_));
  EXPECT_THAT(s.message(), HasSubstr("format version 2, newer than this kiln reads (1)"));
  s = StreamStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CorruptionTest, ReadChunkOutOfRange) {
  auto r = DatasetReader::OpenBuffer("x", bytes_);
  ASSERT_TRUE(r.ok());
  Batch b;
  EXPECT_EQ((*r)->ReadChunk(3, &b).code(), absl::StatusCode::kOutOfRange);
}

// ---- Type overrides --------------------------------------------------------------------

TEST(DatasetTest, OverridesWidenColumnsAndRefuseNarrowing) {
  testing::TempDir dir;
  Batch batch;
  batch.num_rows = 3;
  batch.columns.resize(2);
  batch.columns[0].name = "n";
  batch.columns[0].AddInt(-4);
  batch.columns[0].AddMissing();
  batch.columns[0].AddInt(12);
  batch.columns[1].name = "x";
  batch.columns[1].type = ValueType::kFloat;
  batch.columns[1].AddFloat(0.1);
  batch.columns[1].AddFloat(2);
  batch.columns[1].AddMissing();
  std::string path = WriteDataset(dir.File("d.kds"), batch);

  ReadOptions widen;
  widen.type_overrides = {
      {"n", ValueType::kFloat}, {"x", ValueType::kString}, {"not_there", ValueType::kInt}};
  auto source = OpenDatasetFiles(Env::Default(), {path}, widen);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ((*source)->KnownSchema(),
            (TableSchema{{"n", ValueType::kFloat}, {"x", ValueType::kString}}));
  auto rows = ReadAllStream(std::move(*source));
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->columns[0].type, ValueType::kFloat);
  EXPECT_THAT(rows->columns[0].floats, ElementsAre(-4.0, 12.0));
  EXPECT_THAT(rows->columns[0].present, ElementsAre(1, 0, 1));
  EXPECT_EQ(rows->columns[1].str(0), "0.1");
  EXPECT_EQ(rows->columns[1].str(1), "2");
  EXPECT_THAT(rows->columns[1].present, ElementsAre(1, 1, 0));

  ReadOptions to_string;
  to_string.type_overrides = {{"n", ValueType::kString}};
  rows = ReadAllStream(*OpenDatasetFiles(Env::Default(), {path}, to_string));
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->columns[0].str(0), "-4");
  EXPECT_EQ(rows->columns[0].str(1), "12");

  ReadOptions narrow;
  narrow.type_overrides = {{"x", ValueType::kInt}};
  auto bad = OpenDatasetFiles(Env::Default(), {path}, narrow);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(),
              HasSubstr("column 'x' is stored as FLOAT and cannot be read as INT"));
}

// ---- Streams over several files and dataset directories -----------------------------

TEST(DatasetTest, StreamsSeveralFilesInOrderAndRejectsMixedSchemas) {
  testing::TempDir dir;
  Batch a = MakeBatch(10), b = MakeBatch(30);
  WriteDataset(dir.File("a.kds"), a);
  WriteDataset(dir.File("b.kds"), b);
  auto rows =
      ReadAllStream(*OpenDatasetFiles(Env::Default(), {dir.File("a.kds"), dir.File("b.kds")}, {}));
  ASSERT_TRUE(rows.ok()) << rows.status();
  Batch want;
  AppendBatch(a, &want);
  AppendBatch(b, &want);
  ExpectSameRows(want, *rows);

  Batch other;
  other.num_rows = 1;
  other.columns.resize(1);
  other.columns[0].name = "q";
  other.columns[0].AddInt(1);
  WriteDataset(dir.File("c.kds"), other);
  auto source = OpenDatasetFiles(Env::Default(), {dir.File("a.kds"), dir.File("c.kds")}, {});
  ASSERT_TRUE(source.ok());
  absl::Status s = ReadAllStream(std::move(*source)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(dir.File("c.kds") + ": schema (q:INT) differs"));
}

TEST(DatasetTest, StreamOverAnOpenFile) {
  testing::TempDir dir;
  Batch batch = MakeBatch(50);
  std::string path = WriteDataset(dir.File("d.kds"), batch);
  auto file = Env::Default()->NewSequentialFile(path);
  ASSERT_TRUE(file.ok());
  auto source = OpenDatasetStream("stdin", std::move(*file), {});
  ASSERT_TRUE(source.ok()) << source.status();
  auto rows = ReadAllStream(std::move(*source));
  ASSERT_TRUE(rows.ok()) << rows.status();
  ExpectSameRows(batch, *rows);
}

DatasetManifest SampleManifest() {
  DatasetManifest m;
  m.created = "2024-05-01T10:00:00Z";
  m.source_format = "csv";
  m.source_files = {"in/a.csv", "in/b.csv"};
  m.span = 7;
  m.schema = {{"a", ValueType::kInt}, {"b", ValueType::kString}};
  m.partition_feature = "b";
  m.splits = {{"train", 2, 10, "f1", {{"train/data-00000.kds", 10, 100, "s1"}}},
              {"eval", 1, 5, "f2", {{"eval/data-00000.kds", 5, 60, "s2"}}}};
  m.num_rows = 15;
  m.bad_rows = 2;
  m.fingerprint = "total";
  return m;
}

void ExpectSameManifest(const DatasetManifest& a, const DatasetManifest& b) {
  EXPECT_EQ(a.format_version, b.format_version);
  EXPECT_EQ(a.created, b.created);
  EXPECT_EQ(a.source_format, b.source_format);
  EXPECT_EQ(a.source_files, b.source_files);
  EXPECT_EQ(a.span, b.span);
  EXPECT_EQ(a.schema, b.schema);
  EXPECT_EQ(a.partition_feature, b.partition_feature);
  EXPECT_EQ(a.num_rows, b.num_rows);
  EXPECT_EQ(a.bad_rows, b.bad_rows);
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  ASSERT_EQ(a.splits.size(), b.splits.size());
  for (size_t i = 0; i < a.splits.size(); ++i) {
    EXPECT_EQ(a.splits[i].name, b.splits[i].name);
    EXPECT_EQ(a.splits[i].weight, b.splits[i].weight);
    EXPECT_EQ(a.splits[i].rows, b.splits[i].rows);
    EXPECT_EQ(a.splits[i].fingerprint, b.splits[i].fingerprint);
    ASSERT_EQ(a.splits[i].files.size(), b.splits[i].files.size());
    for (size_t f = 0; f < a.splits[i].files.size(); ++f) {
      EXPECT_EQ(a.splits[i].files[f].path, b.splits[i].files[f].path);
      EXPECT_EQ(a.splits[i].files[f].rows, b.splits[i].files[f].rows);
      EXPECT_EQ(a.splits[i].files[f].bytes, b.splits[i].files[f].bytes);
      EXPECT_EQ(a.splits[i].files[f].sha256, b.splits[i].files[f].sha256);
    }
  }
}

TEST(ManifestTest, JsonRoundTrip) {
  DatasetManifest m = SampleManifest();
  std::string json = ManifestToJson(m);
  EXPECT_THAT(json, HasSubstr("\"format\": \"kiln.dataset\""));
  EXPECT_THAT(json, HasSubstr("\"type\": \"STRING\""));
  auto back = ManifestFromJson(json, "m.json");
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameManifest(m, *back);
  EXPECT_EQ(back->FindSplit("eval")->rows, 5u);
  EXPECT_EQ(back->FindSplit("test"), nullptr);
}

TEST(ManifestTest, RejectsBadManifests) {
  auto s = ManifestFromJson("{not json", "m.json").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("m.json: malformed manifest"));

  s = ManifestFromJson(R"({"format": "something.else"})", "m.json").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);

  std::string json = ManifestToJson(SampleManifest());
  std::string newer = json;
  newer.replace(newer.find("\"format_version\": 1"), 19, "\"format_version\": 9");
  s = ManifestFromJson(newer, "m.json").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);

  std::string escape = json;
  escape.replace(escape.find("train/data-00000.kds"), 20, "../../../etc/passwd");
  s = ManifestFromJson(escape, "m.json").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("leaves the dataset directory"));

  std::string bad_type = json;
  bad_type.replace(bad_type.find("\"INT\""), 5, "\"BOOL\"");
  EXPECT_EQ(ManifestFromJson(bad_type, "m.json").status().code(), absl::StatusCode::kDataLoss);
}

TEST(ManifestTest, DirectoryWithoutManifestIsNotADataset) {
  testing::TempDir dir;
  auto m = ReadManifest(Env::Default(), dir.path());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(m.status().message(), HasSubstr("not a kiln dataset (no manifest.json)"));
  auto source = OpenDatasetSource(Env::Default(), dir.path(), "", {});
  EXPECT_EQ(source.status().code(), absl::StatusCode::kNotFound);
}

TEST(DatasetSourceTest, ReadsOneSplitOrAllInManifestOrder) {
  testing::TempDir dir;
  Batch train = MakeBatch(20), eval = MakeBatch(7);
  Env::Default()->CreateDirs(dir.File("train")).IgnoreError();
  Env::Default()->CreateDirs(dir.File("eval")).IgnoreError();
  WriteDataset(dir.File("train/data-00000.kds"), train);
  WriteDataset(dir.File("eval/data-00000.kds"), eval);
  DatasetManifest m = SampleManifest();
  m.schema = SchemaOf(train);
  // Manifest order (eval first) decides the order of an all-splits read.
  std::swap(m.splits[0], m.splits[1]);
  ASSERT_TRUE(
      WriteFileAtomically(Env::Default(), dir.File("manifest.json"), ManifestToJson(m)).ok());

  auto all = ReadAllStream(*OpenDatasetSource(Env::Default(), dir.path(), "", {}));
  ASSERT_TRUE(all.ok()) << all.status();
  Batch want;
  AppendBatch(eval, &want);
  AppendBatch(train, &want);
  ExpectSameRows(want, *all);

  auto only = OpenDatasetSource(Env::Default(), dir.path(), "train", {});
  ASSERT_TRUE(only.ok());
  EXPECT_EQ((*only)->KnownSchema(), SchemaOf(train));
  auto rows = ReadAllStream(std::move(*only));
  ASSERT_TRUE(rows.ok());
  ExpectSameRows(train, *rows);

  auto missing = OpenDatasetSource(Env::Default(), dir.path(), "test", {});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("no split 'test'; the dataset has: eval, train"));
}

}  // namespace
}  // namespace kiln::data
