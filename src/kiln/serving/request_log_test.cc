// The request log: what is logged reads back as the same rows; sampling, dropping and
// rotation.
#include "kiln/serving/request_log.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/testing/temp_dir.h"
#include "kiln/train/json_rows.h"

namespace kiln::serving {
namespace {

using Json = nlohmann::json;

const data::TableSchema kInputs = {{"age", data::ValueType::kInt},
                                   {"price", data::ValueType::kFloat},
                                   {"country", data::ValueType::kString}};

data::Batch Rows(const std::string& json) {
  auto b = train::RowsFromJson(Json::parse(json), kInputs);
  EXPECT_TRUE(b.ok()) << b.status();
  return *b;
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(RequestLogTest, LoggedRowsReadBackAsTheSameRows) {
  testing::TempDir tmp;
  auto log = RequestLog::Open({.dir = tmp.File("log"), .sample_rate = 1});
  ASSERT_TRUE(log.ok()) << log.status();
  const std::string rows =
      R"([{"age": 39, "price": 12.5, "country": "DE"}, {"age": 7}, {"country": "a\"b\n"}])";
  (*log)->MaybeLog("clicks", Rows(rows), kInputs);
  (*log)->MaybeLog("clicks", Rows(R"([{"price": -0.1}])"), kInputs);
  (*log)->MaybeLog("other", Rows(R"([{"age": 1}])"), kInputs);
  (*log)->Flush();
  EXPECT_EQ((*log)->logged_rows(), 5u);
  const std::vector<std::string> lines = Lines(tmp.File("log/clicks/requests.jsonl"));
  ASSERT_EQ(lines.size(), 4u);
  Json back = Json::array();
  for (const std::string& l : lines) back.push_back(Json::parse(l));
  EXPECT_EQ(back, Json::parse(R"([{"age": 39, "price": 12.5, "country": "DE"}, {"age": 7},
                                  {"country": "a\"b\n"}, {"price": -0.1}])"));
  EXPECT_EQ(Lines(tmp.File("log/other/requests.jsonl")), std::vector<std::string>{R"({"age":1})"});
}

TEST(RequestLogTest, AppendsToAnExistingLog) {
  testing::TempDir tmp;
  for (int run = 0; run < 2; ++run) {
    auto log = RequestLog::Open({.dir = tmp.File("log"), .sample_rate = 1});
    ASSERT_TRUE(log.ok());
    (*log)->MaybeLog("m", Rows(StrCat(R"([{"age": )", run, "}]")), kInputs);
  }  // the destructor writes what is queued
  EXPECT_EQ(Lines(tmp.File("log/m/requests.jsonl")),
            (std::vector<std::string>{R"({"age":0})", R"({"age":1})"}));
}

TEST(RequestLogTest, SamplesAtTheRate) {
  testing::TempDir tmp;
  auto none = RequestLog::Open({.dir = tmp.File("a"), .sample_rate = 0});
  ASSERT_TRUE(none.ok());
  auto half =
      RequestLog::Open({.dir = tmp.File("b"), .sample_rate = 0.25, .max_queued_requests = 100000});
  ASSERT_TRUE(half.ok());
  const data::Batch one = Rows(R"([{"age": 1}])");
  for (int i = 0; i < 4000; ++i) {
    (*none)->MaybeLog("m", one, kInputs);
    (*half)->MaybeLog("m", one, kInputs);
  }
  (*none)->Flush();
  (*half)->Flush();
  EXPECT_EQ((*none)->logged_rows(), 0u);
  EXPECT_FALSE(std::filesystem::exists(tmp.File("a/m/requests.jsonl")));
  // Binomial(4000, 0.25): mean 1000, sd 27; ±150 is over 5 sd.
  EXPECT_NEAR(static_cast<double>((*half)->logged_rows()), 1000, 150);
  EXPECT_EQ(Lines(tmp.File("b/m/requests.jsonl")).size(), (*half)->logged_rows());
}

TEST(RequestLogTest, AFullQueueDropsInsteadOfWaiting) {
  testing::TempDir tmp;
  auto log = RequestLog::Open({.dir = tmp.File("log"), .sample_rate = 1, .max_queued_requests = 0});
  ASSERT_TRUE(log.ok());
  (*log)->MaybeLog("m", Rows(R"([{"age": 1}])"), kInputs);
  (*log)->Flush();
  EXPECT_EQ((*log)->dropped_requests(), 1u);
  EXPECT_EQ((*log)->logged_rows(), 0u);
}

TEST(RequestLogTest, RotatesAFullFile) {
  testing::TempDir tmp;
  auto log = RequestLog::Open({.dir = tmp.File("log"), .sample_rate = 1, .max_file_bytes = 40});
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 10; ++i) {
    (*log)->MaybeLog("m", Rows(StrCat(R"([{"age": )", 1000 + i, "}]")), kInputs);
    (*log)->Flush();  // one write at a time, so every rotation sees the previous size
  }
  size_t files = 0, lines = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp.File("log/m"))) {
    ++files;
    const auto l = Lines(e.path().string());
    EXPECT_LE(l.size(), 3u) << e.path();  // 13 bytes a line, 40 a file
    lines += l.size();
  }
  EXPECT_EQ(lines, 10u);
  EXPECT_GE(files, 4u);
}

TEST(RequestLogTest, RefusesABadRate) {
  testing::TempDir tmp;
  auto log = RequestLog::Open({.dir = tmp.File("log"), .sample_rate = 1.5});
  EXPECT_EQ(log.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(log.status().message()), ::testing::HasSubstr("[0, 1]"));
}

}  // namespace
}  // namespace kiln::serving
