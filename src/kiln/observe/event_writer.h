// An EventWriter appends TensorBoard events (scalars, histograms, hparams session
// records) to one new event file in a log directory, in the format TensorBoard's own
// readers load: TFRecord-framed tensorflow.Event protos, first record file_version
// "brain.Event:2".
//
// The file is append-only. Records are buffered in memory and handed to the file when
// Options::max_pending_bytes or max_pending_micros is reached, on Flush(), Close() and
// destruction; Flush() and Close() also make them durable (fdatasync). A crash loses at
// most the records not yet handed over (and may leave a torn last record, which
// TensorBoard skips); records before them stay intact. After a failed write the writer
// stops writing and every later call returns that error, so no record ever follows a
// torn one.
//
// Thread-safe: calls may come from several threads; records keep the order of calls.
#ifndef KILN_OBSERVE_EVENT_WRITER_H_
#define KILN_OBSERVE_EVENT_WRITER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "tensorboard/plugins/hparams/api.pb.h"
#include "tensorflow/core/framework/summary.pb.h"
#include "tensorflow/core/util/event.pb.h"

namespace kiln::observe {

// Tags TensorBoard's hparams plugin looks for.
inline constexpr char kHparamsExperimentTag[] = "_hparams_/experiment";
inline constexpr char kHparamsSessionStartTag[] = "_hparams_/session_start_info";
inline constexpr char kHparamsSessionEndTag[] = "_hparams_/session_end_info";
// The file_version of the first record; TensorBoard checks the "brain.Event:" prefix.
inline constexpr char kEventFileVersion[] = "brain.Event:2";

// A hyperparameter value as TensorBoard's hparams dashboard shows it: a number, a
// string or a bool. Integers are passed as double (TensorBoard has no integer type).
using HparamValue = std::variant<double, std::string, bool>;

// The summary of a set of values that AddHistogram writes, exposed for tests and for
// callers that want the numbers. Non-finite values are left out of every field.
// `bucket_limit[i]` is the right edge of bucket i; the buckets have equal width from
// min to max and the last one includes max. No values: num 0 and no buckets.
tensorflow::HistogramProto MakeHistogram(std::span<const float> values, int buckets);

class EventWriter {
 public:
  struct Options {
    // Pending bytes that trigger handing records to the file. Default 64 KiB.
    size_t max_pending_bytes = size_t{64} << 10;
    // Age of the oldest pending record that triggers handing records to the file when
    // the next one is added (no background thread: a writer nobody calls keeps its
    // records until Flush/Close). Default 10 s, as TensorFlow's summary writer.
    int64_t max_pending_micros = 10'000'000;
    // Equal-width buckets per histogram; must be >= 1. Default 30, as TensorBoard's own
    // histogram summary.
    int histogram_buckets = 30;
    // Host name in the file name. Default "": the machine's name (gethostname).
    std::string hostname;
    // Written to the first record's source_metadata.writer. Default "kiln".
    std::string source_writer = "kiln";
  };

  // Creates `logdir` if needed and a new file in it named
  //   events.out.tfevents.<unix seconds, 10 digits>.<hostname>.<pid>.<n>
  // (TensorBoard's naming; n counts writers in this process and skips names that
  // exist), and writes the file_version record to it.
  // Errors: kInvalidArgument for bad options (histogram_buckets < 1, a hostname with
  // '/'), and the Env's errors creating the directory or the file.
  static absl::StatusOr<std::unique_ptr<EventWriter>> Create(Env* env, const std::string& logdir,
                                                             const Options& options);
  static absl::StatusOr<std::unique_ptr<EventWriter>> Create(Env* env, const std::string& logdir) {
    return Create(env, logdir, Options());
  }

  // Closes the writer if Close() was not called; errors are lost then.
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // Full path of the event file.
  const std::string& path() const { return path_; }

  // A scalar (loss, an eval metric) as TensorFlow 2 writes it: a rank-0 DT_FLOAT tensor
  // with "scalars" plugin metadata and data class DATA_CLASS_SCALAR. wall_time is in
  // seconds since the Unix epoch; the overload without it uses the Env's clock.
  // Errors: kInvalidArgument for an empty tag; write errors; kFailedPrecondition after
  // Close.
  absl::Status AddScalar(std::string_view tag, int64_t step, float value, double wall_time);
  absl::Status AddScalar(std::string_view tag, int64_t step, float value);

  // A histogram of `values` (e.g. a layer's weights) as a HistogramProto summary
  // (MakeHistogram with Options::histogram_buckets), which TensorBoard's histogram and
  // distribution dashboards read. Errors as AddScalar.
  absl::Status AddHistogram(std::string_view tag, int64_t step, std::span<const float> values,
                            double wall_time);
  absl::Status AddHistogram(std::string_view tag, int64_t step, std::span<const float> values);

  // The hparams plugin's record that a session (this run) started with `hparams`.
  // Sessions with the same non-empty group_name are repeats of one configuration.
  // start_time is in seconds since the Unix epoch.
  // Errors: kInvalidArgument for an empty hparam name or a non-finite number; write
  // errors; kFailedPrecondition after Close.
  absl::Status WriteHparamsSessionStart(const std::map<std::string, HparamValue>& hparams,
                                        std::string_view group_name, double start_time);
  // The hparams plugin's record that the session ended with `status` (STATUS_SUCCESS,
  // STATUS_FAILURE, ...). Errors: write errors; kFailedPrecondition after Close.
  absl::Status WriteHparamsSessionEnd(tensorboard::hparams::Status status, double end_time);

  // The hparams plugin's description of the whole experiment: which hparams and
  // metrics the dashboard shows (metric_infos with group "" name scalar tags in each
  // session's own directory). Optional: without it TensorBoard infers one from the
  // sessions, but then a session whose directory is the log directory itself (run ".")
  // is listed without metric values (TensorBoard 2.21). TensorBoard uses the first
  // experiment record it finds in the log directory.
  // Errors: write errors; kFailedPrecondition after Close.
  absl::Status WriteHparamsExperiment(const tensorboard::hparams::Experiment& experiment,
                                      double wall_time);

  // Appends any event as is (wall_time and step included).
  absl::Status WriteEvent(const tensorflow::Event& event);

  // Hands every pending record to the file and syncs it to disk.
  absl::Status Flush();
  // Flush, then close the file. Idempotent once it succeeded; later writes are
  // kFailedPrecondition.
  absl::Status Close();

 private:
  EventWriter(Env* env, std::string path, std::unique_ptr<WritableFile> file,
              const Options& options);
  double NowSeconds() const;
  // Caller holds mu_.
  absl::Status WriteLocked(const tensorflow::Event& event);
  absl::Status HandOverLocked();
  absl::Status FlushLocked();
  absl::Status CloseLocked();
  absl::Status WriteSummaryValue(tensorflow::Summary::Value value, int64_t step, double wall_time);

  Env* const env_;
  const std::string path_;
  const Options options_;
  std::mutex mu_;
  std::unique_ptr<WritableFile> file_;  // null once closed
  std::string pending_;                 // framed records not yet handed to file_
  int64_t oldest_pending_micros_ = 0;   // when the first pending record was added
  absl::Status error_;                  // first write error; sticky
};

}  // namespace kiln::observe

#endif  // KILN_OBSERVE_EVENT_WRITER_H_
