#include "kiln/data/csv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>

#include "absl/strings/str_replace.h"
#include "kiln/base/env.h"
#include "kiln/base/str.h"
#include "kiln/data/input.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::data {
namespace {

using kiln::testing::TempDir;
using ::testing::HasSubstr;

// Reads every row of `path` serially into one merged batch (columns by name).
struct ReadResult {
  absl::Status status;
  std::vector<Batch> batches;
  uint64_t bad = 0;
  const Column* Col(const std::string& name, size_t b = 0) const {
    int i = batches.at(b).FindColumn(name);
    return i < 0 ? nullptr : &batches.at(b).columns[i];
  }
};

ReadResult ReadCsv(const std::string& path, ReadOptions opts = {}) {
  ReadResult r;
  BadRowSink bad(opts.bad_rows, opts.quarantine_path);
  auto source = OpenCsvSource(Env::Default(), {path}, opts);
  if (!source.ok()) {
    r.status = source.status();
    return r;
  }
  BatchReader reader(std::move(*source), &bad);
  for (;;) {
    Batch b;
    auto more = reader.Next(&b);
    if (!more.ok()) {
      r.status = more.status();
      break;
    }
    if (!*more) break;
    r.batches.push_back(std::move(b));
  }
  if (r.status.ok()) r.status = bad.Finish();
  r.bad = bad.count();
  return r;
}

std::string FirstValueTextOr(const Column& c, size_t row) {
  return c.is_present(row) ? FirstValueText(c, row) : "<missing>";
}

TEST(CsvTest, InfersIntFloatStringAndMissing) {
  TempDir dir;
  auto r = ReadCsv(dir.Write("a.csv", "i,f,s\n1,1.5,x\n,2,y\n-3,,\n"));
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.batches.size(), 1u);
  EXPECT_EQ(r.batches[0].num_rows, 3u);
  const Column* i = r.Col("i");
  EXPECT_EQ(i->type, ValueType::kInt);
  EXPECT_EQ(i->present, (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(i->ints, (std::vector<int64_t>{1, -3}));
  const Column* f = r.Col("f");
  EXPECT_EQ(f->type, ValueType::kFloat);
  EXPECT_EQ(f->floats, (std::vector<double>{1.5, 2.0}));
  const Column* s = r.Col("s");
  EXPECT_EQ(s->type, ValueType::kString);
  EXPECT_EQ(s->present, (std::vector<uint8_t>{1, 1, 0}));
  EXPECT_EQ(s->str(1), "y");
  EXPECT_EQ(r.batches[0].row_positions, (std::vector<uint64_t>{2, 3, 4}));
}

TEST(CsvTest, Rfc4180QuotingCrlfAndBom) {
  TempDir dir;
  std::string text =
      "\xEF\xBB\xBF"
      "name,note\r\n"
      "\"Smith, J\",\"said \"\"hi\"\"\"\r\n"
      "plain,\"two\r\nlines\"\r\n"
      "last,x";  // no final newline
  auto r = ReadCsv(dir.Write("q.csv", text));
  ASSERT_TRUE(r.status.ok()) << r.status;
  const Column* name = r.Col("name");
  ASSERT_NE(name, nullptr) << "BOM must not be part of the first column name";
  ASSERT_EQ(name->num_rows(), 3u);
  EXPECT_EQ(name->str(0), "Smith, J");
  const Column* note = r.Col("note");
  EXPECT_EQ(note->str(0), "said \"hi\"");
  EXPECT_EQ(note->str(1), "two\r\nlines");
  EXPECT_EQ(note->str(2), "x");
  // The third record starts on line 4 because the second spans two lines.
  EXPECT_EQ(r.batches[0].row_positions, (std::vector<uint64_t>{2, 3, 5}));
}

TEST(CsvTest, DelimiterAndNullTokens) {
  TempDir dir;
  ReadOptions opts;
  opts.delimiter = ';';
  opts.null_tokens = {"NA", "null"};
  auto r = ReadCsv(dir.Write("d.csv", "a;b\n1;NA\nnull;2.5\n"), opts);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.Col("a")->present, (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(r.Col("a")->type, ValueType::kInt);
  EXPECT_EQ(r.Col("b")->type, ValueType::kFloat);
  EXPECT_EQ(r.Col("b")->floats, (std::vector<double>{2.5}));
}

TEST(CsvTest, TsvDefaultsToTab) {
  TempDir dir;
  auto r = ReadCsv(dir.Write("t.tsv", "a\tb\n1\tx,y\n"));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.Col("b")->str(0), "x,y");
}

TEST(CsvTest, TypeOverrideMakesNumbersStrings) {
  TempDir dir;
  ReadOptions opts;
  opts.type_overrides = {{"zip", ValueType::kString}};
  auto r = ReadCsv(dir.Write("z.csv", "zip\n02134\n90210\n"), opts);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.Col("zip")->type, ValueType::kString);
  EXPECT_EQ(r.Col("zip")->str(0), "02134");
}

TEST(CsvTest, RaggedRowIsAnErrorNamingFileLineAndColumn) {
  TempDir dir;
  std::string path = dir.Write("r.csv", "a,b,c\n1,2,3\n4,5\n6,7,8\n");
  auto r = ReadCsv(path);
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status.message()), HasSubstr(path + ":3: column 3: expected 3 fields"));
}

TEST(CsvTest, BadRowsSkippedAreCountedAndQuarantinedAreWrittenAside) {
  TempDir dir;
  std::string path = dir.Write("r.csv", "a,b\n1,2\n3\n4,5,6\n7,8\n");
  ReadOptions skip;
  skip.bad_rows = BadRowPolicy::kSkip;
  auto r = ReadCsv(path, skip);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.bad, 2u);
  EXPECT_EQ(r.Col("a")->ints, (std::vector<int64_t>{1, 7}));

  ReadOptions q;
  q.bad_rows = BadRowPolicy::kQuarantine;
  q.quarantine_path = dir.File("bad.csv");
  r = ReadCsv(path, q);
  ASSERT_TRUE(r.status.ok()) << r.status;
  // The quarantine file reads back like the input: header first, rows in order.
  EXPECT_EQ(kiln::testing::ReadAll(dir.File("bad.csv")), "a,b\n3\n4,5,6\n");
  EXPECT_EQ(kiln::testing::ReadAll(dir.File("bad.csv.errors")),
            path + ":3: column 2: expected 2 fields as in the header, found 1\n" + path +
                ":4: column 3: expected 2 fields as in the header, found 3\n");
}

TEST(CsvTest, FirstErrorIsTheFirstBadLineWhateverTheColumn) {
  TempDir dir;
  ReadOptions opts;
  opts.type_overrides = {{"a", ValueType::kInt}, {"b", ValueType::kInt}};
  std::string path = dir.Write("o.csv", "a,b\n1,x\n2,3\nzz,4\n");
  auto r = ReadCsv(path, opts);
  ASSERT_FALSE(r.status.ok());
  EXPECT_THAT(std::string(r.status.message()), HasSubstr(path + ":2: column 2 ('b')"));
  opts.bad_rows = BadRowPolicy::kQuarantine;
  opts.quarantine_path = dir.File("q.csv");
  r = ReadCsv(path, opts);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(kiln::testing::ReadAll(dir.File("q.csv")), "a,b\n1,x\nzz,4\n");
}

TEST(CsvTest, ValueNotMatchingSchemaTypeIsABadRow) {
  TempDir dir;
  ReadOptions opts;
  opts.type_overrides = {{"age", ValueType::kInt}};
  std::string path = dir.Write("t.csv", "age,name\n31,a\nold,b\n");
  auto r = ReadCsv(path, opts);
  ASSERT_FALSE(r.status.ok());
  EXPECT_THAT(std::string(r.status.message()),
              HasSubstr(path + ":3: column 1 ('age'): 'old' is not an INT"));
}

TEST(CsvTest, UnterminatedQuoteIsReported) {
  TempDir dir;
  std::string path = dir.Write("u.csv", "a,b\n1,\"open\n2,3\n");
  auto r = ReadCsv(path);
  ASSERT_FALSE(r.status.ok());
  EXPECT_THAT(std::string(r.status.message()), HasSubstr(path + ":2: column 2: unterminated"));
}

TEST(CsvTest, CharacterAfterClosingQuoteIsReported) {
  TempDir dir;
  std::string path = dir.Write("c.csv", "a,b\n\"x\"y,1\n");
  auto r = ReadCsv(path);
  ASSERT_FALSE(r.status.ok());
  EXPECT_THAT(std::string(r.status.message()), HasSubstr(":2: column 1: unexpected character"));
}

TEST(CsvTest, EmptyFileIsAClearError) {
  TempDir dir;
  std::string path = dir.Write("e.csv", "");
  auto r = ReadCsv(path);
  ASSERT_FALSE(r.status.ok());
  EXPECT_THAT(std::string(r.status.message()), HasSubstr(path + ": empty file"));
}

TEST(CsvTest, HeaderOnlyFileHasNoRows) {
  TempDir dir;
  auto r = ReadCsv(dir.Write("h.csv", "a,b\n"));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.batches.empty());
}

TEST(CsvTest, DuplicateHeaderNameIsRejected) {
  TempDir dir;
  auto r = ReadCsv(dir.Write("h.csv", "a,b,a\n1,2,3\n"));
  ASSERT_FALSE(r.status.ok());
  EXPECT_THAT(std::string(r.status.message()), HasSubstr("column 3: duplicate column name 'a'"));
}

TEST(CsvTest, TenMegabyteFieldAcrossBlocks) {
  TempDir dir;
  std::string big(10 << 20, 'z');
  ReadOptions opts;
  opts.block_bytes = 1 << 20;  // the field is ten times a block
  auto r = ReadCsv(dir.Write("big.csv", "id,blob\n1,\"" + big + "\"\n2,small\n"), opts);
  ASSERT_TRUE(r.status.ok()) << r.status;
  size_t rows = 0;
  for (const auto& b : r.batches) rows += b.num_rows;
  EXPECT_EQ(rows, 2u);
  EXPECT_EQ(r.Col("blob")->str(0).size(), big.size());
}

TEST(CsvTest, InvalidUtf8IsKeptAsBytes) {
  TempDir dir;
  auto r = ReadCsv(dir.Write("u.csv", "s\n\xff\xfe\n"));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.Col("s")->str(0), "\xff\xfe");
}

TEST(CsvTest, BlankLinesAreSkippedAndLineNumbersStayRight) {
  TempDir dir;
  std::string path = dir.Write("b.csv", "a,b\n1,2\n\n3\n");
  auto r = ReadCsv(path);
  ASSERT_FALSE(r.status.ok());
  EXPECT_THAT(std::string(r.status.message()), HasSubstr(path + ":4:"));
}

TEST(CsvTest, MultipleFilesMustShareTheHeader) {
  TempDir dir;
  std::string a = dir.Write("a.csv", "x,y\n1,2\n");
  std::string b = dir.Write("b.csv", "x,z\n1,2\n");
  BadRowSink bad(BadRowPolicy::kError);
  auto source = OpenCsvSource(Env::Default(), {a, b}, {});
  ASSERT_TRUE(source.ok());
  BatchReader reader(std::move(*source), &bad);
  Batch batch;
  ASSERT_TRUE(reader.Next(&batch).ok());
  auto more = reader.Next(&batch);
  ASSERT_FALSE(more.ok());
  EXPECT_THAT(std::string(more.status().message()), HasSubstr("header differs"));
}

TEST(CsvTest, ParallelReadSeesEveryRowOnce) {
  TempDir dir;
  std::string text = "k,v\n";
  for (int i = 0; i < 50000; ++i) text += std::to_string(i) + ",\"v " + std::to_string(i) + "\"\n";
  std::string path = dir.Write("p.csv", text);
  ReadOptions opts;
  opts.block_bytes = 64 << 10;
  auto source = OpenCsvSource(Env::Default(), {path}, opts);
  ASSERT_TRUE(source.ok());
  BadRowSink bad(BadRowPolicy::kError);
  std::vector<int64_t> sums(3, 0), counts(3, 0);
  ASSERT_TRUE(ForEachBatchParallel(source->get(), &bad, 3, [&](int t, Batch& b) {
                for (int64_t v : b.columns[0].ints) sums[t] += v;
                counts[t] += b.num_rows;
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(counts[0] + counts[1] + counts[2], 50000);
  EXPECT_EQ(sums[0] + sums[1] + sums[2], int64_t{50000} * 49999 / 2);
}

TEST(CsvTest, WriterRoundTrip) {
  TempDir dir;
  Batch b;
  b.num_rows = 3;
  b.columns.resize(2);
  b.columns[0].name = "n";
  b.columns[0].type = ValueType::kFloat;
  b.columns[0].AddFloat(0.1);
  b.columns[0].AddMissing();
  b.columns[0].AddFloat(-2.5e300);
  b.columns[1].name = "s";
  b.columns[1].type = ValueType::kString;
  b.columns[1].AddString("a,\"b\"");
  b.columns[1].AddString("line\nbreak");
  b.columns[1].AddMissing();
  auto w = CsvWriter::Create(Env::Default(), dir.File("o.csv"),
                             {{"n", ValueType::kFloat}, {"s", ValueType::kString}});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(b).ok());
  ASSERT_TRUE((*w)->Finish().ok());
  auto r = ReadCsv(dir.File("o.csv"));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.Col("n")->floats, (std::vector<double>{0.1, -2.5e300}));
  EXPECT_EQ(r.Col("n")->present, (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(r.Col("s")->str(0), "a,\"b\"");
  EXPECT_EQ(r.Col("s")->str(1), "line\nbreak");
}

TEST(NumberParsingTest, AcceptsWhatPandasAccepts) {
  int64_t i;
  double d;
  EXPECT_TRUE(ParseInt64(" +42 ", &i));
  EXPECT_EQ(i, 42);
  EXPECT_FALSE(ParseInt64("4.0", &i));
  EXPECT_FALSE(ParseInt64("99999999999999999999", &i));
  EXPECT_TRUE(ParseDouble("1e-3", &d));
  EXPECT_DOUBLE_EQ(d, 1e-3);
  EXPECT_TRUE(ParseDouble("inf", &d));
  EXPECT_TRUE(std::isinf(d));
  EXPECT_TRUE(ParseDouble("NaN", &d));
  EXPECT_TRUE(std::isnan(d));
  EXPECT_TRUE(ParseDouble("1e999", &d));
  EXPECT_TRUE(std::isinf(d));
  EXPECT_FALSE(ParseDouble("1.2.3", &d));
  EXPECT_FALSE(ParseDouble("", &d));
}

// Plain decimals take a fast path; glibc's strtod (correctly rounded) is the reference,
// bit for bit, over hand-picked edges and a million random decimals of every length.
TEST(NumberParsingTest, DecimalsMatchStrtodBitForBit) {
  auto check = [](const std::string& s) {
    double got = 12345;
    ASSERT_TRUE(ParseDouble(s, &got)) << s;
    const double want = std::strtod(s.c_str(), nullptr);
    ASSERT_EQ(std::bit_cast<uint64_t>(got), std::bit_cast<uint64_t>(want)) << s;
  };
  for (const char* s : {"0",
                        "-0",
                        "0.0",
                        "-0.0",
                        ".5",
                        "-.5",
                        "95.1788",
                        "0.1",
                        "0.3",
                        "-13.671",
                        "9007199254740992",
                        "9007199254740993",
                        "9007199254740993.5",
                        "0.9007199254740993",
                        "1234567890123456789",
                        "12345678901234567890",
                        "0.0000000000000000000001",
                        "0.00000000000000000000001",
                        "4.35",
                        "1.7976931348623157",
                        "00012.500"}) {
    check(s);
  }
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1000000; ++i) {
    std::string s = rng() % 4 == 0 ? "-" : "";
    const int int_digits = static_cast<int>(rng() % 12);
    const int frac_digits = static_cast<int>(rng() % 24);
    for (int k = 0; k < int_digits; ++k) s.push_back(static_cast<char>('0' + rng() % 10));
    if (frac_digits > 0) {
      s.push_back('.');
      for (int k = 0; k < frac_digits; ++k) s.push_back(static_cast<char>('0' + rng() % 10));
    }
    if (int_digits == 0 && frac_digits == 0) continue;
    check(s);
  }
  double d;
  EXPECT_FALSE(ParseDouble("-", &d));
  EXPECT_FALSE(ParseDouble(".", &d));
  EXPECT_FALSE(ParseDouble("1.5-", &d));
  EXPECT_FALSE(ParseDouble("--1", &d));
  EXPECT_TRUE(ParseDouble("1.", &d));  // strtod's reading, through the general parser
  EXPECT_EQ(d, 1.0);
}

// A block without quotes is split from bitmaps, one with a quote row by row; both must
// read the same rows, values, line numbers and bad rows. Random unquoted text (ragged
// rows, blank lines, CRLF, a stray \r, a last row with or without its line feed) is read
// as it is (bitmaps) and with one quoted row appended (row by row for the whole block).
TEST(CsvTest, BlocksWithAndWithoutQuotesSplitAlike) {
  TempDir dir;
  std::mt19937_64 rng(9);
  const std::vector<std::string> values = {"", "0", "17", "-3", "2.5", "x", "yy", "a\rb", " "};
  for (int round = 0; round < 300; ++round) {
    std::string body;
    const int rows = static_cast<int>(rng() % 40);
    for (int r = 0; r < rows; ++r) {
      const uint64_t kind = rng() % 20;
      int fields = 3;
      if (kind == 0) fields = 2;
      if (kind == 1) fields = 4;
      if (kind == 2) fields = 0;  // a blank line
      for (int f = 0; f < fields; ++f) {
        if (f) body.push_back(',');
        body += values[rng() % values.size()];
      }
      if (r + 1 < rows || rng() % 2) body += rng() % 4 == 0 ? "\r\n" : "\n";
    }
    ReadOptions opts;
    opts.bad_rows = BadRowPolicy::kQuarantine;
    opts.quarantine_path = dir.File(StrCat("plain", round, ".bad"));
    const std::string plain = dir.Write(StrCat("plain", round, ".csv"), "a,b,c\n" + body);
    const ReadResult a = ReadCsv(plain, opts);
    std::string quoted_body = body;
    if (!quoted_body.empty() && quoted_body.back() != '\n') quoted_body += "\n";
    opts.quarantine_path = dir.File(StrCat("quoted", round, ".bad"));
    const ReadResult b = ReadCsv(
        dir.Write(StrCat("quoted", round, ".csv"), "a,b,c\n" + quoted_body + "\"0\",0,0\n"), opts);
    ASSERT_TRUE(a.status.ok()) << a.status;
    ASSERT_TRUE(b.status.ok()) << b.status;
    ASSERT_EQ(a.bad, b.bad) << body;
    const std::string bad_a =
        ReadFileToString(Env::Default(), dir.File(StrCat("plain", round, ".bad.errors")))
            .value_or("");
    const std::string bad_b =
        ReadFileToString(Env::Default(), dir.File(StrCat("quoted", round, ".bad.errors")))
            .value_or("");
    // The reasons are compared from the .errors lists; with bad rows there must be one.
    ASSERT_EQ(a.bad > 0, !bad_a.empty()) << body;
    EXPECT_EQ(absl::StrReplaceAll(bad_a, {{"plain", "X"}}),
              absl::StrReplaceAll(bad_b, {{"quoted", "X"}}));
    const size_t rows_a = a.batches.empty() ? 0 : a.batches[0].num_rows;
    ASSERT_EQ(b.batches.size(), 1u);
    ASSERT_EQ(b.batches[0].num_rows, rows_a + 1) << body;
    if (rows_a == 0) continue;
    const Batch& x = a.batches[0];
    const Batch& y = b.batches[0];
    for (size_t r = 0; r < rows_a; ++r) {
      ASSERT_EQ(x.row_positions[r], y.row_positions[r]) << body;
      for (size_t c = 0; c < 3; ++c) {
        const Column& cx = x.columns[c];
        const Column& cy = y.columns[c];
        ASSERT_EQ(cx.type, cy.type) << body;
        ASSERT_EQ(cx.is_present(r), cy.is_present(r)) << body;
        ASSERT_EQ(FirstValueTextOr(cx, r), FirstValueTextOr(cy, r)) << body;
      }
    }
  }
}

// The in-buffer parsers take short numbers a word at a time; they must agree with
// ParseInt64 / ParseDouble (accept and reject alike, the same bits) on every string over
// an alphabet of digits, signs, points and other bytes up to length 5, and on random
// strings up to length 10, each placed at the end of a buffer behind other bytes and at
// its very start (where the word cannot be loaded and the general parsers answer).
TEST(NumberParsingTest, InBufferParsersAgreeWithTheGeneralOnes) {
  const std::string alphabet = "0123456789.-+e /\x80";
  auto check = [](const std::string& s) {
    for (const std::string& before : {std::string(), std::string("12345678"),
                                      std::string("........"), std::string("\xff\xff--9.9.9")}) {
      const std::string buffer = before + s;
      const std::string_view v(buffer.data() + before.size(), s.size());
      int64_t i1 = 7, i2 = 7;
      const bool int_ok = ParseInt64(s, &i1);
      ASSERT_EQ(ParseInt64InBuffer(v, buffer, &i2), int_ok) << s;
      if (int_ok) {
        ASSERT_EQ(i1, i2) << s;
      }
      double d1 = 7, d2 = 7;
      const bool double_ok = ParseDouble(s, &d1);
      ASSERT_EQ(ParseDoubleInBuffer(v, buffer, &d2), double_ok) << s;
      if (double_ok && !std::isnan(d1)) {
        ASSERT_EQ(std::bit_cast<uint64_t>(d1), std::bit_cast<uint64_t>(d2)) << s;
      }
    }
  };
  std::string s;
  std::function<void(size_t)> all = [&](size_t left) {
    check(s);
    if (left == 0) return;
    for (char c : alphabet) {
      s.push_back(c);
      all(left - 1);
      s.pop_back();
    }
  };
  all(5);
  std::mt19937_64 rng(5);
  const std::string common = "0123456789012345678901234567890123456789.-";
  for (int i = 0; i < 300000; ++i) {
    std::string r(rng() % 11, ' ');
    for (char& c : r) c = common[rng() % common.size()];
    check(r);
  }
  // Values the word path produces, against strtod.
  double d;
  const std::string buffer = "xxxxxxxx-13.671";
  ASSERT_TRUE(ParseDoubleInBuffer(std::string_view(buffer).substr(8), buffer, &d));
  EXPECT_EQ(d, -13.671);
  int64_t i;
  const std::string ints = "xxxxxxxx99999999";
  ASSERT_TRUE(ParseInt64InBuffer(std::string_view(ints).substr(8), ints, &i));
  EXPECT_EQ(i, 99999999);
  // A number from another buffer (a field with its quotes undone) is parsed the general
  // way, without reading around it.
  const std::string elsewhere = "-1.5";
  ASSERT_TRUE(ParseDoubleInBuffer(elsewhere, ints, &d));
  EXPECT_EQ(d, -1.5);
  ASSERT_TRUE(ParseInt64InBuffer(std::string_view(elsewhere).substr(0, 2), ints, &i));
  EXPECT_EQ(i, -1);
}

}  // namespace
}  // namespace kiln::data
