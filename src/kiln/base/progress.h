// A one-line progress display for long work, redrawn at most ten times a second on stderr:
//   stats: [#######.............] 412 MB of 1.0 GB, 38%, 610 MB/s
//   train: [###########.........] step 2200 of 4000, 55%, 830 steps/s, loss 0.412
// Disabled (every call a no-op) when stderr is not a terminal, so pipes and logs stay
// clean. Add() and Update() are thread-safe.
#ifndef KILN_BASE_PROGRESS_H_
#define KILN_BASE_PROGRESS_H_

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace kiln {

class Progress {
 public:
  enum class Unit { kBytes, kSteps };
  // `total` 0 means unknown (no bar or percentage is shown).
  Progress(std::string label, uint64_t total, bool enabled, Unit unit = Unit::kBytes);
  ~Progress();  // erases the line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Add(uint64_t amount);
  // Sets the amount done (and the total, when not 0) and a detail shown after the rate.
  void Update(uint64_t done, uint64_t total, std::string detail);
  // True when stderr is a terminal.
  static bool StderrIsTerminal();

 private:
  void Draw(int64_t now_us);

  void MaybeDraw();
  std::string Amount(double v) const;

  std::string label_;
  std::atomic<uint64_t> total_;
  bool enabled_;
  Unit unit_;
  std::string detail_;  // guarded by mu_
  std::atomic<uint64_t> done_{0};
  std::mutex mu_;
  int64_t start_us_ = 0;
  int64_t last_draw_us_ = 0;
  bool drawn_ = false;
};

}  // namespace kiln

#endif  // KILN_BASE_PROGRESS_H_
