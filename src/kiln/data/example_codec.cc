#include "kiln/data/example_codec.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <charconv>
#include <utility>

#include "kiln/base/str.h"
#include "kiln/base/string_map.h"
#include "kiln/data/jsonl.h"
#include "tensorflow/core/example/example.pb.h"

namespace kiln::data {
namespace {

// Blocks larger than this would overflow Column's 32-bit string offsets.
constexpr size_t kMaxBlockBytes = size_t{1} << 30;

void PutLength(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetLength(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// The column type a feature's values have, or nullopt when its kind is unset.
std::optional<ValueType> KindType(const tensorflow::Feature& f) {
  switch (f.kind_case()) {
    case tensorflow::Feature::kInt64List:
      return ValueType::kInt;
    case tensorflow::Feature::kFloatList:
      return ValueType::kFloat;
    case tensorflow::Feature::kBytesList:
      return ValueType::kString;
    case tensorflow::Feature::KIND_NOT_SET:
      break;
  }
  return std::nullopt;
}

}  // namespace

// ---------------------------------------------------------------------------- source

TfRecordSource::TfRecordSource(Env* env, std::vector<std::string> files, const ReadOptions& options)
    : env_(env),
      files_(std::move(files)),
      block_bytes_(std::clamp<size_t>(options.block_bytes, 1, kMaxBlockBytes)) {
  for (const ColumnSpec& spec : options.type_overrides) overrides_[spec.name] = spec.type;
}

TfRecordSource::~TfRecordSource() = default;

absl::StatusOr<std::unique_ptr<TfRecordSource>> TfRecordSource::Open(Env* env,
                                                                     std::vector<std::string> files,
                                                                     const ReadOptions& options) {
  for (const std::string& f : files) {
    if (!env->FileExists(f)) return absl::NotFoundError(kiln::StrCat(f, ": no such file"));
  }
  return std::unique_ptr<TfRecordSource>(new TfRecordSource(env, std::move(files), options));
}

absl::StatusOr<std::unique_ptr<TfRecordSource>> TfRecordSource::FromMemory(
    std::string data, std::string name, const ReadOptions& options) {
  std::unique_ptr<TfRecordSource> source(new TfRecordSource(nullptr, {std::move(name)}, options));
  source->memory_ = std::move(data);
  return source;
}

absl::StatusOr<std::unique_ptr<BlockSource>> OpenTfRecordSource(Env* env,
                                                                std::vector<std::string> files,
                                                                const ReadOptions& options) {
  KILN_ASSIGN_OR_RETURN(auto source, TfRecordSource::Open(env, std::move(files), options));
  return std::unique_ptr<BlockSource>(std::move(source));
}

absl::Status TfRecordSource::OpenNextFile() {
  const std::string& name = files_[next_file_++];
  if (memory_) {
    KILN_ASSIGN_OR_RETURN(reader_, TFRecordReader::FromMemory(*memory_, name, {}));
  } else {
    KILN_ASSIGN_OR_RETURN(reader_, TFRecordReader::Open(env_, name));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> TfRecordSource::NextBlock(RawBlock* block) {
  KILN_RETURN_IF_ERROR(pending_error_);
  for (;;) {
    if (!reader_) {
      if (next_file_ == files_.size()) return false;
      pending_error_ = OpenNextFile();
      KILN_RETURN_IF_ERROR(pending_error_);
    }
    block->data.clear();
    block->file = reader_->name();
    size_t count = 0;
    while (count < kMaxRecordsPerBlock && block->data.size() < block_bytes_) {
      const size_t at = block->data.size();
      block->data.append(4, '\0');
      absl::StatusOr<bool> more = reader_->AppendNext(&block->data);
      if (!more.ok() || !*more) {
        block->data.resize(at);
        if (!more.ok()) {
          // Hand out the good records first; the error comes with the next call, so
          // a bad row earlier in the file is reported before the corruption.
          pending_error_ = more.status();
        } else {
          reader_.reset();
        }
        break;
      }
      // The reader caps records at 256 MiB, so the length fits in 32 bits.
      PutLength(&block->data[at], static_cast<uint32_t>(block->data.size() - at - 4));
      if (count == 0) {
        block->first_line = reader_->last_index();
        block->byte_offset = reader_->last_offset();
      }
      ++count;
    }
    if (count > 0) return true;
    KILN_RETURN_IF_ERROR(pending_error_);
    // An empty file: go on to the next one.
  }
}

absl::Status TfRecordSource::Decode(const RawBlock& block, Batch* out, BadRowSink* bad) const {
  out->Clear();
  out->source = block.file;
  // protobuf logs a line to stderr for every feature name that is not UTF-8 before the
  // parse fails; such records are reported as bad rows, so the log would only be noise.
  google::protobuf::LogSilencer quiet;
  tensorflow::Example example;
  StringMap<size_t> column_of;
  // typed[c]: column c's type is fixed (by an override or a feature with a kind); until
  // then it holds only missing and empty rows, so its type can still be chosen.
  std::vector<bool> typed;
  std::vector<std::pair<const std::string*, const tensorflow::Feature*>> features;

  std::string_view data = block.data;
  uint64_t record = block.first_line;
  uint64_t offset = block.byte_offset;
  while (!data.empty()) {
    if (data.size() < 4 || data.size() - 4 < GetLength(data.data())) {
      return absl::InternalError(kiln::StrCat(block.file, ": malformed TFRecord block"));
    }
    const std::string_view raw = data.substr(4, GetLength(data.data()));
    data.remove_prefix(4 + raw.size());
    const uint64_t this_record = record++;
    const uint64_t this_offset = offset;
    offset += kTfRecordHeaderBytes + raw.size() + kTfRecordFooterBytes;
    auto bad_row = [&](std::string_view why) {
      return bad->Add(
          BadRow{block.file, this_record,
                 kiln::StrCat("record ", this_record, " at byte offset ", this_offset, ": ", why),
                 std::string(raw)});
    };

    if (!example.ParseFromArray(raw.data(), static_cast<int>(raw.size()))) {
      KILN_RETURN_IF_ERROR(bad_row("not a parseable tf.Example"));
      continue;
    }
    features.clear();
    for (const auto& [name, feature] : example.features().feature()) {
      features.emplace_back(&name, &feature);
    }
    std::sort(features.begin(), features.end(),
              [](const auto& a, const auto& b) { return *a.first < *b.first; });

    // Check every feature before appending any, so a bad row leaves no partial values.
    std::string problem;
    for (const auto& [name, feature] : features) {
      const std::optional<ValueType> kind = KindType(*feature);
      if (!kind) continue;
      // A fixed type may be wider than the record's (INT read as FLOAT, numbers read as
      // STRING), never narrower.
      if (auto o = overrides_.find(*name); o != overrides_.end() && *kind > o->second) {
        problem = kiln::StrCat("feature '", *name, "' holds ", ValueTypeName(*kind),
                               " values but its type is set to ", ValueTypeName(o->second));
        break;
      }
    }
    if (!problem.empty()) {
      KILN_RETURN_IF_ERROR(bad_row(problem));
      continue;
    }

    const size_t row = out->num_rows;
    for (const auto& [name, feature] : features) {
      const std::optional<ValueType> kind = KindType(*feature);
      auto [it, inserted] = column_of.try_emplace(*name, out->columns.size());
      if (inserted) {
        Column& col = out->columns.emplace_back();
        col.name = *name;
        auto o = overrides_.find(*name);
        const std::optional<ValueType> fixed =
            o != overrides_.end() ? std::optional<ValueType>(o->second) : kind;
        col.type = fixed.value_or(ValueType::kInt);
        typed.push_back(fixed.has_value());
        for (size_t r = 0; r < row; ++r) col.AddMissing();
      }
      Column& col = out->columns[it->second];
      if (kind && !typed[it->second]) {
        col.type = *kind;
        typed[it->second] = true;
      } else if (kind && *kind > col.type) {
        // The feature changed kind within the block (e.g. int64 here, bytes earlier or
        // later): widen the column, as the whole input's type will be the wider one.
        WidenColumn(&col, *kind);
      }
      switch (feature->kind_case()) {
        case tensorflow::Feature::kInt64List: {
          const auto& v = feature->int64_list().value();
          if (col.type == ValueType::kFloat) {
            for (int64_t x : v) col.floats.push_back(static_cast<double>(x));
          } else if (col.type == ValueType::kString) {
            for (int64_t x : v) col.PushString(std::to_string(x));
          } else {
            col.ints.insert(col.ints.end(), v.begin(), v.end());
          }
          col.EndRow(static_cast<uint32_t>(v.size()));
          break;
        }
        case tensorflow::Feature::kFloatList: {
          const auto& v = feature->float_list().value();
          if (col.type == ValueType::kString) {
            for (float x : v) {
              char buf[32];
              auto r = std::to_chars(buf, buf + sizeof(buf), x);  // shortest float32 text
              col.PushString(std::string_view(buf, r.ptr - buf));
            }
          } else {
            for (float x : v) col.floats.push_back(x);
          }
          col.EndRow(static_cast<uint32_t>(v.size()));
          break;
        }
        case tensorflow::Feature::kBytesList: {
          const auto& v = feature->bytes_list().value();
          for (const std::string& s : v) col.PushString(s);
          col.EndRow(static_cast<uint32_t>(v.size()));
          break;
        }
        case tensorflow::Feature::KIND_NOT_SET:
          col.EndRow(0);
          break;
      }
    }
    for (Column& col : out->columns) {
      if (col.num_rows() == row) col.AddMissing();
    }
    ++out->num_rows;
    out->row_positions.push_back(this_record);
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------- writer

ExampleWriter::~ExampleWriter() = default;

absl::StatusOr<std::unique_ptr<ExampleWriter>> ExampleWriter::Create(Env* env,
                                                                     const std::string& path,
                                                                     const Options& options) {
  TFRecordWriter::Options o;
  o.gzip = options.gzip;
  KILN_ASSIGN_OR_RETURN(auto writer, TFRecordWriter::Create(env, path, o));
  return std::unique_ptr<ExampleWriter>(new ExampleWriter(std::move(writer)));
}

absl::Status ExampleWriter::Write(const Batch& batch) {
  StringViewSet names;
  for (const Column& col : batch.columns) {
    if (col.num_rows() != batch.num_rows || col.offsets.size() != batch.num_rows + 1) {
      return absl::InvalidArgumentError(kiln::StrCat("column '", col.name, "' has ", col.num_rows(),
                                                     " rows but the batch has ", batch.num_rows));
    }
    if (!names.insert(col.name).second) {
      return absl::InvalidArgumentError(
          kiln::StrCat("column '", col.name, "' appears twice in the batch"));
    }
  }
  tensorflow::Example example;
  for (size_t r = 0; r < batch.num_rows; ++r) {
    example.Clear();
    auto& fmap = *example.mutable_features()->mutable_feature();
    for (const Column& col : batch.columns) {
      if (!col.is_present(r)) continue;
      tensorflow::Feature& f = fmap[col.name];
      const uint32_t begin = col.offsets[r], end = col.offsets[r + 1];
      // mutable_*_list() sets the kind even for an empty list, so the type survives.
      switch (col.type) {
        case ValueType::kInt: {
          auto* list = f.mutable_int64_list();
          for (uint32_t i = begin; i < end; ++i) list->add_value(col.ints[i]);
          break;
        }
        case ValueType::kFloat: {
          auto* list = f.mutable_float_list();
          for (uint32_t i = begin; i < end; ++i) list->add_value(static_cast<float>(col.floats[i]));
          break;
        }
        case ValueType::kString: {
          auto* list = f.mutable_bytes_list();
          for (uint32_t i = begin; i < end; ++i) list->add_value(std::string(col.str(i)));
          break;
        }
      }
    }
    scratch_.clear();
    {
      google::protobuf::io::StringOutputStream stream(&scratch_);
      google::protobuf::io::CodedOutputStream coded(&stream);
      coded.SetSerializationDeterministic(true);  // map entries in key order
      if (!example.SerializeToCodedStream(&coded)) {
        return absl::InternalError("cannot serialize tf.Example");
      }
    }
    KILN_RETURN_IF_ERROR(writer_->Write(scratch_));
    ++rows_;
  }
  return absl::OkStatus();
}

absl::Status ExampleWriter::Close() { return writer_->Close(); }

}  // namespace kiln::data
