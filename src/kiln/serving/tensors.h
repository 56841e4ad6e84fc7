// Tensors of KServe's v2 (open inference) protocol and how kiln maps them to rows and
// back, shared by the v2 REST (JSON) and gRPC handlers so that both accept and reject the
// same requests with the same messages.
//
// Inputs: each of the model's signature inputs is one tensor of shape [N] or [N, 1], one
// value per row. BOOL and the integer datatypes feed INT and FLOAT features, FP16, BF16,
// FP32 and FP64 feed FLOAT features, BYTES feeds STRING features.
// Outputs: binary "scores" FP32 [N] and "class_ids" INT64 [N]; multiclass
// "probabilities" FP32 [N, K] and "class_ids"; regression "predictions" FP32 [N].
#ifndef KILN_SERVING_TENSORS_H_
#define KILN_SERVING_TENSORS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/data/batch.h"
#include "kiln/model/model.h"
#include "nlohmann/json.hpp"

namespace inference {
class ModelInferRequest;
class ModelInferResponse;
}  // namespace inference
namespace tensorflow {
class TensorProto;
namespace serving {
class PredictRequest;
}  // namespace serving
}  // namespace tensorflow

namespace kiln::serving {

// An input tensor decoded from either wire form. Its values are in the one list its
// datatype uses (see ValuesOf): BOOL (0 or 1) and the integer types in `ints`, the
// floating-point types in `floats`, BYTES in `bytes`.
struct InputTensor {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> bytes;
  // Empty, or one flag per value: 1 where the value is missing (a JSON null; its slot in
  // the value list holds a placeholder).
  std::vector<uint8_t> missing;
};

// Which list of InputTensor a datatype's values go in.
enum class TensorValues { kInts, kFloats, kBytes, kUnsupported };
TensorValues ValuesOf(std::string_view datatype);

// Decodes one tensor's raw contents (packed little-endian, row-major; BYTES elements each
// a 4-byte little-endian length and then the bytes) into `t`'s value list for its
// datatype. Errors (kInvalidArgument, naming the tensor): an unsupported datatype, a
// length that is not the shape's element count times the element size, a BYTES element
// running past the end, a UINT64 above the int64 range.
absl::Status DecodeRawContents(std::string_view raw, InputTensor* t);

// The input tensors of a gRPC request, from each tensor's typed contents or from the
// request's raw_input_contents. Errors (kInvalidArgument): raw contents whose count is not
// the number of inputs, or given alongside typed contents; values in a list other than the
// one the datatype uses (e.g. an FP32 tensor's values in fp64_contents); FP16 and BF16
// without raw contents; those of DecodeRawContents.
absl::StatusOr<std::vector<InputTensor>> InputsFromProto(
    const inference::ModelInferRequest& request);

// A TF Serving Predict input. dtype DT_BOOL, DT_INT8/16/32/64, DT_UINT8/16/32/64,
// DT_HALF, DT_BFLOAT16, DT_FLOAT, DT_DOUBLE and DT_STRING become BOOL, INT8 ... UINT64,
// FP16, BF16, FP32, FP64 and BYTES; the values come from tensor_content (read as raw
// contents) or from the dtype's *_val list, where fewer values than the shape holds repeat
// the last one (TensorFlow's rule). Errors (kInvalidArgument, naming the tensor): another
// dtype, an unknown rank, repetition up to more than 2^24 elements or taking more than
// kMaxRepeatedBytes, those of DecodeRawContents.
absl::StatusOr<InputTensor> InputFromTensorProto(const std::string& name,
                                                 const tensorflow::TensorProto& proto);

// What repeated last values may add to one request, over all its inputs: as much memory as
// 2^24 numbers (8 bytes a number; a string costs sizeof(std::string) plus its length), so
// that a small request cannot make a huge allocation.
inline constexpr size_t kMaxRepeatedBytes = size_t{8} << 24;

// The inputs of a TF Serving PredictRequest, sorted by name (so the first bad input named is
// always the same), each read as InputFromTensorProto reads it. Errors: those of
// InputFromTensorProto, and kInvalidArgument when the values repeated over all inputs would
// take more than kMaxRepeatedBytes.
absl::StatusOr<std::vector<InputTensor>> InputsFromPredictRequest(
    const tensorflow::serving::PredictRequest& request);

// One row per element: a column for every feature of `inputs`, in order. Errors
// (kInvalidArgument, naming the tensor): a tensor the model does not take, or one given
// twice; a feature without a tensor; a shape other than [N] or [N, 1]; a value count that
// is not the shape's; tensors with different N; a datatype the feature cannot take.
absl::StatusOr<data::Batch> TensorsToBatch(const std::vector<InputTensor>& tensors,
                                           const data::TableSchema& inputs);

struct OutputTensor {
  std::string name;
  std::string datatype;  // "FP32" (values in fp32) or "INT64" (values in int64)
  std::vector<int64_t> shape;
  std::vector<float> fp32;
  std::vector<int64_t> int64;
};

// The outputs for the scores Predictor::Predict gave `rows` rows of a `task` model.
std::vector<OutputTensor> OutputTensors(model::Task task, const std::vector<float>& scores,
                                        size_t rows);
// The outputs named in `wanted`, in its order; all of them when `wanted` is empty.
// kInvalidArgument for a name that is not an output.
absl::StatusOr<std::vector<OutputTensor>> SelectOutputs(std::vector<OutputTensor> outputs,
                                                        const std::vector<std::string>& wanted);
// `t`'s values packed little-endian, row-major (FP32: 4 bytes each, INT64: 8): gRPC's
// raw_output_contents and the REST binary tensor data extension's output bytes.
std::string RawContents(const OutputTensor& t);
// Adds `outputs` to `response`: each tensor's name, datatype and shape, with its values
// in raw_output_contents (as Triton answers, and as its clients read them).
void OutputsToProto(const std::vector<OutputTensor>& outputs,
                    inference::ModelInferResponse* response);

// `t` as a TensorProto: DT_FLOAT in float_val or DT_INT64 in int64_val.
void OutputToTensorProto(const OutputTensor& t, tensorflow::TensorProto* proto);

// A tensor of a model's metadata, from a bundle signature's list of {"name", "dtype",
// "shape"} (dtype int64 → INT64, float32 → FP32, float64 → FP64, string → BYTES; a missing
// shape is [-1]).
struct TensorMetadata {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
};
std::vector<TensorMetadata> SignatureTensors(const nlohmann::json& list);

// "[2, 1]".
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace kiln::serving

#endif  // KILN_SERVING_TENSORS_H_
