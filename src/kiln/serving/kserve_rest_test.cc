// KServe v2 REST's binary tensor data extension on a real bundle (gbdt, trained here):
// inputs as raw little-endian bytes after the JSON header give exactly the answers their
// JSON "data" gives, outputs come back as bytes when asked for (per output or for the whole
// request), and malformed binary bodies are 400s with messages naming what is wrong.
#include "kiln/serving/kserve_rest.h"

#include <bit>
#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/serving/testing_people.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::serving {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

using testing::kPeopleRows;
using testing::PeopleRow;
const int64_t kN = static_cast<int64_t>(kPeopleRows.size());

std::string Int64s(const std::vector<int64_t>& values) {
  std::string out;
  for (int64_t v : values) {
    for (int i = 0; i < 8; ++i)
      out.push_back(static_cast<char>(static_cast<uint64_t>(v) >> (8 * i)));
  }
  return out;
}
std::string Fp64s(const std::vector<double>& values) {
  std::string out;
  for (double v : values) {
    const uint64_t bits = std::bit_cast<uint64_t>(v);
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(bits >> (8 * i)));
  }
  return out;
}
std::string Fp32s(const std::vector<float>& values) {
  std::string out;
  for (float v : values) {
    const uint32_t bits = std::bit_cast<uint32_t>(v);
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(bits >> (8 * i)));
  }
  return out;
}
// BYTES: each element a 4-byte little-endian length and its bytes.
std::string Strings(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& v : values) {
    const uint32_t n = static_cast<uint32_t>(v.size());
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(n >> (8 * i)));
    out += v;
  }
  return out;
}

std::vector<float> DecodeFp32(std::string_view raw) {
  std::vector<float> out(raw.size() / 4);
  std::memcpy(out.data(), raw.data(), out.size() * 4);
  return out;
}
std::vector<int64_t> DecodeInt64(std::string_view raw) {
  std::vector<int64_t> out(raw.size() / 8);
  std::memcpy(out.data(), raw.data(), out.size() * 8);
  return out;
}

std::vector<int64_t> Ages() {
  std::vector<int64_t> v;
  for (const PeopleRow& r : kPeopleRows) v.push_back(r.age);
  return v;
}
std::vector<double> Incomes() {
  std::vector<double> v;
  for (const PeopleRow& r : kPeopleRows) v.push_back(r.income);
  return v;
}
std::vector<std::string> Cities() {
  std::vector<std::string> v;
  for (const PeopleRow& r : kPeopleRows) v.push_back(r.city);
  return v;
}

Json Input(const std::string& name, const std::string& datatype, std::vector<int64_t> shape) {
  return {{"name", name}, {"datatype", datatype}, {"shape", std::move(shape)}};
}
Json BinaryInput(const std::string& name, const std::string& datatype, std::vector<int64_t> shape,
                 size_t size) {
  Json t = Input(name, datatype, std::move(shape));
  t["parameters"] = {{"binary_data_size", size}};
  return t;
}

class KserveRestTest : public testing::PeopleSuite {
 protected:
  void SetUp() override {
    ModelConfig model;
    model.name = "people";
    model.base_path = tmp_->File("models/people");
    manager_.SetConfig(ServerConfig{{model}});
    auto p = manager_.Find("people");
    ASSERT_TRUE(p.ok()) << p.status();
    predictor_ = *p;
  }

  // POST /v2/models/people/infer; with `header_length` >= 0, the binary extension's header.
  HttpResponse Infer(const std::string& body, int64_t header_length = -1) const {
    HttpRequest req;
    req.method = "POST";
    req.target = "/v2/models/people/infer";
    req.body = body;
    if (header_length >= 0) {
      req.headers.emplace_back("inference-header-content-length", StrCat(header_length));
    }
    return HandleKserveRest(service_, req);
  }
  // The JSON `request` followed by `binary`, with the header giving the JSON's length.
  HttpResponse InferBinary(const Json& request, const std::string& binary) const {
    const std::string json = request.dump();
    return Infer(json + binary, static_cast<int64_t>(json.size()));
  }

  static Json JsonRequest() {
    Json age = Input("age", "INT64", {kN});
    Json income = Input("income", "FP64", {kN});
    Json city = Input("city", "BYTES", {kN});
    age["data"] = Ages();
    income["data"] = Incomes();
    city["data"] = Cities();
    return {{"id", "r1"}, {"inputs", Json::array({age, income, city})}};
  }

  // The same rows with every input binary: in another order than the signature's, with
  // [N, 1] shapes and FP32 incomes.
  static std::pair<Json, std::string> BinaryRequest() {
    std::vector<float> incomes32;
    for (double v : Incomes()) incomes32.push_back(static_cast<float>(v));
    const std::string city = Strings(Cities()), income = Fp32s(incomes32), age = Int64s(Ages());
    Json request = {{"id", "r1"},
                    {"inputs", Json::array({BinaryInput("city", "BYTES", {kN, 1}, city.size()),
                                            BinaryInput("income", "FP32", {kN, 1}, income.size()),
                                            BinaryInput("age", "INT64", {kN, 1}, age.size())})}};
    return {request, city + income + age};
  }

  std::vector<float> Expected() const {
    std::vector<float> scores;
    EXPECT_TRUE(predictor_->Predict(testing::PeopleBatch(), &scores).ok());
    return scores;
  }

  // The error message of a 400 answer.
  static std::string Error400(const HttpResponse& r) {
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_TRUE(r.headers.empty());
    const Json body = Json::parse(r.body, nullptr, false);
    return body.is_object() ? body.value("error", "<no error field>") : "<not JSON>";
  }

  static std::string_view Header(const HttpResponse& r, std::string_view name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return {};
  }

  ModelManager manager_{Env::Default()};
  InferenceService service_{&manager_};
  std::shared_ptr<const train::Predictor> predictor_;
};

TEST_F(KserveRestTest, ServerMetadataAdvertisesTheBinaryTensorDataExtension) {
  HttpRequest req;
  req.method = "GET";
  req.target = "/v2";
  const HttpResponse r = HandleKserveRest(service_, req);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Json::parse(r.body)["extensions"], Json::array({"binary_tensor_data"}));
}

TEST_F(KserveRestTest, BinaryInputsGiveExactlyTheJsonAnswer) {
  const HttpResponse json = Infer(JsonRequest().dump());
  ASSERT_EQ(json.status, 200) << json.body;
  const auto [request, binary] = BinaryRequest();
  const HttpResponse bin = InferBinary(request, binary);
  ASSERT_EQ(bin.status, 200) << bin.body;
  // No output asked for as binary: a plain JSON answer, byte for byte the JSON path's.
  EXPECT_EQ(bin.content_type, "application/json");
  EXPECT_TRUE(bin.headers.empty());
  EXPECT_EQ(bin.body, json.body);
  const Json out = Json::parse(json.body);
  std::vector<float> scores;
  for (const Json& v : out["outputs"][0]["data"]) scores.push_back(v.get<float>());
  EXPECT_EQ(out["outputs"][0]["name"], "scores");
  EXPECT_EQ(scores, Expected());
  EXPECT_EQ(out["outputs"][1]["data"], Json::array({0, 0, 1, 0}));
  EXPECT_EQ(bin.model_version, 1);

  // Binary and JSON inputs mixed.
  Json mixed = JsonRequest();
  mixed["inputs"][1] = BinaryInput("income", "FP64", {kN}, kPeopleRows.size() * 8);
  const HttpResponse m = InferBinary(mixed, Fp64s(Incomes()));
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(m.body, json.body);
}

TEST_F(KserveRestTest, OutputsAskedForAsBinaryComeBackAsBytesAfterTheJson) {
  const Json json = Json::parse(Infer(JsonRequest().dump()).body);
  auto [request, binary] = BinaryRequest();
  request["outputs"] = Json::array(
      {{{"name", "class_ids"}, {"parameters", {{"binary_data", true}}}}, {{"name", "scores"}}});
  const HttpResponse r = InferBinary(request, binary);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/octet-stream");
  ASSERT_THAT(r.headers, ElementsAre(std::pair<std::string, std::string>{
                             "Inference-Header-Content-Length", StrCat(r.body.size() - 32)}));
  const std::string_view body = r.body;
  const Json head = Json::parse(body.substr(0, r.body.size() - 32));
  EXPECT_EQ(head["id"], "r1");
  EXPECT_EQ(head["outputs"][0], Json::parse(R"({"name": "class_ids", "datatype": "INT64",
      "shape": [4], "parameters": {"binary_data_size": 32}})"));
  EXPECT_EQ(head["outputs"][1], json["outputs"][0]);  // scores as JSON data
  EXPECT_THAT(DecodeInt64(body.substr(body.size() - 32)), ElementsAre(0, 0, 1, 0));

  // binary_data_output: every output in binary, in the model's order; an output's own
  // "binary_data": false overrides it.
  request.erase("outputs");
  request["parameters"] = {{"binary_data_output", true}};
  const HttpResponse all = InferBinary(request, binary);
  ASSERT_EQ(all.status, 200) << all.body;
  const size_t n = std::stoul(std::string(Header(all, "Inference-Header-Content-Length")));
  ASSERT_EQ(all.body.size(), n + 16 + 32);
  const Json all_head = Json::parse(all.body.substr(0, n));
  EXPECT_EQ(all_head["outputs"][0]["parameters"]["binary_data_size"], 16);
  EXPECT_FALSE(all_head["outputs"][0].contains("data"));
  EXPECT_EQ(all_head["outputs"][1]["parameters"]["binary_data_size"], 32);
  EXPECT_EQ(DecodeFp32(std::string_view(all.body).substr(n, 16)), Expected());
  EXPECT_THAT(DecodeInt64(std::string_view(all.body).substr(n + 16)), ElementsAre(0, 0, 1, 0));

  request["outputs"] =
      Json::array({{{"name", "scores"}, {"parameters", {{"binary_data", false}}}}});
  const HttpResponse none = InferBinary(request, binary);
  ASSERT_EQ(none.status, 200) << none.body;
  EXPECT_EQ(none.content_type, "application/json");
  EXPECT_TRUE(none.headers.empty());
  EXPECT_EQ(Json::parse(none.body)["outputs"], Json::array({json["outputs"][0]}));
}

TEST_F(KserveRestTest, MalformedBinaryBodiesAre400sThatSayWhatIsWrong) {
  const auto [request, binary] = BinaryRequest();
  const std::string json = request.dump();
  const int64_t jn = static_cast<int64_t>(json.size());
  const std::string body = json + binary;
  const int64_t total = static_cast<int64_t>(body.size());

  EXPECT_EQ(Error400(Infer(body, total + 1)),
            StrCat("Inference-Header-Content-Length is ", total + 1, " but the body has only ",
                   total, " bytes"));
  {
    HttpRequest req;
    req.method = "POST";
    req.target = "/v2/models/people/infer";
    req.body = body;
    req.headers.emplace_back("Inference-Header-Content-Length", "12x");
    EXPECT_EQ(Error400(HandleKserveRest(service_, req)),
              "Inference-Header-Content-Length '12x' is not a byte count of the JSON request");
  }
  // The header cuts the JSON short.
  EXPECT_EQ(Error400(Infer(body, jn - 1)),
            StrCat("the first ", jn - 1,
                   " bytes of the body (Inference-Header-Content-Length) must be a JSON object "
                   "with an \"inputs\" list of tensors"));
  // Without the header the whole body is JSON: the binary inputs have nowhere to start.
  EXPECT_EQ(Error400(Infer(json)),
            "input 'city' has binary_data_size 33, but the request has no "
            "Inference-Header-Content-Length header to say where the JSON ends and the binary "
            "data begins");
  // Sizes that do not add up to the body.
  EXPECT_EQ(Error400(Infer(body + "xyz", jn)),
            StrCat("3 bytes of the body's ", binary.size() + 3,
                   " bytes of binary data belong to no input; the inputs' binary_data_size must "
                   "add up to the body after the JSON request"));
  EXPECT_EQ(Error400(Infer(body.substr(0, body.size() - 8), jn)),
            "input 'age': binary_data_size 32 runs past the end of the body (24 bytes of binary "
            "data are left for it)");
  // A size that is not the shape's element count times the datatype's width.
  Json shrunk = request;
  shrunk["inputs"][1]["parameters"]["binary_data_size"] = 12;
  shrunk["inputs"][2]["parameters"]["binary_data_size"] = 36;
  EXPECT_EQ(Error400(InferBinary(shrunk, binary)),
            "input 'income': shape [4, 1] of FP32 takes 16 bytes of raw contents, got 12 (the "
            "binary data of binary_data_size 12)");
  // BYTES: a length prefix running past the tensor's bytes, one cut in half, and fewer
  // elements than the shape holds.
  const std::string cities = Strings({"Oslo", "Lima"}) + std::string("\x40\0\0\0abc", 7);
  Json overrun = {{"inputs", Json::array({BinaryInput("city", "BYTES", {3}, cities.size())})}};
  EXPECT_EQ(Error400(InferBinary(overrun, cities)),
            "input 'city': raw BYTES element 2 is 64 bytes long but only 3 remain (the binary "
            "data of binary_data_size 23)");
  const std::string cut = Strings({"Oslo"}) + std::string("\x04\0", 2);
  Json half = {{"inputs", Json::array({BinaryInput("city", "BYTES", {2}, cut.size())})}};
  EXPECT_EQ(Error400(InferBinary(half, cut)),
            "input 'city': raw BYTES contents end inside the length of element 1 (the binary "
            "data of binary_data_size 10)");
  Json fewer = request;
  fewer["inputs"][0]["shape"] = Json::array({5, 1});
  EXPECT_EQ(Error400(InferBinary(fewer, binary)), "input 'city': shape [5, 1] but 4 values");

  Json both = request;
  both["inputs"][2]["data"] = Ages();
  EXPECT_EQ(Error400(InferBinary(both, binary)),
            "input 'age' has both data and binary_data_size; give its values one way");
  Json negative = request;
  negative["inputs"][0]["parameters"]["binary_data_size"] = -1;
  EXPECT_EQ(Error400(InferBinary(negative, binary)),
            "input 'city': binary_data_size must be a byte count, not -1");
  Json neither = request;
  neither["inputs"][0].erase("parameters");
  EXPECT_EQ(Error400(InferBinary(neither, binary)),
            "input 'city' has neither data nor parameters.binary_data_size");
  Json not_object = request;
  not_object["inputs"][0]["parameters"] = Json::array({27});
  EXPECT_EQ(Error400(InferBinary(not_object, binary)),
            "input 'city': \"parameters\" must be an object");
  Json flag = request;
  flag["outputs"] = Json::array({{{"name", "scores"}, {"parameters", {{"binary_data", "yes"}}}}});
  EXPECT_EQ(Error400(InferBinary(flag, binary)),
            "output 'scores': parameter binary_data must be true or false, not \"yes\"");
  Json all = request;
  all["parameters"] = {{"binary_data_output", 1}};
  EXPECT_EQ(Error400(InferBinary(all, binary)),
            "the request: parameter binary_data_output must be true or false, not 1");
  Json unsupported = {{"inputs", Json::array({BinaryInput("age", "FP8", {1}, 1)})}};
  EXPECT_THAT(Error400(InferBinary(unsupported, "x")),
              HasSubstr("input 'age': unsupported datatype 'FP8'"));
}

}  // namespace
}  // namespace kiln::serving
