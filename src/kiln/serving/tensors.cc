#include "kiln/serving/tensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/serving/rest_api.h"
#include "kserve/grpc_predict_v2.pb.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow_serving/apis/predict.pb.h"

namespace kiln::serving {
namespace {

absl::Status Invalid(const InputTensor& t, std::string_view what) {
  return absl::InvalidArgumentError(StrCat("input '", t.name, "': ", what));
}

// Bytes per element in raw contents; 0 for BYTES (variable) and unsupported datatypes.
size_t ElementSize(std::string_view dt) {
  if (dt == "BOOL" || dt == "INT8" || dt == "UINT8") return 1;
  if (dt == "INT16" || dt == "UINT16" || dt == "FP16" || dt == "BF16") return 2;
  if (dt == "INT32" || dt == "UINT32" || dt == "FP32") return 4;
  if (dt == "INT64" || dt == "UINT64" || dt == "FP64") return 8;
  return 0;
}

absl::Status CheckDatatype(const InputTensor& t) {
  if (ValuesOf(t.datatype) != TensorValues::kUnsupported) return absl::OkStatus();
  return Invalid(t, StrCat("unsupported datatype '", t.datatype,
                           "' (kiln takes BOOL, INT8-INT64, UINT8-UINT64, FP16, BF16, FP32, "
                           "FP64 and BYTES)"));
}

// The number of elements of t's shape. Errors: a negative dimension, an overflow.
absl::StatusOr<int64_t> ElementCount(const InputTensor& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) {
      return Invalid(t, StrCat("shape ", ShapeString(t.shape), " is not a tensor's shape"));
    }
  }
  return n;
}

size_t ValueCount(const InputTensor& t) {
  switch (ValuesOf(t.datatype)) {
    case TensorValues::kInts:
      return t.ints.size();
    case TensorValues::kFloats:
      return t.floats.size();
    case TensorValues::kBytes:
      return t.bytes.size();
    case TensorValues::kUnsupported:
      break;
  }
  return 0;
}

template <typename U>
U LoadLittleEndian(const char* p) {
  U v = 0;
  for (size_t i = 0; i < sizeof(U); ++i) v |= static_cast<U>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

template <typename U>
void StoreLittleEndian(U v, std::string* out) {
  for (size_t i = 0; i < sizeof(U); ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// IEEE 754 binary16.
double HalfToDouble(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  double v;
  if (exponent == 0) {
    v = std::ldexp(mantissa, -24);
  } else if (exponent == 31) {
    v = mantissa ? std::numeric_limits<double>::quiet_NaN()
                 : std::numeric_limits<double>::infinity();
  } else {
    v = std::ldexp(mantissa | 0x400, exponent - 25);
  }
  return (h & 0x8000) ? -v : v;
}

absl::Status PushUint64(const InputTensor& t, uint64_t v, std::vector<int64_t>* out) {
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Invalid(t, StrCat("UINT64 value ", v, " is beyond the int64 range kiln takes"));
  }
  out->push_back(static_cast<int64_t>(v));
  return absl::OkStatus();
}

// The typed-contents list a datatype's values go in.
std::string_view ContentsField(std::string_view dt) {
  if (dt == "BOOL") return "bool_contents";
  if (dt == "INT8" || dt == "INT16" || dt == "INT32") return "int_contents";
  if (dt == "INT64") return "int64_contents";
  if (dt == "UINT8" || dt == "UINT16" || dt == "UINT32") return "uint_contents";
  if (dt == "UINT64") return "uint64_contents";
  if (dt == "FP32") return "fp32_contents";
  if (dt == "FP64") return "fp64_contents";
  if (dt == "BYTES") return "bytes_contents";
  return "";
}

absl::Status FromContents(const inference::InferTensorContents& c, InputTensor* t) {
  KILN_RETURN_IF_ERROR(CheckDatatype(*t));
  const std::string_view field = ContentsField(t->datatype);
  if (field.empty()) {
    return Invalid(*t, StrCat(t->datatype,
                              " values have no typed contents; send them in "
                              "raw_input_contents"));
  }
  const std::pair<std::string_view, int> lists[] = {
      {"bool_contents", c.bool_contents_size()},     {"int_contents", c.int_contents_size()},
      {"int64_contents", c.int64_contents_size()},   {"uint_contents", c.uint_contents_size()},
      {"uint64_contents", c.uint64_contents_size()}, {"fp32_contents", c.fp32_contents_size()},
      {"fp64_contents", c.fp64_contents_size()},     {"bytes_contents", c.bytes_contents_size()}};
  for (const auto& [name, size] : lists) {
    if (size > 0 && name != field) {
      return Invalid(
          *t, StrCat(t->datatype, " values go in ", field, ", but it has ", size, " in ", name));
    }
  }
  if (field == "bool_contents") t->ints.assign(c.bool_contents().begin(), c.bool_contents().end());
  if (field == "int_contents") t->ints.assign(c.int_contents().begin(), c.int_contents().end());
  if (field == "int64_contents") {
    t->ints.assign(c.int64_contents().begin(), c.int64_contents().end());
  }
  if (field == "uint_contents") t->ints.assign(c.uint_contents().begin(), c.uint_contents().end());
  if (field == "uint64_contents") {
    for (uint64_t v : c.uint64_contents()) KILN_RETURN_IF_ERROR(PushUint64(*t, v, &t->ints));
  }
  if (field == "fp32_contents")
    t->floats.assign(c.fp32_contents().begin(), c.fp32_contents().end());
  if (field == "fp64_contents")
    t->floats.assign(c.fp64_contents().begin(), c.fp64_contents().end());
  if (field == "bytes_contents") {
    t->bytes.assign(c.bytes_contents().begin(), c.bytes_contents().end());
  }
  return absl::OkStatus();
}

bool HasContents(const inference::InferTensorContents& c) {
  return c.bool_contents_size() + c.int_contents_size() + c.int64_contents_size() +
             c.uint_contents_size() + c.uint64_contents_size() + c.fp32_contents_size() +
             c.fp64_contents_size() + c.bytes_contents_size() >
         0;
}

std::string InputNames(const data::TableSchema& inputs) {
  std::vector<std::string> names;
  for (const data::ColumnSpec& c : inputs) names.push_back(c.name);
  return StrJoin(names, ", ");
}

// Whether a feature of type `type` takes values of `t`'s datatype.
absl::Status CheckFeatureType(const InputTensor& t, data::ValueType type) {
  const TensorValues v = ValuesOf(t.datatype);
  switch (type) {
    case data::ValueType::kInt:
      if (v == TensorValues::kInts) return absl::OkStatus();
      return Invalid(
          t, StrCat("expected an integer (INT64, another integer type or BOOL), got ", t.datatype));
    case data::ValueType::kFloat:
      if (v == TensorValues::kInts || v == TensorValues::kFloats) return absl::OkStatus();
      return Invalid(t,
                     StrCat("expected a number (FP64, FP32, FP16, an integer type or BOOL), got ",
                            t.datatype));
    case data::ValueType::kString:
      if (v == TensorValues::kBytes) return absl::OkStatus();
      return Invalid(t, StrCat("expected BYTES (a string), got ", t.datatype));
  }
  return absl::InternalError("unknown feature type");
}

// The v2 datatype of a TensorFlow dtype; empty for one kiln does not take.
std::string_view DatatypeOf(tensorflow::DataType dtype) {
  switch (dtype) {
    case tensorflow::DT_BOOL:
      return "BOOL";
    case tensorflow::DT_INT8:
      return "INT8";
    case tensorflow::DT_INT16:
      return "INT16";
    case tensorflow::DT_INT32:
      return "INT32";
    case tensorflow::DT_INT64:
      return "INT64";
    case tensorflow::DT_UINT8:
      return "UINT8";
    case tensorflow::DT_UINT16:
      return "UINT16";
    case tensorflow::DT_UINT32:
      return "UINT32";
    case tensorflow::DT_UINT64:
      return "UINT64";
    case tensorflow::DT_HALF:
      return "FP16";
    case tensorflow::DT_BFLOAT16:
      return "BF16";
    case tensorflow::DT_FLOAT:
      return "FP32";
    case tensorflow::DT_DOUBLE:
      return "FP64";
    case tensorflow::DT_STRING:
      return "BYTES";
    default:
      return "";
  }
}

// Pads a typed value list shorter than the shape by repeating its last value.
template <typename T>
void RepeatLast(size_t n, std::vector<T>* values) {
  if (!values->empty() && values->size() < n) values->resize(n, values->back());
}

}  // namespace

TensorValues ValuesOf(std::string_view dt) {
  if (dt == "BYTES") return TensorValues::kBytes;
  if (dt == "FP16" || dt == "BF16" || dt == "FP32" || dt == "FP64") return TensorValues::kFloats;
  if (ElementSize(dt) > 0) return TensorValues::kInts;
  return TensorValues::kUnsupported;
}

absl::Status DecodeRawContents(std::string_view raw, InputTensor* t) {
  KILN_RETURN_IF_ERROR(CheckDatatype(*t));
  const std::string& dt = t->datatype;
  if (dt == "BYTES") {
    size_t pos = 0;
    while (pos < raw.size()) {
      if (raw.size() - pos < 4) {
        return Invalid(
            *t, StrCat("raw BYTES contents end inside the length of element ", t->bytes.size()));
      }
      const uint32_t len = LoadLittleEndian<uint32_t>(raw.data() + pos);
      pos += 4;
      if (len > raw.size() - pos) {
        return Invalid(*t, StrCat("raw BYTES element ", t->bytes.size(), " is ", len,
                                  " bytes long but only ", raw.size() - pos, " remain"));
      }
      t->bytes.emplace_back(raw.substr(pos, len));
      pos += len;
    }
    return absl::OkStatus();
  }
  const size_t width = ElementSize(dt);
  KILN_ASSIGN_OR_RETURN(const int64_t count, ElementCount(*t));
  if (raw.size() % width != 0 || raw.size() / width != static_cast<uint64_t>(count)) {
    return Invalid(*t, StrCat("shape ", ShapeString(t->shape), " of ", dt, " takes ",
                              static_cast<uint64_t>(count) * width, " bytes of raw contents, got ",
                              raw.size()));
  }
  for (size_t i = 0; i < raw.size(); i += width) {
    const char* p = raw.data() + i;
    if (dt == "BOOL") {
      t->ints.push_back(p[0] != 0);
    } else if (dt == "INT8") {
      t->ints.push_back(static_cast<int8_t>(LoadLittleEndian<uint8_t>(p)));
    } else if (dt == "INT16") {
      t->ints.push_back(static_cast<int16_t>(LoadLittleEndian<uint16_t>(p)));
    } else if (dt == "INT32") {
      t->ints.push_back(static_cast<int32_t>(LoadLittleEndian<uint32_t>(p)));
    } else if (dt == "INT64") {
      t->ints.push_back(static_cast<int64_t>(LoadLittleEndian<uint64_t>(p)));
    } else if (dt == "UINT8") {
      t->ints.push_back(LoadLittleEndian<uint8_t>(p));
    } else if (dt == "UINT16") {
      t->ints.push_back(LoadLittleEndian<uint16_t>(p));
    } else if (dt == "UINT32") {
      t->ints.push_back(LoadLittleEndian<uint32_t>(p));
    } else if (dt == "UINT64") {
      KILN_RETURN_IF_ERROR(PushUint64(*t, LoadLittleEndian<uint64_t>(p), &t->ints));
    } else if (dt == "FP16") {
      t->floats.push_back(HalfToDouble(LoadLittleEndian<uint16_t>(p)));
    } else if (dt == "BF16") {
      t->floats.push_back(
          std::bit_cast<float>(static_cast<uint32_t>(LoadLittleEndian<uint16_t>(p)) << 16));
    } else if (dt == "FP32") {
      t->floats.push_back(std::bit_cast<float>(LoadLittleEndian<uint32_t>(p)));
    } else {  // FP64
      t->floats.push_back(std::bit_cast<double>(LoadLittleEndian<uint64_t>(p)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<InputTensor>> InputsFromProto(
    const inference::ModelInferRequest& request) {
  const int raw_count = request.raw_input_contents_size();
  if (raw_count > 0 && raw_count != request.inputs_size()) {
    return absl::InvalidArgumentError(
        StrCat("raw_input_contents has ", raw_count, " entries for ", request.inputs_size(),
               " inputs; give one per input, in the order of inputs"));
  }
  std::vector<InputTensor> out;
  out.reserve(request.inputs_size());
  for (int i = 0; i < request.inputs_size(); ++i) {
    const inference::ModelInferRequest::InferInputTensor& in = request.inputs(i);
    InputTensor t;
    t.name = in.name();
    t.datatype = in.datatype();
    t.shape.assign(in.shape().begin(), in.shape().end());
    if (raw_count > 0) {
      if (HasContents(in.contents())) {
        return Invalid(t, "has typed contents, but the request carries raw_input_contents");
      }
      KILN_RETURN_IF_ERROR(DecodeRawContents(request.raw_input_contents(i), &t));
    } else {
      KILN_RETURN_IF_ERROR(FromContents(in.contents(), &t));
    }
    out.push_back(std::move(t));
  }
  return out;
}

namespace {

// InputFromTensorProto, where the values repetition adds come out of `*repeat_budget`
// (bytes: 8 a number, a std::string and its bytes a string).
absl::StatusOr<InputTensor> FromTensorProto(const std::string& name,
                                            const tensorflow::TensorProto& proto,
                                            size_t* repeat_budget) {
  InputTensor t;
  t.name = name;
  t.datatype = std::string(DatatypeOf(proto.dtype()));
  if (t.datatype.empty()) {
    return Invalid(t, StrCat("dtype ", tensorflow::DataType_Name(proto.dtype()),
                             " is not one kiln takes (DT_BOOL, DT_INT*, DT_UINT*, DT_HALF, "
                             "DT_BFLOAT16, DT_FLOAT, DT_DOUBLE, DT_STRING)"));
  }
  if (proto.tensor_shape().unknown_rank()) return Invalid(t, "the shape has an unknown rank");
  for (const auto& dim : proto.tensor_shape().dim()) t.shape.push_back(dim.size());
  if (!proto.tensor_content().empty() && t.datatype != "BYTES") {
    KILN_RETURN_IF_ERROR(DecodeRawContents(proto.tensor_content(), &t));
    return t;
  }
  KILN_ASSIGN_OR_RETURN(const int64_t count, ElementCount(t));
  const std::string& dt = t.datatype;
  if (dt == "BOOL") {
    t.ints.assign(proto.bool_val().begin(), proto.bool_val().end());
  } else if (dt == "INT64") {
    t.ints.assign(proto.int64_val().begin(), proto.int64_val().end());
  } else if (dt == "UINT32") {
    t.ints.assign(proto.uint32_val().begin(), proto.uint32_val().end());
  } else if (dt == "UINT64") {
    for (uint64_t v : proto.uint64_val()) KILN_RETURN_IF_ERROR(PushUint64(t, v, &t.ints));
  } else if (dt == "FP16" || dt == "BF16") {
    for (int32_t bits : proto.half_val()) {
      const uint16_t h = static_cast<uint16_t>(bits);
      t.floats.push_back(dt == "FP16" ? HalfToDouble(h)
                                      : std::bit_cast<float>(static_cast<uint32_t>(h) << 16));
    }
  } else if (dt == "FP32") {
    t.floats.assign(proto.float_val().begin(), proto.float_val().end());
  } else if (dt == "FP64") {
    t.floats.assign(proto.double_val().begin(), proto.double_val().end());
  } else if (dt == "BYTES") {
    t.bytes.assign(proto.string_val().begin(), proto.string_val().end());
  } else {  // the narrow integers
    t.ints.assign(proto.int_val().begin(), proto.int_val().end());
  }
  const size_t n = static_cast<uint64_t>(count);
  const size_t given = t.ints.size() + t.floats.size() + t.bytes.size();  // one list is used
  constexpr size_t kMaxRepeated = size_t{1} << 24;
  if (given > 0 && given < n && n > kMaxRepeated) {
    return Invalid(t,
                   StrCat("shape ", ShapeString(t.shape), " asks for ", n, " elements from ", given,
                          " values; kiln repeats the last value up "
                          "to ",
                          kMaxRepeated, " elements"));
  }
  if (given > 0 && given < n) {
    // A short list of long strings, or many inputs, must not add up to more either.
    const size_t each =
        dt == "BYTES" ? sizeof(std::string) + t.bytes.back().size() : sizeof(int64_t);
    const size_t bytes = (n - given) * each;  // n <= 2^24: no overflow
    if (bytes > *repeat_budget) {
      return Invalid(t, StrCat("shape ", ShapeString(t.shape), " asks for ", n, " elements from ",
                               given, " values; repeating the last value would take ", bytes,
                               " bytes, and kiln repeats values up to ", kMaxRepeatedBytes,
                               " bytes per request"));
    }
    *repeat_budget -= bytes;
  }
  RepeatLast(n, &t.ints);
  RepeatLast(n, &t.floats);
  RepeatLast(n, &t.bytes);
  return t;
}

}  // namespace

absl::StatusOr<InputTensor> InputFromTensorProto(const std::string& name,
                                                 const tensorflow::TensorProto& proto) {
  size_t budget = kMaxRepeatedBytes;
  return FromTensorProto(name, proto, &budget);
}

absl::StatusOr<std::vector<InputTensor>> InputsFromPredictRequest(
    const tensorflow::serving::PredictRequest& request) {
  // Map order is unspecified; by name, the first bad input named is always the same.
  std::vector<std::string> names;
  for (const auto& [name, tensor] : request.inputs()) names.push_back(name);
  std::sort(names.begin(), names.end());
  size_t budget = kMaxRepeatedBytes;
  std::vector<InputTensor> tensors;
  for (const std::string& name : names) {
    KILN_ASSIGN_OR_RETURN(InputTensor t, FromTensorProto(name, request.inputs().at(name), &budget));
    tensors.push_back(std::move(t));
  }
  return tensors;
}

absl::StatusOr<data::Batch> TensorsToBatch(const std::vector<InputTensor>& tensors,
                                           const data::TableSchema& inputs) {
  std::vector<const InputTensor*> given(inputs.size(), nullptr);
  const InputTensor* first = nullptr;  // sets the number of rows
  for (const InputTensor& t : tensors) {
    auto it = std::find_if(inputs.begin(), inputs.end(),
                           [&](const data::ColumnSpec& c) { return c.name == t.name; });
    if (it == inputs.end()) {
      return absl::InvalidArgumentError(
          StrCat("the model has no input '", t.name, "'; its inputs are ", InputNames(inputs)));
    }
    const size_t index = it - inputs.begin();
    if (given[index] != nullptr) return Invalid(t, "given twice");
    given[index] = &t;
    KILN_RETURN_IF_ERROR(CheckDatatype(t));
    KILN_RETURN_IF_ERROR(CheckFeatureType(t, it->type));
    if (t.shape.empty() || t.shape.size() > 2 || (t.shape.size() == 2 && t.shape[1] != 1)) {
      return Invalid(t, StrCat("shape ", ShapeString(t.shape), "; kiln takes [N] or [N, 1]"));
    }
    const size_t n = ValueCount(t);
    if (t.shape[0] < 0 || n != static_cast<uint64_t>(t.shape[0])) {
      return Invalid(t, StrCat("shape ", ShapeString(t.shape), " but ", n, " values"));
    }
    if (!t.missing.empty() && t.missing.size() != n) {
      return absl::InternalError(StrCat("input '", t.name, "': missing flags for ",
                                        t.missing.size(), " of ", n, " values"));
    }
    if (first != nullptr && n != ValueCount(*first)) {
      return Invalid(t, StrCat(n, " rows, but input '", first->name, "' has ", ValueCount(*first)));
    }
    if (first == nullptr) first = &t;
  }
  std::vector<std::string> absent;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (given[i] == nullptr) absent.push_back(StrCat("'", inputs[i].name, "'"));
  }
  if (!absent.empty()) {
    return absl::InvalidArgumentError(StrCat("missing input", absent.size() > 1 ? "s " : " ",
                                             StrJoin(absent, ", "),
                                             "; the model takes one tensor per input"));
  }
  data::Batch batch;
  batch.num_rows = first == nullptr ? 0 : ValueCount(*first);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const InputTensor& t = *given[i];
    data::Column col;
    col.name = inputs[i].name;
    col.type = inputs[i].type;
    const bool ints = ValuesOf(t.datatype) == TensorValues::kInts;
    for (size_t r = 0; r < batch.num_rows; ++r) {
      if (!t.missing.empty() && t.missing[r]) {
        col.AddMissing();
        continue;
      }
      switch (col.type) {
        case data::ValueType::kInt:
          col.AddInt(t.ints[r]);
          break;
        case data::ValueType::kFloat:
          col.AddFloat(ints ? static_cast<double>(t.ints[r]) : t.floats[r]);
          break;
        case data::ValueType::kString:
          col.AddString(t.bytes[r]);
          break;
      }
    }
    batch.columns.push_back(std::move(col));
  }
  return batch;
}

std::vector<OutputTensor> OutputTensors(model::Task task, const std::vector<float>& scores,
                                        size_t rows) {
  const int64_t n = static_cast<int64_t>(rows);
  const int64_t k = rows == 0 ? 0 : static_cast<int64_t>(scores.size() / rows);
  std::vector<OutputTensor> out;
  switch (task) {
    case model::Task::kBinary:
      out.push_back({"scores", "FP32", {n}, scores, {}});
      out.push_back({"class_ids", "INT64", {n}, {}, ClassIds(task, scores, rows)});
      break;
    case model::Task::kMulticlass:
      out.push_back({"probabilities", "FP32", {n, k}, scores, {}});
      out.push_back({"class_ids", "INT64", {n}, {}, ClassIds(task, scores, rows)});
      break;
    case model::Task::kRegression:
      out.push_back({"predictions", "FP32", {n}, scores, {}});
      break;
  }
  return out;
}

absl::StatusOr<std::vector<OutputTensor>> SelectOutputs(std::vector<OutputTensor> outputs,
                                                        const std::vector<std::string>& wanted) {
  if (wanted.empty()) return outputs;
  std::vector<OutputTensor> out;
  for (const std::string& name : wanted) {
    auto it = std::find_if(outputs.begin(), outputs.end(),
                           [&](const OutputTensor& t) { return t.name == name; });
    if (it == outputs.end()) {
      std::vector<std::string> names;
      for (const OutputTensor& t : outputs) names.push_back(t.name);
      return absl::InvalidArgumentError(
          StrCat("the model has no output '", name, "'; its outputs are ", StrJoin(names, ", ")));
    }
    out.push_back(*it);
  }
  return out;
}

std::string RawContents(const OutputTensor& t) {
  std::string raw;
  if (t.datatype == "FP32") {
    raw.reserve(t.fp32.size() * 4);
    for (float v : t.fp32) StoreLittleEndian(std::bit_cast<uint32_t>(v), &raw);
  } else {
    raw.reserve(t.int64.size() * 8);
    for (int64_t v : t.int64) StoreLittleEndian(static_cast<uint64_t>(v), &raw);
  }
  return raw;
}

void OutputsToProto(const std::vector<OutputTensor>& outputs,
                    inference::ModelInferResponse* response) {
  for (const OutputTensor& t : outputs) {
    inference::ModelInferResponse::InferOutputTensor* o = response->add_outputs();
    o->set_name(t.name);
    o->set_datatype(t.datatype);
    for (int64_t d : t.shape) o->add_shape(d);
    response->add_raw_output_contents(RawContents(t));
  }
}

void OutputToTensorProto(const OutputTensor& t, tensorflow::TensorProto* proto) {
  for (int64_t d : t.shape) proto->mutable_tensor_shape()->add_dim()->set_size(d);
  if (t.datatype == "FP32") {
    proto->set_dtype(tensorflow::DT_FLOAT);
    proto->mutable_float_val()->Assign(t.fp32.begin(), t.fp32.end());
  } else {
    proto->set_dtype(tensorflow::DT_INT64);
    proto->mutable_int64_val()->Assign(t.int64.begin(), t.int64.end());
  }
}

std::vector<TensorMetadata> SignatureTensors(const nlohmann::json& list) {
  std::vector<TensorMetadata> out;
  if (!list.is_array()) return out;
  for (const nlohmann::json& t : list) {
    if (!t.is_object()) continue;
    TensorMetadata m;
    m.name = t.value("name", "");
    const std::string dtype = t.value("dtype", "");
    m.datatype = dtype == "int64"     ? "INT64"
                 : dtype == "float32" ? "FP32"
                 : dtype == "float64" ? "FP64"
                                      : "BYTES";
    auto shape = t.find("shape");
    if (shape != t.end() && shape->is_array()) {
      for (const nlohmann::json& d : *shape)
        m.shape.push_back(d.is_number_integer() ? d.get<int64_t>() : -1);
    } else {
      m.shape = {-1};
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return StrCat("[", StrJoin(shape, ", "), "]");
}

}  // namespace kiln::serving
