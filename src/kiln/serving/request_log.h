// Sampled request logging: a fraction of the rows the server scores is appended, one JSON
// object of raw input features per line, to DIR/MODEL/requests.jsonl — the same row form
// the REST API takes, so `kiln stats DIR/MODEL/requests.jsonl` computes serving statistics
// that `kiln validate --serving` compares with the training data's (training–serving skew).
//
// The request path never waits on the disk: sampled rows go into a bounded queue that one
// writer thread drains; when the queue is full the rows are dropped and counted. A file
// past `max_file_bytes` is renamed to requests-<unix ms>.jsonl and a new one started.
// Each line is written with one write() on an O_APPEND descriptor, so a killed server
// leaves whole lines (the last one at worst cut short, which readers report by line).
#ifndef KILN_SERVING_REQUEST_LOG_H_
#define KILN_SERVING_REQUEST_LOG_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "kiln/data/batch.h"

namespace kiln::serving {

struct RequestLogOptions {
  std::string dir;                                // empty: logging off
  double sample_rate = 0.01;                      // fraction of requests, 0..1
  size_t max_queued_requests = 1024;              // beyond it: dropped
  uint64_t max_file_bytes = uint64_t{256} << 20;  // then rotated
};

class RequestLog {
 public:
  // Creates DIR when missing. Errors: kInvalidArgument for a rate outside [0, 1];
  // the file system's when DIR cannot be made.
  static absl::StatusOr<std::unique_ptr<RequestLog>> Open(RequestLogOptions options);
  ~RequestLog();  // writes what is queued, then stops

  // Decides (at the sample rate) whether this request is logged; if so copies its rows
  // for the writer. `inputs` are the model's signature inputs. Thread-safe, never blocks
  // on I/O.
  void MaybeLog(const std::string& model, const data::Batch& rows, const data::TableSchema& inputs);

  // Blocks until everything queued so far is written (tests, shutdown).
  void Flush();

  uint64_t logged_rows() const { return logged_rows_; }
  uint64_t dropped_requests() const { return dropped_; }
  uint64_t write_errors() const { return write_errors_; }

 private:
  struct Entry {
    std::string model;
    data::Batch rows;
    data::TableSchema inputs;
  };
  explicit RequestLog(RequestLogOptions options);
  void WriterLoop();
  void Write(const Entry& e);

  RequestLogOptions options_;
  std::mutex mu_;
  std::condition_variable cv_, flushed_cv_;
  std::deque<Entry> queue_;  // guarded by mu_
  bool stopping_ = false;    // guarded by mu_
  bool writing_ = false;     // guarded by mu_
  std::atomic<uint64_t> logged_rows_{0}, dropped_{0}, write_errors_{0};
  std::map<std::string, int> fds_;  // writer thread only: model → descriptor
  std::map<std::string, uint64_t> sizes_;
  std::thread writer_;
};

}  // namespace kiln::serving

#endif  // KILN_SERVING_REQUEST_LOG_H_
