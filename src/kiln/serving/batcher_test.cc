#include "kiln/serving/batcher.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/data/batch.h"

namespace kiln::serving {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// ---- data::AppendRows (src/kiln/data has no batch_test.cc) ----

data::Batch MixedBatch() {
  data::Batch b;
  b.columns.resize(3);
  b.columns[0].name = "i";
  b.columns[0].type = data::ValueType::kInt;
  b.columns[1].name = "f";
  b.columns[1].type = data::ValueType::kFloat;
  b.columns[2].name = "s";
  b.columns[2].type = data::ValueType::kString;
  // row 0: i=[1], f missing, s=["a","bc"]
  b.columns[0].AddInt(1);
  b.columns[1].AddMissing();
  b.columns[2].PushString("a");
  b.columns[2].PushString("bc");
  b.columns[2].EndRow(2);
  // row 1: i=[2,3], f=[0.5], s=[]
  b.columns[0].ints.push_back(2);
  b.columns[0].ints.push_back(3);
  b.columns[0].EndRow(2);
  b.columns[1].AddFloat(0.5);
  b.columns[2].EndRow(0);
  // row 2: i missing, f=[1.5], s=["def"]
  b.columns[0].AddMissing();
  b.columns[1].AddFloat(1.5);
  b.columns[2].AddString("def");
  b.num_rows = 3;
  b.row_positions = {10, 11, 12};
  return b;
}

// Row `r` of `c` as text, e.g. "[2,3]" or "-" for missing.
std::string RowText(const data::Column& c, size_t r) {
  if (!c.is_present(r)) return "-";
  std::string out = "[";
  for (uint32_t i = c.offsets[r]; i < c.offsets[r + 1]; ++i) {
    if (i > c.offsets[r]) out += ",";
    switch (c.type) {
      case data::ValueType::kInt:
        out += std::to_string(c.ints[i]);
        break;
      case data::ValueType::kFloat:
        out += std::to_string(c.floats[i]).substr(0, 3);
        break;
      case data::ValueType::kString:
        out += std::string(c.str(i));
        break;
    }
  }
  return out + "]";
}

std::vector<std::string> Rows(const data::Batch& b) {
  std::vector<std::string> rows;
  for (size_t r = 0; r < b.num_rows; ++r) {
    std::string row;
    for (const data::Column& c : b.columns) row += RowText(c, r) + " ";
    rows.push_back(row);
  }
  return rows;
}

TEST(AppendRowsTest, EmptyTargetTakesColumnsAndRowsKeepTheirValues) {
  data::Batch from = MixedBatch();
  data::Batch to;
  ASSERT_TRUE(data::AppendRows(from, &to).ok());
  EXPECT_EQ(to.num_rows, 3u);
  EXPECT_TRUE(data::SameColumns(from, to));
  EXPECT_THAT(Rows(to), ElementsAreArray(Rows(from)));
  EXPECT_THAT(to.row_positions, ElementsAre(10, 11, 12));
}

TEST(AppendRowsTest, RangeAppendsAfterExistingRows) {
  data::Batch from = MixedBatch();
  data::Batch to;
  ASSERT_TRUE(data::AppendRows(from, 2, 3, &to).ok());
  ASSERT_TRUE(data::AppendRows(from, 0, 2, &to).ok());
  ASSERT_TRUE(data::AppendRows(from, 1, 1, &to).ok());  // empty range
  EXPECT_THAT(Rows(to), ElementsAre("- [1.5] [def] ", "[1] - [a,bc] ", "[2,3] [0.5] [] "));
  EXPECT_THAT(to.row_positions, ElementsAre(12, 10, 11));
  EXPECT_THAT(to.columns[2].str_offsets, ElementsAre(0, 3, 4, 6));
}

TEST(AppendRowsTest, RowPositionsAreDroppedWhenOneSideHasNone) {
  data::Batch from = MixedBatch();
  data::Batch bare = MixedBatch();
  bare.row_positions.clear();
  data::Batch to;
  ASSERT_TRUE(data::AppendRows(from, &to).ok());
  ASSERT_TRUE(data::AppendRows(bare, &to).ok());
  EXPECT_TRUE(to.row_positions.empty());
  ASSERT_TRUE(data::AppendRows(from, &to).ok());
  EXPECT_TRUE(to.row_positions.empty());
  EXPECT_EQ(to.num_rows, 9u);
}

TEST(AppendRowsTest, DifferentColumnsOrBadRangeAreRefusedAndLeaveTargetAlone) {
  data::Batch from = MixedBatch();
  data::Batch to;
  ASSERT_TRUE(data::AppendRows(from, 0, 1, &to).ok());
  data::Batch other = MixedBatch();
  other.columns[1].type = data::ValueType::kString;
  absl::Status s = data::AppendRows(other, &to);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("f:STRING"));
  other = MixedBatch();
  other.columns[0].name = "j";
  EXPECT_EQ(data::AppendRows(other, &to).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(data::AppendRows(from, 2, 4, &to).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(data::AppendRows(from, 2, 1, &to).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(to.num_rows, 1u);
  EXPECT_THAT(Rows(to), ElementsAre("[1] - [a,bc] "));
}

// ---- ParseBatchingParameters ----

TEST(ParseBatchingParametersTest, ReadsTfServingExample) {
  // The example from TF Serving's batching guide.
  auto o = ParseBatchingParameters(
      "max_batch_size { value: 128 }\n"
      "batch_timeout_micros { value: 0 }\n"
      "max_enqueued_batches { value: 1000000 }\n"
      "num_batch_threads { value: 8 }\n");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->max_batch_size, 128);
  EXPECT_EQ(o->batch_timeout_micros, 0);
  EXPECT_EQ(o->max_enqueued_batches, 1000000);
  EXPECT_EQ(o->num_batch_threads, 8);
  EXPECT_TRUE(o->allowed_batch_sizes.empty());
  EXPECT_FALSE(o->pad_variable_length_inputs);
}

TEST(ParseBatchingParametersTest, ReadsEveryFieldCommentsAndAlternativeSyntax) {
  auto o = ParseBatchingParameters(
      "# kiln serve batching\n"
      "max_batch_size: { value: 0x40 }  # hex, as protobuf reads it\n"
      "batch_timeout_micros < value: 5000 >,\n"
      "thread_pool_name { value: \"batch_threads\" };\n"
      "allowed_batch_sizes: 8\n"
      "allowed_batch_sizes: [16, 32]\n"
      "allowed_batch_sizes: 64\n"
      "pad_variable_length_inputs: true\n");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->max_batch_size, 64);
  EXPECT_EQ(o->batch_timeout_micros, 5000);
  EXPECT_THAT(o->allowed_batch_sizes, ElementsAre(8, 16, 32, 64));
  EXPECT_TRUE(o->pad_variable_length_inputs);
  // Fields left out keep the defaults.
  BatchingOptions defaults;
  EXPECT_EQ(o->max_enqueued_batches, defaults.max_enqueued_batches);
  EXPECT_EQ(o->num_batch_threads, defaults.num_batch_threads);
}

TEST(ParseBatchingParametersTest, EmptyTextGivesDefaults) {
  auto o = ParseBatchingParameters("  # nothing set\n\n");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->max_batch_size, 32);
  EXPECT_EQ(o->batch_timeout_micros, 1000);
  EXPECT_EQ(o->max_enqueued_batches, 16);
  EXPECT_EQ(o->num_batch_threads, DefaultNumBatchThreads());
}

void ExpectError(std::string_view text, std::string_view message) {
  auto o = ParseBatchingParameters(text);
  ASSERT_FALSE(o.ok()) << "accepted: " << text;
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(o.status().message()), std::string(message)) << text;
}

TEST(ParseBatchingParametersTest, SyntaxErrorsNameTheLine) {
  ExpectError("max_batch_size { value: 8 }\nmax_batch_sise { value: 8 }\n",
              "batching parameters line 2: unknown field 'max_batch_sise'; BatchingParameters "
              "has max_batch_size, batch_timeout_micros, max_enqueued_batches, "
              "num_batch_threads, thread_pool_name, allowed_batch_sizes, "
              "pad_variable_length_inputs");
  ExpectError("# a comment\nmax_batch_size: 128\n",
              "batching parameters line 2: max_batch_size is a google.protobuf.Int64Value: "
              "write max_batch_size { value: 128 }");
  ExpectError("max_batch_size { value: 8 }\n\nmax_batch_size { value: 16 }",
              "batching parameters line 3: max_batch_size is set twice (first on line 1)");
  ExpectError("max_batch_size {\n  value: 8\n  value: 9\n}",
              "batching parameters line 3: max_batch_size.value is set twice (first on line 2)");
  ExpectError("max_batch_size { size: 8 }",
              "batching parameters line 1: unknown field 'size' in max_batch_size (a "
              "google.protobuf.Int64Value has only 'value')");
  ExpectError("max_batch_size { value: 8\n",
              "batching parameters line 2: expected 'value' or '}', got end of input");
  ExpectError("batch_timeout_micros { value: 1.5 }",
              "batching parameters line 1: 1.5 is not a 64-bit integer");
  ExpectError("max_enqueued_batches { value: 99999999999999999999 }",
              "batching parameters line 1: 99999999999999999999 is not a 64-bit integer");
  ExpectError("\n\nallowed_batch_sizes: [8 16]",
              "batching parameters line 3: expected ',' or ']', got '16'");
  ExpectError("pad_variable_length_inputs: maybe",
              "batching parameters line 1: expected true or false, got 'maybe'");
  ExpectError("thread_pool_name { value: \"x }\n",
              "batching parameters line 1: unterminated string");
  ExpectError("max_batch_size { value: 8 } $",
              "batching parameters line 1: unexpected character '$'");
}

TEST(ParseBatchingParametersTest, InvalidValuesNameTheLineThatSetThem) {
  ExpectError("max_batch_size { value: 8 }\nmax_enqueued_batches { value: 0 }",
              "batching parameters line 2: max_enqueued_batches must be at least 1, got 0");
  ExpectError("max_batch_size {\n value: -4\n}",
              "batching parameters line 2: max_batch_size must be at least 1, got -4");
  ExpectError("max_batch_size {}",
              "batching parameters line 1: max_batch_size must be at least 1, got 0");
  ExpectError("batch_timeout_micros { value: -1 }",
              "batching parameters line 1: batch_timeout_micros must be at least 0, got -1");
  ExpectError("num_batch_threads { value: 0 }",
              "batching parameters line 1: num_batch_threads must be in [1, 1024], got 0");
  ExpectError("num_batch_threads { value: 5000000000 }",
              "batching parameters line 1: num_batch_threads must be in [1, 1024], got 5000000000");
  ExpectError("max_batch_size { value: 64 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 8\n",
              "batching parameters line 3: allowed_batch_sizes must increase: 8 follows 8");
  ExpectError("max_batch_size { value: 64 }\nallowed_batch_sizes: [8,\n 32]\n",
              "batching parameters line 3: the last of allowed_batch_sizes (32) must equal "
              "max_batch_size (64)");
  // max_batch_size left at its default of 32.
  ExpectError("allowed_batch_sizes: 16",
              "batching parameters line 1: the last of allowed_batch_sizes (16) must equal "
              "max_batch_size (32)");
}

TEST(BatcherCreateTest, RejectsInvalidOptions) {
  BatchingOptions o;
  o.max_batch_size = 8;
  o.allowed_batch_sizes = {4};
  auto b = Batcher::Create(o, "model m");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(b.status().message()),
            "batching options: the last of allowed_batch_sizes (4) must equal max_batch_size (8)");
  o = BatchingOptions();
  o.num_batch_threads = 0;
  EXPECT_EQ(Batcher::Create(o, "model m").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateBatchingOptions(BatchingOptions()).ok());
}

// ---- Batcher ----

// Rows with one int column "id".
data::Batch IdRows(const std::vector<int64_t>& ids, std::string column = "id") {
  data::Batch b;
  b.columns.resize(1);
  b.columns[0].name = std::move(column);
  b.columns[0].type = data::ValueType::kInt;
  for (int64_t id : ids) b.columns[0].AddInt(id);
  b.num_rows = ids.size();
  return b;
}

// Two scores per row, derived from the row's id, so a row scored in someone else's place
// is caught.
std::vector<float> Expected(const std::vector<int64_t>& ids) {
  std::vector<float> out;
  for (int64_t id : ids) {
    out.push_back(static_cast<float>(id));
    out.push_back(static_cast<float>(id) + 0.5f);
  }
  return out;
}

absl::Status FakePredict(const data::Batch& rows, std::vector<float>* scores) {
  if (rows.columns.size() != 1) return absl::InvalidArgumentError("expected one column");
  *scores = Expected(rows.columns[0].ints);
  return absl::OkStatus();
}

// Records what a predict function and the observer saw.
struct Recorder {
  std::mutex mu;
  std::vector<size_t> predict_rows;
  std::vector<BatchInfo> infos;

  Batcher::PredictFn Predict() {
    return [this](const data::Batch& rows, std::vector<float>* scores) {
      {
        std::lock_guard<std::mutex> l(mu);
        predict_rows.push_back(rows.num_rows);
      }
      return FakePredict(rows, scores);
    };
  }
  BatchObserver Observer() {
    return [this](const BatchInfo& info) {
      std::lock_guard<std::mutex> l(mu);
      infos.push_back(info);
    };
  }
};

// Polls `done` until it holds or 5s pass.
template <typename F>
bool WaitFor(F done) {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::unique_ptr<Batcher> MakeBatcher(BatchingOptions o, BatchObserver observer = nullptr) {
  auto b = Batcher::Create(std::move(o), "model test", std::move(observer));
  EXPECT_TRUE(b.ok()) << b.status();
  return std::move(b).value();
}

TEST(BatcherTest, ConcurrentCallersGetExactlyTheirOwnScores) {
  BatchingOptions o;
  o.max_batch_size = 8;
  o.batch_timeout_micros = 2000;
  o.num_batch_threads = 2;
  o.max_enqueued_batches = 1000;
  Recorder rec;
  auto batcher = MakeBatcher(o, rec.Observer());
  const int kThreads = 12, kRequests = 25;
  std::atomic<int> failures{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kRequests; ++i) {
        std::vector<int64_t> ids;
        const int n = 1 + (t + i) % 11;  // 1..11 rows: some are split (max 8)
        for (int r = 0; r < n; ++r) ids.push_back(t * 100000 + i * 100 + r);
        data::Batch rows = IdRows(ids);
        std::vector<float> scores;
        absl::Status s = batcher->Run(&rec, rec.Predict(), rows, &scores);
        if (!s.ok() || scores != Expected(ids)) failures.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::lock_guard<std::mutex> l(rec.mu);
  int64_t rows = 0;
  for (size_t n : rec.predict_rows) {
    EXPECT_LE(n, 8u);
    rows += static_cast<int64_t>(n);
  }
  int64_t want_rows = 0;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kRequests; ++i) want_rows += 1 + (t + i) % 11;
  EXPECT_EQ(rows, want_rows);
  BatcherStats stats = batcher->stats();
  EXPECT_EQ(stats.rows_run, want_rows);
  EXPECT_EQ(stats.batches_run, static_cast<int64_t>(rec.predict_rows.size()));
  EXPECT_EQ(stats.queued_batches, 0);
  EXPECT_EQ(stats.requests_refused, 0);
  EXPECT_EQ(rec.infos.size(), rec.predict_rows.size());
}

TEST(BatcherTest, ConcurrentRequestsMerge) {
  BatchingOptions o;
  o.max_batch_size = 32;
  o.batch_timeout_micros = 50000;
  o.num_batch_threads = 1;
  Recorder rec;
  auto batcher = MakeBatcher(o, rec.Observer());
  std::latch start(8);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      std::vector<float> scores;
      absl::Status s = batcher->Run(&rec, rec.Predict(), IdRows({t}), &scores);
      if (!s.ok() || scores != Expected({t})) failures.fetch_add(1);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::lock_guard<std::mutex> l(rec.mu);
  EXPECT_GT(*std::max_element(rec.predict_rows.begin(), rec.predict_rows.end()), 1u);
  EXPECT_LT(rec.predict_rows.size(), 8u);
  int64_t requests = 0;
  for (const BatchInfo& info : rec.infos) {
    EXPECT_EQ(info.key, &rec);
    EXPECT_EQ(info.rows, info.requests);  // one row per request
    EXPECT_EQ(info.padded_rows, info.rows);
    EXPECT_TRUE(info.ok);
    requests += info.requests;
  }
  EXPECT_EQ(requests, 8);
}

TEST(BatcherTest, DifferentKeysNeverShareABatch) {
  BatchingOptions o;
  o.max_batch_size = 16;
  o.batch_timeout_micros = 5000;
  o.num_batch_threads = 2;
  o.max_enqueued_batches = 1000;
  // Key k's ids are k*1000 + i; its predict fails on a row of another key.
  int keys[3];
  auto predict_for = [](int64_t k) -> Batcher::PredictFn {
    return [k](const data::Batch& rows, std::vector<float>* scores) {
      for (int64_t id : rows.columns[0].ints) {
        if (id / 1000 != k) return absl::InternalError("rows of two keys mixed");
      }
      return FakePredict(rows, scores);
    };
  };
  std::set<const void*> observed_keys;
  std::mutex mu;
  auto batcher = MakeBatcher(o, [&](const BatchInfo& info) {
    std::lock_guard<std::mutex> l(mu);
    observed_keys.insert(info.key);
  });
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  std::latch start(9);
  for (int t = 0; t < 9; ++t) {
    threads.emplace_back([&, t] {
      const int k = t % 3;
      Batcher::PredictFn predict = predict_for(k);
      start.arrive_and_wait();
      for (int i = 0; i < 30; ++i) {
        std::vector<int64_t> ids = {k * 1000 + t * 40 + i, k * 1000 + t * 40 + i};
        std::vector<float> scores;
        absl::Status s = batcher->Run(&keys[k], predict, IdRows(ids), &scores);
        if (!s.ok() || scores != Expected(ids)) failures.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(observed_keys, (std::set<const void*>{&keys[0], &keys[1], &keys[2]}));
}

TEST(BatcherTest, RequestsWithOtherColumnsStartTheirOwnBatch) {
  BatchingOptions o;
  o.batch_timeout_micros = 200000;
  o.num_batch_threads = 1;
  std::latch gate(1);
  std::atomic<int> calls{0};
  Batcher::PredictFn predict = [&](const data::Batch& rows, std::vector<float>* scores) {
    if (calls.fetch_add(1) == 0) gate.wait();
    return FakePredict(rows, scores);
  };
  auto batcher = MakeBatcher(o);
  int key;
  std::vector<float> s0, s1, s2;
  auto first =
      std::async(std::launch::async, [&] { return batcher->Run(&key, predict, IdRows({1}), &s0); });
  ASSERT_TRUE(WaitFor([&] { return batcher->stats().running_batches == 1; }));
  auto a = std::async(std::launch::async,
                      [&] { return batcher->Run(&key, predict, IdRows({2}, "id"), &s1); });
  ASSERT_TRUE(WaitFor([&] { return batcher->stats().queued_rows == 1; }));
  auto b = std::async(std::launch::async,
                      [&] { return batcher->Run(&key, predict, IdRows({3}, "other"), &s2); });
  ASSERT_TRUE(WaitFor([&] { return batcher->stats().queued_rows == 2; }));
  EXPECT_EQ(batcher->stats().queued_batches, 2);
  EXPECT_EQ(batcher->stats().open_batches, 1);
  gate.count_down();
  EXPECT_TRUE(first.get().ok());
  EXPECT_TRUE(a.get().ok());
  EXPECT_TRUE(b.get().ok());
  EXPECT_EQ(s1, Expected({2}));
  EXPECT_EQ(s2, Expected({3}));
  EXPECT_EQ(calls.load(), 3);
}

TEST(BatcherTest, FullQueueRefusesAtOnce) {
  BatchingOptions o;
  o.max_batch_size = 2;
  o.batch_timeout_micros = 0;
  o.num_batch_threads = 1;
  o.max_enqueued_batches = 2;
  std::latch gate(1);
  std::atomic<int> calls{0};
  Batcher::PredictFn predict = [&](const data::Batch& rows, std::vector<float>* scores) {
    if (calls.fetch_add(1) == 0) gate.wait();
    return FakePredict(rows, scores);
  };
  auto batcher = MakeBatcher(o);
  int key, other_key;
  std::vector<std::future<std::vector<float>>> callers;
  auto call = [&](std::vector<int64_t> ids) {
    return std::async(std::launch::async, [&, ids] {
      std::vector<float> scores;
      absl::Status s = batcher->Run(&key, predict, IdRows(ids), &scores);
      EXPECT_TRUE(s.ok()) << s;
      return scores;
    });
  };
  // The one worker blocks in predict on the first batch.
  callers.push_back(call({1}));
  ASSERT_TRUE(WaitFor([&] { return batcher->stats().running_batches == 1; }));
  // A full batch (closed), then an open one: two batches accepted, the limit.
  callers.push_back(call({2, 3}));
  ASSERT_TRUE(WaitFor([&] { return batcher->stats().queued_rows == 2; }));
  callers.push_back(call({4}));
  ASSERT_TRUE(WaitFor([&] { return batcher->stats().queued_rows == 3; }));
  BatcherStats stats = batcher->stats();
  EXPECT_EQ(stats.queued_batches, 2);
  EXPECT_EQ(stats.open_batches, 1);

  // One more row still fits the open batch...
  callers.push_back(call({5}));
  ASSERT_TRUE(WaitFor([&] { return batcher->stats().queued_rows == 4; }));
  // ...but a third batch does not: refused at once.
  std::vector<float> scores;
  const auto before = Clock::now();
  absl::Status s = batcher->Run(&key, predict, IdRows({6}), &scores);
  EXPECT_LT(Clock::now() - before, std::chrono::milliseconds(50));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(std::string(s.message()),
            "the batch queue of model test is full: 2 batches waiting (max_enqueued_batches 2); "
            "retry later");
  EXPECT_EQ(batcher->stats().requests_refused, 1);
  // The limit is per key: another key is still accepted.
  auto other = std::async(std::launch::async, [&] {
    std::vector<float> out;
    absl::Status st = batcher->Run(&other_key, predict, IdRows({7}), &out);
    return st.ok() ? out : std::vector<float>{};
  });
  ASSERT_TRUE(WaitFor([&] { return batcher->stats().queued_batches == 3; }));

  gate.count_down();
  EXPECT_EQ(callers[0].get(), Expected({1}));
  EXPECT_EQ(callers[1].get(), Expected({2, 3}));
  EXPECT_EQ(callers[2].get(), Expected({4}));
  EXPECT_EQ(callers[3].get(), Expected({5}));
  EXPECT_EQ(other.get(), Expected({7}));
  EXPECT_EQ(calls.load(), 4);
  // Room again.
  EXPECT_TRUE(batcher->Run(&key, predict, IdRows({6}), &scores).ok());
  EXPECT_EQ(scores, Expected({6}));
}

TEST(BatcherTest, PredictErrorGoesToEveryRequestOfTheBatch) {
  BatchingOptions o;
  o.max_batch_size = 8;
  o.batch_timeout_micros = 0;
  o.num_batch_threads = 1;
  std::latch gate(1);
  std::atomic<int> calls{0};
  Batcher::PredictFn predict = [&](const data::Batch& rows, std::vector<float>* scores) {
    if (calls.fetch_add(1) == 0) gate.wait();
    for (int64_t id : rows.columns[0].ints)
      if (id == 13) return absl::InvalidArgumentError("row 13 is bad");
    return FakePredict(rows, scores);
  };
  Recorder rec;
  auto batcher = MakeBatcher(o, rec.Observer());
  int key;
  std::vector<float> first_scores;
  auto first = std::async(std::launch::async,
                          [&] { return batcher->Run(&key, predict, IdRows({1}), &first_scores); });
  ASSERT_TRUE(WaitFor([&] { return batcher->stats().running_batches == 1; }));
  // Three requests wait in one open batch; one of them has the bad row.
  std::vector<std::future<absl::Status>> waiting;
  const std::vector<std::vector<int64_t>> ids = {{11, 12}, {13}, {14}};
  std::vector<std::vector<float>> scores(3, std::vector<float>{-1});
  for (int i = 0; i < 3; ++i) {
    waiting.push_back(std::async(std::launch::async, [&, i] {
      return batcher->Run(&key, predict, IdRows(ids[i]), &scores[i]);
    }));
    ASSERT_TRUE(WaitFor([&] { return batcher->stats().queued_rows == 2 + i; }));
  }
  EXPECT_EQ(batcher->stats().queued_batches, 1);
  gate.count_down();
  EXPECT_TRUE(first.get().ok());
  EXPECT_EQ(first_scores, Expected({1}));
  for (int i = 0; i < 3; ++i) {
    absl::Status s = waiting[i].get();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << i;
    EXPECT_EQ(std::string(s.message()), "row 13 is bad");
    EXPECT_EQ(scores[i], std::vector<float>{-1}) << "scores are untouched on error";
  }
  std::lock_guard<std::mutex> l(rec.mu);
  ASSERT_EQ(rec.infos.size(), 2u);
  EXPECT_TRUE(rec.infos[0].ok);
  EXPECT_FALSE(rec.infos[1].ok);
  EXPECT_EQ(rec.infos[1].rows, 4);
  EXPECT_EQ(rec.infos[1].requests, 3);
}

TEST(BatcherTest, WrongScoreCountIsInternal) {
  BatchingOptions o;
  o.num_batch_threads = 1;
  auto batcher = MakeBatcher(o);
  Batcher::PredictFn predict = [](const data::Batch&, std::vector<float>* scores) {
    *scores = {1, 2, 3};
    return absl::OkStatus();
  };
  std::vector<float> scores;
  absl::Status s = batcher->Run(&o, predict, IdRows({1, 2}), &scores);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(std::string(s.message()), "predict returned 3 scores for a batch of 2 rows");
}

TEST(BatcherTest, LargeRequestIsSplitIntoMaxBatchSizePieces) {
  BatchingOptions o;
  o.max_batch_size = 4;
  o.batch_timeout_micros = 0;
  o.num_batch_threads = 2;
  o.max_enqueued_batches = 3;
  Recorder rec;
  auto batcher = MakeBatcher(o, rec.Observer());
  std::vector<int64_t> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(100 + i);
  std::vector<float> scores;
  ASSERT_TRUE(batcher->Run(&rec, rec.Predict(), IdRows(ids), &scores).ok());
  EXPECT_EQ(scores, Expected(ids));
  {
    std::lock_guard<std::mutex> l(rec.mu);
    std::vector<size_t> sizes = rec.predict_rows;
    std::sort(sizes.begin(), sizes.end());
    EXPECT_THAT(sizes, ElementsAre(2, 4, 4));
  }
  // 13 rows need 4 pieces, more than max_enqueued_batches: never admissible.
  ids.insert(ids.end(), {110, 111, 112});
  absl::Status s = batcher->Run(&rec, rec.Predict(), IdRows(ids), &scores);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(s.message()),
            "a request of 13 rows to model test needs 4 batches of max_batch_size 4 rows, more "
            "than max_enqueued_batches (3); send fewer rows per request");
}

TEST(BatcherTest, AllowedBatchSizesPadWithTheFirstRow) {
  BatchingOptions o;
  o.max_batch_size = 8;
  o.allowed_batch_sizes = {2, 4, 8};
  o.batch_timeout_micros = 0;
  o.num_batch_threads = 1;
  Recorder rec;
  auto batcher = MakeBatcher(o, rec.Observer());
  std::vector<int64_t> seen;
  Batcher::PredictFn predict = [&](const data::Batch& rows, std::vector<float>* scores) {
    seen = rows.columns[0].ints;
    return FakePredict(rows, scores);
  };
  std::vector<float> scores;
  ASSERT_TRUE(batcher->Run(&rec, predict, IdRows({7, 8, 9}), &scores).ok());
  EXPECT_EQ(scores, Expected({7, 8, 9}));
  EXPECT_THAT(seen, ElementsAre(7, 8, 9, 7));
  ASSERT_TRUE(batcher->Run(&rec, predict, IdRows({5, 6}), &scores).ok());
  EXPECT_EQ(scores, Expected({5, 6}));
  EXPECT_THAT(seen, ElementsAre(5, 6));
  std::lock_guard<std::mutex> l(rec.mu);
  ASSERT_EQ(rec.infos.size(), 2u);
  EXPECT_EQ(rec.infos[0].rows, 3);
  EXPECT_EQ(rec.infos[0].padded_rows, 4);
  EXPECT_EQ(rec.infos[1].padded_rows, 2);
}

TEST(BatcherTest, ZeroRowsGoStraightToPredict) {
  BatchingOptions o;
  o.num_batch_threads = 1;
  Recorder rec;
  auto batcher = MakeBatcher(o, rec.Observer());
  std::vector<float> scores = {9};
  ASSERT_TRUE(batcher->Run(&rec, rec.Predict(), IdRows({}), &scores).ok());
  EXPECT_TRUE(scores.empty());
  EXPECT_EQ(batcher->stats().batches_run, 0);
}

TEST(BatcherTest, ShutdownDrainsAcceptedBatchesAndRefusesNewOnes) {
  BatchingOptions o;
  o.max_batch_size = 4;
  o.batch_timeout_micros = 60'000'000;  // a minute: only the drain can run the open batch
  o.num_batch_threads = 1;
  std::latch gate(1);
  std::atomic<int> calls{0};
  Batcher::PredictFn predict = [&](const data::Batch& rows, std::vector<float>* scores) {
    if (calls.fetch_add(1) == 0) gate.wait();
    return FakePredict(rows, scores);
  };
  auto batcher = MakeBatcher(o);
  int key;
  auto call = [&](std::vector<int64_t> ids) {
    return std::async(std::launch::async, [&, ids] {
      std::vector<float> scores;
      absl::Status s = batcher->Run(&key, predict, IdRows(ids), &scores);
      return s.ok() ? scores : std::vector<float>{};
    });
  };
  // Full batches run at once, whatever the timeout; the worker blocks in the first.
  auto a = call({1, 2, 3, 4});
  ASSERT_TRUE(WaitFor([&] { return batcher->stats().running_batches == 1; }));
  auto b = call({5, 6, 7, 8});  // closed, queued
  ASSERT_TRUE(WaitFor([&] { return batcher->stats().queued_rows == 4; }));
  auto c = call({9});  // open, waiting for its timeout
  ASSERT_TRUE(WaitFor([&] { return batcher->stats().queued_rows == 5; }));

  const auto before = Clock::now();
  auto shutdown = std::async(std::launch::async, [&] { batcher->Shutdown(); });
  // New requests are refused while the drain waits on the blocked batch.
  ASSERT_TRUE(WaitFor([&] { return batcher->stats().shutting_down; }));
  std::vector<float> scores;
  absl::Status refused = batcher->Run(&key, predict, IdRows({10}), &scores);
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::string(refused.message()), "the batcher of model test is shutting down");
  std::vector<float> none;
  EXPECT_EQ(batcher->Run(&key, predict, IdRows({}), &none).code(), absl::StatusCode::kUnavailable);
  gate.count_down();
  shutdown.get();
  EXPECT_LT(Clock::now() - before, std::chrono::seconds(10));
  EXPECT_EQ(a.get(), Expected({1, 2, 3, 4}));
  EXPECT_EQ(b.get(), Expected({5, 6, 7, 8}));
  EXPECT_EQ(c.get(), Expected({9}));
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(batcher->stats().queued_batches, 0);
  batcher->Shutdown();  // idempotent
  batcher.reset();      // and so is the destructor after it
}

TEST(BatcherTest, DestructorRunsQueuedBatches) {
  BatchingOptions o;
  o.batch_timeout_micros = 60'000'000;
  o.num_batch_threads = 1;
  auto batcher = MakeBatcher(o);
  int key;
  std::vector<float> scores;
  auto caller = std::async(std::launch::async,
                           [&] { return batcher->Run(&key, FakePredict, IdRows({42}), &scores); });
  ASSERT_TRUE(WaitFor([&] { return batcher->stats().queued_rows == 1; }));
  // The caller's thread returns before the batcher is gone: the drain ran its batch.
  std::thread destroy([&] { batcher.reset(); });
  EXPECT_TRUE(caller.get().ok());
  destroy.join();
  EXPECT_EQ(scores, Expected({42}));
}

// What Submit's callbacks got, per request index.
struct Outcomes {
  std::mutex mu;
  std::vector<absl::Status> status;
  std::vector<std::vector<float>> scores;
  std::vector<std::thread::id> thread;
  std::vector<int> calls;
  explicit Outcomes(size_t n) : status(n), scores(n), thread(n), calls(n) {}
  Batcher::DoneFn Done(size_t i) {
    return [this, i](absl::Status st, std::vector<float> sc) {
      std::lock_guard<std::mutex> l(mu);
      status[i] = std::move(st);
      scores[i] = std::move(sc);
      thread[i] = std::this_thread::get_id();
      ++calls[i];
    };
  }
  int total() {
    std::lock_guard<std::mutex> l(mu);
    int n = 0;
    for (int c : calls) n += c;
    return n;
  }
};

std::shared_ptr<const data::Batch> SharedIdRows(const std::vector<int64_t>& ids) {
  return std::make_shared<const data::Batch>(IdRows(ids));
}

TEST(BatcherSubmitTest, OneThreadSubmitsManyAndEachCallbackGetsItsOwnScoresOnce) {
  BatchingOptions o;
  o.max_batch_size = 8;
  o.batch_timeout_micros = 1000;
  o.num_batch_threads = 2;
  o.max_enqueued_batches = 1000;
  Recorder rec;
  auto batcher = MakeBatcher(o, rec.Observer());
  const size_t kRequests = 200;
  Outcomes out(kRequests);
  std::vector<std::vector<int64_t>> ids(kRequests);
  int64_t want_rows = 0;
  for (size_t i = 0; i < kRequests; ++i) {
    for (size_t r = 0; r < 1 + i % 11; ++r) ids[i].push_back(static_cast<int64_t>(i * 100 + r));
    want_rows += static_cast<int64_t>(ids[i].size());
    // Submit does not block: all of these are queued from this one thread.
    batcher->Submit(&rec, rec.Predict(), SharedIdRows(ids[i]), out.Done(i));
  }
  ASSERT_TRUE(WaitFor([&] { return out.total() == static_cast<int>(kRequests); }));
  std::lock_guard<std::mutex> l(out.mu);
  for (size_t i = 0; i < kRequests; ++i) {
    EXPECT_EQ(out.calls[i], 1) << i;
    EXPECT_TRUE(out.status[i].ok()) << i << ": " << out.status[i];
    EXPECT_EQ(out.scores[i], Expected(ids[i])) << i;
    EXPECT_NE(out.thread[i], std::this_thread::get_id()) << i;  // a batch thread answered
  }
  EXPECT_EQ(batcher->stats().rows_run, want_rows);
  std::lock_guard<std::mutex> rl(rec.mu);
  EXPECT_LT(rec.predict_rows.size(), kRequests);  // merged
  for (size_t n : rec.predict_rows) EXPECT_LE(n, 8u);
}

TEST(BatcherSubmitTest, RefusalsAndZeroRowsAnswerOnTheCallingThreadBeforeReturning) {
  BatchingOptions o;
  o.max_batch_size = 2;
  o.batch_timeout_micros = 60'000'000;
  o.num_batch_threads = 1;
  o.max_enqueued_batches = 1;
  auto batcher = MakeBatcher(o);
  int key;
  Outcomes out(4);
  batcher->Submit(&key, FakePredict, SharedIdRows({}), out.Done(0));
  batcher->Submit(&key, FakePredict, SharedIdRows({1}), out.Done(1));        // the open batch
  batcher->Submit(&key, FakePredict, SharedIdRows({2, 3}), out.Done(2));     // needs a second
  batcher->Submit(&key, FakePredict, SharedIdRows({4, 5, 6}), out.Done(3));  // 2 pieces > 1
  {
    std::lock_guard<std::mutex> l(out.mu);
    EXPECT_EQ(out.calls[0], 1);
    EXPECT_TRUE(out.status[0].ok());
    EXPECT_TRUE(out.scores[0].empty());
    EXPECT_EQ(out.thread[0], std::this_thread::get_id());
    EXPECT_EQ(out.calls[1], 0);  // waiting in its batch
    EXPECT_EQ(out.status[2].code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(out.thread[2], std::this_thread::get_id());
    EXPECT_EQ(out.status[3].code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(out.status[3].message()), HasSubstr("needs 2 batches"));
  }
  EXPECT_EQ(batcher->stats().requests_refused, 1);
  // Shutdown runs the open batch without waiting for its minute; later requests are
  // refused on the caller's thread.
  batcher->Shutdown();
  Outcomes late(2);
  batcher->Submit(&key, FakePredict, SharedIdRows({7}), late.Done(0));
  batcher->Submit(&key, FakePredict, SharedIdRows({}), late.Done(1));
  std::lock_guard<std::mutex> l(out.mu);
  EXPECT_EQ(out.calls[1], 1);
  EXPECT_TRUE(out.status[1].ok()) << out.status[1];
  EXPECT_EQ(out.scores[1], Expected({1}));
  std::lock_guard<std::mutex> ll(late.mu);
  EXPECT_EQ(late.status[0].code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(late.status[1].code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(late.calls[0] + late.calls[1], 2);
}

TEST(BatcherSubmitTest, SubmittedAndBlockingRequestsShareBatchesAndErrors) {
  BatchingOptions o;
  o.max_batch_size = 4;
  o.batch_timeout_micros = 60'000'000;  // only full batches run
  o.num_batch_threads = 1;
  auto batcher = MakeBatcher(o);
  int key;
  std::atomic<int> calls{0};
  Batcher::PredictFn failing = [&](const data::Batch& rows, std::vector<float>*) {
    calls.fetch_add(1);
    return absl::InternalError(StrCat("no scores for ", rows.num_rows, " rows"));
  };
  Outcomes out(2);
  batcher->Submit(&key, failing, SharedIdRows({1}), out.Done(0));
  batcher->Submit(&key, failing, SharedIdRows({2}), out.Done(1));
  std::vector<float> scores;
  // The blocking caller's two rows fill the batch: it runs, and all three get its error.
  absl::Status st = batcher->Run(&key, failing, IdRows({3, 4}), &scores);
  EXPECT_EQ(st, absl::InternalError("no scores for 4 rows"));
  ASSERT_TRUE(WaitFor([&] { return out.total() == 2; }));
  std::lock_guard<std::mutex> l(out.mu);
  EXPECT_EQ(out.status[0], absl::InternalError("no scores for 4 rows"));
  EXPECT_EQ(out.status[1], absl::InternalError("no scores for 4 rows"));
  EXPECT_TRUE(out.scores[0].empty());
  EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace kiln::serving
