#include "kiln/data/source.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <thread>
#include <tuple>

#include "kiln/base/str.h"
#include "kiln/data/tfrecord.h"

namespace kiln::data {

absl::StatusOr<BadRowPolicy> ParseBadRowPolicy(std::string_view s) {
  if (s == "error") return BadRowPolicy::kError;
  if (s == "skip") return BadRowPolicy::kSkip;
  if (s == "quarantine") return BadRowPolicy::kQuarantine;
  return absl::InvalidArgumentError(
      kiln::StrCat("--bad-rows: unknown policy '", s, "'; valid: error, skip, quarantine"));
}

BadRowSink::BadRowSink(BadRowPolicy policy, std::string quarantine_path)
    : policy_(policy), quarantine_path_(std::move(quarantine_path)) {}

BadRowSink::~BadRowSink() = default;

absl::Status BadRowSink::Add(BadRow row) {
  std::string where = kiln::StrCat(row.file, ":", row.line, ": ", row.message);
  if (policy_ == BadRowPolicy::kError) return absl::InvalidArgumentError(where);
  std::lock_guard<std::mutex> lock(mu_);
  ++count_;
  if (samples_.size() < 20) {
    BadRow sample = row;
    sample.raw.clear();
    samples_.push_back(std::move(sample));
  }
  if (policy_ == BadRowPolicy::kQuarantine && quarantine_status_.ok()) {
    pending_bytes_ += row.raw.size() + row.message.size();
    pending_.push_back(std::move(row));
    if (pending_bytes_ > (size_t{256} << 20)) quarantine_status_.Update(FlushLocked());
  }
  return absl::OkStatus();
}

void BadRowSink::SetHeader(std::string_view header) {
  std::lock_guard<std::mutex> lock(mu_);
  if (header_set_) return;
  header_set_ = true;
  header_ = std::string(header);
}

absl::Status BadRowSink::FlushLocked() {
  if (quarantine_path_.empty()) return absl::InvalidArgumentError("quarantine needs a file path");
  // Binary records keep their TFRecord framing so the file reads back as TFRecord.
  const bool framed = quarantine_path_.ends_with(".tfrecord");
  if (!quarantine_) {
    KILN_ASSIGN_OR_RETURN(quarantine_, AtomicFileWriter::Create(Env::Default(), quarantine_path_));
    KILN_ASSIGN_OR_RETURN(errors_,
                          AtomicFileWriter::Create(Env::Default(), quarantine_path_ + ".errors"));
    if (!framed && !header_.empty()) {
      std::string h = header_;
      if (h.back() != '\n') h.push_back('\n');
      KILN_RETURN_IF_ERROR(quarantine_->Append(h));
    }
  }
  std::stable_sort(pending_.begin(), pending_.end(), [](const BadRow& a, const BadRow& b) {
    return std::tie(a.file, a.line) < std::tie(b.file, b.line);
  });
  std::string out, errors;
  for (const BadRow& row : pending_) {
    if (framed) {
      AppendTfRecord(&out, row.raw);
    } else {
      out += row.raw;
      if (row.raw.empty() || row.raw.back() != '\n') out.push_back('\n');
    }
    kiln::StrAppend(&errors, row.file, ":", row.line, ": ", row.message, "\n");
  }
  pending_.clear();
  pending_bytes_ = 0;
  KILN_RETURN_IF_ERROR(quarantine_->Append(out));
  return errors_->Append(errors);
}

uint64_t BadRowSink::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

std::vector<BadRow> BadRowSink::samples() const {
  std::lock_guard<std::mutex> lock(mu_);
  return samples_;
}

absl::Status BadRowSink::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_RETURN_IF_ERROR(quarantine_status_);
  if (policy_ != BadRowPolicy::kQuarantine || count_ == 0) return absl::OkStatus();
  KILN_RETURN_IF_ERROR(FlushLocked());
  KILN_RETURN_IF_ERROR(quarantine_->Commit());
  return errors_->Commit();
}

absl::StatusOr<bool> BatchReader::Next(Batch* batch) {
  KILN_ASSIGN_OR_RETURN(bool more, source_->NextBlock(&block_));
  if (!more) return false;
  bytes_read_ += block_.data.size();
  KILN_RETURN_IF_ERROR(source_->Decode(block_, batch, bad_));
  batch->block_index = block_.index = next_index_++;
  return true;
}

int DefaultThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 2 : static_cast<int>(n);
}

absl::Status ForEachBatchParallel(BlockSource* source, BadRowSink* bad, int num_threads,
                                  const std::function<absl::Status(int, Batch&)>& fn,
                                  Progress* progress) {
  if (num_threads < 1) num_threads = 1;
  // Block i always goes to worker i % num_threads, through that worker's own bounded
  // queue. Each worker therefore sees the same blocks in the same order on every run,
  // and per-worker results merged in worker order are reproducible for a thread count.
  struct Lane {
    std::deque<RawBlock> queue;
    std::condition_variable can_push, can_pop;
  };
  std::mutex mu;
  std::vector<Lane> lanes(num_threads);
  constexpr size_t kMaxQueued = 2;
  bool done_reading = false;
  bool stop = false;
  // The error of the lowest-numbered failing block wins, so the message a user sees is
  // the first problem in the file whatever the thread timing.
  absl::Status first_error;
  uint64_t first_error_block = UINT64_MAX;
  auto record_error = [&](absl::Status s, uint64_t block) {
    std::lock_guard<std::mutex> lock(mu);
    if (block < first_error_block) {
      first_error = std::move(s);
      first_error_block = block;
    }
    stop = true;
    for (Lane& lane : lanes) {
      lane.can_push.notify_all();
      lane.can_pop.notify_all();
    }
  };

  std::vector<std::thread> workers;
  for (int t = 0; t < num_threads; ++t) {
    workers.emplace_back([&, t] {
      Lane& lane = lanes[t];
      Batch batch;
      for (;;) {
        RawBlock block;
        {
          std::unique_lock<std::mutex> lock(mu);
          lane.can_pop.wait(lock, [&] { return stop || done_reading || !lane.queue.empty(); });
          if (stop) return;
          if (lane.queue.empty()) return;  // done_reading and drained
          block = std::move(lane.queue.front());
          lane.queue.pop_front();
          lane.can_push.notify_one();
        }
        absl::Status s = source->Decode(block, &batch, bad);
        batch.block_index = block.index;
        if (s.ok()) s = fn(t, batch);
        if (!s.ok()) {
          record_error(std::move(s), block.index);
          return;
        }
      }
    });
  }

  uint64_t index = 0;
  for (;;) {
    RawBlock block;
    absl::StatusOr<bool> more = source->NextBlock(&block);
    if (!more.ok()) {
      // Let the workers finish the blocks before this one: an error there comes first.
      std::lock_guard<std::mutex> lock(mu);
      if (index < first_error_block) {
        first_error = more.status();
        first_error_block = index;
      }
      break;
    }
    if (!*more) break;
    if (progress) progress->Add(block.data.size());
    block.index = index++;
    Lane& lane = lanes[block.index % num_threads];
    std::unique_lock<std::mutex> lock(mu);
    lane.can_push.wait(lock, [&] { return stop || lane.queue.size() < kMaxQueued; });
    if (stop) break;
    lane.queue.push_back(std::move(block));
    lane.can_pop.notify_one();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done_reading = true;
    for (Lane& lane : lanes) lane.can_pop.notify_all();
  }
  for (auto& w : workers) w.join();
  return first_error;
}

absl::Status ForEachBatchOrdered(BlockSource* source, BadRowSink* bad, int num_threads,
                                 const std::function<absl::Status(Batch&)>& prepare,
                                 const std::function<absl::Status(Batch&)>& consume,
                                 Progress* progress) {
  if (num_threads < 1) num_threads = 1;
  const size_t window = 3 * static_cast<size_t>(num_threads);
  std::mutex mu;
  std::condition_variable changed;
  std::deque<RawBlock> queue;       // read, not yet decoded
  std::map<uint64_t, Batch> done;   // decoded and prepared, not yet consumed
  uint64_t read = 0, consumed = 0;  // blocks read so far; next block to consume
  bool done_reading = false, stop = false;
  absl::Status first_error;
  uint64_t first_error_block = UINT64_MAX;
  auto fail = [&](absl::Status s, uint64_t block) {  // with mu held
    if (block < first_error_block) {
      first_error = std::move(s);
      first_error_block = block;
    }
    stop = true;
    changed.notify_all();
  };

  std::thread reader([&] {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu);
        changed.wait(lock, [&] { return stop || read - consumed < window; });
        if (stop) break;
      }
      RawBlock block;
      absl::StatusOr<bool> more = source->NextBlock(&block);
      std::lock_guard<std::mutex> lock(mu);
      if (!more.ok()) {
        fail(more.status(), read);
        break;
      }
      if (!*more) break;
      if (progress) progress->Add(block.data.size());
      block.index = read++;
      queue.push_back(std::move(block));
      changed.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu);
    done_reading = true;
    changed.notify_all();
  });

  std::vector<std::thread> workers;
  for (int t = 0; t < num_threads; ++t) {
    workers.emplace_back([&] {
      for (;;) {
        RawBlock block;
        {
          std::unique_lock<std::mutex> lock(mu);
          changed.wait(lock, [&] { return stop || done_reading || !queue.empty(); });
          if (stop || queue.empty()) return;
          block = std::move(queue.front());
          queue.pop_front();
        }
        Batch batch;
        absl::Status s = source->Decode(block, &batch, bad);
        batch.block_index = block.index;
        if (s.ok()) s = prepare(batch);
        std::lock_guard<std::mutex> lock(mu);
        if (!s.ok()) {
          fail(std::move(s), block.index);
          return;
        }
        done.emplace(block.index, std::move(batch));
        changed.notify_all();
      }
    });
  }

  // The calling thread consumes in order.
  for (;;) {
    Batch batch;
    {
      std::unique_lock<std::mutex> lock(mu);
      changed.wait(lock, [&] {
        return stop || done.count(consumed) ||
               (done_reading && queue.empty() && consumed == read && done.empty());
      });
      if (stop) break;
      auto it = done.find(consumed);
      if (it == done.end()) break;  // everything read has been consumed
      batch = std::move(it->second);
      done.erase(it);
    }
    absl::Status s = consume(batch);
    std::lock_guard<std::mutex> lock(mu);
    if (!s.ok()) {
      fail(std::move(s), consumed);
      break;
    }
    ++consumed;
    changed.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
    changed.notify_all();
  }
  reader.join();
  for (auto& w : workers) w.join();
  return first_error;
}

}  // namespace kiln::data
