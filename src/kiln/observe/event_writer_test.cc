#include "kiln/observe/event_writer.h"

#include <unistd.h>

#include <cmath>
#include <limits>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/base/tfrecord_framing.h"
#include "kiln/testing/temp_dir.h"
#include "tensorboard/plugins/hparams/plugin_data.pb.h"

namespace kiln::observe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kStartMicros = 1'700'000'000'250'000;  // 2023-11-14T22:13:20.25Z

// A real file system with a clock the test sets, and writes that fail on demand.
class TestEnv : public EnvWrapper {
 public:
  TestEnv() : EnvWrapper(Env::Default()) {}
  int64_t NowMicros() override { return now; }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> f, target()->NewWritableFile(path));
    return std::unique_ptr<WritableFile>(new File(this, std::move(f)));
  }

  int64_t now = kStartMicros;
  bool fail_append = false;
  bool fail_sync = false;
  int appends = 0;
  int syncs = 0;

 private:
  class File : public WritableFile {
   public:
    File(TestEnv* env, std::unique_ptr<WritableFile> f) : env_(env), f_(std::move(f)) {}
    absl::Status Append(std::string_view data) override {
      ++env_->appends;
      if (env_->fail_append) {
        // A torn write: half the bytes reach the file, then the disk is full.
        KILN_RETURN_IF_ERROR(f_->Append(data.substr(0, data.size() / 2)));
        return absl::ResourceExhaustedError("disk full");
      }
      return f_->Append(data);
    }
    absl::Status Sync() override {
      ++env_->syncs;
      if (env_->fail_sync) return absl::DataLossError("fsync failed");
      return f_->Sync();
    }
    absl::Status Close() override { return f_->Close(); }

   private:
    TestEnv* env_;
    std::unique_ptr<WritableFile> f_;
  };
};

// Reads every record of an event file, checking both CRCs of each. A torn last record
// ends the list and sets *torn.
std::vector<tensorflow::Event> ReadEvents(const std::string& path, bool* torn = nullptr) {
  std::string bytes = kiln::testing::ReadAll(path);
  std::vector<tensorflow::Event> events;
  size_t pos = 0;
  if (torn) *torn = false;
  while (pos < bytes.size()) {
    if (bytes.size() - pos < tfrecord::kHeaderBytes) {
      if (torn) *torn = true;
      break;
    }
    uint64_t length = 0;
    EXPECT_TRUE(tfrecord::DecodeHeader(bytes.data() + pos, &length))
        << "length CRC of the record at " << pos;
    if (bytes.size() - pos < tfrecord::kHeaderBytes + length + tfrecord::kFooterBytes) {
      if (torn) *torn = true;
      break;
    }
    std::string_view data(bytes.data() + pos + tfrecord::kHeaderBytes, length);
    EXPECT_TRUE(tfrecord::FooterMatches(data, data.data() + length))
        << "data CRC of the record at " << pos;
    tensorflow::Event event;
    EXPECT_TRUE(event.ParseFromArray(data.data(), static_cast<int>(data.size())));
    events.push_back(std::move(event));
    pos += tfrecord::kHeaderBytes + length + tfrecord::kFooterBytes;
  }
  if (!torn) {
    EXPECT_EQ(pos, bytes.size()) << "torn record at the end of " << path;
  }
  return events;
}

class EventWriterTest : public ::testing::Test {
 protected:
  std::unique_ptr<EventWriter> NewWriter(EventWriter::Options options = {}) {
    options.hostname = "testhost";
    auto writer = EventWriter::Create(&env_, logdir_, options);
    EXPECT_TRUE(writer.ok()) << writer.status();
    return writer.ok() ? std::move(*writer) : nullptr;
  }

  kiln::testing::TempDir dir_;
  std::string logdir_ = dir_.File("model/logs");
  TestEnv env_;
};

TEST_F(EventWriterTest, FileIsNamedLikeTensorBoardsInANewLogdir) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  EXPECT_EQ(Dirname(writer->path()), logdir_);
  const std::regex pattern(kiln::StrCat(R"(events\.out\.tfevents\.1700000000\.testhost\.)",
                                        static_cast<int64_t>(getpid()), R"(\.\d+)"));
  EXPECT_TRUE(std::regex_match(Basename(writer->path()), pattern)) << writer->path();
  EXPECT_TRUE(env_.IsDirectory(logdir_));
}

TEST_F(EventWriterTest, TwoWritersInOneSecondGetDistinctFiles) {
  auto a = NewWriter();
  auto b = NewWriter();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a->path(), b->path());
  ASSERT_TRUE(a->AddScalar("x", 1, 1.0f, 5.0).ok());
  ASSERT_TRUE(b->AddScalar("x", 1, 2.0f, 5.0).ok());
  ASSERT_TRUE(a->Close().ok());
  ASSERT_TRUE(b->Close().ok());
  EXPECT_EQ(ReadEvents(a->path())[1].summary().value(0).tensor().float_val(0), 1.0f);
  EXPECT_EQ(ReadEvents(b->path())[1].summary().value(0).tensor().float_val(0), 2.0f);
}

TEST_F(EventWriterTest, FirstRecordIsFileVersionAndIsOnDiskAtOnce) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  // Readable before any Flush: TensorBoard sees a valid, empty event file.
  std::vector<tensorflow::Event> events = ReadEvents(writer->path());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_EQ(events[0].wall_time(), 1700000000.25);
  EXPECT_EQ(events[0].step(), 0);
  EXPECT_EQ(events[0].source_metadata().writer(), "kiln");
}

TEST_F(EventWriterTest, ScalarIsRankZeroFloatTensorWithScalarsMetadata) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  for (int step = 0; step < 10; ++step) {
    ASSERT_TRUE(writer->AddScalar("loss", step, 1.0f / (step + 1), 1700000001.0 + step).ok());
  }
  ASSERT_TRUE(writer->Close().ok());

  std::vector<tensorflow::Event> events = ReadEvents(writer->path());
  ASSERT_EQ(events.size(), 11u);
  for (int step = 0; step < 10; ++step) {
    const tensorflow::Event& e = events[step + 1];
    EXPECT_EQ(e.step(), step);
    EXPECT_EQ(e.wall_time(), 1700000001.0 + step);
    ASSERT_EQ(e.summary().value_size(), 1);
    const tensorflow::Summary::Value& v = e.summary().value(0);
    EXPECT_EQ(v.tag(), "loss");
    EXPECT_EQ(v.metadata().plugin_data().plugin_name(), "scalars");
    EXPECT_EQ(v.metadata().data_class(), tensorflow::DATA_CLASS_SCALAR);
    ASSERT_TRUE(v.has_tensor());
    EXPECT_EQ(v.tensor().dtype(), tensorflow::DT_FLOAT);
    EXPECT_TRUE(v.tensor().has_tensor_shape());
    EXPECT_EQ(v.tensor().tensor_shape().dim_size(), 0);
    EXPECT_THAT(v.tensor().float_val(), ElementsAre(1.0f / (step + 1)));
    EXPECT_TRUE(v.tensor().tensor_content().empty());
  }
}

TEST_F(EventWriterTest, ScalarWithoutWallTimeUsesEnvClock) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  env_.now = kStartMicros + 1'500'000;
  ASSERT_TRUE(writer->AddScalar("acc", 3, 0.5f).ok());
  ASSERT_TRUE(writer->Close().ok());
  EXPECT_EQ(ReadEvents(writer->path())[1].wall_time(), 1700000001.75);
}

TEST_F(EventWriterTest, HistogramRecordsMomentsAndBuckets) {
  EventWriter::Options options;
  options.histogram_buckets = 2;
  auto writer = NewWriter(options);
  ASSERT_NE(writer, nullptr);
  const std::vector<float> values = {4, 0, 3, 1, 2};
  ASSERT_TRUE(writer->AddHistogram("weights/dense", 9, values, 1700000009.0).ok());
  ASSERT_TRUE(writer->Close().ok());

  std::vector<tensorflow::Event> events = ReadEvents(writer->path());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].step(), 9);
  const tensorflow::Summary::Value& v = events[1].summary().value(0);
  EXPECT_EQ(v.tag(), "weights/dense");
  ASSERT_TRUE(v.has_histo());
  const tensorflow::HistogramProto& h = v.histo();
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 4);
  EXPECT_EQ(h.num(), 5);
  EXPECT_EQ(h.sum(), 10);
  EXPECT_EQ(h.sum_squares(), 30);
  // [0, 2) holds 0 and 1; [2, 4] holds 2, 3 and 4.
  EXPECT_THAT(h.bucket_limit(), ElementsAre(2.0, 4.0));
  EXPECT_THAT(h.bucket(), ElementsAre(2.0, 3.0));
}

TEST(EventWriterHistogramTest, EqualValuesMakeOneBucket) {
  const std::vector<float> values = {1.5f, 1.5f, 1.5f};
  tensorflow::HistogramProto h = MakeHistogram(values, 30);
  EXPECT_EQ(h.min(), 1.5);
  EXPECT_EQ(h.max(), 1.5);
  EXPECT_EQ(h.num(), 3);
  EXPECT_EQ(h.sum(), 4.5);
  EXPECT_EQ(h.sum_squares(), 6.75);
  EXPECT_THAT(h.bucket_limit(), ElementsAre(1.5));
  EXPECT_THAT(h.bucket(), ElementsAre(3.0));
}

TEST(EventWriterHistogramTest, NonFiniteValuesAreLeftOut) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> values = {std::nanf(""), -1.0f, inf, 1.0f, -inf};
  tensorflow::HistogramProto h = MakeHistogram(values, 4);
  EXPECT_EQ(h.min(), -1);
  EXPECT_EQ(h.max(), 1);
  EXPECT_EQ(h.num(), 2);
  EXPECT_EQ(h.sum(), 0);
  EXPECT_EQ(h.sum_squares(), 2);
  EXPECT_THAT(h.bucket_limit(), ElementsAre(-0.5, 0.0, 0.5, 1.0));
  EXPECT_THAT(h.bucket(), ElementsAre(1.0, 0.0, 0.0, 1.0));
}

TEST(EventWriterHistogramTest, NoFiniteValuesMakeAnEmptyHistogram) {
  EXPECT_EQ(MakeHistogram({}, 30).ByteSizeLong(), 0u);
  const std::vector<float> nan = {std::nanf("")};
  EXPECT_EQ(MakeHistogram(nan, 30).num(), 0);
  EXPECT_EQ(MakeHistogram(nan, 30).bucket_size(), 0);
}

TEST(EventWriterHistogramTest, CountsAddUpAndEdgesRise) {
  std::vector<float> values;
  for (int i = 0; i < 1000; ++i) values.push_back(std::sin(static_cast<float>(i)) * 3.0f);
  tensorflow::HistogramProto h = MakeHistogram(values, 30);
  ASSERT_EQ(h.bucket_size(), 30);
  ASSERT_EQ(h.bucket_limit_size(), 30);
  double total = 0;
  for (int i = 0; i < 30; ++i) {
    total += h.bucket(i);
    if (i > 0) {
      EXPECT_LT(h.bucket_limit(i - 1), h.bucket_limit(i));
    }
  }
  EXPECT_EQ(total, 1000);
  EXPECT_EQ(h.bucket_limit(29), h.max());
  EXPECT_GT(h.bucket(0), 0);   // min is in the first bucket
  EXPECT_GT(h.bucket(29), 0);  // max is in the last
}

TEST_F(EventWriterTest, HparamsSessionStartAndEndCarryPluginData) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  std::map<std::string, HparamValue> hparams = {
      {"learning_rate", 0.01}, {"optimizer", std::string("adam")}, {"batch_norm", true}};
  ASSERT_TRUE(writer->WriteHparamsSessionStart(hparams, "group-1", 1700000000.5).ok());
  ASSERT_TRUE(
      writer->WriteHparamsSessionEnd(tensorboard::hparams::STATUS_SUCCESS, 1700000100.0).ok());
  ASSERT_TRUE(writer->Close().ok());

  std::vector<tensorflow::Event> events = ReadEvents(writer->path());
  ASSERT_EQ(events.size(), 3u);
  for (int i : {1, 2}) {
    const tensorflow::Summary::Value& v = events[i].summary().value(0);
    EXPECT_EQ(events[i].step(), 0);
    EXPECT_EQ(v.metadata().plugin_data().plugin_name(), "hparams");
    // The empty float vector TensorBoard's hparams writer uses.
    EXPECT_EQ(v.tensor().dtype(), tensorflow::DT_FLOAT);
    ASSERT_EQ(v.tensor().tensor_shape().dim_size(), 1);
    EXPECT_EQ(v.tensor().tensor_shape().dim(0).size(), 0);
  }

  const tensorflow::Summary::Value& start = events[1].summary().value(0);
  EXPECT_EQ(start.tag(), "_hparams_/session_start_info");
  EXPECT_EQ(events[1].wall_time(), 1700000000.5);
  tensorboard::hparams::HParamsPluginData data;
  ASSERT_TRUE(data.ParseFromString(start.metadata().plugin_data().content()));
  EXPECT_EQ(data.version(), 0);
  ASSERT_TRUE(data.has_session_start_info());
  const auto& info = data.session_start_info();
  EXPECT_EQ(info.group_name(), "group-1");
  EXPECT_EQ(info.start_time_secs(), 1700000000.5);
  ASSERT_EQ(info.hparams_size(), 3);
  EXPECT_EQ(info.hparams().at("learning_rate").number_value(), 0.01);
  EXPECT_EQ(info.hparams().at("optimizer").string_value(), "adam");
  EXPECT_TRUE(info.hparams().at("batch_norm").has_bool_value());
  EXPECT_TRUE(info.hparams().at("batch_norm").bool_value());

  const tensorflow::Summary::Value& end = events[2].summary().value(0);
  EXPECT_EQ(end.tag(), "_hparams_/session_end_info");
  ASSERT_TRUE(data.ParseFromString(end.metadata().plugin_data().content()));
  ASSERT_TRUE(data.has_session_end_info());
  EXPECT_EQ(data.session_end_info().status(), tensorboard::hparams::STATUS_SUCCESS);
  EXPECT_EQ(data.session_end_info().end_time_secs(), 1700000100.0);
}

TEST_F(EventWriterTest, HparamsExperimentIsWrittenAsGiven) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  tensorboard::hparams::Experiment experiment;
  tensorboard::hparams::HParamInfo* lr = experiment.add_hparam_infos();
  lr->set_name("learning_rate");
  lr->set_type(tensorboard::hparams::DATA_TYPE_FLOAT64);
  lr->mutable_domain_interval()->set_min_value(1e-4);
  lr->mutable_domain_interval()->set_max_value(1e-1);
  experiment.add_metric_infos()->mutable_name()->set_tag("loss");
  ASSERT_TRUE(writer->WriteHparamsExperiment(experiment, 1700000000.0).ok());
  ASSERT_TRUE(writer->Close().ok());

  std::vector<tensorflow::Event> events = ReadEvents(writer->path());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].step(), 0);
  EXPECT_EQ(events[1].wall_time(), 1700000000.0);
  const tensorflow::Summary::Value& v = events[1].summary().value(0);
  EXPECT_EQ(v.tag(), "_hparams_/experiment");
  EXPECT_EQ(v.metadata().plugin_data().plugin_name(), "hparams");
  tensorboard::hparams::HParamsPluginData data;
  ASSERT_TRUE(data.ParseFromString(v.metadata().plugin_data().content()));
  EXPECT_EQ(data.version(), 0);
  ASSERT_TRUE(data.has_experiment());
  EXPECT_EQ(data.experiment().SerializeAsString(), experiment.SerializeAsString());
}

TEST_F(EventWriterTest, InvalidArgumentsAreRejectedAndNothingIsWritten) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  EXPECT_EQ(writer->AddScalar("", 0, 1.0f, 1.0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(writer->AddHistogram("", 0, {}, 1.0).code(), absl::StatusCode::kInvalidArgument);
  absl::Status s = writer->WriteHparamsSessionStart({{"lr", std::nan("")}}, "", 1.0);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'lr'"));
  EXPECT_EQ(writer->WriteHparamsSessionStart({{"", 1.0}}, "", 1.0).code(),
            absl::StatusCode::kInvalidArgument);
  // The writer is still usable.
  ASSERT_TRUE(writer->AddScalar("ok", 1, 2.0f, 1.0).ok());
  ASSERT_TRUE(writer->Close().ok());
  std::vector<tensorflow::Event> events = ReadEvents(writer->path());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].summary().value(0).tag(), "ok");
}

TEST_F(EventWriterTest, BadOptionsAreInvalidArgument) {
  EventWriter::Options options;
  options.histogram_buckets = 0;
  EXPECT_EQ(EventWriter::Create(&env_, logdir_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = {};
  options.hostname = "a/b";
  EXPECT_EQ(EventWriter::Create(&env_, logdir_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(env_.FileExists(logdir_));
}

TEST_F(EventWriterTest, LogdirThatIsAFileFailsCreate) {
  std::string file = dir_.Write("not-a-dir", "x");
  auto writer = EventWriter::Create(&env_, file + "/logs");
  EXPECT_FALSE(writer.ok());
}

TEST_F(EventWriterTest, RecordsWaitInMemoryUntilFlush) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  const int syncs_before = env_.syncs;
  ASSERT_TRUE(writer->AddScalar("loss", 0, 1.0f, 1.0).ok());
  ASSERT_TRUE(writer->AddScalar("loss", 1, 0.5f, 2.0).ok());
  EXPECT_EQ(ReadEvents(writer->path()).size(), 1u);
  ASSERT_TRUE(writer->Flush().ok());
  EXPECT_EQ(env_.syncs, syncs_before + 1);  // Flush makes the records durable
  EXPECT_EQ(ReadEvents(writer->path()).size(), 3u);
}

TEST_F(EventWriterTest, OldPendingRecordsAreHandedOverWithTheNextOne) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->AddScalar("loss", 0, 1.0f, 1.0).ok());
  env_.now += 9'999'999;
  ASSERT_TRUE(writer->AddScalar("loss", 1, 1.0f, 1.0).ok());
  EXPECT_EQ(ReadEvents(writer->path()).size(), 1u);
  env_.now += 1;  // the first pending record is now 10 s old
  ASSERT_TRUE(writer->AddScalar("loss", 2, 1.0f, 1.0).ok());
  EXPECT_EQ(ReadEvents(writer->path()).size(), 4u);
}

TEST_F(EventWriterTest, FullBufferIsHandedOver) {
  EventWriter::Options options;
  options.max_pending_bytes = 1;
  auto writer = NewWriter(options);
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->AddScalar("loss", 0, 1.0f, 1.0).ok());
  EXPECT_EQ(ReadEvents(writer->path()).size(), 2u);
}

TEST_F(EventWriterTest, DestructorWritesPendingRecords) {
  std::string path;
  {
    auto writer = NewWriter();
    ASSERT_NE(writer, nullptr);
    path = writer->path();
    ASSERT_TRUE(writer->AddScalar("loss", 0, 1.0f, 1.0).ok());
  }
  EXPECT_EQ(ReadEvents(path).size(), 2u);
}

TEST_F(EventWriterTest, CloseIsIdempotentAndLaterWritesFail) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Close().ok());
  ASSERT_TRUE(writer->Close().ok());
  EXPECT_EQ(writer->AddScalar("x", 0, 1.0f, 1.0).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(writer->Flush().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(writer->WriteHparamsSessionEnd(tensorboard::hparams::STATUS_FAILURE, 1.0).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(EventWriterTest, FailedWriteStopsTheWriterAndKeepsEarlierRecords) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->AddScalar("loss", 0, 1.0f, 1.0).ok());
  ASSERT_TRUE(writer->Flush().ok());
  ASSERT_TRUE(writer->AddScalar("loss", 1, 0.5f, 2.0).ok());
  env_.fail_append = true;
  absl::Status s = writer->Flush();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  env_.fail_append = false;
  // Sticky: nothing more goes after the torn record, even once the disk has room.
  const int appends = env_.appends;
  EXPECT_EQ(writer->AddScalar("loss", 2, 0.25f, 3.0).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(writer->Flush().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(writer->Close().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(env_.appends, appends);

  bool torn = false;
  std::vector<tensorflow::Event> events = ReadEvents(writer->path(), &torn);
  EXPECT_TRUE(torn);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].step(), 0);
}

TEST_F(EventWriterTest, FailedSyncIsReportedAndSticky) {
  auto writer = NewWriter();
  ASSERT_NE(writer, nullptr);
  env_.fail_sync = true;
  EXPECT_EQ(writer->Flush().code(), absl::StatusCode::kDataLoss);
  env_.fail_sync = false;
  EXPECT_EQ(writer->AddScalar("x", 0, 1.0f, 1.0).code(), absl::StatusCode::kDataLoss);
}

TEST_F(EventWriterTest, ConcurrentWritersKeepEveryRecordWhole) {
  EventWriter::Options options;
  options.max_pending_bytes = 256;  // hand over often while other threads add
  auto writer = NewWriter(options);
  ASSERT_NE(writer, nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&writer, t] {
      for (int step = 0; step < 200; ++step) {
        ASSERT_TRUE(
            writer->AddScalar(kiln::StrCat("t", t), step, static_cast<float>(step), 1.0).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(writer->Close().ok());
  std::vector<tensorflow::Event> events = ReadEvents(writer->path());
  ASSERT_EQ(events.size(), 1u + 4 * 200);
  std::map<std::string, int64_t> next_step;
  for (size_t i = 1; i < events.size(); ++i) {
    const auto& v = events[i].summary().value(0);
    EXPECT_EQ(events[i].step(), next_step[v.tag()]++) << v.tag();  // per-thread order kept
  }
}

}  // namespace
}  // namespace kiln::observe
