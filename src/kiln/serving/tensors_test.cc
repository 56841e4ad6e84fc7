// v2 tensors to rows and scores to v2 tensors: typed and raw contents, every datatype kiln
// takes, and the errors a malformed request gets.
#include "kiln/serving/tensors.h"

#include <bit>
#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kserve/grpc_predict_v2.pb.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow_serving/apis/predict.pb.h"

namespace kiln::serving {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using InferInput = inference::ModelInferRequest::InferInputTensor;

const data::TableSchema kSchema = {{"age", data::ValueType::kInt},
                                   {"income", data::ValueType::kFloat},
                                   {"city", data::ValueType::kString}};

InferInput* AddInput(inference::ModelInferRequest* r, const std::string& name,
                     const std::string& datatype, std::vector<int64_t> shape) {
  InferInput* in = r->add_inputs();
  in->set_name(name);
  in->set_datatype(datatype);
  for (int64_t d : shape) in->add_shape(d);
  return in;
}

template <typename U>
std::string LittleEndian(std::initializer_list<U> values) {
  std::string out;
  for (U v : values) {
    for (size_t i = 0; i < sizeof(U); ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  return out;
}

std::string RawBytes(std::initializer_list<std::string> values) {
  std::string out;
  for (const std::string& v : values) {
    out += LittleEndian<uint32_t>({static_cast<uint32_t>(v.size())});
    out += v;
  }
  return out;
}

absl::StatusOr<data::Batch> ToBatch(const inference::ModelInferRequest& r,
                                    const data::TableSchema& schema = kSchema) {
  auto tensors = InputsFromProto(r);
  if (!tensors.ok()) return tensors.status();
  return TensorsToBatch(*tensors, schema);
}

std::vector<int64_t> Ints(const data::Column& c) { return c.ints; }
std::vector<double> Floats(const data::Column& c) { return c.floats; }
std::vector<std::string> Strings(const data::Column& c) {
  std::vector<std::string> out;
  for (size_t i = 0; i < c.num_values(); ++i) out.emplace_back(c.str(i));
  return out;
}

// The request both tests below send, once typed and once raw.
inference::ModelInferRequest Typed() {
  inference::ModelInferRequest r;
  InferInput* age = AddInput(&r, "age", "INT64", {3});
  for (int64_t v : {39, -2, 61}) age->mutable_contents()->add_int64_contents(v);
  InferInput* income = AddInput(&r, "income", "FP32", {3, 1});
  for (float v : {1.5f, 0.1f, -3.0f}) income->mutable_contents()->add_fp32_contents(v);
  InferInput* city = AddInput(&r, "city", "BYTES", {3});
  for (const char* v : {"Oslo", "", "Lima"}) city->mutable_contents()->add_bytes_contents(v);
  return r;
}

TEST(TensorsTest, TypedContentsBecomeOneRowPerElement) {
  auto batch = ToBatch(Typed());
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->num_rows, 3u);
  ASSERT_EQ(batch->columns.size(), 3u);
  EXPECT_EQ(batch->columns[0].name, "age");
  EXPECT_THAT(Ints(batch->columns[0]), ElementsAre(39, -2, 61));
  EXPECT_EQ(batch->columns[1].type, data::ValueType::kFloat);
  EXPECT_THAT(Floats(batch->columns[1]), ElementsAre(1.5, double{0.1f}, -3.0));
  EXPECT_THAT(Strings(batch->columns[2]), ElementsAre("Oslo", "", "Lima"));
  for (const data::Column& c : batch->columns) {
    EXPECT_THAT(c.present, ElementsAre(1, 1, 1));
    EXPECT_THAT(c.offsets, ElementsAre(0, 1, 2, 3));
  }
}

TEST(TensorsTest, RawContentsGiveTheSameRowsAsTypedOnes) {
  inference::ModelInferRequest raw;
  AddInput(&raw, "city", "BYTES", {3});
  AddInput(&raw, "age", "INT64", {3});
  AddInput(&raw, "income", "FP32", {3, 1});
  raw.add_raw_input_contents(RawBytes({"Oslo", "", "Lima"}));
  raw.add_raw_input_contents(LittleEndian<uint64_t>({39, static_cast<uint64_t>(int64_t{-2}), 61}));
  raw.add_raw_input_contents(
      LittleEndian<uint32_t>({std::bit_cast<uint32_t>(1.5f), std::bit_cast<uint32_t>(0.1f),
                              std::bit_cast<uint32_t>(-3.0f)}));
  auto from_raw = ToBatch(raw);
  auto from_typed = ToBatch(Typed());
  ASSERT_TRUE(from_raw.ok()) << from_raw.status();
  ASSERT_TRUE(from_typed.ok());
  ASSERT_EQ(from_raw->num_rows, 3u);
  for (size_t i = 0; i < 3; ++i) {  // in the schema's order, whatever the request's
    const data::Column& a = from_raw->columns[i];
    const data::Column& b = from_typed->columns[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.ints, b.ints);
    EXPECT_EQ(a.floats, b.floats);
    EXPECT_EQ(a.str_data, b.str_data);
    EXPECT_EQ(a.str_offsets, b.str_offsets);
    EXPECT_EQ(a.present, b.present);
  }
}

TEST(TensorsTest, RawContentsOfEveryNumericDatatypeDecodeLittleEndian) {
  struct Case {
    std::string datatype;
    std::string raw;
    std::vector<int64_t> ints;
    std::vector<double> floats;
  };
  const std::vector<Case> cases = {
      {"BOOL", std::string("\x01\x00\x07", 3), {1, 0, 1}, {}},
      {"INT8", "\xff\x7f\x80", {-1, 127, -128}, {}},
      {"INT16", LittleEndian<uint16_t>({0xffff, 0x0102, 0x8000}), {-1, 258, -32768}, {}},
      {"INT32", LittleEndian<uint32_t>({0xfffffffe, 70000, 0}), {-2, 70000, 0}, {}},
      {"UINT8", std::string("\xff\x00\x10", 3), {255, 0, 16}, {}},
      {"UINT16", LittleEndian<uint16_t>({0xffff, 1, 2}), {65535, 1, 2}, {}},
      {"UINT32", LittleEndian<uint32_t>({0xffffffff, 1, 2}), {4294967295, 1, 2}, {}},
      {"UINT64", LittleEndian<uint64_t>({uint64_t{1} << 62, 1, 2}), {int64_t{1} << 62, 1, 2}, {}},
      // 1, -2, the smallest subnormal (2^-24).
      {"FP16", LittleEndian<uint16_t>({0x3c00, 0xc000, 0x0001}), {}, {1.0, -2.0, 0x1p-24}},
      {"BF16", LittleEndian<uint16_t>({0x3f80, 0xc040, 0x4120}), {}, {1.0, -3.0, 10.0}},
      {"FP64",
       LittleEndian<uint64_t>({std::bit_cast<uint64_t>(0.1), std::bit_cast<uint64_t>(-1e300),
                               std::bit_cast<uint64_t>(2.5)}),
       {},
       {0.1, -1e300, 2.5}},
  };
  for (const Case& c : cases) {
    InputTensor t{"x", c.datatype, {3}, {}, {}, {}, {}};
    ASSERT_TRUE(DecodeRawContents(c.raw, &t).ok()) << c.datatype;
    EXPECT_EQ(t.ints, c.ints) << c.datatype;
    EXPECT_EQ(t.floats, c.floats) << c.datatype;
    // Every numeric datatype feeds a FLOAT feature; the integer ones an INT feature too.
    auto as_float = TensorsToBatch({t}, {{"x", data::ValueType::kFloat}});
    ASSERT_TRUE(as_float.ok()) << c.datatype << ": " << as_float.status();
    EXPECT_EQ(as_float->columns[0].floats.size(), 3u);
    auto as_int = TensorsToBatch({t}, {{"x", data::ValueType::kInt}});
    EXPECT_EQ(as_int.ok(), !c.ints.empty()) << c.datatype;
  }
}

TEST(TensorsTest, NarrowTypedContentsFeedIntAndFloatFeatures) {
  inference::ModelInferRequest r;
  InferInput* age = AddInput(&r, "age", "INT32", {2});
  age->mutable_contents()->add_int_contents(-7);
  age->mutable_contents()->add_int_contents(8);
  InferInput* income = AddInput(&r, "income", "BOOL", {2});
  income->mutable_contents()->add_bool_contents(true);
  income->mutable_contents()->add_bool_contents(false);
  InferInput* city = AddInput(&r, "city", "BYTES", {2});
  city->mutable_contents()->add_bytes_contents(std::string("a\0b", 3));
  city->mutable_contents()->add_bytes_contents("c");
  auto batch = ToBatch(r);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_THAT(Ints(batch->columns[0]), ElementsAre(-7, 8));
  EXPECT_THAT(Floats(batch->columns[1]), ElementsAre(1.0, 0.0));
  EXPECT_THAT(Strings(batch->columns[2]), ElementsAre(std::string("a\0b", 3), "c"));

  inference::ModelInferRequest u;
  AddInput(&u, "age", "UINT64", {1})->mutable_contents()->add_uint64_contents(5);
  AddInput(&u, "income", "UINT32", {1})->mutable_contents()->add_uint_contents(4000000000u);
  AddInput(&u, "city", "BYTES", {1})->mutable_contents()->add_bytes_contents("x");
  batch = ToBatch(u);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_THAT(Ints(batch->columns[0]), ElementsAre(5));
  EXPECT_THAT(Floats(batch->columns[1]), ElementsAre(4e9));
}

TEST(TensorsTest, MissingFlagsMakeMissingValues) {
  InputTensor age{"age", "INT64", {2}, {0, 4}, {}, {}, {1, 0}};
  InputTensor income{"income", "FP64", {2}, {}, {2.5, 0}, {}, {0, 1}};
  InputTensor city{"city", "BYTES", {2}, {}, {}, {"a", "b"}, {}};
  auto batch = TensorsToBatch({city, income, age}, kSchema);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_THAT(batch->columns[0].present, ElementsAre(0, 1));
  EXPECT_THAT(Ints(batch->columns[0]), ElementsAre(4));
  EXPECT_THAT(batch->columns[1].present, ElementsAre(1, 0));
  EXPECT_THAT(Floats(batch->columns[1]), ElementsAre(2.5));
}

TEST(TensorsTest, NoRowsIsAnEmptyBatch) {
  InputTensor age{"age", "INT64", {0}, {}, {}, {}, {}};
  InputTensor income{"income", "FP64", {0, 1}, {}, {}, {}, {}};
  InputTensor city{"city", "BYTES", {0}, {}, {}, {}, {}};
  auto batch = TensorsToBatch({age, income, city}, kSchema);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->num_rows, 0u);
  EXPECT_EQ(batch->columns.size(), 3u);
}

// The error a request gets, which must be kInvalidArgument.
std::string ErrorOf(const absl::StatusOr<data::Batch>& b) {
  EXPECT_FALSE(b.ok());
  if (b.ok()) return "";
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << b.status();
  return std::string(b.status().message());
}

TEST(TensorsTest, MalformedRequestsAreInvalidArgumentsNamingTheTensor) {
  auto with = [](auto edit) {
    inference::ModelInferRequest r = Typed();
    edit(&r);
    return ToBatch(r);
  };
  EXPECT_EQ(ErrorOf(with([](auto* r) {
              r->mutable_inputs(0)->clear_shape();
              r->mutable_inputs(0)->add_shape(1);
              r->mutable_inputs(0)->add_shape(3);
            })),
            "input 'age': shape [1, 3]; kiln takes [N] or [N, 1]");
  EXPECT_EQ(ErrorOf(with([](auto* r) { r->mutable_inputs(0)->clear_shape(); })),
            "input 'age': shape []; kiln takes [N] or [N, 1]");
  EXPECT_EQ(ErrorOf(with([](auto* r) { r->mutable_inputs(0)->set_shape(0, 4); })),
            "input 'age': shape [4] but 3 values");
  EXPECT_EQ(ErrorOf(with([](auto* r) {
              r->mutable_inputs(2)->mutable_contents()->add_bytes_contents("x");
              r->mutable_inputs(2)->set_shape(0, 4);
            })),
            "input 'city': 4 rows, but input 'age' has 3");
  EXPECT_EQ(ErrorOf(with([](auto* r) { r->mutable_inputs()->RemoveLast(); })),
            "missing input 'city'; the model takes one tensor per input");
  EXPECT_EQ(ErrorOf(with([](auto* r) { r->mutable_inputs()->DeleteSubrange(1, 2); })),
            "missing inputs 'income', 'city'; the model takes one tensor per input");
  EXPECT_EQ(ErrorOf(with([](auto* r) { r->mutable_inputs(1)->set_name("salary"); })),
            "the model has no input 'salary'; its inputs are age, income, city");
  EXPECT_EQ(ErrorOf(with([](auto* r) { *r->add_inputs() = r->inputs(0); })),
            "input 'age': given twice");
  EXPECT_EQ(ErrorOf(with([](auto* r) { r->mutable_inputs(0)->set_datatype("COMPLEX64"); })),
            "input 'age': unsupported datatype 'COMPLEX64' (kiln takes BOOL, INT8-INT64, "
            "UINT8-UINT64, FP16, BF16, FP32, FP64 and BYTES)");
  // Datatypes the feature cannot take.
  EXPECT_EQ(ErrorOf(with([](auto* r) {
              auto* in = r->mutable_inputs(0);
              in->set_datatype("FP64");
              in->mutable_contents()->clear_int64_contents();
              for (double v : {1.0, 2.0, 3.0}) in->mutable_contents()->add_fp64_contents(v);
            })),
            "input 'age': expected an integer (INT64, another integer type or BOOL), got FP64");
  EXPECT_EQ(ErrorOf(with([](auto* r) {
              auto* in = r->mutable_inputs(1);
              in->set_datatype("BYTES");
              in->mutable_contents()->clear_fp32_contents();
              for (const char* v : {"a", "b", "c"}) in->mutable_contents()->add_bytes_contents(v);
            })),
            "input 'income': expected a number (FP64, FP32, FP16, an integer type or BOOL), got "
            "BYTES");
  EXPECT_EQ(ErrorOf(with([](auto* r) {
              auto* in = r->mutable_inputs(2);
              in->set_datatype("INT64");
              in->mutable_contents()->clear_bytes_contents();
              for (int64_t v : {1, 2, 3}) in->mutable_contents()->add_int64_contents(v);
            })),
            "input 'city': expected BYTES (a string), got INT64");
  // Values in the wrong list for the datatype.
  EXPECT_EQ(ErrorOf(with([](auto* r) {
              auto* in = r->mutable_inputs(1);
              in->mutable_contents()->clear_fp32_contents();
              for (double v : {1.0, 2.0, 3.0}) in->mutable_contents()->add_fp64_contents(v);
            })),
            "input 'income': FP32 values go in fp32_contents, but it has 3 in fp64_contents");
  EXPECT_EQ(ErrorOf(with([](auto* r) { r->mutable_inputs(1)->set_datatype("FP16"); })),
            "input 'income': FP16 values have no typed contents; send them in "
            "raw_input_contents");
  EXPECT_EQ(ErrorOf(with([](auto* r) {
              auto* in = r->mutable_inputs(0);
              in->set_datatype("UINT64");
              in->mutable_contents()->clear_int64_contents();
              for (uint64_t v : {uint64_t{1}, ~uint64_t{0}, uint64_t{3}}) {
                in->mutable_contents()->add_uint64_contents(v);
              }
            })),
            "input 'age': UINT64 value 18446744073709551615 is beyond the int64 range kiln "
            "takes");
}

TEST(TensorsTest, MalformedRawContentsAreInvalidArguments) {
  inference::ModelInferRequest r;
  AddInput(&r, "age", "INT64", {2});
  AddInput(&r, "income", "FP32", {2});
  AddInput(&r, "city", "BYTES", {2});
  r.add_raw_input_contents(LittleEndian<uint64_t>({1, 2}));
  EXPECT_EQ(ErrorOf(ToBatch(r)),
            "raw_input_contents has 1 entries for 3 inputs; give one per input, in the order of "
            "inputs");
  r.add_raw_input_contents(LittleEndian<uint32_t>({0}));  // one FP32 of two
  r.add_raw_input_contents(RawBytes({"a", "b"}));
  EXPECT_EQ(ErrorOf(ToBatch(r)),
            "input 'income': shape [2] of FP32 takes 8 bytes of raw contents, got 4");
  *r.mutable_raw_input_contents(1) = LittleEndian<uint32_t>({0, 0});
  ASSERT_TRUE(ToBatch(r).ok());
  *r.mutable_raw_input_contents(2) = RawBytes({"a", "b"}) + "\x01\x00";
  EXPECT_EQ(ErrorOf(ToBatch(r)),
            "input 'city': raw BYTES contents end inside the length of element 2");
  *r.mutable_raw_input_contents(2) = RawBytes({"a"}) + LittleEndian<uint32_t>({5}) + "bc";
  EXPECT_EQ(ErrorOf(ToBatch(r)),
            "input 'city': raw BYTES element 1 is 5 bytes long but only 2 remain");
  *r.mutable_raw_input_contents(2) = RawBytes({"a", "b", "c"});  // three elements, shape [2]
  EXPECT_EQ(ErrorOf(ToBatch(r)), "input 'city': shape [2] but 3 values");
  *r.mutable_raw_input_contents(2) = RawBytes({"a", "b"});
  r.mutable_inputs(0)->mutable_contents()->add_int64_contents(1);
  EXPECT_EQ(ErrorOf(ToBatch(r)),
            "input 'age': has typed contents, but the request carries raw_input_contents");
  r.mutable_inputs(0)->clear_contents();
  r.mutable_inputs(0)->set_shape(0, -2);
  EXPECT_EQ(ErrorOf(ToBatch(r)), "input 'age': shape [-2] is not a tensor's shape");
}

tensorflow::TensorProto Proto(tensorflow::DataType dtype, std::vector<int64_t> shape) {
  tensorflow::TensorProto p;
  p.set_dtype(dtype);
  for (int64_t d : shape) p.mutable_tensor_shape()->add_dim()->set_size(d);
  return p;
}

TEST(TensorsTest, TensorProtosBecomeTensorsFromTheirValListsOrContent) {
  tensorflow::TensorProto age = Proto(tensorflow::DT_INT64, {3});
  for (int64_t v : {39, -2, 61}) age.add_int64_val(v);
  tensorflow::TensorProto income = Proto(tensorflow::DT_FLOAT, {3, 1});
  income.set_tensor_content(
      LittleEndian<uint32_t>({std::bit_cast<uint32_t>(1.5f), std::bit_cast<uint32_t>(0.1f),
                              std::bit_cast<uint32_t>(-3.0f)}));
  tensorflow::TensorProto city = Proto(tensorflow::DT_STRING, {3});
  for (const char* v : {"Oslo", "", "Lima"}) city.add_string_val(v);
  std::vector<InputTensor> tensors;
  for (const auto& [name, proto] : {std::pair{"age", age}, {"income", income}, {"city", city}}) {
    auto t = InputFromTensorProto(name, proto);
    ASSERT_TRUE(t.ok()) << t.status();
    tensors.push_back(*t);
  }
  EXPECT_EQ(tensors[0].datatype, "INT64");
  EXPECT_EQ(tensors[1].datatype, "FP32");
  EXPECT_THAT(tensors[1].shape, ElementsAre(3, 1));
  EXPECT_EQ(tensors[2].datatype, "BYTES");
  auto batch = TensorsToBatch(tensors, kSchema);
  auto typed = ToBatch(Typed());
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_TRUE(typed.ok());
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(batch->columns[i].ints, typed->columns[i].ints);
    EXPECT_EQ(batch->columns[i].floats, typed->columns[i].floats);
    EXPECT_EQ(batch->columns[i].str_data, typed->columns[i].str_data);
  }

  // The 16-bit floats, one pattern per int32; the narrow integers in int_val.
  tensorflow::TensorProto half = Proto(tensorflow::DT_HALF, {2});
  half.add_half_val(0x3c00);
  half.add_half_val(0xc000);
  auto h = InputFromTensorProto("h", half);
  ASSERT_TRUE(h.ok());
  EXPECT_THAT(h->floats, ElementsAre(1.0, -2.0));
  tensorflow::TensorProto bf16 = Proto(tensorflow::DT_BFLOAT16, {1});
  bf16.add_half_val(0x4120);
  EXPECT_THAT(InputFromTensorProto("b", bf16)->floats, ElementsAre(10.0));
  tensorflow::TensorProto int8 = Proto(tensorflow::DT_INT8, {2});
  int8.add_int_val(-5);
  int8.add_int_val(7);
  EXPECT_THAT(InputFromTensorProto("i", int8)->ints, ElementsAre(-5, 7));
  tensorflow::TensorProto flag = Proto(tensorflow::DT_BOOL, {2});
  flag.add_bool_val(true);
  flag.add_bool_val(false);
  EXPECT_THAT(InputFromTensorProto("f", flag)->ints, ElementsAre(1, 0));
}

TEST(TensorsTest, AShortValListRepeatsItsLastValueAsTensorFlowDoes) {
  tensorflow::TensorProto p = Proto(tensorflow::DT_DOUBLE, {4});
  p.add_double_val(1.5);
  p.add_double_val(2.5);
  auto t = InputFromTensorProto("x", p);
  ASSERT_TRUE(t.ok());
  EXPECT_THAT(t->floats, ElementsAre(1.5, 2.5, 2.5, 2.5));
  // But not into a huge allocation.
  tensorflow::TensorProto huge = Proto(tensorflow::DT_DOUBLE, {int64_t{1} << 40});
  huge.add_double_val(1);
  auto refused = InputFromTensorProto("x", huge);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("repeats the last value up to 16777216"));
}

// The 2^24-element bound alone let a 300-byte PredictRequest repeat a 100-byte string 2^24
// times (over 2 GiB), and every input of a request, even one the model does not take,
// repeat 2^24 numbers (128 MiB each).
TEST(TensorsTest, RepeatedValuesAreBoundedByTheirBytesOverAWholeRequest) {
  tensorflow::TensorProto city = Proto(tensorflow::DT_STRING, {int64_t{1} << 24});
  city.add_string_val(std::string(100, 'x'));
  auto refused = InputFromTensorProto("city", city);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(),
            "input 'city': shape [16777216] asks for 16777216 elements from 1 values; repeating "
            "the last value would take 2214592380 bytes, and kiln repeats values up to "
            "134217728 bytes per request");

  // Half the budget in one input, then one more number than the rest in another.
  tensorflow::serving::PredictRequest request;
  tensorflow::TensorProto& a = (*request.mutable_inputs())["a"];
  a = Proto(tensorflow::DT_INT64, {int64_t{1} << 23});
  a.add_int64_val(7);
  tensorflow::TensorProto& b = (*request.mutable_inputs())["b"];
  b = Proto(tensorflow::DT_DOUBLE, {(int64_t{1} << 23) + 3});
  b.add_double_val(1.5);
  auto over = InputsFromPredictRequest(request);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(over.status().message(),
            "input 'b': shape [8388611] asks for 8388611 elements from 1 values; repeating the "
            "last value would take 67108880 bytes, and kiln repeats values up to 134217728 "
            "bytes per request");
  // Each alone is within the budget; so are both when they fit it together.
  EXPECT_TRUE(InputFromTensorProto("b", b).ok());
  b = Proto(tensorflow::DT_DOUBLE, {(int64_t{1} << 23) + 2});
  b.add_double_val(1.5);
  auto fits = InputsFromPredictRequest(request);
  ASSERT_TRUE(fits.ok()) << fits.status();
  ASSERT_EQ(fits->size(), 2u);
  EXPECT_EQ((*fits)[0].name, "a");  // by name
  EXPECT_EQ((*fits)[0].ints.size(), size_t{1} << 23);
  EXPECT_EQ((*fits)[0].ints.back(), 7);
  EXPECT_EQ((*fits)[1].floats.size(), (size_t{1} << 23) + 2);
  EXPECT_EQ((*fits)[1].floats.back(), 1.5);
}

TEST(TensorsTest, TensorProtosKilnCannotTakeAreInvalidArguments) {
  tensorflow::TensorProto complex = Proto(tensorflow::DT_COMPLEX64, {1});
  complex.add_scomplex_val(1);
  complex.add_scomplex_val(2);
  auto t = InputFromTensorProto("z", complex);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(t.status().message(),
            "input 'z': dtype DT_COMPLEX64 is not one kiln takes (DT_BOOL, DT_INT*, DT_UINT*, "
            "DT_HALF, DT_BFLOAT16, DT_FLOAT, DT_DOUBLE, DT_STRING)");
  tensorflow::TensorProto unknown = Proto(tensorflow::DT_FLOAT, {});
  unknown.mutable_tensor_shape()->set_unknown_rank(true);
  EXPECT_EQ(InputFromTensorProto("u", unknown).status().message(),
            "input 'u': the shape has an unknown rank");
  tensorflow::TensorProto short_content = Proto(tensorflow::DT_FLOAT, {2});
  short_content.set_tensor_content(LittleEndian<uint32_t>({0}));
  EXPECT_EQ(InputFromTensorProto("s", short_content).status().message(),
            "input 's': shape [2] of FP32 takes 8 bytes of raw contents, got 4");
}

TEST(TensorsTest, OutputsBecomeTensorProtos) {
  auto outputs = OutputTensors(model::Task::kMulticlass, {0.1f, 0.7f, 0.2f}, 1);
  tensorflow::TensorProto probabilities, ids;
  OutputToTensorProto(outputs[0], &probabilities);
  OutputToTensorProto(outputs[1], &ids);
  EXPECT_EQ(probabilities.dtype(), tensorflow::DT_FLOAT);
  ASSERT_EQ(probabilities.tensor_shape().dim_size(), 2);
  EXPECT_EQ(probabilities.tensor_shape().dim(0).size(), 1);
  EXPECT_EQ(probabilities.tensor_shape().dim(1).size(), 3);
  EXPECT_THAT(probabilities.float_val(), ElementsAre(0.1f, 0.7f, 0.2f));
  EXPECT_EQ(ids.dtype(), tensorflow::DT_INT64);
  EXPECT_THAT(ids.int64_val(), ElementsAre(1));
}

TEST(TensorsTest, OutputsFollowTheTask) {
  auto binary = OutputTensors(model::Task::kBinary, {0.25f, 0.75f}, 2);
  ASSERT_EQ(binary.size(), 2u);
  EXPECT_EQ(binary[0].name, "scores");
  EXPECT_EQ(binary[0].datatype, "FP32");
  EXPECT_THAT(binary[0].shape, ElementsAre(2));
  EXPECT_THAT(binary[0].fp32, ElementsAre(0.25f, 0.75f));
  EXPECT_EQ(binary[1].name, "class_ids");
  EXPECT_EQ(binary[1].datatype, "INT64");
  EXPECT_THAT(binary[1].int64, ElementsAre(0, 1));

  auto multi = OutputTensors(model::Task::kMulticlass, {0.1f, 0.7f, 0.2f, 0.5f, 0.3f, 0.2f}, 2);
  ASSERT_EQ(multi.size(), 2u);
  EXPECT_EQ(multi[0].name, "probabilities");
  EXPECT_THAT(multi[0].shape, ElementsAre(2, 3));
  EXPECT_THAT(multi[1].int64, ElementsAre(1, 0));

  auto regression = OutputTensors(model::Task::kRegression, {3.5f}, 1);
  ASSERT_EQ(regression.size(), 1u);
  EXPECT_EQ(regression[0].name, "predictions");
  EXPECT_THAT(regression[0].fp32, ElementsAre(3.5f));

  auto picked = SelectOutputs(binary, {"class_ids"});
  ASSERT_TRUE(picked.ok());
  ASSERT_EQ(picked->size(), 1u);
  EXPECT_EQ((*picked)[0].name, "class_ids");
  EXPECT_EQ(SelectOutputs(binary, {})->size(), 2u);
  auto unknown = SelectOutputs(binary, {"scores", "logits"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.status().message(),
            "the model has no output 'logits'; its outputs are scores, class_ids");
}

TEST(TensorsTest, OutputsAreAnsweredAsRawLittleEndianContents) {
  inference::ModelInferResponse response;
  OutputsToProto(OutputTensors(model::Task::kBinary, {0.25f, 0.75f}, 2), &response);
  ASSERT_EQ(response.outputs_size(), 2);
  ASSERT_EQ(response.raw_output_contents_size(), 2);
  EXPECT_EQ(response.outputs(0).name(), "scores");
  EXPECT_EQ(response.outputs(0).datatype(), "FP32");
  EXPECT_THAT(response.outputs(0).shape(), ElementsAre(2));
  EXPECT_EQ(
      response.raw_output_contents(0),
      LittleEndian<uint32_t>({std::bit_cast<uint32_t>(0.25f), std::bit_cast<uint32_t>(0.75f)}));
  EXPECT_EQ(response.outputs(1).datatype(), "INT64");
  EXPECT_EQ(response.raw_output_contents(1), LittleEndian<uint64_t>({0, 1}));
  EXPECT_FALSE(response.outputs(0).has_contents());
}

TEST(TensorsTest, SignatureTensorsUseV2Datatypes) {
  auto tensors = SignatureTensors(nlohmann::json::parse(R"([
      {"name": "a", "dtype": "int64", "shape": [-1]},
      {"name": "b", "dtype": "float32", "shape": [-1, 3]},
      {"name": "c", "dtype": "float64"},
      {"name": "d", "dtype": "string", "shape": [-1]}])"));
  ASSERT_EQ(tensors.size(), 4u);
  EXPECT_EQ(tensors[0].datatype, "INT64");
  EXPECT_EQ(tensors[1].datatype, "FP32");
  EXPECT_THAT(tensors[1].shape, ElementsAre(-1, 3));
  EXPECT_EQ(tensors[2].datatype, "FP64");
  EXPECT_THAT(tensors[2].shape, ElementsAre(-1));
  EXPECT_EQ(tensors[3].name, "d");
  EXPECT_EQ(tensors[3].datatype, "BYTES");
}

}  // namespace
}  // namespace kiln::serving
