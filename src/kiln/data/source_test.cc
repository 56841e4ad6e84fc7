#include "kiln/data/source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

namespace kiln::data {
namespace {

using ::testing::HasSubstr;

// Blocks are numbers 0..n-1; decoding one makes a one-row batch holding the number, and
// block `bad_block` fails to decode.
class CountingSource : public BlockSource {
 public:
  explicit CountingSource(int n, int bad_block = -1) : n_(n), bad_block_(bad_block) {}
  absl::StatusOr<bool> NextBlock(RawBlock* block) override {
    if (next_ >= n_) return false;
    block->data = std::to_string(next_++);
    block->file = "mem";
    return true;
  }
  absl::Status Decode(const RawBlock& block, Batch* out, BadRowSink*) const override {
    int v = std::stoi(block.data);
    if (v == bad_block_) return absl::InvalidArgumentError("block " + block.data + " is bad");
    // Uneven work so that blocks finish out of order.
    thread_local std::mt19937 rng(std::random_device{}());
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
    out->Clear();
    out->num_rows = 1;
    Column& c = out->columns.emplace_back();
    c.name = "v";
    c.AddInt(v);
    return absl::OkStatus();
  }

 private:
  int n_, next_ = 0, bad_block_;
};

TEST(ForEachBatchOrderedTest, ConsumesEveryBatchOnceInBlockOrder) {
  CountingSource source(500);
  BadRowSink bad(BadRowPolicy::kError);
  std::atomic<int> prepared{0};
  std::vector<int64_t> seen;
  ASSERT_TRUE(ForEachBatchOrdered(
                  &source, &bad, 4,
                  [&](Batch& b) {
                    b.row_tags = {static_cast<int>(b.columns[0].ints[0]) * 2};
                    ++prepared;
                    return absl::OkStatus();
                  },
                  [&](Batch& b) {
                    EXPECT_EQ(b.row_tags[0], b.columns[0].ints[0] * 2);
                    seen.push_back(b.columns[0].ints[0]);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(prepared.load(), 500);
  ASSERT_EQ(seen.size(), 500u);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(seen[i], i);
}

TEST(ForEachBatchOrderedTest, DecodeErrorStopsAndIsReturned) {
  CountingSource source(300, 123);
  BadRowSink bad(BadRowPolicy::kError);
  int64_t last = -1;
  absl::Status s = ForEachBatchOrdered(
      &source, &bad, 3, [](Batch&) { return absl::OkStatus(); },
      [&](Batch& b) {
        last = b.columns[0].ints[0];
        return absl::OkStatus();
      });
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("block 123 is bad"));
  EXPECT_LT(last, 123);  // nothing after the bad block was consumed
}

TEST(ForEachBatchOrderedTest, ConsumerErrorStops) {
  CountingSource source(100);
  BadRowSink bad(BadRowPolicy::kError);
  int consumed = 0;
  absl::Status s = ForEachBatchOrdered(
      &source, &bad, 2, [](Batch&) { return absl::OkStatus(); },
      [&](Batch&) {
        return ++consumed == 10 ? absl::DataLossError("disk full") : absl::OkStatus();
      });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(consumed, 10);
}

TEST(ForEachBatchParallelTest, EachThreadSeesItsOwnBlocksInOrder) {
  CountingSource source(200);
  BadRowSink bad(BadRowPolicy::kError);
  std::vector<std::vector<int64_t>> per_thread(3);
  ASSERT_TRUE(ForEachBatchParallel(&source, &bad, 3, [&](int t, Batch& b) {
                per_thread[t].push_back(b.columns[0].ints[0]);
                return absl::OkStatus();
              }).ok());
  for (int t = 0; t < 3; ++t) {
    for (size_t i = 0; i < per_thread[t].size(); ++i) {
      EXPECT_EQ(per_thread[t][i], static_cast<int64_t>(t + 3 * i));
    }
  }
}

}  // namespace
}  // namespace kiln::data
