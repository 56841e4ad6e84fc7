#include "kiln/observe/event_writer.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "google/protobuf/struct.pb.h"
#include "kiln/base/str.h"
#include "kiln/base/tfrecord_framing.h"
#include "tensorboard/plugins/hparams/plugin_data.pb.h"

namespace kiln::observe {
namespace {

// Writers created by this process; the last part of the file name.
std::atomic<int64_t> g_writers_created{0};

std::string MachineName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') return "localhost";
  return host;
}

std::string EventFileName(int64_t now_micros, std::string_view host, int64_t n) {
  char secs[32];
  std::snprintf(secs, sizeof(secs), "%010lld", static_cast<long long>(now_micros / 1000000));
  return kiln::StrCat("events.out.tfevents.", secs, ".", host, ".", static_cast<int64_t>(getpid()),
                      ".", n);
}

tensorflow::SummaryMetadata PluginMetadata(std::string_view plugin, std::string content) {
  tensorflow::SummaryMetadata metadata;
  metadata.mutable_plugin_data()->set_plugin_name(std::string(plugin));
  metadata.mutable_plugin_data()->set_content(std::move(content));
  return metadata;
}

// The value of an hparams summary: plugin data carrying `data`, plus the empty float
// vector TensorBoard's own hparams writer attaches (loaders index tensors, not bare
// metadata).
tensorflow::Summary::Value HparamsValue(std::string_view tag,
                                        tensorboard::hparams::HParamsPluginData data) {
  data.set_version(0);  // the only version TensorBoard reads
  tensorflow::Summary::Value value;
  value.set_tag(std::string(tag));
  *value.mutable_metadata() = PluginMetadata("hparams", data.SerializeAsString());
  tensorflow::TensorProto* tensor = value.mutable_tensor();
  tensor->set_dtype(tensorflow::DT_FLOAT);
  tensor->mutable_tensor_shape()->add_dim()->set_size(0);
  return value;
}

absl::Status CheckTag(std::string_view tag) {
  if (tag.empty()) return absl::InvalidArgumentError("EventWriter: empty tag");
  return absl::OkStatus();
}

}  // namespace

tensorflow::HistogramProto MakeHistogram(std::span<const float> values, int buckets) {
  tensorflow::HistogramProto histo;
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  double num = 0, sum = 0, sum_squares = 0;
  for (float f : values) {
    if (!std::isfinite(f)) continue;
    const double v = f;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    num += 1;
    sum += v;
    sum_squares += v * v;
  }
  if (num == 0) return histo;
  histo.set_min(lo);
  histo.set_max(hi);
  histo.set_num(num);
  histo.set_sum(sum);
  histo.set_sum_squares(sum_squares);

  // All values equal: one bucket ending at that value.
  const int k = hi > lo ? std::max(buckets, 1) : 1;
  std::vector<double> limits(k);
  const double width = (hi - lo) / k;
  for (int i = 0; i + 1 < k; ++i) limits[i] = lo + width * (i + 1);
  limits[k - 1] = hi;
  // Bucket i holds [limits[i-1], limits[i]); the last one also holds max. Searching the
  // limits (rather than dividing by width) keeps every count consistent with the edges
  // written.
  std::vector<double> counts(k, 0.0);
  for (float f : values) {
    if (!std::isfinite(f)) continue;
    auto it = std::upper_bound(limits.begin(), limits.end() - 1, static_cast<double>(f));
    counts[it - limits.begin()] += 1;
  }
  histo.mutable_bucket_limit()->Add(limits.begin(), limits.end());
  histo.mutable_bucket()->Add(counts.begin(), counts.end());
  return histo;
}

absl::StatusOr<std::unique_ptr<EventWriter>> EventWriter::Create(Env* env,
                                                                 const std::string& logdir,
                                                                 const Options& options) {
  if (options.histogram_buckets < 1) {
    return absl::InvalidArgumentError(kiln::StrCat(
        "EventWriter: histogram_buckets must be at least 1, got ", options.histogram_buckets));
  }
  if (options.hostname.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        kiln::StrCat("EventWriter: hostname '", options.hostname, "' contains '/'"));
  }
  KILN_RETURN_IF_ERROR(env->CreateDirs(logdir));
  const std::string host = options.hostname.empty() ? MachineName() : options.hostname;
  const int64_t now = env->NowMicros();
  std::string path;
  do {
    path = JoinPath(logdir, EventFileName(now, host, g_writers_created.fetch_add(1)));
  } while (env->FileExists(path));
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, env->NewWritableFile(path));
  std::unique_ptr<EventWriter> writer(new EventWriter(env, path, std::move(file), options));

  tensorflow::Event first;
  first.set_wall_time(static_cast<double>(now) / 1e6);
  first.set_file_version(kEventFileVersion);
  if (!options.source_writer.empty()) {
    first.mutable_source_metadata()->set_writer(options.source_writer);
  }
  {
    std::lock_guard<std::mutex> lock(writer->mu_);
    KILN_RETURN_IF_ERROR(writer->WriteLocked(first));
    // The file is a valid, empty event file from here on.
    KILN_RETURN_IF_ERROR(writer->HandOverLocked());
  }
  return writer;
}

EventWriter::EventWriter(Env* env, std::string path, std::unique_ptr<WritableFile> file,
                         const Options& options)
    : env_(env), path_(std::move(path)), options_(options), file_(std::move(file)) {}

EventWriter::~EventWriter() {
  std::lock_guard<std::mutex> lock(mu_);
  CloseLocked().IgnoreError();
}

double EventWriter::NowSeconds() const { return static_cast<double>(env_->NowMicros()) / 1e6; }

absl::Status EventWriter::AddScalar(std::string_view tag, int64_t step, float value,
                                    double wall_time) {
  KILN_RETURN_IF_ERROR(CheckTag(tag));
  tensorflow::Summary::Value v;
  v.set_tag(std::string(tag));
  *v.mutable_metadata() = PluginMetadata("scalars", "");
  v.mutable_metadata()->set_data_class(tensorflow::DATA_CLASS_SCALAR);
  tensorflow::TensorProto* tensor = v.mutable_tensor();
  tensor->set_dtype(tensorflow::DT_FLOAT);
  tensor->mutable_tensor_shape();  // present and empty: rank 0
  tensor->add_float_val(value);
  return WriteSummaryValue(std::move(v), step, wall_time);
}

absl::Status EventWriter::AddScalar(std::string_view tag, int64_t step, float value) {
  return AddScalar(tag, step, value, NowSeconds());
}

absl::Status EventWriter::AddHistogram(std::string_view tag, int64_t step,
                                       std::span<const float> values, double wall_time) {
  KILN_RETURN_IF_ERROR(CheckTag(tag));
  tensorflow::Summary::Value v;
  v.set_tag(std::string(tag));
  *v.mutable_histo() = MakeHistogram(values, options_.histogram_buckets);
  return WriteSummaryValue(std::move(v), step, wall_time);
}

absl::Status EventWriter::AddHistogram(std::string_view tag, int64_t step,
                                       std::span<const float> values) {
  return AddHistogram(tag, step, values, NowSeconds());
}

absl::Status EventWriter::WriteHparamsSessionStart(
    const std::map<std::string, HparamValue>& hparams, std::string_view group_name,
    double start_time) {
  tensorboard::hparams::HParamsPluginData data;
  tensorboard::hparams::SessionStartInfo* info = data.mutable_session_start_info();
  for (const auto& [name, value] : hparams) {
    if (name.empty()) return absl::InvalidArgumentError("EventWriter: empty hparam name");
    google::protobuf::Value& out = (*info->mutable_hparams())[name];
    if (const double* d = std::get_if<double>(&value)) {
      // JSON, which the hparams dashboard speaks, has no NaN or infinity.
      if (!std::isfinite(*d)) {
        return absl::InvalidArgumentError(
            kiln::StrCat("EventWriter: hparam '", name, "' is not a finite number"));
      }
      out.set_number_value(*d);
    } else if (const std::string* s = std::get_if<std::string>(&value)) {
      out.set_string_value(*s);
    } else {
      out.set_bool_value(std::get<bool>(value));
    }
  }
  info->set_group_name(std::string(group_name));
  info->set_start_time_secs(start_time);
  // Step 0, as TensorBoard's own hparams writer.
  return WriteSummaryValue(HparamsValue(kHparamsSessionStartTag, std::move(data)), 0, start_time);
}

absl::Status EventWriter::WriteHparamsSessionEnd(tensorboard::hparams::Status status,
                                                 double end_time) {
  tensorboard::hparams::HParamsPluginData data;
  data.mutable_session_end_info()->set_status(status);
  data.mutable_session_end_info()->set_end_time_secs(end_time);
  return WriteSummaryValue(HparamsValue(kHparamsSessionEndTag, std::move(data)), 0, end_time);
}

absl::Status EventWriter::WriteHparamsExperiment(const tensorboard::hparams::Experiment& experiment,
                                                 double wall_time) {
  tensorboard::hparams::HParamsPluginData data;
  *data.mutable_experiment() = experiment;
  return WriteSummaryValue(HparamsValue(kHparamsExperimentTag, std::move(data)), 0, wall_time);
}

absl::Status EventWriter::WriteSummaryValue(tensorflow::Summary::Value value, int64_t step,
                                            double wall_time) {
  tensorflow::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  *event.mutable_summary()->add_value() = std::move(value);
  return WriteEvent(event);
}

absl::Status EventWriter::WriteEvent(const tensorflow::Event& event) {
  std::lock_guard<std::mutex> lock(mu_);
  return WriteLocked(event);
}

absl::Status EventWriter::WriteLocked(const tensorflow::Event& event) {
  if (!file_) return absl::FailedPreconditionError("EventWriter: write after Close");
  KILN_RETURN_IF_ERROR(error_);
  std::string bytes;
  if (!event.SerializeToString(&bytes)) {
    return absl::InternalError("EventWriter: cannot serialize an Event");
  }
  const int64_t now = env_->NowMicros();
  if (pending_.empty()) oldest_pending_micros_ = now;
  tfrecord::AppendRecord(&pending_, bytes);
  if (pending_.size() >= options_.max_pending_bytes ||
      now - oldest_pending_micros_ >= options_.max_pending_micros) {
    return HandOverLocked();
  }
  return absl::OkStatus();
}

absl::Status EventWriter::HandOverLocked() {
  if (pending_.empty()) return absl::OkStatus();
  absl::Status s = file_->Append(pending_);
  pending_.clear();
  if (!s.ok()) error_ = s;
  return s;
}

absl::Status EventWriter::FlushLocked() {
  KILN_RETURN_IF_ERROR(error_);
  KILN_RETURN_IF_ERROR(HandOverLocked());
  absl::Status s = file_->Sync();
  if (!s.ok()) error_ = s;
  return s;
}

absl::Status EventWriter::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!file_) return absl::FailedPreconditionError("EventWriter: Flush after Close");
  return FlushLocked();
}

absl::Status EventWriter::CloseLocked() {
  if (!file_) return error_;
  absl::Status s = FlushLocked();
  absl::Status closed = file_->Close();
  file_.reset();
  pending_.clear();
  if (s.ok() && !closed.ok()) error_ = s = closed;
  return s;
}

absl::Status EventWriter::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  return CloseLocked();
}

}  // namespace kiln::observe
