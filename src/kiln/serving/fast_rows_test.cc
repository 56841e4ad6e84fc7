// The :predict fast path against the general one (and train::RowsFromJson): the same
// rows for every body it takes, and every body it declines answered by the general path
// with the general path's rows or error; the hand-written answer byte for byte what
// nlohmann::json made of it.
#include "kiln/serving/fast_rows.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/serving/rest_api.h"
#include "kiln/train/json_rows.h"

namespace kiln::serving {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

const data::TableSchema kSchema = {{"age", data::ValueType::kInt},
                                   {"height", data::ValueType::kFloat},
                                   {"city", data::ValueType::kString},
                                   {"tags", data::ValueType::kString}};

// Exact equality, floats bit for bit (so 0.0 and -0.0 differ).
void ExpectSameBatch(const data::Batch& got, const data::Batch& want, const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_EQ(got.num_rows, want.num_rows);
  ASSERT_EQ(got.columns.size(), want.columns.size());
  for (size_t i = 0; i < got.columns.size(); ++i) {
    const data::Column& g = got.columns[i];
    const data::Column& w = want.columns[i];
    SCOPED_TRACE(w.name);
    EXPECT_EQ(g.name, w.name);
    EXPECT_EQ(g.type, w.type);
    EXPECT_EQ(g.present, w.present);
    EXPECT_EQ(g.offsets, w.offsets);
    EXPECT_EQ(g.ints, w.ints);
    ASSERT_EQ(g.floats.size(), w.floats.size());
    for (size_t k = 0; k < g.floats.size(); ++k) {
      EXPECT_EQ(std::bit_cast<uint64_t>(g.floats[k]), std::bit_cast<uint64_t>(w.floats[k]))
          << "value " << k << ": " << g.floats[k] << " vs " << w.floats[k];
    }
    EXPECT_EQ(g.str_data, w.str_data);
    EXPECT_EQ(g.str_offsets, w.str_offsets);
  }
  EXPECT_EQ(got.row_positions, want.row_positions);
  EXPECT_EQ(got.row_tags, want.row_tags);
  EXPECT_EQ(got.source, want.source);
  EXPECT_EQ(got.block_index, want.block_index);
}

// `body` is taken by the fast path, with the general path's rows.
void ExpectFast(const std::string& body, const data::TableSchema& schema = kSchema) {
  SCOPED_TRACE(body.substr(0, 200));
  PredictRows fast;
  ASSERT_TRUE(FastPredictRows(body, schema, &fast)) << "declined";
  absl::StatusOr<PredictRows> general = PredictRowsFromJson(body, schema);
  ASSERT_TRUE(general.ok()) << general.status();
  EXPECT_EQ(fast.columns, general->columns);
  ExpectSameBatch(fast.batch, general->batch, "fast vs general");
  // And what RowsFromJson makes of the rows (columns turned into rows here).
  const Json request = Json::parse(body);
  Json rows = Json::array();
  if (request.contains("instances")) {
    rows = request["instances"];
  } else {
    const Json& cols = request["inputs"];
    const size_t n = cols.empty() ? 0 : cols.begin()->size();
    for (size_t r = 0; r < n; ++r) {
      Json row = Json::object();
      for (const auto& [name, col] : cols.items()) row[name] = col[r];
      rows.push_back(row);
    }
  }
  absl::StatusOr<data::Batch> want = train::RowsFromJson(rows, schema);
  ASSERT_TRUE(want.ok()) << want.status();
  ExpectSameBatch(fast.batch, *want, "fast vs RowsFromJson");
}

// `body` is declined by the fast path; returns what ParsePredictRows (then the general
// path) makes of it, for the caller to check against expected values.
absl::StatusOr<PredictRows> ExpectDeclined(const std::string& body,
                                           const data::TableSchema& schema = kSchema) {
  SCOPED_TRACE(body.substr(0, 200));
  PredictRows fast;
  EXPECT_FALSE(FastPredictRows(body, schema, &fast)) << "taken";
  PredictRows rows;
  const absl::Status st = ParsePredictRows(body, schema, &rows);
  if (!st.ok()) return st;
  return rows;
}

// The error ParsePredictRows gives `body` (which the fast path must decline).
absl::Status ErrorOf(const std::string& body) {
  absl::StatusOr<PredictRows> r = ExpectDeclined(body);
  EXPECT_FALSE(r.ok()) << body;
  return r.status();
}

TEST(FastRowsTest, ScalarsListsMissingAndNullAreTheGeneralPathsRows) {
  ExpectFast(R"({"instances": [{"age": 39, "height": 1.75, "city": "Lyon", "tags": ["a", "b"]}]})");
  ExpectFast(R"({"instances": [{"age": [1, 2, 3], "height": [], "city": [], "tags": "x"}]})");
  ExpectFast(R"({"instances": [{}, {"age": null}, {"height": null, "city": "x"}, {"tags": []}]})");
  ExpectFast(R"({"instances": [{"tags": ["a"]}, {"tags": null}, {"tags": ["", "b", "c"]}]})");
  // Keys in any order; keys that are not inputs are ignored (scalars, lists, nulls).
  ExpectFast(
      R"({"instances": [{"tags": "t", "zip": 75001, "city": "Paris", "extra": [1, "a", null],)"
      R"( "age": 3, "none": null, "height": 2}]})");
  // The other top-level keys: signature_name (the default or empty) and unknown ones.
  ExpectFast(R"({"signature_name": "serving_default", "instances": [{"age": 1}]})");
  ExpectFast(R"({"signature_name": "", "instances": [{"age": 1}], "other": {"b64": 1}})");
  ExpectFast(" \n\t{\"instances\": [ {\"age\" : 1 } ] }\r\n");
}

TEST(FastRowsTest, NoRowsIsAnEmptyBatchWithTheInputColumns) {
  ExpectFast(R"({"instances": []})");
  ExpectFast(R"({"inputs": {}})");
  ExpectFast(R"({"inputs": {"age": [], "city": []}})");
  PredictRows r;
  ASSERT_TRUE(FastPredictRows(R"({"instances": []})", kSchema, &r));
  EXPECT_EQ(r.batch.num_rows, 0u);
  EXPECT_EQ(r.batch.columns.size(), 4u);
  EXPECT_FALSE(r.columns);
}

TEST(FastRowsTest, NumbersReadAsNlohmannReadsThem) {
  // Integers for float columns, the uint64 range, signed zeros, exponents, subnormals,
  // underflow to zero, and the int64 extremes for int columns.
  ExpectFast(
      R"({"instances": [{"height": 3}, {"height": -7}, {"height": 18446744073709551615},)"
      R"( {"height": 9223372036854775808}, {"height": -0}, {"height": -0.0}, {"height": 0.0},)"
      R"( {"height": 1e5}, {"height": 1E+5}, {"height": -2.5e-3}, {"height": 4.9e-324},)"
      R"( {"height": 2.2250738585072011e-308}, {"height": 1e-400}, {"height": -1e-400},)"
      R"( {"height": 1.7976931348623157e308}, {"height": 0.1}, {"height": 123456789012345678},)"
      R"( {"age": 9223372036854775807}, {"age": -9223372036854775808}, {"age": -0},)"
      R"( {"age": [0, -1, 1]}]})");
}

TEST(FastRowsTest, RandomDoublesReadBitForBitAsNlohmannReadsThem) {
  std::mt19937_64 rng(7);
  std::string body = R"({"instances": [)";
  for (int i = 0; i < 3000; ++i) {
    double d;
    do {
      d = std::bit_cast<double>(rng());
    } while (!std::isfinite(d));
    char buf[64];
    // Shortest, 17 significant digits, and a short decimal: different parsing paths.
    if (i % 3 == 0) {
      // An integral text beyond uint64 is an integer to simdjson (too big: declined).
      std::string text = StrCat(d);
      if (text.find_first_of(".e") == std::string::npos) text += ".0";
      body += StrCat(i ? "," : "", "{\"height\": ", text, "}");
    } else if (i % 3 == 1) {
      std::snprintf(buf, sizeof(buf), "%.17g", d);
      body += StrCat(",{\"height\": ", buf, "}");
    } else {
      std::snprintf(buf, sizeof(buf), "%.6f", std::ldexp(static_cast<double>(rng() % 100000), -7));
      body += StrCat(",{\"height\": [", buf, ", -", buf, "]}");
    }
  }
  body += "]}";
  ExpectFast(body);
}

TEST(FastRowsTest, StringsWithEscapesAndUnicodeAreTheSameBytes) {
  ExpectFast(
      R"({"instances": [{"city": "a\"b\\c\/d\b\f\n\r\t"}, {"city": "\u00e9\u4e2d\ud83d\ude00"},)"
      R"( {"city": "caf\u00E9 é 中 😀"}, {"city": "nul\u0000byte"}, {"city": ""},)"
      R"( {"tags": ["\u0041", "\\u0041"]}]})");
  // A key written with escapes names the same input.
  ExpectFast(R"({"instances": [{"\u0061ge": 5, "ci\u0074y": "x"}]})");
}

TEST(FastRowsTest, ColumnsAreTheRowsOfTheirValues) {
  ExpectFast(
      R"({"inputs": {"age": [1, null, [2, 3]], "height": [1.5, 2, null], "city": ["a", "b", "c"],)"
      R"( "unused": [1, "x", [true]]}})");
  ExpectFast(R"({"signature_name": "serving_default", "inputs": {"tags": [["x", "y"], [], "z"]}})");
  PredictRows r;
  ASSERT_TRUE(FastPredictRows(R"({"inputs": {"age": [1, 2]}})", kSchema, &r));
  EXPECT_TRUE(r.columns);
  EXPECT_EQ(r.batch.num_rows, 2u);
}

TEST(FastRowsTest, AWideSchemaFindsKeysInAnyOrder) {
  data::TableSchema wide;
  for (int i = 0; i < 60; ++i) {
    wide.push_back({StrCat("f", i), i % 3 == 0   ? data::ValueType::kInt
                                    : i % 3 == 1 ? data::ValueType::kFloat
                                                 : data::ValueType::kString});
  }
  std::vector<int> order(60);
  for (int i = 0; i < 60; ++i) order[i] = i;
  std::mt19937 rng(3);
  std::string rows_body = R"({"instances": [)", cols_body = R"({"inputs": {)";
  for (int r = 0; r < 4; ++r) {
    std::shuffle(order.begin(), order.end(), rng);
    rows_body += r ? ",{" : "{";
    bool first = true;
    for (int i : order) {
      if (i % 7 == r) continue;  // some missing
      rows_body += StrCat(first ? "" : ",", "\"f", i,
                          "\":", i % 3 == 2 ? StrCat("\"s", r, "\"") : StrCat(i * 10 + r));
      first = false;
    }
    rows_body += ",\"not_an_input\":1}";
  }
  rows_body += "]}";
  for (int i : order) {
    cols_body += StrCat(i == order[0] ? "" : ",", "\"f", i,
                        "\":", i % 3 == 2 ? R"(["a", "b"])" : StrCat("[", i, ", null]"));
  }
  cols_body += "}}";
  ExpectFast(rows_body, wide);
  ExpectFast(cols_body, wide);
}

TEST(FastRowsTest, WrongTypesAreDeclinedAndGetTheGeneralPathsErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"instances": [{"height": "tall"}]})",
       "row 0, feature 'height': expected a number, got string"},
      {R"({"instances": [{}, {"age": 1.5}]})",
       "row 1, feature 'age': expected an integer (int64), got number (a float)"},
      {R"({"instances": [{"age": 1e2}]})", "expected an integer (int64), got number (a float)"},
      {R"({"instances": [{"age": 9223372036854775808}]})", "out of the int64 range"},
      {R"({"instances": [{"age": true}]})", "expected an integer (int64), got boolean"},
      {R"({"instances": [{"city": 5}]})", "expected a string, got number"},
      {R"({"instances": [{"tags": ["a", null]}]})", "expected a string, got null"},
      {R"({"instances": [{"tags": ["a", ["b"]]}]})", "lists of lists are not supported"},
      {R"({"instances": [{"tags": [{"x": 1}]}]})", "lists of lists are not supported"},
      {R"({"instances": [{"city": {"x": 1}}]})", "expected a string, got object"},
      {R"({"instances": [1, 2]})", "row 0: expected an object of features, got number"},
      {R"({"instances": [[1]]})", "row 0: expected an object of features, got array"},
      {R"({"instances": {"age": 1}})", "expected an array of rows, got object"},
      {R"({"inputs": [1, 2]})", "\"inputs\" must map feature names to lists"},
      {R"({"inputs": {"age": 5}})", "input 'age' is not a list"},
      {R"({"inputs": {"age": [1, 2], "height": [1]}})",
       "input 'height' has 1 values; the others 2"},
      {R"({"inputs": {"age": ["x"]}})", "row 0, feature 'age': expected an integer"},
      {R"({"instances": [], "inputs": {}})", "exactly one of"},
      {R"({"signature_name": "other", "instances": []})", "unknown signature_name"},
      {R"({"signature_name": 5, "instances": []})", "unknown signature_name"},
      {R"({})", "exactly one of"},
      {R"([{"age": 1}])", "not a JSON object"},
      {R"({"instances": [{"age": 1}]} trailing)", "not a JSON object"},
      {R"({"instances": [{"age": 1},]})", "not a JSON object"},
      {"{\"instances\": [{\"city\": \"\xff\"}]}", "not a JSON object"},
      {R"({"instances": [{"city": "\ud800"}]})", "not a JSON object"},
      {"", "not a JSON object"},
      {R"({"instances": [{"tags": {"b64": "!!"}}]})", "not valid base64"},
      {R"({"instances": [{"unused": {"b64": 5}}]})", "a b64 value must be a string"},
  };
  for (const auto& [body, message] : cases) {
    absl::Status st = ErrorOf(body);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_THAT(std::string(st.message()), HasSubstr(message)) << body;
  }
  // The very message RowsFromJson words.
  absl::Status direct =
      train::RowsFromJson(Json::parse(R"([{"height": "tall"}])"), kSchema).status();
  EXPECT_EQ(ErrorOf(R"({"instances": [{"height": "tall"}]})"), direct);
}

TEST(FastRowsTest, UnusualBodiesGoTheGeneralWay) {
  // b64 values become their bytes (the fallback's rows checked against a plain string).
  absl::StatusOr<PredictRows> b64 =
      ExpectDeclined(R"({"instances": [{"city": {"b64": "cmVk"}, "age": 1}]})");
  ASSERT_TRUE(b64.ok()) << b64.status();
  PredictRows plain;
  ASSERT_TRUE(FastPredictRows(R"({"instances": [{"city": "red", "age": 1}]})", kSchema, &plain));
  ExpectSameBatch(b64->batch, plain.batch, "b64");
  ASSERT_TRUE(ExpectDeclined(R"({"inputs": {"city": [{"b64": "cmVk"}]}})").ok());
  // A row or a columns object that is b64 itself, once duplicates are merged.
  EXPECT_THAT(std::string(ErrorOf(R"({"instances": [{"b64": "cmVk", "b64": "cmVk"}]})").message()),
              HasSubstr("row 0: expected an object of features, got string"));
  EXPECT_THAT(std::string(ErrorOf(R"({"inputs": {"b64": [1], "b64": [2]}})").message()),
              HasSubstr("a b64 value must be a string"));
  // Duplicate keys (nlohmann keeps the last), and keys that are not inputs holding objects
  // or nested lists (b64-decoded and depth-checked, then ignored).
  for (const char* body : {R"({"instances": [{"age": 1, "age": 2}]})",
                           R"({"instances": [{"age": 1}], "instances": [{"age": 2}]})",
                           R"({"inputs": {"age": [1], "age": [2]}})",
                           R"({"instances": [{"age": 2, "meta": {"a": 1}}]})",
                           R"({"instances": [{"age": 2, "meta": [[1]]}]})",
                           R"({"inputs": {"age": [2], "meta": [{"b64": "cmVk"}]}})"}) {
    absl::StatusOr<PredictRows> r = ExpectDeclined(body);
    ASSERT_TRUE(r.ok()) << body << ": " << r.status();
    EXPECT_EQ(r->batch.columns[0].ints, std::vector<int64_t>{2}) << body;
  }
  // What simdjson refuses and nlohmann takes (a byte-order mark; an integer beyond uint64,
  // a float to nlohmann) or refuses too (a number beyond the double range).
  ASSERT_TRUE(ExpectDeclined("\xEF\xBB\xBF{\"instances\": [{\"age\": 1}]}").ok());
  absl::StatusOr<PredictRows> big =
      ExpectDeclined(R"({"instances": [{"height": 123456789012345678901234567890}]})");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->batch.columns[1].floats, std::vector<double>{1.2345678901234568e29});
  EXPECT_THAT(std::string(ErrorOf(R"({"instances": [{"height": 1e400}]})").message()),
              HasSubstr("not a JSON object"));
}

TEST(FastRowsTest, ASignatureRepeatingANameGoesTheGeneralWay) {
  // RowsFromJson gives the value to both columns (signatures kiln writes never repeat a
  // name: the transform refuses it).
  const data::TableSchema twice = {{"a", data::ValueType::kInt}, {"a", data::ValueType::kInt}};
  for (const char* body : {R"({"instances": [{"a": 1}]})", R"({"instances": [{"a": 1, "a": 2}]})",
                           R"({"inputs": {"a": [1]}})"}) {
    absl::StatusOr<PredictRows> r = ExpectDeclined(body, twice);
    ASSERT_TRUE(r.ok()) << r.status();
    const std::vector<int64_t> want = {
        std::string_view(body).find("\"a\": 2") == std::string_view::npos ? 1 : 2};
    EXPECT_EQ(r->batch.columns[0].ints, want) << body;
    EXPECT_EQ(r->batch.columns[1].ints, want) << body;
  }
}

TEST(FastRowsTest, DeepNestingIsRefusedWithoutExhaustingTheStack) {
  for (size_t depth : {size_t{18}, size_t{1100}, size_t{1000000}}) {
    const std::string body =
        "{\"instances\": " + std::string(depth, '[') + std::string(depth, ']') + "}";
    absl::Status st = ErrorOf(body);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(st.message()), HasSubstr("nested too deeply")) << depth;
  }
}

TEST(FastRowsTest, BigBodiesAndThreadsGetTheirOwnParsers) {
  // Over 16 KiB: a parser of its own, not the thread's.
  std::string big = R"({"instances": [)";
  for (int i = 0; big.size() < (size_t{3} << 19); ++i) {
    big += StrCat(i ? "," : "", "{\"age\": ", i, ", \"height\": ", i * 0.25, ", \"city\": \"c", i,
                  "\"}");
  }
  big += "]}";
  ExpectFast(big);
  // Threads parsing at once each keep their own parser and index of the inputs.
  auto work = [](int t, bool* ok) {
    const data::TableSchema other = {{"age", data::ValueType::kInt}};
    PredictRows r;
    for (int i = 0; i < 200; ++i) {
      const std::string body = StrCat("{\"instances\": [{\"age\": ", t * 1000 + i, "}]}");
      *ok = *ok && FastPredictRows(body, i % 2 ? kSchema : other, &r) &&
            r.batch.columns.size() == (i % 2 ? 4u : 1u) &&
            r.batch.columns[0].ints == std::vector<int64_t>{t * 1000 + i};
    }
  };
  bool ok1 = true, ok2 = true;
  std::thread a(work, 1, &ok1), b(work, 2, &ok2);
  a.join();
  b.join();
  EXPECT_TRUE(ok1);
  EXPECT_TRUE(ok2);
}

TEST(FastRowsTest, ReusedRowsAreReplacedWhole) {
  // One PredictRows through bodies of other sizes, schemas, forms and paths: each time the
  // rows a fresh one gets.
  const data::TableSchema other = {{"city", data::ValueType::kString},
                                   {"age", data::ValueType::kFloat}};
  std::string many = R"({"instances": [)";
  for (int i = 0; i < 20000; ++i) many += StrCat(i ? "," : "", "{\"age\": ", i, "}");
  many += "]}";
  const std::vector<std::pair<std::string, const data::TableSchema*>> bodies = {
      {R"({"instances": [{"age": 1, "city": "x", "tags": ["a", "b"]}, {}]})", &kSchema},
      {R"({"inputs": {"age": [5], "height": [0.5]}})", &kSchema},
      {R"({"instances": [{"age": 2}]})", &other},
      {many, &kSchema},
      {R"({"instances": [{"city": {"b64": "cmVk"}}]})", &kSchema},
      {R"({"instances": [{"age": 3, "tags": "t"}]})", &kSchema},
      {R"({"instances": []})", &kSchema},
  };
  PredictRows reused;
  for (int round = 0; round < 2; ++round) {
    for (const auto& [body, schema] : bodies) {
      SCOPED_TRACE(body.substr(0, 80));
      ASSERT_TRUE(ParsePredictRows(body, *schema, &reused).ok());
      absl::StatusOr<PredictRows> fresh = PredictRowsFromJson(body, *schema);
      ASSERT_TRUE(fresh.ok()) << fresh.status();
      EXPECT_EQ(reused.columns, fresh->columns);
      ExpectSameBatch(reused.batch, fresh->batch, "reused");
    }
  }
  // Large storage is let go between requests; small storage is kept, rows and all.
  ASSERT_TRUE(ParsePredictRows(many, kSchema, &reused).ok());
  ShrinkPredictRows(&reused);
  EXPECT_TRUE(reused.batch.columns.empty());
  ASSERT_TRUE(ParsePredictRows(R"({"instances": [{"age": 1}]})", kSchema, &reused).ok());
  ShrinkPredictRows(&reused);
  EXPECT_EQ(reused.batch.columns.size(), 4u);
  EXPECT_EQ(reused.batch.num_rows, 1u);
}

// ---- The answer, against what the handler wrote with nlohmann::json before.

std::string OldPredictResponse(model::Task task, const std::vector<float>& scores, size_t n,
                               bool columns_form) {
  const size_t k = n == 0 ? 0 : scores.size() / n;
  // The class ids worked out here, not with the ClassIds the code under test uses.
  std::vector<int64_t> ids;
  for (size_t i = 0; i < n && task != model::Task::kRegression; ++i) {
    if (task == model::Task::kBinary) {
      ids.push_back(scores[i] >= 0.5f ? 1 : 0);
    } else {
      const auto row = scores.begin() + static_cast<std::ptrdiff_t>(i * k);
      ids.push_back(std::max_element(row, row + static_cast<std::ptrdiff_t>(k)) - row);
    }
  }
  Json per_row = Json::array();
  Json columns = Json::object();
  for (size_t i = 0; i < n; ++i) {
    Json p;
    switch (task) {
      case model::Task::kBinary:
        p = {{"scores", scores[i]}, {"class_ids", ids[i]}};
        break;
      case model::Task::kMulticlass:
        p = {{"probabilities",
              std::vector<float>(scores.begin() + i * k, scores.begin() + (i + 1) * k)},
             {"class_ids", ids[i]}};
        break;
      case model::Task::kRegression:
        p = scores[i];
        break;
    }
    if (p.is_object()) {
      for (const auto& [name, v] : p.items()) columns[name].push_back(v);
    } else {
      columns["predictions"].push_back(p);
    }
    per_row.push_back(std::move(p));
  }
  const Json body = !columns_form ? Json{{"predictions", per_row}}
                    : task == model::Task::kRegression
                        ? Json{{"outputs", columns.value("predictions", Json::array())}}
                        : Json{{"outputs", columns}};
  return JsonResponse(200, body).body;
}

TEST(FastRowsTest, TheAnswerIsByteForByteWhatNlohmannWrote) {
  std::vector<float> values = {0.0f,
                               -0.0f,
                               1.0f,
                               0.5f,
                               0.1f,
                               0.3333333f,
                               1e-7f,
                               1e-30f,
                               1e20f,
                               123456789.0f,
                               -2.5f,
                               std::numeric_limits<float>::denorm_min(),
                               std::numeric_limits<float>::max(),
                               std::numeric_limits<float>::quiet_NaN(),
                               std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity()};
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  for (int i = 0; i < 500; ++i) values.push_back(unit(rng));
  for (int i = 0; i < 500; ++i) {
    float f;
    do {
      f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    } while (std::isnan(f));
    values.push_back(f);
  }
  for (model::Task task :
       {model::Task::kBinary, model::Task::kMulticlass, model::Task::kRegression}) {
    const size_t k = task == model::Task::kMulticlass ? 3 : 1;
    for (size_t n : {size_t{0}, size_t{1}, size_t{2}, values.size() / k}) {
      std::vector<float> scores(values.begin(), values.begin() + n * k);
      for (bool columns : {false, true}) {
        SCOPED_TRACE(StrCat(model::TaskName(task), " rows=", n, " columns=", columns));
        EXPECT_EQ(PredictResponseBody(task, scores, n, columns),
                  OldPredictResponse(task, scores, n, columns));
      }
    }
  }
  EXPECT_EQ(PredictResponseBody(model::Task::kBinary, {0.75f, 0.25f}, 2, false),
            R"({"predictions":[{"class_ids":1,"scores":0.75},{"class_ids":0,"scores":0.25}]})");
  EXPECT_EQ(PredictResponseBody(model::Task::kMulticlass, {0.1f, 0.7f, 0.2f}, 1, true),
            R"({"outputs":{"class_ids":[1],"probabilities":[[0.10000000149011612,)"
            R"(0.699999988079071,0.20000000298023224]]}})");
  EXPECT_EQ(PredictResponseBody(model::Task::kRegression, {2.5f}, 1, true), R"({"outputs":[2.5]})");
}

}  // namespace
}  // namespace kiln::serving
