// libFuzzer target: kiln serve's gRPC request tensors (src/kiln/serving/tensors.h) to rows,
// for a signature of one INT ("a"), one FLOAT ("b") and one STRING ("c") input, as
// grpc_server.cc converts them. The first byte picks how the rest becomes a request:
//   0  a KServe v2 inference.ModelInferRequest in protobuf wire format (InputsFromProto);
//   1  a TF Serving PredictRequest in wire format (InputsFromPredictRequest);
//   2  a ModelInferRequest built field by field from the bytes (names, datatypes, shapes,
//      typed contents or raw_input_contents), so that most requests are well-formed;
//   3  the same for PredictRequest TensorProtos (dtype, shape, tensor_content or *_val).
// A request that converts must give a batch of the signature's columns, one row per value,
// holding the tensors' values. Nothing may crash, nor allocate more than -rss_limit_mb
// (a short value list repeated to fill a shape is bounded).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzzer/FuzzedDataProvider.h"
#include "google/protobuf/stubs/logging.h"
#include "kiln/serving/tensors.h"
#include "kserve/grpc_predict_v2.pb.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow_serving/apis/predict.pb.h"

namespace {

namespace serving = kiln::serving;
using kiln::data::ValueType;

const kiln::data::TableSchema& Signature() {
  static const auto* inputs = new kiln::data::TableSchema{
      {"a", ValueType::kInt}, {"b", ValueType::kFloat}, {"c", ValueType::kString}};
  return *inputs;
}

constexpr const char* kDatatypes[] = {"BOOL",  "INT8",   "INT16",  "INT32",  "INT64",
                                      "UINT8", "UINT16", "UINT32", "UINT64", "FP16",
                                      "BF16",  "FP32",   "FP64",   "BYTES",  "STRING"};
// One datatype per typed-contents list.
constexpr const char* kContents[] = {"BOOL",   "INT32", "INT64", "UINT32",
                                     "UINT64", "FP32",  "FP64",  "BYTES"};
constexpr const char* kNames[] = {"a", "b", "c", "d"};

std::string Name(FuzzedDataProvider& in) {
  const uint8_t pick = in.ConsumeIntegral<uint8_t>();
  return pick % 8 < 4 ? kNames[pick % 8] : in.ConsumeRandomLengthString(8);
}

// Mostly small; sometimes about the most a short value list may be repeated to.
int64_t Dimension(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0:
      return in.ConsumeIntegral<int64_t>();
    case 1:
      return in.ConsumeIntegralInRange<int64_t>((1 << 22) - 1, (1 << 24) + 1);
    default:
      return in.ConsumeIntegralInRange<int64_t>(-1, 6);
  }
}

// A well-typed or not ModelInferRequest from the bytes.
inference::ModelInferRequest BuildInferRequest(FuzzedDataProvider& in) {
  inference::ModelInferRequest request;
  const bool raw = in.ConsumeBool();
  const int n = in.ConsumeIntegralInRange(0, 4);
  for (int i = 0; i < n && in.remaining_bytes() > 0; ++i) {
    auto* t = request.add_inputs();
    t->set_name(Name(in));
    const std::string datatype = in.PickValueInArray(kDatatypes);
    t->set_datatype(datatype);
    const int rank = in.ConsumeIntegralInRange(0, 3);
    for (int d = 0; d < rank; ++d) t->add_shape(Dimension(in));
    if (raw) {
      request.add_raw_input_contents(in.ConsumeRandomLengthString(256));
      continue;
    }
    // Values in the list the datatype uses, or now and then in another one.
    const int values = in.ConsumeIntegralInRange(0, 8);
    const int list = in.ConsumeBool() ? in.ConsumeIntegralInRange(0, 7) : -1;
    auto* c = t->mutable_contents();
    for (int v = 0; v < values; ++v) {
      const std::string dt = list >= 0 ? kContents[list] : datatype;
      if (dt == "BOOL") {
        c->add_bool_contents(in.ConsumeBool());
      } else if (dt == "INT8" || dt == "INT16" || dt == "INT32") {
        c->add_int_contents(in.ConsumeIntegral<int32_t>());
      } else if (dt == "INT64") {
        c->add_int64_contents(in.ConsumeIntegral<int64_t>());
      } else if (dt == "UINT8" || dt == "UINT16" || dt == "UINT32") {
        c->add_uint_contents(in.ConsumeIntegral<uint32_t>());
      } else if (dt == "UINT64") {
        c->add_uint64_contents(in.ConsumeIntegral<uint64_t>());
      } else if (dt == "FP32") {
        c->add_fp32_contents(in.ConsumeFloatingPoint<float>());
      } else if (dt == "FP64") {
        c->add_fp64_contents(in.ConsumeFloatingPoint<double>());
      } else {
        c->add_bytes_contents(in.ConsumeRandomLengthString(16));
      }
    }
  }
  // Sometimes a raw_input_contents count that does not match.
  if (in.ConsumeIntegralInRange(0, 15) == 0) request.add_raw_input_contents("");
  return request;
}

// A TensorProto from the bytes.
tensorflow::TensorProto BuildTensorProto(FuzzedDataProvider& in) {
  tensorflow::TensorProto t;
  t.set_dtype(static_cast<tensorflow::DataType>(in.ConsumeIntegralInRange(0, 30)));
  if (in.ConsumeIntegralInRange(0, 15) == 0) t.mutable_tensor_shape()->set_unknown_rank(true);
  const int rank = in.ConsumeIntegralInRange(0, 3);
  for (int d = 0; d < rank; ++d) t.mutable_tensor_shape()->add_dim()->set_size(Dimension(in));
  if (in.ConsumeBool()) {
    t.set_tensor_content(in.ConsumeRandomLengthString(256));
    return t;
  }
  const int values = in.ConsumeIntegralInRange(0, 8);
  const int list = in.ConsumeIntegralInRange(0, 9);
  for (int v = 0; v < values; ++v) {
    switch (list) {
      case 0:
        t.add_bool_val(in.ConsumeBool());
        break;
      case 1:
        t.add_int_val(in.ConsumeIntegral<int32_t>());
        break;
      case 2:
        t.add_int64_val(in.ConsumeIntegral<int64_t>());
        break;
      case 3:
        t.add_uint32_val(in.ConsumeIntegral<uint32_t>());
        break;
      case 4:
        t.add_uint64_val(in.ConsumeIntegral<uint64_t>());
        break;
      case 5:
        t.add_half_val(in.ConsumeIntegral<int32_t>());
        break;
      case 6:
        t.add_float_val(in.ConsumeFloatingPoint<float>());
        break;
      case 7:
        t.add_double_val(in.ConsumeFloatingPoint<double>());
        break;
      default:
        t.add_string_val(in.ConsumeRandomLengthString(256));
        break;
    }
  }
  return t;
}

// The batch must hold the signature's columns, one row per value, with the tensors' values.
void CheckBatch(const std::vector<serving::InputTensor>& tensors, const kiln::data::Batch& batch) {
  const kiln::data::TableSchema& inputs = Signature();
  if (batch.columns.size() != inputs.size()) std::abort();
  for (size_t c = 0; c < inputs.size(); ++c) {
    const kiln::data::Column& col = batch.columns[c];
    if (col.name != inputs[c].name || col.type != inputs[c].type) std::abort();
    if (col.num_rows() != batch.num_rows || col.num_values() != batch.num_rows) std::abort();
    auto t = std::find_if(tensors.begin(), tensors.end(),
                          [&](const serving::InputTensor& x) { return x.name == col.name; });
    if (t == tensors.end()) std::abort();
    const bool ints = serving::ValuesOf(t->datatype) == serving::TensorValues::kInts;
    for (size_t r = 0; r < batch.num_rows; ++r) {
      switch (col.type) {
        case ValueType::kInt:
          if (!ints || col.ints[r] != t->ints[r]) std::abort();
          break;
        case ValueType::kFloat: {
          const double want = ints ? static_cast<double>(t->ints[r]) : t->floats[r];
          const double got = col.floats[r];
          if (!(got == want || (got != got && want != want))) std::abort();
          break;
        }
        case ValueType::kString:
          if (col.str(r) != t->bytes[r]) std::abort();
          break;
      }
    }
  }
}

void Convert(const absl::StatusOr<std::vector<serving::InputTensor>>& tensors) {
  if (!tensors.ok()) {
    if (tensors.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return;
  }
  auto batch = serving::TensorsToBatch(*tensors, Signature());
  if (!batch.ok()) {
    if (batch.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return;
  }
  CheckBatch(*tensors, *batch);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Parsing rejects strings that are not UTF-8 with a log line each; keep the output clean.
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  if (size == 0) return 0;
  const int mode = data[0] % 4;
  const uint8_t* rest = data + 1;
  const int rest_size = static_cast<int>(size - 1);
  FuzzedDataProvider in(rest, size - 1);
  switch (mode) {
    case 0: {
      inference::ModelInferRequest request;
      if (!request.ParseFromArray(rest, rest_size)) return 0;
      Convert(serving::InputsFromProto(request));
      break;
    }
    case 1: {
      tensorflow::serving::PredictRequest request;
      if (!request.ParseFromArray(rest, rest_size)) return 0;
      Convert(serving::InputsFromPredictRequest(request));
      break;
    }
    case 2:
      Convert(serving::InputsFromProto(BuildInferRequest(in)));
      break;
    default: {
      tensorflow::serving::PredictRequest request;
      const int n = in.ConsumeIntegralInRange(0, 4);
      for (int i = 0; i < n && in.remaining_bytes() > 0; ++i) {
        const std::string name = Name(in);
        (*request.mutable_inputs())[name] = BuildTensorProto(in);
      }
      Convert(serving::InputsFromPredictRequest(request));
      break;
    }
  }
  return 0;
}
