#include "kiln/data/csv.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kiln/base/str.h"
#include "kiln/base/string_map.h"
#include "kiln/data/text_blocks.h"

namespace kiln::data {

bool ParseInt64(std::string_view s, int64_t* out) {
  // Fast path: up to 18 plain digits, optionally negative, cannot overflow.
  if (!s.empty() && s.size() <= 19) {
    const char* p = s.data();
    const char* e = p + s.size();
    bool neg = *p == '-';
    if (neg) ++p;
    if (p < e && e - p <= 18) {
      int64_t v = 0;
      const char* q = p;
      while (q < e && static_cast<unsigned>(*q - '0') < 10) v = v * 10 + (*q++ - '0');
      if (q == e) {
        *out = neg ? -v : v;
        return true;
      }
    }
  }
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

namespace {

// 10^0 .. 10^22: every one is a double exactly.
constexpr double kExactPowersOf10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// m / 10^frac, negated when neg: exact inputs (m <= 2^53, frac <= 22), one rounding.
inline double DecimalValue(uint64_t m, int frac, bool neg) {
  const double v = static_cast<double>(m) / kExactPowersOf10[frac];
  return neg ? -v : v;
}

// Plain decimals ("-12.375", "0.5", "42"), the bulk of numeric CSV fields, without the
// general parser: when the digits form an integer m < 2^53 and there are at most 22 of
// them after the point, m and 10^f are both exact doubles, and IEEE division rounds
// m / 10^f correctly, so the result is the correctly rounded value from_chars gives
// (Clinger's fast path). False, *out untouched, for anything else.
inline bool ParsePlainDecimal(std::string_view s, double* out) {
  const char* p = s.data();
  const char* e = p + s.size();
  const bool neg = p < e && *p == '-';
  p += neg;
  uint64_t m = 0;
  const char* q = p;
  while (q < e && static_cast<unsigned>(*q - '0') < 10)
    m = m * 10 + static_cast<unsigned>(*q++ - '0');
  int digits = static_cast<int>(q - p);
  int frac = 0;
  if (q < e && *q == '.') {
    const char* f = ++q;
    while (q < e && static_cast<unsigned>(*q - '0') < 10)
      m = m * 10 + static_cast<unsigned>(*q++ - '0');
    frac = static_cast<int>(q - f);
    digits += frac;
    if (frac == 0) return false;  // "1." is left to the general parser
  }
  if (q != e || q == p || digits == 0 || digits > 19 || frac > 22 || m > (uint64_t{1} << 53)) {
    return false;
  }
  *out = DecimalValue(m, frac, neg);
  return true;
}

// Short plain numbers ("-13.671", "55662"), eight bytes at a time and without a branch
// per digit: the bytes of one machine word, the decimal point taken out, checked to be
// digits and converted with three multiplies. `s` must have at least 8 - s.size() readable
// bytes before it (in the caller's buffer): the word is loaded to end where `s` ends. The
// value is exactly ParsePlainDecimal's (digits <= 8, so m < 10^8 < 2^53). False, *out
// untouched, for anything it does not take; `integer` refuses a decimal point.
struct ShortNumber {
  uint64_t m;
  int frac;  // digits after the point
  bool neg;
};
inline bool ParseShortNumber(std::string_view s, bool integer, ShortNumber* out) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighs = 0x8080808080808080ULL;
  size_t len = s.size();
  if (len == 0 || len > 8) return false;
  const bool neg = s[0] == '-';
  uint64_t w;
  std::memcpy(&w, s.data() + len - 8, 8);
  w >>= 8 * (8 - len);  // the field's bytes, first byte lowest
  if (neg) {
    w >>= 8;
    --len;
  }
  if (len == 0) return false;
  const uint64_t in_field = len == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * len)) - 1;
  // A zero byte in w ^ "........" marks the point (exact for bytes below 0x80, and a byte
  // at or above 0x80 is rejected below as not a digit).
  const uint64_t t = w ^ (0x2eULL * kOnes);
  const uint64_t dots = (t - kOnes) & ~t & kHighs & in_field;
  int frac = 0;
  uint64_t digits = w;
  size_t num_digits = len;
  if (dots != 0) {
    if (integer || (dots & (dots - 1)) != 0) return false;  // a point, or two
    const int at = std::countr_zero(dots) / 8;              // the point's byte
    frac = static_cast<int>(len) - 1 - at;
    if (frac == 0) return false;  // "1." is the general parser's
    const uint64_t below = at == 0 ? 0 : (uint64_t{1} << (8 * at)) - 1;
    digits = (w & below) | ((w >> 8) & ~below);
    --num_digits;
  }
  if (num_digits == 0) return false;
  const uint64_t live = num_digits == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * num_digits)) - 1;
  // Every live byte '0'..'9': minus '0' it is below 10, i.e. it and it + 6 stay below 16.
  const uint64_t d = (digits - 0x30ULL * kOnes) & live;
  if (((digits & live) ^ (0x30ULL * kOnes & live)) & (0xf0ULL * kOnes)) return false;
  if (((d + 0x06ULL * kOnes) & (0xf0ULL * kOnes) & live) != 0) return false;
  // Leading zero digits fill the word; then pairs, quads and the eight combine.
  uint64_t v = num_digits == 8 ? d : d << (8 * (8 - num_digits));
  v = (v * 10 + (v >> 8)) & 0x00ff00ff00ff00ffULL;
  v = (v * 100 + (v >> 16)) & 0x0000ffff0000ffffULL;
  v = (v * 10000 + (v >> 32)) & 0xffffffffULL;
  *out = {v, frac, neg};
  return true;
}

// Whether the 8 bytes that end where `s` ends lie inside `buffer` (addresses compared as
// integers: `s` may come from elsewhere, e.g. a field with its quotes undone).
inline bool WordBeforeEndIsInside(std::string_view s, std::string_view buffer) {
  const auto begin = reinterpret_cast<uintptr_t>(buffer.data());
  const auto end = reinterpret_cast<uintptr_t>(s.data()) + s.size();
  return end >= begin + 8 && end <= begin + buffer.size();
}

}  // namespace

bool ParseDoubleInBuffer(std::string_view s, std::string_view buffer, double* out) {
  ShortNumber n;
  if (s.size() <= 8 && WordBeforeEndIsInside(s, buffer) &&
      ParseShortNumber(s, /*integer=*/false, &n)) {
    *out = DecimalValue(n.m, n.frac, n.neg);
    return true;
  }
  return ParseDouble(s, out);
}

bool ParseInt64InBuffer(std::string_view s, std::string_view buffer, int64_t* out) {
  ShortNumber n;
  if (s.size() <= 8 && WordBeforeEndIsInside(s, buffer) &&
      ParseShortNumber(s, /*integer=*/true, &n)) {
    const int64_t v = static_cast<int64_t>(n.m);
    *out = n.neg ? -v : v;
    return true;
  }
  return ParseInt64(s, out);
}

bool ParseDouble(std::string_view s, double* out) {
  if (ParsePlainDecimal(s, out)) return true;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  if (p != s.data() + s.size()) return false;
  // Out-of-range values parse as +-inf like strtod; anything else is not a number.
  if (ec == std::errc::result_out_of_range) {
    *out = (s.front() == '-') ? -HUGE_VAL : HUGE_VAL;
    return true;
  }
  return ec == std::errc();
}

namespace {

// One field of a row, as a byte range of the block.
struct FieldRef {
  uint32_t begin;
  uint32_t len;
  bool escaped;  // quoted and holding doubled quotes that need undoubling
};

enum class RowError { kNone, kUnterminatedQuote, kCharAfterQuote };

struct RowResult {
  size_t end;  // position after the row's line end
  RowError error = RowError::kNone;
  uint32_t error_field = 0;  // 0-based field where the error is
  uint32_t newlines = 0;     // line ends consumed, including those inside quotes
};

// Index of the first delimiter or line feed at or after `i`, or `n`. Sixteen bytes at a
// time: most fields end within the first load.
inline size_t FindFieldEnd(const char* d, size_t i, size_t n, char delim) {
#if defined(__SSE2__)
  const __m128i vd = _mm_set1_epi8(delim);
  const __m128i vn = _mm_set1_epi8('\n');
  while (i + 16 <= n) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i));
    unsigned mask = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, vd), _mm_cmpeq_epi8(v, vn))));
    if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(mask));
    i += 16;
  }
#endif
  while (i < n && d[i] != delim && d[i] != '\n') ++i;
  return i;
}

// Parses one row of `data` starting at `pos`, appending its fields.
RowResult ParseRow(std::string_view data, size_t pos, char delim, std::vector<FieldRef>* fields) {
  const char* d = data.data();
  const size_t n = data.size();
  size_t i = pos;
  RowResult r;
  uint32_t field_index = 0;
  for (;; ++field_index) {
    if (i < n && d[i] == '"') {
      size_t start = i + 1;
      bool escaped = false;
      size_t j = start;
      size_t close;
      for (;;) {
        const void* q = std::memchr(d + j, '"', n - j);
        if (q == nullptr) {
          r.error = RowError::kUnterminatedQuote;
          r.error_field = field_index;
          r.newlines += static_cast<uint32_t>(std::count(d + start, d + n, '\n'));
          r.end = n;
          return r;
        }
        size_t qi = static_cast<const char*>(q) - d;
        if (qi + 1 < n && d[qi + 1] == '"') {
          escaped = true;
          j = qi + 2;
          continue;
        }
        close = qi;
        break;
      }
      r.newlines += static_cast<uint32_t>(std::count(d + start, d + close, '\n'));
      fields->push_back(
          {static_cast<uint32_t>(start), static_cast<uint32_t>(close - start), escaped});
      i = close + 1;
      if (i >= n) break;
      char c = d[i];
      if (c == delim) {
        ++i;
        continue;
      }
      if (c == '\n') {
        ++i;
        ++r.newlines;
        break;
      }
      if (c == '\r' && (i + 1 >= n || d[i + 1] == '\n')) {
        i += (i + 1 < n) ? 2 : 1;
        if (i <= n && d[i - 1] == '\n') ++r.newlines;
        break;
      }
      r.error = RowError::kCharAfterQuote;
      r.error_field = field_index;
      // Skip to the end of the line so the caller can continue with the next row.
      const void* nl = std::memchr(d + i, '\n', n - i);
      r.end = nl ? static_cast<const char*>(nl) - d + 1 : n;
      if (nl) ++r.newlines;
      return r;
    }
    size_t start = i;
    i = FindFieldEnd(d, i, n, delim);
    size_t end = i;
    if (end > start && d[end - 1] == '\r' && (i >= n || d[i] == '\n')) --end;
    fields->push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(end - start), false});
    if (i >= n) break;
    if (d[i] == delim) {
      ++i;
      continue;
    }
    ++i;  // '\n'
    ++r.newlines;
    break;
  }
  r.end = i;
  return r;
}

// One row found by SplitUnquoted: its bytes [pos, end) (end past its line feed, if it has
// one) and its fields [first_field, first_field + num_fields) of the field list.
struct RowSpan {
  uint32_t pos;
  uint32_t end;
  uint32_t first_field;
  uint32_t num_fields;
};

// Splits a block that holds no quote character into rows and fields, as ParseRow would
// row by row, but from bitmaps of its delimiters and line feeds made 64 bytes at a time:
// finding where one field ends no longer waits on where the previous one ended. A '\r'
// before a line feed (or at the end of the block) is not part of the last field.
void SplitUnquoted(std::string_view data, char delim, std::vector<FieldRef>* fields,
                   std::vector<RowSpan>* rows) {
  const char* d = data.data();
  const size_t n = data.size();
  uint32_t field_start = 0, row_pos = 0;
  uint32_t row_first = static_cast<uint32_t>(fields->size());
  auto end_field = [&](uint32_t at, bool line_end) {
    uint32_t end = at;
    if (line_end && end > field_start && d[end - 1] == '\r') --end;
    fields->push_back({field_start, end - field_start, false});
    field_start = at + 1;
  };
  auto end_row = [&](uint32_t end) {
    const uint32_t count = static_cast<uint32_t>(fields->size()) - row_first;
    rows->push_back({row_pos, end, row_first, count});
    row_first = static_cast<uint32_t>(fields->size());
    row_pos = end;
  };
  for (size_t base = 0; base < n; base += 64) {
    uint64_t ends = 0, lines = 0;
#if defined(__SSE2__)
    if (base + 64 <= n) {
      const __m128i vd = _mm_set1_epi8(delim);
      const __m128i vn = _mm_set1_epi8('\n');
      for (int k = 0; k < 4; ++k) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + base + 16 * k));
        const auto nl = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, vn)));
        const auto dl = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, vd)));
        lines |= uint64_t{nl} << (16 * k);
        ends |= uint64_t{nl | dl} << (16 * k);
      }
    } else
#endif
    {
      for (size_t i = base; i < n && i < base + 64; ++i) {
        const uint64_t bit = uint64_t{1} << (i - base);
        if (d[i] == '\n') lines |= bit;
        if (d[i] == '\n' || d[i] == delim) ends |= bit;
      }
    }
    while (ends != 0) {
      const int b = std::countr_zero(ends);
      ends &= ends - 1;
      const auto at = static_cast<uint32_t>(base + static_cast<size_t>(b));
      const bool line_end = (lines >> b) & 1;
      end_field(at, line_end);
      if (line_end) end_row(at + 1);
    }
  }
  if (row_pos < n) {  // a last row without a line feed
    end_field(static_cast<uint32_t>(n), true);
    end_row(static_cast<uint32_t>(n));
  }
}

// Index just past the last line end that is outside quotes in data[0..n), or 0.
size_t LastRowEnd(const char* d, size_t n) {
  if (std::memchr(d, '"', n) == nullptr) {
    const void* nl = memrchr(d, '\n', n);
    return nl ? static_cast<const char*>(nl) - d + 1 : 0;
  }
  bool in_quotes = false;
  size_t last = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = d[i];
    if (c == '"')
      in_quotes = !in_quotes;
    else if (c == '\n' && !in_quotes)
      last = i + 1;
  }
  return last;
}

std::string Unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    out.push_back(s[i]);
    if (s[i] == '"' && i + 1 < s.size() && s[i + 1] == '"') ++i;
  }
  return out;
}

class CsvSource : public BlockSource {
 public:
  CsvSource(Env* env, std::vector<std::string> files, ReadOptions options)
      : files_(std::move(files)),
        options_(std::move(options)),
        cutter_(env, options_.block_bytes, &LastRowEnd) {
    delim_ = options_.delimiter.value_or(',');
    if (!options_.delimiter && !files_.empty()) {
      const std::string& f = files_[0];
      if (f.size() >= 4 && f.compare(f.size() - 4, 4, ".tsv") == 0) delim_ = '\t';
    }
    for (const auto& t : options_.null_tokens) nulls_.insert(t);
  }

  absl::Status Init() { return OpenFile(0); }

  absl::StatusOr<bool> NextBlock(RawBlock* block) override {
    for (;;) {
      if (!cutter_.is_open()) {
        if (file_index_ + 1 >= files_.size()) return false;
        KILN_RETURN_IF_ERROR(OpenFile(file_index_ + 1));
      }
      KILN_ASSIGN_OR_RETURN(bool got, cutter_.Next(block));
      if (got) return true;
    }
  }

  absl::Status Decode(const RawBlock& block, Batch* out, BadRowSink* bad) const override;

  TableSchema KnownSchema() const override {
    TableSchema schema;
    for (size_t c = 0; c < header_.size(); ++c) {
      if (!fixed_[c]) return {};
      schema.push_back({header_[c], *fixed_[c]});
    }
    return schema;
  }

 private:
  // Opens files_[index] and consumes its header row.
  absl::Status OpenFile(size_t index) {
    file_index_ = index;
    const std::string& path = files_[index];
    KILN_RETURN_IF_ERROR(cutter_.Open(path));
    KILN_RETURN_IF_ERROR(cutter_.FillFirstRow());
    const std::string_view buf = cutter_.pending();
    if (buf.empty()) {
      return absl::InvalidArgumentError(
          kiln::StrCat(path, ": empty file; a CSV file needs a header row"));
    }
    std::vector<FieldRef> fields;
    RowResult row = ParseRow(buf, 0, delim_, &fields);
    if (row.error != RowError::kNone) {
      return absl::InvalidArgumentError(kiln::StrCat(
          path, ":1: column ", row.error_field + 1, ": malformed header: ",
          row.error == RowError::kUnterminatedQuote ? "unterminated quoted field"
                                                    : "unexpected character after closing quote"));
    }
    std::vector<std::string> header;
    for (size_t i = 0; i < fields.size(); ++i) {
      std::string name(buf.substr(fields[i].begin, fields[i].len));
      if (fields[i].escaped) name = Unescape(name);
      // Unnamed columns are named as pandas names them.
      if (name.empty()) name = kiln::StrCat("Unnamed: ", i);
      header.push_back(std::move(name));
    }
    if (index == 0) {
      StringSet seen;
      for (size_t i = 0; i < header.size(); ++i) {
        if (!seen.insert(header[i]).second) {
          return absl::InvalidArgumentError(kiln::StrCat(
              path, ":1: column ", i + 1, ": duplicate column name '", header[i], "'"));
        }
      }
      header_ = std::move(header);
      fixed_.assign(header_.size(), std::nullopt);
      for (const auto& spec : options_.type_overrides) {
        for (size_t c = 0; c < header_.size(); ++c)
          if (header_[c] == spec.name) fixed_[c] = spec.type;
      }
      header_line_ = std::string(buf.substr(0, row.end));
    } else if (header != header_) {
      size_t c = 0;
      while (c < header.size() && c < header_.size() && header[c] == header_[c]) ++c;
      return absl::InvalidArgumentError(
          kiln::StrCat(path, ":1: header differs from ", files_[0], " at column ", c + 1, " ('",
                       c < header.size() ? header[c] : "<none>", "' vs '",
                       c < header_.size() ? header_[c] : "<none>", "')"));
    }
    cutter_.Consume(row.end, row.newlines);
    return absl::OkStatus();
  }

  std::vector<std::string> files_;
  ReadOptions options_;
  char delim_ = ',';
  StringSet nulls_;
  std::vector<std::string> header_;
  std::string header_line_;  // the first file's header row as written, for quarantine
  std::vector<std::optional<ValueType>> fixed_;

  size_t file_index_ = 0;
  TextBlockCutter cutter_;
};

absl::Status CsvSource::Decode(const RawBlock& block, Batch* out, BadRowSink* bad) const {
  // The batch's columns are reused, not rebuilt: their buffers keep their capacity from
  // one block to the next, which saves reallocating (and page-faulting) every block.
  out->num_rows = 0;
  out->row_positions.clear();
  out->source = block.file;
  const std::string_view data = block.data;
  const size_t ncols = header_.size();

  // Pass 1: split into rows and fields; ragged or malformed rows are bad rows. The
  // scratch vectors are per thread for the same reason.
  thread_local std::vector<FieldRef> fields;
  thread_local std::vector<uint32_t> row_start;  // index into `fields` of a good row's first field
  thread_local std::vector<uint64_t> row_line;
  thread_local std::vector<std::pair<uint32_t, uint32_t>> row_bytes;  // for quarantine
  std::vector<BadRow> found_bad;
  fields.clear();
  row_start.clear();
  row_line.clear();
  row_bytes.clear();
  fields.reserve(data.size() / 8 + 16);
  uint64_t line = block.first_line;
  size_t pos = 0;
  // Keeps row data[row_pos, row_end) (fields [first, first + nfields), at line at_line), or
  // reports it as a bad row: with `message`, or when it is ragged. False for a bad row.
  auto take_row = [&](size_t row_pos, size_t row_end, size_t first, size_t nfields,
                      uint64_t at_line, std::string message) {
    if (message.empty() && nfields != ncols) {
      message = kiln::StrCat("column ", std::min(nfields, ncols) + 1, ": expected ", ncols,
                             " fields as in the header, found ", nfields);
    }
    if (!message.empty()) {
      found_bad.push_back({block.file, at_line, std::move(message),
                           std::string(data.substr(row_pos, row_end - row_pos))});
      return false;
    }
    row_start.push_back(static_cast<uint32_t>(first));
    row_line.push_back(at_line);
    row_bytes.emplace_back(static_cast<uint32_t>(row_pos),
                           static_cast<uint32_t>(row_end - row_pos));
    return true;
  };
  // Without a quote in the block every row is plain: split them all in one go.
  if (delim_ != '\n' && delim_ != '\r' && delim_ != '"' &&
      std::memchr(data.data(), '"', data.size()) == nullptr) {
    thread_local std::vector<RowSpan> spans;
    spans.clear();
    SplitUnquoted(data, delim_, &fields, &spans);
    for (const RowSpan& row : spans) {
      const uint64_t at_line = line;
      line += data[row.end - 1] == '\n' ? 1 : 0;
      // Blank lines are skipped, as pandas does.
      if (row.num_fields == 1 && fields[row.first_field].len == 0) continue;
      take_row(row.pos, row.end, row.first_field, row.num_fields, at_line, {});
    }
    pos = data.size();
  }
  while (pos < data.size()) {
    // Blank lines are skipped, as pandas does.
    if (data[pos] == '\n') {
      ++pos;
      ++line;
      continue;
    }
    if (data[pos] == '\r' && (pos + 1 == data.size() || data[pos + 1] == '\n')) {
      pos += (pos + 1 < data.size()) ? 2 : 1;
      ++line;
      continue;
    }
    size_t before = fields.size();
    RowResult r = ParseRow(data, pos, delim_, &fields);
    size_t nfields = fields.size() - before;
    std::string message;
    if (r.error == RowError::kUnterminatedQuote) {
      message = kiln::StrCat("column ", r.error_field + 1,
                             ": unterminated quoted field (the quote is never closed)");
    } else if (r.error == RowError::kCharAfterQuote) {
      message = kiln::StrCat("column ", r.error_field + 1,
                             ": unexpected character after a closing quote");
    }
    if (!take_row(pos, r.end, before, nfields, line, std::move(message))) fields.resize(before);
    line += r.newlines;
    pos = r.end;
  }

  std::string scratch;
  auto text = [&](const FieldRef& f) -> std::string_view {
    std::string_view v(data.data() + f.begin, f.len);
    if (!f.escaped) return v;
    scratch = Unescape(v);
    return scratch;
  };
  auto is_missing = [&](const FieldRef& f, std::string_view v) {
    return f.len == 0 || (!nulls_.empty() && nulls_.contains(v));
  };

  // Pass 2: values that do not fit a fixed column type make their row bad.
  std::vector<uint8_t> row_ok(row_start.size(), 1);
  std::vector<size_t> checked;
  for (size_t c = 0; c < ncols; ++c)
    if (fixed_[c] && *fixed_[c] != ValueType::kString) checked.push_back(c);
  for (size_t r = 0; r < row_start.size() && !checked.empty(); ++r) {
    for (size_t c : checked) {
      if (!row_ok[r]) break;
      const FieldRef& f = fields[row_start[r] + c];
      std::string_view v = text(f);
      if (is_missing(f, v)) continue;
      int64_t iv;
      double dv;
      bool fits = *fixed_[c] == ValueType::kInt ? ParseInt64(v, &iv) : ParseDouble(v, &dv);
      if (!fits) {
        row_ok[r] = 0;
        found_bad.push_back(
            {block.file, row_line[r],
             kiln::StrCat("column ", c + 1, " ('", header_[c], "'): '", v.substr(0, 64),
                          "' is not ", *fixed_[c] == ValueType::kInt ? "an INT" : "a FLOAT",
                          " as the schema requires"),
             std::string(data.substr(row_bytes[r].first, row_bytes[r].second))});
      }
    }
  }
  // Bad rows go to the sink in line order, so "the first error" is the first in the file.
  if (!found_bad.empty()) {
    if (bad->policy() == BadRowPolicy::kQuarantine) bad->SetHeader(header_line_);
    std::stable_sort(found_bad.begin(), found_bad.end(),
                     [](const BadRow& a, const BadRow& b) { return a.line < b.line; });
    for (BadRow& row : found_bad) KILN_RETURN_IF_ERROR(bad->Add(std::move(row)));
  }
  std::vector<uint32_t> rows;
  rows.reserve(row_start.size());
  for (size_t r = 0; r < row_start.size(); ++r) {
    if (row_ok[r]) {
      rows.push_back(row_start[r]);
      out->row_positions.push_back(row_line[r]);
    }
  }
  out->num_rows = rows.size();

  // Pass 3: build typed columns.
  out->columns.resize(ncols);
  for (size_t c = 0; c < ncols; ++c) {
    Column& col = out->columns[c];
    col.name = header_[c];
    col.Clear();
    col.present.reserve(rows.size());
    col.offsets.reserve(rows.size() + 1);
    std::optional<ValueType> type = fixed_[c];
    // Numbers go straight into pre-sized buffers; the first value that does not parse
    // abandons the attempt (INT, then FLOAT, then STRING).
    const size_t nrows = rows.size();
    auto fill = [&](auto& values, auto parse) -> bool {
      col.present.resize(nrows);
      col.offsets.resize(nrows + 1);
      values.resize(nrows);
      uint8_t* present = col.present.data();
      uint32_t* offsets = col.offsets.data();
      auto* out_values = values.data();
      uint32_t nv = 0;
      offsets[0] = 0;
      for (size_t r = 0; r < nrows; ++r) {
        const FieldRef& f = fields[rows[r] + c];
        std::string_view v = text(f);
        if (is_missing(f, v)) {
          present[r] = 0;
        } else {
          if (!parse(v, &out_values[nv])) return false;
          present[r] = 1;
          ++nv;
        }
        offsets[r + 1] = nv;
      }
      values.resize(nv);
      return true;
    };
    const std::string_view buffer = data;
    if (!type || *type == ValueType::kInt) {
      if (fill(col.ints, [buffer](std::string_view v, int64_t* o) {
            return ParseInt64InBuffer(v, buffer, o);
          })) {
        col.type = ValueType::kInt;
        continue;
      }
      col.Clear();
    }
    if (!type || *type == ValueType::kFloat) {
      if (fill(col.floats, [buffer](std::string_view v, double* o) {
            return ParseDoubleInBuffer(v, buffer, o);
          })) {
        col.type = ValueType::kFloat;
        continue;
      }
      col.Clear();
    }
    col.type = ValueType::kString;
    for (uint32_t start : rows) {
      const FieldRef& f = fields[start + c];
      std::string_view v = text(f);
      if (is_missing(f, v)) {
        col.AddMissing();
      } else {
        col.AddString(v);
      }
    }
  }
  return absl::OkStatus();
}

void AppendCsvField(std::string* out, std::string_view v, char delim) {
  bool quote = v.find_first_of(std::string{delim, '"', '\n', '\r'}) != std::string_view::npos;
  if (!quote) {
    out->append(v);
    return;
  }
  out->push_back('"');
  for (char ch : v) {
    if (ch == '"') out->push_back('"');
    out->push_back(ch);
  }
  out->push_back('"');
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlockSource>> OpenCsvSource(Env* env, std::vector<std::string> files,
                                                           const ReadOptions& options) {
  if (files.empty()) return absl::InvalidArgumentError("no CSV files given");
  auto source = std::make_unique<CsvSource>(env, std::move(files), options);
  KILN_RETURN_IF_ERROR(source->Init());
  return std::unique_ptr<BlockSource>(std::move(source));
}

absl::StatusOr<std::unique_ptr<CsvWriter>> CsvWriter::Create(Env* env, const std::string& path,
                                                             const TableSchema& schema,
                                                             char delimiter) {
  KILN_ASSIGN_OR_RETURN(auto out, AtomicFileWriter::Create(env, path));
  auto w = std::unique_ptr<CsvWriter>(new CsvWriter(std::move(out), schema, delimiter));
  for (size_t c = 0; c < schema.size(); ++c) {
    if (c) w->buf_.push_back(delimiter);
    AppendCsvField(&w->buf_, schema[c].name, delimiter);
  }
  w->buf_.push_back('\n');
  return w;
}

absl::Status CsvWriter::Append(const Batch& batch) {
  std::vector<int> index(schema_.size());
  for (size_t c = 0; c < schema_.size(); ++c) {
    index[c] = batch.FindColumn(schema_[c].name);
    if (index[c] >= 0 && batch.columns[index[c]].type != schema_[c].type) {
      return absl::InvalidArgumentError(kiln::StrCat(
          "column '", schema_[c].name, "' is ", ValueTypeName(batch.columns[index[c]].type),
          ", the CSV schema says ", ValueTypeName(schema_[c].type)));
    }
  }
  for (size_t r = 0; r < batch.num_rows; ++r) {
    for (size_t c = 0; c < schema_.size(); ++c) {
      if (c) buf_.push_back(delimiter_);
      if (index[c] < 0) continue;
      const Column& col = batch.columns[index[c]];
      if (!col.is_present(r)) continue;
      std::string field;
      for (uint32_t i = col.offsets[r]; i < col.offsets[r + 1]; ++i) {
        if (i != col.offsets[r]) field.push_back('|');
        switch (col.type) {
          case ValueType::kInt:
            field += std::to_string(col.ints[i]);
            break;
          case ValueType::kFloat:
            kiln::StrAppend(&field, col.floats[i]);
            break;
          case ValueType::kString:
            field.append(col.str(i));
            break;
        }
      }
      // An empty string is written as an empty field, which reads back as missing.
      AppendCsvField(&buf_, field, delimiter_);
    }
    buf_.push_back('\n');
    if (buf_.size() > (1 << 20)) {
      KILN_RETURN_IF_ERROR(out_->Append(buf_));
      buf_.clear();
    }
  }
  return absl::OkStatus();
}

absl::Status CsvWriter::Finish() {
  KILN_RETURN_IF_ERROR(out_->Append(buf_));
  buf_.clear();
  return out_->Commit();
}

}  // namespace kiln::data
