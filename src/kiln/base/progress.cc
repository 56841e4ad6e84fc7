#include "kiln/base/progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace kiln {
namespace {

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Bytes(double b) {
  char buf[32];
  if (b >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  else if (b >= 1e6)
    std::snprintf(buf, sizeof buf, "%.0f MB", b / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.0f KB", b / 1e3);
  return buf;
}

}  // namespace

bool Progress::StderrIsTerminal() { return isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::string label, uint64_t total_bytes, bool enabled)
    : label_(std::move(label)), total_(total_bytes), enabled_(enabled), start_us_(NowUs()) {}

Progress::~Progress() {
  if (enabled_ && drawn_) std::fprintf(stderr, "\r\033[K");
}

void Progress::Add(uint64_t bytes) {
  if (!enabled_) return;
  done_.fetch_add(bytes, std::memory_order_relaxed);
  int64_t now = NowUs();
  if (now - last_draw_us_ < 100000) return;  // cheap pre-check without the lock
  std::lock_guard<std::mutex> lock(mu_);
  if (now - last_draw_us_ < 100000) return;
  last_draw_us_ = now;
  Draw(now);
}

void Progress::Draw(int64_t now_us) {
  double done = static_cast<double>(done_.load(std::memory_order_relaxed));
  double secs = static_cast<double>(now_us - start_us_) / 1e6;
  std::string line = label_ + ": " + Bytes(done);
  if (total_ > 0) {
    double pct = 100.0 * done / static_cast<double>(total_);
    if (pct <= 100.0) {
      char buf[48];
      std::snprintf(buf, sizeof buf, " of %s, %.0f%%", Bytes(static_cast<double>(total_)).c_str(),
                    pct);
      line += buf;
    }
  }
  if (secs > 0.2) line += ", " + Bytes(done / secs) + "/s";
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace kiln
