#include "kiln/serving/batcher.h"

#include <algorithm>
#include <charconv>
#include <deque>
#include <limits>
#include <system_error>
#include <utility>

#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::serving {

int DefaultNumBatchThreads() { return NumCpus(); }

namespace {

using Clock = std::chrono::steady_clock;

int64_t MicrosBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
}

// The prefix naming where a field was set ("batching parameters line 4: "), for the
// `index`-th value of a repeated field.
using WhereFn = std::function<std::string(std::string_view field, size_t index)>;

absl::Status Validate(const BatchingOptions& o, const WhereFn& where) {
  auto at_least_one = [&](std::string_view field, int64_t v) -> absl::Status {
    if (v >= 1) return absl::OkStatus();
    return absl::InvalidArgumentError(
        StrCat(where(field, 0), field, " must be at least 1, got ", v));
  };
  KILN_RETURN_IF_ERROR(at_least_one("max_batch_size", o.max_batch_size));
  KILN_RETURN_IF_ERROR(at_least_one("max_enqueued_batches", o.max_enqueued_batches));
  KILN_RETURN_IF_ERROR(at_least_one("num_batch_threads", o.num_batch_threads));
  if (o.num_batch_threads > kMaxNumBatchThreads) {
    return absl::InvalidArgumentError(StrCat(where("num_batch_threads", 0),
                                             "num_batch_threads must be at most ",
                                             kMaxNumBatchThreads, ", got ", o.num_batch_threads));
  }
  if (o.batch_timeout_micros < 0) {
    return absl::InvalidArgumentError(StrCat(where("batch_timeout_micros", 0),
                                             "batch_timeout_micros must be at least 0, got ",
                                             o.batch_timeout_micros));
  }
  const std::vector<int64_t>& sizes = o.allowed_batch_sizes;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] < 1) {
      return absl::InvalidArgumentError(StrCat(where("allowed_batch_sizes", i),
                                               "allowed_batch_sizes must be at least 1, got ",
                                               sizes[i]));
    }
    if (i > 0 && sizes[i] <= sizes[i - 1]) {
      return absl::InvalidArgumentError(StrCat(where("allowed_batch_sizes", i),
                                               "allowed_batch_sizes must increase: ", sizes[i],
                                               " follows ", sizes[i - 1]));
    }
  }
  if (!sizes.empty() && sizes.back() != o.max_batch_size) {
    return absl::InvalidArgumentError(
        StrCat(where("allowed_batch_sizes", sizes.size() - 1), "the last of allowed_batch_sizes (",
               sizes.back(), ") must equal max_batch_size (", o.max_batch_size, ")"));
  }
  return absl::OkStatus();
}

// ---- BatchingParameters text format ----

struct Token {
  enum Kind { kIdent, kNumber, kString, kPunct, kEnd } kind;
  std::string text;
  int line;
};

std::string LineError(int line, std::string_view message) {
  return StrCat("batching parameters line ", line, ": ", message);
}

bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || IsDigit(c); }

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view s) {
  std::vector<Token> tokens;
  int line = 1;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '\n') {
      ++line;
      ++i;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      ++i;
    } else if (c == '#') {
      while (i < s.size() && s[i] != '\n') ++i;
    } else if (IsIdentStart(c)) {
      size_t j = i;
      while (j < s.size() && IsIdentChar(s[j])) ++j;
      tokens.push_back({Token::kIdent, std::string(s.substr(i, j - i)), line});
      i = j;
    } else if (IsDigit(c) || ((c == '-' || c == '+') && i + 1 < s.size() && IsDigit(s[i + 1]))) {
      size_t j = i + 1;
      while (j < s.size() && (IsIdentChar(s[j]) || s[j] == '.')) ++j;
      tokens.push_back({Token::kNumber, std::string(s.substr(i, j - i)), line});
      i = j;
    } else if (c == '"' || c == '\'') {
      size_t j = i + 1;
      std::string text;
      while (j < s.size() && s[j] != c && s[j] != '\n') {
        if (s[j] == '\\' && j + 1 < s.size()) ++j;
        text.push_back(s[j++]);
      }
      if (j >= s.size() || s[j] != c)
        return absl::InvalidArgumentError(LineError(line, "unterminated string"));
      tokens.push_back({Token::kString, std::move(text), line});
      i = j + 1;
    } else if (std::string_view(":{}<>[],;").find(c) != std::string_view::npos) {
      tokens.push_back({Token::kPunct, std::string(1, c), line});
      ++i;
    } else {
      return absl::InvalidArgumentError(LineError(line, StrCat("unexpected character '", c, "'")));
    }
  }
  tokens.push_back({Token::kEnd, "end of input", line});
  return tokens;
}

// Reads the BatchingParameters message. Lines of each field are kept for Validate.
class ParamsParser {
 public:
  explicit ParamsParser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  absl::StatusOr<BatchingOptions> Parse() {
    while (Peek().kind != Token::kEnd) {
      KILN_RETURN_IF_ERROR(Field());
      if (IsPunct(Peek(), ",") || IsPunct(Peek(), ";")) ++pos_;
    }
    KILN_RETURN_IF_ERROR(Validate(options_, [this](std::string_view field, size_t index) {
      auto it = lines_.find(std::string(field));
      if (it == lines_.end()) return std::string("batching parameters: ");
      return StrCat("batching parameters line ", it->second[std::min(index, it->second.size() - 1)],
                    ": ");
    }));
    return options_;
  }

 private:
  static bool IsPunct(const Token& t, std::string_view p) {
    return t.kind == Token::kPunct && t.text == p;
  }
  const Token& Peek() const { return tokens_[pos_]; }
  const Token& Take() {
    const Token& t = tokens_[pos_];
    if (t.kind != Token::kEnd) ++pos_;
    return t;
  }
  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case Token::kEnd:
        return "end of input";
      case Token::kString:
        return StrCat("string \"", t.text, "\"");
      default:
        return StrCat("'", t.text, "'");
    }
  }
  absl::Status Expected(std::string_view what, const Token& got) const {
    return absl::InvalidArgumentError(
        LineError(got.line, StrCat("expected ", what, ", got ", Describe(got))));
  }
  absl::Status ExpectPunct(std::string_view p) {
    const Token& t = Take();
    if (!IsPunct(t, p)) return Expected(StrCat("'", p, "'"), t);
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Int(const Token& t) const {
    if (t.kind != Token::kNumber) return Expected("an integer", t);
    std::string_view s = t.text;
    bool negative = false;
    if (s[0] == '-' || s[0] == '+') {
      negative = s[0] == '-';
      s.remove_prefix(1);
    }
    int base = 10;  // protobuf's text format: 0x.. is hex, 0.. octal
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
      base = 16;
      s.remove_prefix(2);
    } else if (s.size() > 1 && s[0] == '0') {
      base = 8;
      s.remove_prefix(1);
    }
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + negative;
    if (ec != std::errc() || end != s.data() + s.size() || v > limit) {
      return absl::InvalidArgumentError(
          LineError(t.line, StrCat(t.text, " is not a 64-bit integer")));
    }
    return negative ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
  }

  // Records that `name` is set at `line`; singular fields may be set once.
  absl::Status Seen(const std::string& name, int line, bool repeated) {
    std::vector<int>& lines = lines_[name];
    if (!repeated && !lines.empty()) {
      return absl::InvalidArgumentError(
          LineError(line, StrCat(name, " is set twice (first on line ", lines.front(), ")")));
    }
    lines.push_back(line);
    return absl::OkStatus();
  }

  // `{ value: V }` (or `< ... >`, an optional ':' before it; `{}` means the default of V's
  // type). Returns the value token, or null for an empty message.
  absl::StatusOr<const Token*> Wrapper(const Token& name, std::string_view type) {
    if (IsPunct(Peek(), ":")) ++pos_;
    const Token& open = Take();
    if (!IsPunct(open, "{") && !IsPunct(open, "<")) {
      if (open.kind == Token::kNumber || open.kind == Token::kString) {
        return absl::InvalidArgumentError(
            LineError(open.line, StrCat(name.text, " is a google.protobuf.", type, ": write ",
                                        name.text, " { value: ", open.text, " }")));
      }
      return Expected(StrCat("'{' after ", name.text), open);
    }
    const std::string_view close = open.text == "{" ? "}" : ">";
    const Token* value = nullptr;
    while (!IsPunct(Peek(), close)) {
      const Token& field = Take();
      if (field.kind != Token::kIdent) return Expected(StrCat("'value' or '", close, "'"), field);
      if (field.text != "value") {
        return absl::InvalidArgumentError(
            LineError(field.line, StrCat("unknown field '", field.text, "' in ", name.text,
                                         " (a google.protobuf.", type, " has only 'value')")));
      }
      if (value != nullptr) {
        return absl::InvalidArgumentError(
            LineError(field.line,
                      StrCat(name.text, ".value is set twice (first on line ", value->line, ")")));
      }
      KILN_RETURN_IF_ERROR(ExpectPunct(":"));
      value = &Take();
      if (IsPunct(Peek(), ",") || IsPunct(Peek(), ";")) ++pos_;
    }
    ++pos_;  // the closing delimiter
    return value;
  }

  absl::Status Int64Wrapper(const Token& name, int64_t* out) {
    KILN_RETURN_IF_ERROR(Seen(name.text, name.line, /*repeated=*/false));
    KILN_ASSIGN_OR_RETURN(const Token* value, Wrapper(name, "Int64Value"));
    if (value == nullptr) {
      *out = 0;
      return absl::OkStatus();
    }
    KILN_ASSIGN_OR_RETURN(*out, Int(*value));
    lines_[name.text].back() = value->line;
    return absl::OkStatus();
  }

  absl::Status Field() {
    const Token& name = Take();
    if (name.kind != Token::kIdent) return Expected("a field name", name);
    const std::string& n = name.text;
    if (n == "max_batch_size") return Int64Wrapper(name, &options_.max_batch_size);
    if (n == "batch_timeout_micros") return Int64Wrapper(name, &options_.batch_timeout_micros);
    if (n == "max_enqueued_batches") return Int64Wrapper(name, &options_.max_enqueued_batches);
    if (n == "num_batch_threads") {
      int64_t threads = 0;
      KILN_RETURN_IF_ERROR(Int64Wrapper(name, &threads));
      if (threads < 1 || threads > kMaxNumBatchThreads) {  // before narrowing to int
        return absl::InvalidArgumentError(LineError(
            lines_[n].back(),
            StrCat("num_batch_threads must be in [1, ", kMaxNumBatchThreads, "], got ", threads)));
      }
      options_.num_batch_threads = static_cast<int>(threads);
      return absl::OkStatus();
    }
    if (n == "thread_pool_name") {
      KILN_RETURN_IF_ERROR(Seen(n, name.line, /*repeated=*/false));
      KILN_ASSIGN_OR_RETURN(const Token* value, Wrapper(name, "StringValue"));
      if (value != nullptr && value->kind != Token::kString) return Expected("a string", *value);
      return absl::OkStatus();
    }
    if (n == "allowed_batch_sizes") {
      KILN_RETURN_IF_ERROR(ExpectPunct(":"));
      if (!IsPunct(Peek(), "[")) return AllowedSize(Take());
      ++pos_;
      while (!IsPunct(Peek(), "]")) {
        KILN_RETURN_IF_ERROR(AllowedSize(Take()));
        if (IsPunct(Peek(), ",")) {
          ++pos_;
        } else if (!IsPunct(Peek(), "]")) {
          return Expected("',' or ']'", Peek());
        }
      }
      ++pos_;
      return absl::OkStatus();
    }
    if (n == "pad_variable_length_inputs") {
      KILN_RETURN_IF_ERROR(Seen(n, name.line, /*repeated=*/false));
      KILN_RETURN_IF_ERROR(ExpectPunct(":"));
      const Token& v = Take();
      static constexpr std::string_view kTrue[] = {"true", "True", "t", "1"};
      static constexpr std::string_view kFalse[] = {"false", "False", "f", "0"};
      if (std::find(std::begin(kTrue), std::end(kTrue), v.text) != std::end(kTrue) &&
          v.kind != Token::kString) {
        options_.pad_variable_length_inputs = true;
      } else if (std::find(std::begin(kFalse), std::end(kFalse), v.text) != std::end(kFalse) &&
                 v.kind != Token::kString) {
        options_.pad_variable_length_inputs = false;
      } else {
        return Expected("true or false", v);
      }
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(LineError(
        name.line, StrCat("unknown field '", n,
                          "'; BatchingParameters has max_batch_size, batch_timeout_micros, "
                          "max_enqueued_batches, num_batch_threads, thread_pool_name, "
                          "allowed_batch_sizes, pad_variable_length_inputs")));
  }

  absl::Status AllowedSize(const Token& t) {
    KILN_ASSIGN_OR_RETURN(int64_t v, Int(t));
    KILN_RETURN_IF_ERROR(Seen("allowed_batch_sizes", t.line, /*repeated=*/true));
    options_.allowed_batch_sizes.push_back(v);
    return absl::OkStatus();
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  BatchingOptions options_;
  std::map<std::string, std::vector<int>> lines_;  // field -> line of each value
};

}  // namespace

absl::Status ValidateBatchingOptions(const BatchingOptions& options) {
  return Validate(options, [](std::string_view, size_t) { return "batching options: "; });
}

absl::StatusOr<BatchingOptions> ParseBatchingParameters(std::string_view text) {
  KILN_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(text));
  return ParamsParser(std::move(tokens)).Parse();
}

// ---- Batcher ----

// One caller's request. Shared by the caller and the pieces in batches, so whichever side
// finishes last frees it.
struct Batcher::Request {
  const data::Batch* rows = nullptr;  // alive until pieces_left is 0: the caller's or `owned`
  const PredictFn* predict = nullptr;
  std::shared_ptr<const data::Batch> owned_rows;  // Submit's
  PredictFn owned_predict;                        // Submit's
  DoneFn done;                                    // Submit's; Run waits on done_cv instead
  std::mutex mu;
  std::condition_variable done_cv;
  size_t pieces_left = 0;     // guarded by mu
  absl::Status status;        // guarded by mu: the first error
  int64_t width = -1;         // guarded by mu: scores per row, once a piece ran
  std::vector<float> scores;  // guarded by mu
};

struct Batcher::Piece {
  std::shared_ptr<Request> request;
  size_t begin = 0;
  size_t rows = 0;
};

struct Batcher::Pending {
  const void* key = nullptr;
  std::vector<Piece> pieces;
  size_t rows = 0;
  Clock::time_point start;              // when the first piece joined
  const data::Batch* layout = nullptr;  // the first request's rows: the batch's columns
  const PredictFn* predict = nullptr;   // the first request's
};

struct Batcher::KeyQueue {
  const void* key = nullptr;
  std::deque<std::unique_ptr<Pending>> closed;  // oldest first
  std::unique_ptr<Pending> open;
  int64_t accepted() const { return static_cast<int64_t>(closed.size()) + (open ? 1 : 0); }
};

absl::StatusOr<std::unique_ptr<Batcher>> Batcher::Create(BatchingOptions options, std::string name,
                                                         BatchObserver observer) {
  KILN_RETURN_IF_ERROR(ValidateBatchingOptions(options));
  std::unique_ptr<Batcher> b(new Batcher(std::move(options), std::move(name), std::move(observer)));
  try {
    for (int i = 0; i < b->options_.num_batch_threads; ++i)
      b->workers_.emplace_back([p = b.get()] { p->WorkerLoop(); });
  } catch (const std::system_error& e) {
    return absl::ResourceExhaustedError(
        StrCat("cannot start batch threads for ", b->name_, ": ", e.what()));
  }
  return b;
}

Batcher::Batcher(BatchingOptions options, std::string name, BatchObserver observer)
    : options_(std::move(options)), name_(std::move(name)), observer_(std::move(observer)) {}

Batcher::~Batcher() { Shutdown(); }

void Batcher::Shutdown() {
  std::lock_guard<std::mutex> shutdown_lock(shutdown_mu_);
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
}

absl::Status Batcher::Run(const void* key, const PredictFn& predict, const data::Batch& rows,
                          std::vector<float>* scores) {
  if (rows.num_rows == 0) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) return Stopped();
    }
    return predict(rows, scores);
  }
  auto request = std::make_shared<Request>();
  request->rows = &rows;
  request->predict = &predict;
  KILN_RETURN_IF_ERROR(Enqueue(key, request));
  std::unique_lock<std::mutex> l(request->mu);
  request->done_cv.wait(l, [&] { return request->pieces_left == 0; });
  if (!request->status.ok()) return std::move(request->status);
  *scores = std::move(request->scores);
  return absl::OkStatus();
}

void Batcher::Submit(const void* key, PredictFn predict, std::shared_ptr<const data::Batch> rows,
                     DoneFn done) {
  if (rows->num_rows == 0) {
    std::vector<float> scores;
    absl::Status st;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) st = Stopped();
    }
    if (st.ok()) st = predict(*rows, &scores);
    done(std::move(st), std::move(scores));
    return;
  }
  auto request = std::make_shared<Request>();
  request->owned_rows = std::move(rows);
  request->rows = request->owned_rows.get();
  request->owned_predict = std::move(predict);
  request->predict = &request->owned_predict;
  request->done = std::move(done);
  if (absl::Status st = Enqueue(key, request); !st.ok()) request->done(std::move(st), {});
}

absl::Status Batcher::Stopped() const {
  return absl::UnavailableError(StrCat("the batcher of ", name_, " is shutting down"));
}

absl::Status Batcher::Enqueue(const void* key, const std::shared_ptr<Request>& request) {
  const data::Batch& rows = *request->rows;
  std::vector<size_t> pieces;
  const size_t max_rows = static_cast<size_t>(options_.max_batch_size);
  for (size_t left = rows.num_rows; left > 0;) {
    pieces.push_back(std::min(left, max_rows));
    left -= pieces.back();
  }
  if (static_cast<int64_t>(pieces.size()) > options_.max_enqueued_batches) {
    return absl::InvalidArgumentError(
        StrCat("a request of ", rows.num_rows, " rows to ", name_, " needs ", pieces.size(),
               " batches of max_batch_size ", max_rows, " rows, more than max_enqueued_batches (",
               options_.max_enqueued_batches, "); send fewer rows per request"));
  }
  request->pieces_left = pieces.size();
  std::lock_guard<std::mutex> l(mu_);
  if (stopping_) return Stopped();
  std::unique_ptr<KeyQueue>& q = keys_[key];
  if (q == nullptr) {
    q = std::make_unique<KeyQueue>();
    q->key = key;
  }
  if (Place(*q, rows, pieces, nullptr, nullptr) > options_.max_enqueued_batches) {
    const int64_t waiting = q->accepted();
    if (waiting == 0) keys_.erase(key);
    ++refused_;
    return absl::ResourceExhaustedError(StrCat("the batch queue of ", name_, " is full: ", waiting,
                                               " batches waiting (max_enqueued_batches ",
                                               options_.max_enqueued_batches, "); retry later"));
  }
  const size_t closed_before = q->closed.size();
  const Pending* open_before = q->open.get();
  Place(*q, rows, pieces, request, request->predict);
  // A worker has something new to do only when a batch closed (it can run now) or a batch
  // opened (its timeout needs watching). Joining the open batch changes neither, and
  // waking a worker for it would cost a context switch per request.
  if (q->closed.size() != closed_before || (q->open && q->open.get() != open_before)) {
    work_cv_.notify_one();
  }
  return absl::OkStatus();
}

int64_t Batcher::Place(KeyQueue& q, const data::Batch& rows, const std::vector<size_t>& pieces,
                       const std::shared_ptr<Request>& request, const PredictFn* predict) {
  const bool apply = request != nullptr;
  const size_t max_rows = static_cast<size_t>(options_.max_batch_size);
  int64_t accepted = q.accepted();
  bool have_open = q.open != nullptr;
  size_t open_rows = have_open ? q.open->rows : 0;
  bool same_columns = have_open && data::SameColumns(*q.open->layout, rows);
  size_t begin = 0;
  for (size_t n : pieces) {
    if (!have_open || !same_columns || open_rows + n > max_rows) {
      if (apply) {
        if (q.open) q.closed.push_back(std::move(q.open));
        q.open = std::make_unique<Pending>();
        q.open->key = q.key;
        q.open->start = Clock::now();
        q.open->layout = &rows;
        q.open->predict = predict;
      }
      ++accepted;
      have_open = same_columns = true;
      open_rows = 0;
    }
    open_rows += n;
    if (apply) {
      q.open->pieces.push_back({request, begin, n});
      q.open->rows += n;
    }
    begin += n;
    if (open_rows == max_rows) {  // exactly full: no later request fits
      if (apply) q.closed.push_back(std::move(q.open));
      have_open = false;
    }
  }
  return accepted;
}

std::unique_ptr<Batcher::Pending> Batcher::TakeBatch(Clock::time_point now,
                                                     Clock::time_point* wake) {
  const auto timeout = std::chrono::microseconds(options_.batch_timeout_micros);
  auto it = keys_.lower_bound(next_key_);
  for (size_t i = 0; i < keys_.size(); ++i, ++it) {
    if (it == keys_.end()) it = keys_.begin();
    KeyQueue& q = *it->second;
    std::unique_ptr<Pending> batch;
    if (!q.closed.empty()) {
      batch = std::move(q.closed.front());
      q.closed.pop_front();
    } else if (q.open) {
      const Clock::time_point due = q.open->start + timeout;
      if (!stopping_ && due > now) {
        *wake = std::min(*wake, due);
        continue;
      }
      batch = std::move(q.open);
    }
    auto next = std::next(it);
    next_key_ = next == keys_.end() ? nullptr : next->first;
    if (q.accepted() == 0) keys_.erase(it);
    return batch;
  }
  return nullptr;
}

void Batcher::WorkerLoop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    const Clock::time_point now = Clock::now();
    Clock::time_point wake = Clock::time_point::max();
    std::unique_ptr<Pending> batch = TakeBatch(now, &wake);
    if (batch != nullptr) {
      ++running_;
      // Another idle worker takes over watching what is left (e.g. an open batch's timeout).
      if (!keys_.empty()) work_cv_.notify_one();
      l.unlock();
      Execute(*batch, MicrosBetween(batch->start, now));
      batch.reset();
      l.lock();
      continue;
    }
    if (stopping_ && keys_.empty()) {
      work_cv_.notify_all();
      return;
    }
    if (wake == Clock::time_point::max()) {
      work_cv_.wait(l);
    } else {
      work_cv_.wait_until(l, wake);
    }
  }
}

void Batcher::Execute(Pending& batch, int64_t queue_micros) {
  const Clock::time_point start = Clock::now();
  size_t padded = batch.rows;
  const std::vector<int64_t>& allowed = options_.allowed_batch_sizes;
  if (!allowed.empty()) {
    padded = static_cast<size_t>(
        *std::lower_bound(allowed.begin(), allowed.end(), static_cast<int64_t>(batch.rows)));
  }
  const Piece& first = batch.pieces.front();
  const data::Batch* input = first.request->rows;
  absl::Status status;
  if (batch.pieces.size() > 1 || first.rows != input->num_rows || padded != batch.rows) {
    // Per batch thread, so that its storage serves batch after batch (64 columns of a
    // batch of 32 are otherwise hundreds of allocations). At most max_batch_size rows.
    thread_local data::Batch merged;
    if (data::SameColumns(merged, *input)) {
      for (data::Column& c : merged.columns) c.Clear();
      merged.num_rows = 0;
      merged.row_positions.clear();
      merged.row_tags.clear();
    } else {
      merged = data::Batch();
    }
    for (const Piece& p : batch.pieces) {
      status = data::AppendRows(*p.request->rows, p.begin, p.begin + p.rows, &merged);
      if (!status.ok()) break;
    }
    for (size_t r = batch.rows; status.ok() && r < padded; ++r)
      status = data::AppendRows(*first.request->rows, first.begin, first.begin + 1, &merged);
    input = &merged;
  }
  std::vector<float> out;
  if (status.ok()) status = (*batch.predict)(*input, &out);
  size_t width = 0;
  if (status.ok()) {
    if (out.size() % padded != 0) {
      status = absl::InternalError(
          StrCat("predict returned ", out.size(), " scores for a batch of ", padded, " rows"));
    } else {
      width = out.size() / padded;
    }
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    --running_;
    ++batches_run_;
    rows_run_ += static_cast<int64_t>(batch.rows);
  }
  if (observer_) {
    BatchInfo info;
    info.key = batch.key;
    info.rows = static_cast<int64_t>(batch.rows);
    info.padded_rows = static_cast<int64_t>(padded);
    info.requests = static_cast<int64_t>(batch.pieces.size());
    info.queue_micros = queue_micros;
    info.run_micros = MicrosBetween(start, Clock::now());
    info.ok = status.ok();
    observer_(info);
  }
  size_t at = 0;                   // the piece's first row in `out`
  std::vector<Request*> finished;  // submitted requests whose last piece this was
  for (const Piece& p : batch.pieces) {
    Request& r = *p.request;
    std::lock_guard<std::mutex> l(r.mu);
    if (!status.ok()) {
      // Each request gets its own copy, so no status is shared by callers on other threads.
      if (r.status.ok()) r.status = absl::Status(status.code(), status.message());
    } else if (r.status.ok()) {
      if (r.width < 0) {
        r.width = static_cast<int64_t>(width);
        r.scores.resize(r.rows->num_rows * width);
      }
      if (r.width != static_cast<int64_t>(width)) {
        r.status = absl::InternalError(
            StrCat("pieces of one request got ", r.width, " and ", width, " scores per row"));
      } else {
        std::copy(out.begin() + at * width, out.begin() + (at + p.rows) * width,
                  r.scores.begin() + p.begin * width);
      }
    }
    at += p.rows;
    if (--r.pieces_left == 0) {
      if (r.done) {
        finished.push_back(&r);
      } else {
        r.done_cv.notify_all();
      }
    }
  }
  // Outside the requests' locks; the batch's pieces keep them alive.
  for (Request* r : finished) {
    DoneFn done = std::move(r->done);
    done(std::move(r->status), std::move(r->scores));
  }
}

BatcherStats Batcher::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  BatcherStats s;
  for (const auto& [key, q] : keys_) {
    s.queued_batches += q->accepted();
    for (const auto& b : q->closed) s.queued_rows += static_cast<int64_t>(b->rows);
    if (q->open) s.queued_rows += static_cast<int64_t>(q->open->rows);
    s.open_batches += q->open ? 1 : 0;
  }
  s.running_batches = running_;
  s.batches_run = batches_run_;
  s.rows_run = rows_run_;
  s.requests_refused = refused_;
  s.shutting_down = stopping_;
  return s;
}

}  // namespace kiln::serving
