#include "kiln/data/text_blocks.h"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kiln/base/str.h"

namespace kiln::data {

// Rows longer than this are refused rather than buffered (an unclosed quote, usually).
constexpr size_t kMaxRowBytes = size_t{1} << 30;

uint64_t CountNewlines(const char* d, size_t n) {
  uint64_t count = 0;
  size_t i = 0;
#if defined(__SSE2__)
  // Per-byte counters (a match compares as -1, so subtracting adds 1), summed into the
  // total before any of them can wrap (every 255 loads).
  const __m128i nl = _mm_set1_epi8('\n');
  while (i + 16 <= n) {
    __m128i acc = _mm_setzero_si128();
    const size_t loads = std::min<size_t>((n - i) / 16, 255);
    for (size_t k = 0; k < loads; ++k, i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i));
      acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(v, nl));
    }
    const __m128i sums = _mm_sad_epu8(acc, _mm_setzero_si128());
    count += static_cast<uint64_t>(_mm_cvtsi128_si64(sums)) +
             static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums)));
  }
#endif
  for (; i < n; ++i) count += d[i] == '\n';
  return count;
}

absl::Status TextBlockCutter::Open(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(file_, env_->NewSequentialFile(path));
  path_ = path;
  buf_.clear();
  eof_ = false;
  line_ = 1;
  offset_ = 0;
  KILN_RETURN_IF_ERROR(ReadMore(3));
  if (buf_.size() >= 3 && std::memcmp(buf_.data(), "\xEF\xBB\xBF", 3) == 0) {
    buf_.erase(0, 3);
    offset_ = 3;
  }
  return absl::OkStatus();
}

absl::Status TextBlockCutter::ReadMore(size_t want) {
  want = std::max<size_t>(want, 4096);
  size_t old = buf_.size();
  buf_.resize(old + want);
  auto n = file_->Read(want, buf_.data() + old);
  if (!n.ok()) {
    buf_.resize(old);
    return n.status();
  }
  buf_.resize(old + *n);
  if (*n == 0) eof_ = true;
  return absl::OkStatus();
}

absl::Status TextBlockCutter::FillFirstRow() {
  while (!eof_ && row_end_(buf_.data(), buf_.size()) == 0) {
    if (buf_.size() > kMaxRowBytes) {
      return absl::InvalidArgumentError(
          kiln::StrCat(path_, ":", line_, ": first row longer than 1 GiB"));
    }
    KILN_RETURN_IF_ERROR(ReadMore(std::max<size_t>(buf_.size(), 1 << 16)));
  }
  return absl::OkStatus();
}

void TextBlockCutter::Consume(size_t bytes, uint64_t newlines) {
  buf_.erase(0, bytes);
  offset_ += bytes;
  line_ += newlines;
}

absl::StatusOr<bool> TextBlockCutter::Next(RawBlock* block) {
  if (!file_) return false;
  size_t boundary = 0;
  for (;;) {
    if (!eof_ && buf_.size() < block_bytes_) {
      KILN_RETURN_IF_ERROR(ReadMore(block_bytes_ - buf_.size()));
      continue;
    }
    if (eof_) {
      boundary = buf_.size();
      break;
    }
    boundary = row_end_(buf_.data(), buf_.size());
    if (boundary > 0) break;
    if (buf_.size() > kMaxRowBytes) {
      return absl::InvalidArgumentError(
          kiln::StrCat(path_, ":", line_, ": a row longer than 1 GiB (an unclosed quote?)"));
    }
    KILN_RETURN_IF_ERROR(ReadMore(std::max(block_bytes_, buf_.size())));
  }
  if (boundary == 0) {  // the file is done
    file_.reset();
    return false;
  }
  block->file = path_;
  block->first_line = line_;
  block->byte_offset = offset_;
  // Hand the buffer over and keep only the partial row after the boundary.
  block->data.swap(buf_);
  buf_.assign(block->data, boundary, std::string::npos);
  block->data.resize(boundary);
  line_ += CountNewlines(block->data.data(), block->data.size());
  offset_ += boundary;
  return true;
}

}  // namespace kiln::data
