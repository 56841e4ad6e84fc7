#include "kiln/data/tfrecord.h"

#include <zlib.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/crc32c.h"
#include "kiln/base/str.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using Records = std::vector<std::string>;

// Reads every record; returns the records and the status that ended the read.
struct ReadResult {
  Records records;
  absl::Status status;
};

ReadResult ReadAllRecords(TFRecordReader& reader) {
  ReadResult r;
  std::string rec;
  for (;;) {
    absl::StatusOr<bool> more = reader.Next(&rec);
    if (!more.ok()) {
      r.status = more.status();
      return r;
    }
    if (!*more) return r;
    r.records.push_back(rec);
  }
}

ReadResult ReadMemory(std::string_view bytes, TFRecordReader::Options options = {}) {
  auto reader = TFRecordReader::FromMemory(bytes, "mem.tfrecord", options);
  if (!reader.ok()) return {{}, reader.status()};
  return ReadAllRecords(**reader);
}

ReadResult ReadPath(const std::string& path) {
  auto reader = TFRecordReader::Open(Env::Default(), path);
  if (!reader.ok()) return {{}, reader.status()};
  return ReadAllRecords(**reader);
}

std::string Frame(const Records& records) {
  std::string out;
  for (const auto& r : records) AppendTfRecord(&out, r);
  return out;
}

absl::Status WriteRecords(const std::string& path, const Records& records, bool gzip) {
  TFRecordWriter::Options o;
  o.gzip = gzip;
  KILN_ASSIGN_OR_RETURN(auto w, TFRecordWriter::Create(Env::Default(), path, o));
  for (const auto& r : records) KILN_RETURN_IF_ERROR(w->Write(r));
  return w->Close();
}

// Inflates a gzip file with zlib's gz* API, a path independent of the reader's.
std::string Gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr);
  std::string out;
  char buf[4096];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(n, 0);
  gzclose(f);
  return out;
}

const Records kSample = {"first", "", std::string("\0\x01\xff\x80", 4), std::string(1000, 'q'),
                         "last"};

TEST(TfRecordFramingTest, LayoutIsLengthCrcDataCrc) {
  std::string framed;
  AppendTfRecord(&framed, "abc");
  ASSERT_EQ(framed.size(), 12u + 3 + 4);
  EXPECT_EQ(framed.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(framed.substr(12, 3), "abc");
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(framed[at + i]);
    return v;
  };
  EXPECT_EQ(u32(8), crc32c::Mask(crc32c::Value(framed.data(), 8)));
  EXPECT_EQ(u32(15), crc32c::Mask(crc32c::Value("abc")));
}

TEST(TfRecordReaderTest, ReadsPlainRecordsWithIndexAndOffset) {
  std::string bytes = Frame({"ab", "", "xyz"});
  auto reader = TFRecordReader::FromMemory(bytes, "m", {});
  ASSERT_TRUE(reader.ok());
  EXPECT_FALSE((*reader)->compressed());
  std::string rec;
  ASSERT_EQ((*reader)->Next(&rec).value(), true);
  EXPECT_EQ(rec, "ab");
  EXPECT_EQ((*reader)->last_index(), 0u);
  EXPECT_EQ((*reader)->last_offset(), 0u);
  ASSERT_EQ((*reader)->Next(&rec).value(), true);
  EXPECT_EQ(rec, "");
  EXPECT_EQ((*reader)->last_index(), 1u);
  EXPECT_EQ((*reader)->last_offset(), 18u);
  ASSERT_EQ((*reader)->Next(&rec).value(), true);
  EXPECT_EQ(rec, "xyz");
  EXPECT_EQ((*reader)->last_index(), 2u);
  EXPECT_EQ((*reader)->last_offset(), 34u);
  EXPECT_EQ((*reader)->Next(&rec).value(), false);
  EXPECT_EQ((*reader)->Next(&rec).value(), false);  // stays at the end
}

TEST(TfRecordReaderTest, AppendNextAppends) {
  std::string bytes = Frame({"ab", "cd"});
  auto reader = TFRecordReader::FromMemory(bytes, "m", {});
  ASSERT_TRUE(reader.ok());
  std::string out = "x";
  ASSERT_TRUE((*reader)->AppendNext(&out).value());
  ASSERT_TRUE((*reader)->AppendNext(&out).value());
  EXPECT_EQ(out, "xabcd");
}

TEST(TfRecordReaderTest, EmptyInputHasNoRecords) {
  ReadResult r = ReadMemory("");
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_THAT(r.records, IsEmpty());

  testing::TempDir dir;
  std::string path = dir.Write("empty.tfrecord", "");
  r = ReadPath(path);
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_THAT(r.records, IsEmpty());
}

TEST(TfRecordReaderTest, MissingFileIsNotFound) {
  testing::TempDir dir;
  ReadResult r = ReadPath(dir.File("nope.tfrecord"));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status.message(), HasSubstr("nope.tfrecord"));
}

TEST(TfRecordWriterTest, PlainRoundTripAndExactBytes) {
  testing::TempDir dir;
  std::string path = dir.File("a.tfrecord");
  ASSERT_TRUE(WriteRecords(path, kSample, false).ok());
  EXPECT_EQ(testing::ReadAll(path), Frame(kSample));
  ReadResult r = ReadPath(path);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.records, kSample);
}

TEST(TfRecordWriterTest, GzipRoundTrip) {
  testing::TempDir dir;
  std::string path = dir.File("a.tfrecord.gz");
  ASSERT_TRUE(WriteRecords(path, kSample, true).ok());
  std::string raw = testing::ReadAll(path);
  ASSERT_GE(raw.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(raw[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(raw[1]), 0x8b);
  // zlib's own gz reader sees exactly the plain framing.
  EXPECT_EQ(Gunzip(path), Frame(kSample));

  auto reader = TFRecordReader::Open(Env::Default(), path);
  ASSERT_TRUE(reader.ok());
  EXPECT_TRUE((*reader)->compressed());
  ReadResult r = ReadAllRecords(**reader);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.records, kSample);
  // Detection is by content, not name.
  r = ReadMemory(raw);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.records, kSample);
}

TEST(TfRecordWriterTest, GzipWithNoRecordsReadsAsEmpty) {
  testing::TempDir dir;
  std::string path = dir.File("empty.tfrecord.gz");
  ASSERT_TRUE(WriteRecords(path, {}, true).ok());
  EXPECT_GT(testing::ReadAll(path).size(), 0u);
  ReadResult r = ReadPath(path);
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_THAT(r.records, IsEmpty());
}

TEST(TfRecordReaderTest, ConcatenatedGzipMembersReadAsOneStream) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteRecords(dir.File("a.gz"), {"one", "two"}, true).ok());
  ASSERT_TRUE(WriteRecords(dir.File("b.gz"), {"three"}, true).ok());
  std::string both = testing::ReadAll(dir.File("a.gz")) + testing::ReadAll(dir.File("b.gz"));
  ReadResult r = ReadMemory(both);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_THAT(r.records, ElementsAre("one", "two", "three"));
}

TEST(TfRecordWriterTest, TenMegabyteRecordRoundTrips) {
  std::string big(10 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) ^ (i >> 9));
  testing::TempDir dir;
  for (bool gzip : {false, true}) {
    std::string path = dir.File(gzip ? "big.tfrecord.gz" : "big.tfrecord");
    ASSERT_TRUE(WriteRecords(path, {"before", big, "after"}, gzip).ok());
    ReadResult r = ReadPath(path);
    ASSERT_TRUE(r.status.ok()) << r.status;
    ASSERT_EQ(r.records.size(), 3u);
    EXPECT_EQ(r.records[0], "before");
    EXPECT_TRUE(r.records[1] == big) << "gzip=" << gzip;
    EXPECT_EQ(r.records[2], "after");
  }
}

TEST(TfRecordWriterTest, NothingAppearsUntilClose) {
  testing::TempDir dir;
  std::string path = dir.File("a.tfrecord");
  {
    auto w = TFRecordWriter::Create(Env::Default(), path);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("x").ok());
    EXPECT_FALSE(Env::Default()->FileExists(path));
  }  // destroyed unclosed: discarded
  EXPECT_FALSE(Env::Default()->FileExists(path));
  EXPECT_THAT(Env::Default()->ListDir(dir.path()).value(), IsEmpty());
}

TEST(TfRecordWriterTest, WriteAfterCloseFails) {
  testing::TempDir dir;
  auto w = TFRecordWriter::Create(Env::Default(), dir.File("a.tfrecord"));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("x").ok());
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_TRUE((*w)->Close().ok());
  EXPECT_EQ((*w)->Write("y").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*w)->records_written(), 1u);
}

// --- corruption: three records "alpha" (offset 0), "bravo!" (21), "charlie" (43).

const Records kThree = {"alpha", "bravo!", "charlie"};
constexpr size_t kOff1 = 21, kOff2 = 43;

void ExpectDataLossAt(const ReadResult& r, size_t good_records, uint64_t index, uint64_t offset,
                      std::string_view what) {
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss) << r.status;
  EXPECT_EQ(r.records.size(), good_records);
  EXPECT_THAT(r.status.message(), HasSubstr("mem.tfrecord"));
  EXPECT_THAT(r.status.message(),
              HasSubstr(kiln::StrCat("record ", index, " at byte offset ", offset)));
  EXPECT_THAT(r.status.message(), HasSubstr(what));
}

TEST(TfRecordCorruptionTest, OffsetsOfSampleAreAsAssumed) {
  std::string bytes = Frame(kThree);
  ASSERT_EQ(bytes.size(), kOff2 + 12 + 7 + 4);
  auto reader = TFRecordReader::FromMemory(bytes, "m", {});
  std::string rec;
  ASSERT_TRUE((*reader)->Next(&rec).value());
  ASSERT_TRUE((*reader)->Next(&rec).value());
  EXPECT_EQ((*reader)->last_offset(), kOff1);
  ASSERT_TRUE((*reader)->Next(&rec).value());
  EXPECT_EQ((*reader)->last_offset(), kOff2);
}

TEST(TfRecordCorruptionTest, TruncatedHeader) {
  std::string bytes = Frame(kThree).substr(0, kOff2 + 5);
  ExpectDataLossAt(ReadMemory(bytes), 2, 2, kOff2, "truncated record header (5 of 12 bytes)");
}

TEST(TfRecordCorruptionTest, TruncatedData) {
  std::string bytes = Frame(kThree).substr(0, kOff2 + 12 + 3);
  ExpectDataLossAt(ReadMemory(bytes), 2, 2, kOff2, "truncated record data (3 of 7 bytes)");
}

TEST(TfRecordCorruptionTest, TruncatedDataCrc) {
  std::string full = Frame(kThree);
  std::string bytes = full.substr(0, full.size() - 1);
  ExpectDataLossAt(ReadMemory(bytes), 2, 2, kOff2, "truncated record data CRC (3 of 4 bytes)");
}

TEST(TfRecordCorruptionTest, BadLengthCrc) {
  std::string bytes = Frame(kThree);
  bytes[kOff1 + 9] ^= 0x10;
  ExpectDataLossAt(ReadMemory(bytes), 1, 1, kOff1, "length fails its CRC check");
}

TEST(TfRecordCorruptionTest, FlippedLengthIsCaughtByLengthCrc) {
  std::string bytes = Frame(kThree);
  bytes[kOff1 + 0] = 100;  // length 6 -> 100
  ExpectDataLossAt(ReadMemory(bytes), 1, 1, kOff1, "length fails its CRC check");
}

TEST(TfRecordCorruptionTest, BadDataCrc) {
  std::string bytes = Frame(kThree);
  bytes[kOff1 + 12 + 2] = 'A';  // "bravo!" -> "brAvo!"
  ExpectDataLossAt(ReadMemory(bytes), 1, 1, kOff1, "data fails its CRC check");
}

TEST(TfRecordCorruptionTest, HugeLengthWithValidCrcIsRefusedNotAllocated) {
  std::string bytes = Frame({"alpha"});
  char header[12];
  const uint64_t huge = uint64_t{1} << 40;
  for (int i = 0; i < 8; ++i) header[i] = static_cast<char>((huge >> (8 * i)) & 0xff);
  const uint32_t crc = crc32c::Mask(crc32c::Value(header, 8));
  for (int i = 0; i < 4; ++i) header[8 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  bytes.append(header, 12);
  bytes.append("tail");
  ExpectDataLossAt(ReadMemory(bytes), 1, 1, 21,
                   "record length 1099511627776 exceeds the limit of 268435456 bytes");
}

TEST(TfRecordCorruptionTest, LengthCapIsConfigurable) {
  TFRecordReader::Options o;
  o.max_record_bytes = 6;
  ExpectDataLossAt(ReadMemory(Frame(kThree), o), 2, 2, kOff2,
                   "record length 7 exceeds the limit of 6 bytes");
}

TEST(TfRecordCorruptionTest, CorruptFileNamesThePath) {
  testing::TempDir dir;
  std::string bytes = Frame(kThree);
  bytes[kOff1 + 12] ^= 1;
  std::string path = dir.Write("bad.tfrecord", bytes);
  ReadResult r = ReadPath(path);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(r.records.size(), 1u);
  EXPECT_THAT(r.status.message(), HasSubstr(path + ": record 1 at byte offset 21"));
}

std::string GzipOf(const Records& records) {
  testing::TempDir dir;
  std::string path = dir.File("x.gz");
  EXPECT_TRUE(WriteRecords(path, records, true).ok());
  return testing::ReadAll(path);
}

TEST(TfRecordCorruptionTest, TruncatedGzip) {
  std::string gz = GzipOf(kThree);
  ReadResult r = ReadMemory(gz.substr(0, gz.size() - 6));  // cut into the trailer
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss) << r.status;
  EXPECT_THAT(r.status.message(), HasSubstr("(uncompressed)"));
  EXPECT_THAT(r.status.message(), HasSubstr("gzip stream is truncated"));
}

TEST(TfRecordCorruptionTest, GzipMagicOnly) {
  ReadResult r = ReadMemory("\x1f\x8b");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss) << r.status;
  EXPECT_THAT(r.status.message(), HasSubstr("mem.tfrecord: record 0 at byte offset 0"));
}

TEST(TfRecordCorruptionTest, DamagedGzipTrailerIsDataLoss) {
  std::string gz = GzipOf(kThree);
  gz[gz.size() - 8] ^= 0x01;  // the CRC-32 of the gzip trailer
  ReadResult r = ReadMemory(gz);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss) << r.status;
  EXPECT_THAT(r.status.message(), HasSubstr("gzip stream is damaged"));
  // The trailer is checked after the records came out; they passed their own CRCs.
  EXPECT_EQ(r.records, kThree);
  EXPECT_THAT(r.status.message(), HasSubstr("record 3 at byte offset 66 (uncompressed)"));
}

TEST(TfRecordCorruptionTest, GarbageInsideGzipIsDataLoss) {
  std::string gz = GzipOf(kThree);
  for (size_t i = 10; i < gz.size() - 8; ++i) gz[i] = static_cast<char>(0xff);
  ReadResult r = ReadMemory(gz);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss) << r.status;
  EXPECT_THAT(r.status.message(), HasSubstr("mem.tfrecord: record 0 at byte offset 0"));
}

TEST(TfRecordCorruptionTest, TrailingBytesAfterGzipMemberAreDataLoss) {
  std::string gz = GzipOf(kThree) + "junk";
  ReadResult r = ReadMemory(gz);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss) << r.status;
  EXPECT_EQ(r.records, kThree);
}

}  // namespace
}  // namespace kiln::data
