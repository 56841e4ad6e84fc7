#include "kiln/train/json_rows.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::train {
namespace {

using data::ValueType;
using ::testing::HasSubstr;

const data::TableSchema kInputs = {
    {"age", ValueType::kInt}, {"score", ValueType::kFloat}, {"tags", ValueType::kString}};

TEST(JsonRowsTest, ScalarsListsAndMissingValues) {
  auto b = RowsFromJson(nlohmann::json::parse(R"([
      {"age": 39, "score": 1.5, "tags": "a", "ignored": true},
      {"age": null, "score": 2, "tags": ["x", "y"]},
      {"tags": []}
    ])"),
                        kInputs);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->num_rows, 3u);
  ASSERT_EQ(b->columns.size(), 3u);
  const data::Column& age = b->columns[0];
  EXPECT_EQ(age.present, (std::vector<uint8_t>{1, 0, 0}));
  EXPECT_EQ(age.ints, (std::vector<int64_t>{39}));
  const data::Column& score = b->columns[1];
  EXPECT_EQ(score.floats, (std::vector<double>{1.5, 2.0}));  // an integer is a fine FLOAT
  const data::Column& tags = b->columns[2];
  EXPECT_EQ(tags.present, (std::vector<uint8_t>{1, 1, 1}));
  EXPECT_EQ(tags.offsets, (std::vector<uint32_t>{0, 1, 3, 3}));  // the last an empty list
  EXPECT_EQ(tags.str(1), "x");
  EXPECT_EQ(tags.str(2), "y");
}

TEST(JsonRowsTest, ErrorsNameTheRowAndFeature) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"age": 1})", "expected an array of rows, got object"},
      {R"([{"age": 1}, 5])", "row 1: expected an object of features, got number"},
      {R"([{"age": 1.5}])",
       "row 0, feature 'age': expected an integer (int64), got number (a float)"},
      {R"([{"age": "1"}])", "row 0, feature 'age': expected an integer (int64), got string"},
      {R"([{"age": 18446744073709551615}])", "out of the int64 range"},
      {R"([{"score": "high"}])", "feature 'score': expected a number, got string"},
      {R"([{"tags": 7}])", "feature 'tags': expected a string, got number"},
      {R"([{"tags": [["nested"]]}])", "lists of lists are not supported"},
      {R"([{"tags": [{"a": 1}]}])", "lists of lists are not supported"},
  };
  for (const auto& [text, message] : cases) {
    auto b = RowsFromJson(nlohmann::json::parse(text), kInputs);
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(b.status().message()), HasSubstr(message)) << text;
  }
}

TEST(JsonRowsTest, RowToJsonRoundTripsExactly) {
  data::Batch b;
  b.columns = {data::Column{.name = "age", .type = ValueType::kInt},
               data::Column{.name = "score", .type = ValueType::kFloat},
               data::Column{.name = "tags", .type = ValueType::kString}};
  b.columns[0].AddInt(-9007199254740993);  // not a double
  b.columns[1].AddFloat(0.1 + 0.2);        // needs 17 digits
  b.columns[2].PushString("a\"b");
  b.columns[2].PushString("\xc3\xa9");
  b.columns[2].EndRow(2);
  b.columns[0].AddMissing();
  b.columns[1].AddFloat(NAN);  // JSON has no NaN: left out, read back as missing
  b.columns[2].AddString("z");
  b.num_rows = 2;
  nlohmann::json rows = {RowToJson(b, 0, kInputs), RowToJson(b, 1, kInputs)};
  EXPECT_EQ(rows[1], nlohmann::json::parse(R"({"tags": "z"})"));
  auto back = RowsFromJson(nlohmann::json::parse(rows.dump()), kInputs);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->columns[0].ints, b.columns[0].ints);
  EXPECT_EQ(back->columns[1].floats, std::vector<double>{0.1 + 0.2});
  EXPECT_EQ(back->columns[1].present, (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(back->columns[2].str_data, b.columns[2].str_data);
  EXPECT_EQ(back->columns[2].offsets, b.columns[2].offsets);
}

TEST(JsonRowsTest, SignatureInputsFromTheManifest) {
  model::BundleManifest m;
  m.signature = nlohmann::json::parse(R"({"inputs": [
      {"name": "a", "dtype": "int64"}, {"name": "b", "dtype": "float32"},
      {"name": "c", "dtype": "float64"}, {"name": "d", "dtype": "string"}]})");
  auto in = SignatureInputs(m);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(*in, (data::TableSchema{{"a", ValueType::kInt},
                                    {"b", ValueType::kFloat},
                                    {"c", ValueType::kFloat},
                                    {"d", ValueType::kString}}));
  m.signature["inputs"][1]["dtype"] = "bfloat16";
  EXPECT_EQ(SignatureInputs(m).status().code(), absl::StatusCode::kDataLoss);
  m.signature = nlohmann::json::object();
  EXPECT_EQ(SignatureInputs(m).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace kiln::train
