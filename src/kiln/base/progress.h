// A one-line progress display for long work ("stats: 412 MB of 1.0 GB, 38%, 610 MB/s"),
// redrawn at most ten times a second on stderr. Disabled (every call a no-op) when stderr
// is not a terminal, so pipes and logs stay clean. Add() is thread-safe.
#ifndef KILN_BASE_PROGRESS_H_
#define KILN_BASE_PROGRESS_H_

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace kiln {

class Progress {
 public:
  // `total_bytes` 0 means unknown (no percentage is shown).
  Progress(std::string label, uint64_t total_bytes, bool enabled);
  ~Progress();  // erases the line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Add(uint64_t bytes);
  // True when stderr is a terminal.
  static bool StderrIsTerminal();

 private:
  void Draw(int64_t now_us);

  std::string label_;
  uint64_t total_;
  bool enabled_;
  std::atomic<uint64_t> done_{0};
  std::mutex mu_;
  int64_t start_us_ = 0;
  int64_t last_draw_us_ = 0;
  bool drawn_ = false;
};

}  // namespace kiln

#endif  // KILN_BASE_PROGRESS_H_
