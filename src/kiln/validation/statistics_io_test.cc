#include "kiln/validation/statistics_io.h"

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "kiln/data/tfrecord.h"
#include "kiln/testing/temp_dir.h"
#include "kiln/validation/testing_stats.h"

namespace kiln::validation {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using testing::Dataset;
using testing::FeatureBuilder;
using ::testing::HasSubstr;
namespace tfmd = ::tensorflow::metadata::v0;

tfmd::DatasetFeatureStatisticsList TwoSplits() {
  tfmd::DatasetFeatureStatisticsList list;
  *list.add_datasets() = Dataset(80, {FeatureBuilder::Int("a").Present(80, 0)}, "train");
  *list.add_datasets() = Dataset(20, {FeatureBuilder::Int("a").Present(20, 0)}, "eval");
  return list;
}

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(m, &out).ok());
  return out;
}

class StatisticsIoTest : public ::testing::Test {
 protected:
  void ExpectLoads(const std::string& path) {
    auto loaded = LoadStatistics(Env::Default(), path);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_TRUE(MessageDifferencer::Equals(*loaded, list_)) << path;
  }
  kiln::testing::TempDir dir_;
  tfmd::DatasetFeatureStatisticsList list_ = TwoSplits();
};

TEST_F(StatisticsIoTest, LoadsEveryFormat) {
  ExpectLoads(dir_.Write("s.pb", list_.SerializeAsString()));
  ExpectLoads(dir_.Write("s.json", Json(list_)));
  std::string text;
  google::protobuf::TextFormat::PrintToString(list_, &text);
  ExpectLoads(dir_.Write("s.pbtxt", text));
  // TFDV's generate_statistics_* writes a TFRecord holding one serialized list.
  std::string framed;
  data::AppendTfRecord(&framed, list_.SerializeAsString());
  ExpectLoads(dir_.Write("stats.tfrecord", framed));
}

TEST_F(StatisticsIoTest, LoadsFromADirectory) {
  dir_.Write("out/statistics.json", Json(list_));
  ExpectLoads(dir_.File("out"));
  // statistics.pb is preferred over statistics.json.
  tfmd::DatasetFeatureStatisticsList other;
  *other.add_datasets() = Dataset(1, {}, "other");
  dir_.Write("out/statistics.pb", other.SerializeAsString());
  auto loaded = LoadStatistics(Env::Default(), dir_.File("out"));
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->datasets(0).name(), "other");
  // TFX StatisticsGen's layout.
  dir_.Write("Split-train/FeatureStats.pb", list_.SerializeAsString());
  ExpectLoads(dir_.File("Split-train"));
}

TEST_F(StatisticsIoTest, Errors) {
  auto missing = LoadStatistics(Env::Default(), dir_.File("nope.pb"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  dir_.Write("data/x.csv", "a\n1\n");
  auto empty_dir = LoadStatistics(Env::Default(), dir_.File("data"));
  EXPECT_EQ(empty_dir.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(empty_dir.status().message()), HasSubstr("statistics.pb"));

  std::string garbage_path = dir_.Write("bad.pb", "\xff\xff\xff garbage");
  auto garbage = LoadStatistics(Env::Default(), garbage_path);
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(garbage.status().message()), HasSubstr(garbage_path));

  auto bad_json = LoadStatistics(Env::Default(), dir_.Write("bad.json", "{\"datasets\": 3}"));
  EXPECT_EQ(bad_json.status().code(), absl::StatusCode::kDataLoss);

  auto no_datasets = LoadStatistics(Env::Default(), dir_.Write("empty.pb", ""));
  EXPECT_EQ(no_datasets.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StatisticsIoTest, TellsStatisticsFromData) {
  Env* env = Env::Default();
  EXPECT_TRUE(IsStatisticsPath(env, dir_.Write("s.json", Json(list_))));
  EXPECT_TRUE(IsStatisticsPath(env, dir_.Write("s.pb", list_.SerializeAsString())));
  EXPECT_FALSE(IsStatisticsPath(env, dir_.Write("rows.json", "{\"a\": 1}\n{\"a\": 2}\n")));
  EXPECT_FALSE(IsStatisticsPath(env, dir_.Write("rows.csv", "a\n1\n")));
  EXPECT_FALSE(IsStatisticsPath(env, dir_.Write("train.tfrecord", "")));
  dir_.Write("stats/statistics.pb", list_.SerializeAsString());
  EXPECT_TRUE(IsStatisticsPath(env, dir_.File("stats")));
  dir_.Write("raw/part-0.csv", "a\n1\n");
  EXPECT_FALSE(IsStatisticsPath(env, dir_.File("raw")));
  EXPECT_FALSE(IsStatisticsPath(env, dir_.File("absent")));
}

TEST(SelectDatasetTest, PicksByNameOrDefault) {
  tfmd::DatasetFeatureStatisticsList list = TwoSplits();
  EXPECT_EQ(SelectDataset(list, "eval")->num_examples(), 20u);
  auto missing = SelectDataset(list, "test");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("train, eval"));
  auto ambiguous = SelectDataset(list, "");
  EXPECT_EQ(ambiguous.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ambiguous.status().message()), HasSubstr("--split"));

  *list.add_datasets() = Dataset(100, {}, "all");
  EXPECT_EQ(SelectDataset(list, "")->name(), "all");

  tfmd::DatasetFeatureStatisticsList one;
  *one.add_datasets() = Dataset(7, {}, "train");
  EXPECT_EQ(SelectDataset(one, "")->num_examples(), 7u);
}

}  // namespace
}  // namespace kiln::validation
