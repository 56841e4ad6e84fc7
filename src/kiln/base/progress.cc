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

Progress::Progress(std::string label, uint64_t total, bool enabled, Unit unit)
    : label_(std::move(label)), total_(total), enabled_(enabled), unit_(unit), start_us_(NowUs()) {}

Progress::~Progress() {
  if (enabled_ && drawn_) std::fprintf(stderr, "\r\033[K");
}

void Progress::Add(uint64_t amount) {
  if (!enabled_) return;
  done_.fetch_add(amount, std::memory_order_relaxed);
  MaybeDraw();
}

void Progress::Update(uint64_t done, uint64_t total, std::string detail) {
  if (!enabled_) return;
  done_.store(done, std::memory_order_relaxed);
  if (total > 0) total_.store(total, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    detail_ = std::move(detail);
  }
  MaybeDraw();
}

std::string Progress::Amount(double v) const {
  if (unit_ == Unit::kBytes) return Bytes(v);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

void Progress::MaybeDraw() {
  int64_t now = NowUs();
  if (now - last_draw_us_ < 100000) return;  // cheap pre-check without the lock
  std::lock_guard<std::mutex> lock(mu_);
  if (now - last_draw_us_ < 100000) return;
  last_draw_us_ = now;
  Draw(now);
}

void Progress::Draw(int64_t now_us) {
  const double done = static_cast<double>(done_.load(std::memory_order_relaxed));
  const double total = static_cast<double>(total_.load(std::memory_order_relaxed));
  const double secs = static_cast<double>(now_us - start_us_) / 1e6;
  const bool steps = unit_ == Unit::kSteps;
  std::string line = label_ + ": ";
  std::string amount = (steps ? "step " : "") + Amount(done);
  if (total > 0 && done <= total) {
    constexpr int kWidth = 20;
    const int filled = static_cast<int>(kWidth * done / total);
    line += "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
    char buf[64];
    std::snprintf(buf, sizeof buf, " of %s, %.0f%%", Amount(total).c_str(), 100.0 * done / total);
    amount += buf;
  }
  line += amount;
  if (secs > 0.2) line += ", " + Amount(done / secs) + (steps ? " steps/s" : "/s");
  if (!detail_.empty()) line += ", " + detail_;
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace kiln
