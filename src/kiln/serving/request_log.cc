#include "kiln/serving/request_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "kiln/base/str.h"
#include "kiln/train/json_rows.h"

namespace kiln::serving {

absl::StatusOr<std::unique_ptr<RequestLog>> RequestLog::Open(RequestLogOptions options) {
  if (!(options.sample_rate >= 0 && options.sample_rate <= 1)) {
    return absl::InvalidArgumentError(
        StrCat("the request log sample rate must be within [0, 1], not ", options.sample_rate));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        StrCat("cannot create the request log directory ", options.dir, ": ", ec.message()));
  }
  return std::unique_ptr<RequestLog>(new RequestLog(std::move(options)));
}

RequestLog::RequestLog(RequestLogOptions options) : options_(std::move(options)) {
  writer_ = std::thread([this] { WriterLoop(); });
}

RequestLog::~RequestLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  writer_.join();
  for (const auto& [model, fd] : fds_) ::close(fd);
}

void RequestLog::MaybeLog(const std::string& model, const data::Batch& rows,
                          const data::TableSchema& inputs) {
  if (options_.sample_rate <= 0 || rows.num_rows == 0) return;
  if (options_.sample_rate < 1) {
    thread_local std::minstd_rand rng(std::random_device{}());
    if (std::uniform_real_distribution<double>(0, 1)(rng) >= options_.sample_rate) return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() >= options_.max_queued_requests) {
      ++dropped_;
      return;
    }
    queue_.push_back(Entry{model, rows, inputs});
  }
  cv_.notify_one();
}

void RequestLog::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  flushed_cv_.wait(lock, [this] { return queue_.empty() && !writing_; });
}

void RequestLog::WriterLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {
      if (stopping_) return;
      continue;
    }
    Entry e = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    lock.unlock();
    Write(e);
    lock.lock();
    writing_ = false;
    if (queue_.empty()) flushed_cv_.notify_all();
  }
}

void RequestLog::Write(const Entry& e) {
  std::string lines;
  for (size_t i = 0; i < e.rows.num_rows; ++i) {
    lines += train::RowToJson(e.rows, i, e.inputs)
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    lines += '\n';
  }
  const std::filesystem::path dir = std::filesystem::path(options_.dir) / e.model;
  const std::string path = (dir / "requests.jsonl").string();
  auto it = fds_.find(e.model);
  if (it != fds_.end() && sizes_[e.model] + lines.size() > options_.max_file_bytes &&
      sizes_[e.model] > 0) {
    // Rotate: the full file keeps its lines under a timestamped name.
    ::close(it->second);
    fds_.erase(it);
    const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    // Never onto an earlier rotated file (two rotations in one millisecond).
    std::string rotated = (dir / StrCat("requests-", ms, ".jsonl")).string();
    for (int n = 1; std::filesystem::exists(rotated); ++n) {
      rotated = (dir / StrCat("requests-", ms, "-", n, ".jsonl")).string();
    }
    std::error_code ec;
    std::filesystem::rename(path, rotated, ec);
    it = fds_.end();
  }
  if (it == fds_.end()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      ++write_errors_;
      return;
    }
    it = fds_.emplace(e.model, fd).first;
    const off_t end = ::lseek(fd, 0, SEEK_END);
    sizes_[e.model] = end > 0 ? static_cast<uint64_t>(end) : 0;
  }
  size_t done = 0;
  while (done < lines.size()) {
    const ssize_t n = ::write(it->second, lines.data() + done, lines.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ++write_errors_;
      return;
    }
    done += static_cast<size_t>(n);
  }
  sizes_[e.model] += lines.size();
  logged_rows_ += e.rows.num_rows;
}

}  // namespace kiln::serving
