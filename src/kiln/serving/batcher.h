// Dynamic batching for kiln serve, after TF Serving's BasicBatchScheduler: concurrent
// requests for the same model version are merged into one batch, so the model scores
// many rows per call instead of a few per request.
//
// Run() blocks its caller until the caller's rows are scored; Submit() returns at once and
// hands the scores to a callback, so a server need not park a thread per request in
// flight. Requests are grouped by a
// key (the predictor of one model version); rows of different keys never share a batch.
// Each key has at most one open batch, which requests join in arrival order. It closes
// when the next request does not fit in max_batch_size rows, or as soon as it is exactly
// full. num_batch_threads workers, shared by all keys and serving them round-robin, run a
// key's closed batches oldest first, and take its open batch once batch_timeout_micros
// have passed since its first request joined. As in TF Serving, a timed-out open batch
// keeps accepting requests until a worker is free to take it, so under load batches fill
// up instead of leaving half empty.
//
// The queue is bounded. Per key, at most max_enqueued_batches batches can be accepted and
// not yet running, counting the open batch (TF Serving counts it the same way). A request
// that would need one more batch is refused at once with kResourceExhausted. No request
// ever waits for room.
//
// A request of more than max_batch_size rows is split into pieces of max_batch_size rows
// (the last piece holds the remainder). Each piece joins batches like a request of its own.
// The request is admitted whole or refused whole, and its caller gets the pieces' scores
// concatenated in row order, or the first error. A request needing more than
// max_enqueued_batches pieces can never be admitted and gets kInvalidArgument.
//
// Thread-safe. Shutdown() (the destructor calls it) refuses new requests and drains:
// batches already accepted still run, and their callers get their scores.
#ifndef KILN_SERVING_BATCHER_H_
#define KILN_SERVING_BATCHER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kiln/data/batch.h"

namespace kiln::serving {

// NumCpus() (base/env.h).
int DefaultNumBatchThreads();

// What TF Serving's BatchingParameters sets, with kiln serve's defaults.
struct BatchingOptions {
  // The most rows in one batch, and so in one predict call.
  int64_t max_batch_size = 32;
  // How long an open batch waits for more requests after its first one joined. With 0, an
  // idle worker takes a batch at once, and batches form only while all workers are busy.
  int64_t batch_timeout_micros = 1000;
  // Workers that run batches. At most kMaxNumBatchThreads.
  int num_batch_threads = DefaultNumBatchThreads();
  // Per key: batches accepted and not yet running (the open one included).
  int64_t max_enqueued_batches = 16;
  // When set, it must be increasing and end at max_batch_size. Each batch is then padded
  // to the smallest allowed size that holds it, by repeating its first row, and predict
  // sees only these sizes. The padding rows' scores are dropped.
  std::vector<int64_t> allowed_batch_sizes;
  // Accepted for TF Serving compatibility and ignored: kiln's rows are not tensors.
  bool pad_variable_length_inputs = false;
};

inline constexpr int kMaxNumBatchThreads = 1024;

// kInvalidArgument, naming the field, unless every size is >= 1, batch_timeout_micros is
// >= 0, num_batch_threads is in [1, kMaxNumBatchThreads], and allowed_batch_sizes is empty
// or increasing and ends at max_batch_size.
absl::Status ValidateBatchingOptions(const BatchingOptions& options);

// Reads TF Serving's --batching_parameters_file, a text-format BatchingParameters message:
//   max_batch_size { value: 128 }        # google.protobuf.Int64Value wrappers
//   batch_timeout_micros { value: 0 }
//   max_enqueued_batches { value: 1000000 }
//   num_batch_threads { value: 8 }
//   thread_pool_name { value: "batch" }  # accepted, ignored
//   allowed_batch_sizes: 64              # repeated; also allowed_batch_sizes: [64, 128]
//   allowed_batch_sizes: 128
//   pad_variable_length_inputs: true     # accepted, ignored
// '#' starts a comment. Fields left out keep BatchingOptions' defaults. The result has
// passed ValidateBatchingOptions.
// Errors: kInvalidArgument "batching parameters line N: ..." for a syntax error, an unknown
// or repeated field, or a value ValidateBatchingOptions rejects (naming the line that set
// it).
absl::StatusOr<BatchingOptions> ParseBatchingParameters(std::string_view text);

// One batch that a worker ran, as reported to the BatchObserver.
struct BatchInfo {
  const void* key = nullptr;
  int64_t rows = 0;          // the requests' rows
  int64_t padded_rows = 0;   // rows predict saw: `rows` padded up to an allowed batch size
  int64_t requests = 0;      // requests merged (each piece of a split request counts)
  int64_t queue_micros = 0;  // from the first request joining to the worker taking the batch
  int64_t run_micros = 0;    // merging, padding, predict and handing out the scores
  bool ok = false;           // predict succeeded
};

// Called on the worker thread after each batch's predict, before the batch's callers get
// their scores, outside the batcher's lock. It must be thread-safe and quick (it delays
// those callers). Feeds e.g. a batch-size histogram.
using BatchObserver = std::function<void(const BatchInfo&)>;

// A snapshot of the batcher's state, for metrics.
struct BatcherStats {
  int64_t queued_batches = 0;  // all keys: accepted, not yet running (the queue depth)
  int64_t queued_rows = 0;     // the rows in those batches
  int64_t open_batches = 0;    // of those, still accepting requests
  int64_t running_batches = 0;
  int64_t batches_run = 0;       // since creation
  int64_t rows_run = 0;          // since creation, without padding
  int64_t requests_refused = 0;  // kResourceExhausted since creation
  bool shutting_down = false;    // Shutdown() began: new requests get kUnavailable
};

class Batcher {
 public:
  // Scores `rows` into `scores`, the same number of floats for every row (see
  // train::Predictor::Predict). It must be thread-safe.
  using PredictFn = std::function<absl::Status(const data::Batch& rows, std::vector<float>*)>;

  // `name` says whose queue is full in errors, e.g. "model iris". `observer` may be null.
  // Starts options.num_batch_threads workers.
  // Errors: those of ValidateBatchingOptions.
  static absl::StatusOr<std::unique_ptr<Batcher>> Create(BatchingOptions options, std::string name,
                                                         BatchObserver observer = nullptr);
  ~Batcher();  // Shutdown()
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Scores `rows` with `predict`, batched with other requests for `key`, and blocks until
  // done. On success `*scores` holds scores for exactly these rows, in order: the batch's
  // scores per row (the batch's score count / its rows) times rows.num_rows. A batch runs
  // the `predict` of its first request, so every request for one key must pass an
  // equivalent function, and `key` must not be reused for something else while a request
  // with it is in the batcher. Requests whose columns differ from the open batch's start a
  // batch of their own. Zero rows are passed to `predict` directly on the calling thread.
  // Errors: predict's error, given to every request of the batch; kInternal when predict
  // returns a score count that is not a multiple of the batch's rows, or when pieces of a
  // split request get different scores per row; kResourceExhausted, at once, when the
  // key's queue is full (retry later); kInvalidArgument when the request needs more than
  // max_enqueued_batches pieces; kUnavailable after Shutdown() began.
  absl::Status Run(const void* key, const PredictFn& predict, const data::Batch& rows,
                   std::vector<float>* scores);

  // Called exactly once with what Run() would return: the status, and on success the
  // scores.
  using DoneFn = std::function<void(absl::Status status, std::vector<float> scores)>;

  // Run() without blocking: `done` gets its result. It runs on the calling thread, before
  // Submit returns, for a refusal, an error or zero rows; otherwise on a batch thread once
  // the request's last piece ran (keep it short: it delays the batch's other requests).
  // The batcher keeps `rows` and `predict` until then.
  void Submit(const void* key, PredictFn predict, std::shared_ptr<const data::Batch> rows,
              DoneFn done);

  // Refuses new requests with kUnavailable, runs every batch already accepted (open ones
  // without waiting for their timeout), and joins the workers. Idempotent. Run() calls
  // already blocked return normally, and requests already submitted get their callbacks.
  void Shutdown();

  BatcherStats stats() const;
  const BatchingOptions& options() const { return options_; }

 private:
  struct Request;
  struct Piece;
  struct Pending;
  struct KeyQueue;

  Batcher(BatchingOptions options, std::string name, BatchObserver observer);
  // Splits `request`'s rows into pieces and queues them. An error (a refusal, a request
  // too large, shutdown) means nothing was queued.
  absl::Status Enqueue(const void* key, const std::shared_ptr<Request>& request);
  absl::Status Stopped() const;  // kUnavailable: shutting down
  // Places the pieces (row counts) of `request` into `q`'s batches and returns how many
  // batches `q` then has accepted and not running. With `request` null it only counts.
  int64_t Place(KeyQueue& q, const data::Batch& rows, const std::vector<size_t>& pieces,
                const std::shared_ptr<Request>& request, const PredictFn* predict);
  // The next batch a worker should run (round-robin over keys), or null; `*wake` is
  // lowered to the time the next open batch times out.
  std::unique_ptr<Pending> TakeBatch(std::chrono::steady_clock::time_point now,
                                     std::chrono::steady_clock::time_point* wake);
  void WorkerLoop();
  void Execute(Pending& batch, int64_t queue_micros);

  const BatchingOptions options_;
  const std::string name_;
  const BatchObserver observer_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // workers wait here for a batch
  bool stopping_ = false;            // guarded by mu_
  // Keys with an open or closed batch; a key with neither is erased. Guarded by mu_.
  std::map<const void*, std::unique_ptr<KeyQueue>> keys_;
  const void* next_key_ = nullptr;  // round-robin position, guarded by mu_
  int64_t running_ = 0;             // guarded by mu_
  int64_t batches_run_ = 0;         // guarded by mu_
  int64_t rows_run_ = 0;            // guarded by mu_
  int64_t refused_ = 0;             // guarded by mu_

  std::mutex shutdown_mu_;  // one Shutdown() joins the workers
  std::vector<std::thread> workers_;
};

}  // namespace kiln::serving

#endif  // KILN_SERVING_BATCHER_H_
