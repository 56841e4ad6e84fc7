// The gRPC server over loopback with a real bundle (gbdt, trained here) and gRPC's own C++
// stub: readiness, metadata, inference with typed and raw contents against
// Predictor::Predict on the same rows, error statuses, metadata reaching the inference
// service and the authorizer, message limits, a taken port, and TLS.
#include "kiln/serving/grpc_server.h"

#include <grpcpp/grpcpp.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <bit>
#include <cstring>
#include <mutex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/build_info.h"
#include "kiln/base/str.h"
#include "kiln/serving/testing_people.h"
#include "kiln/testing/temp_dir.h"
#include "kserve/grpc_predict_v2.grpc.pb.h"
#include "tensorflow_serving/apis/model_service.grpc.pb.h"
#include "tensorflow_serving/apis/prediction_service.grpc.pb.h"

namespace kiln::serving {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Stub = inference::GRPCInferenceService::Stub;

// Remembers the sticky-routing header each Resolve saw.
class RecordingService : public InferenceService {
 public:
  using InferenceService::InferenceService;
  absl::StatusOr<Resolved> Resolve(const InferTarget& target) const override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      routing_keys_.push_back(target.header ? target.header("x-routing-key") : "<none>");
    }
    return InferenceService::Resolve(target);
  }
  std::vector<std::string> routing_keys() const {
    std::lock_guard<std::mutex> lock(mu_);
    return routing_keys_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::vector<std::string> routing_keys_;
};

using testing::kPeopleRows;
using testing::PeopleRow;

class GrpcServerTest : public testing::PeopleSuite {
 protected:
  void SetUp() override {
    ModelConfig model;
    model.name = "people";
    model.base_path = tmp_->File("models/people");
    model.labels = {{"stable", 1}};
    manager_.SetConfig(ServerConfig{{model}});
    auto p = manager_.Find("people");
    ASSERT_TRUE(p.ok()) << p.status();
    predictor_ = *p;
    ASSERT_EQ(predictor_->inputs(), (data::TableSchema{{"age", data::ValueType::kInt},
                                                       {"income", data::ValueType::kFloat},
                                                       {"city", data::ValueType::kString}}));
  }

  std::unique_ptr<GrpcServer> StartServer(GrpcServerOptions options = {}) {
    auto server = GrpcServer::Start(std::move(options), &service_);
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return nullptr;
    EXPECT_GT((*server)->port(), 0);
    return *std::move(server);
  }

  static std::unique_ptr<Stub> Connect(int port) {
    return inference::GRPCInferenceService::NewStub(
        grpc::CreateChannel(StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  // The rows as Predictor::Predict scores them.
  std::vector<float> Expected() const {
    std::vector<float> scores;
    EXPECT_TRUE(predictor_->Predict(testing::PeopleBatch(), &scores).ok());
    return scores;
  }

  static inference::ModelInferRequest TypedRequest() {
    inference::ModelInferRequest r;
    r.set_model_name("people");
    r.set_id("req-7");
    auto add = [&](const char* name, const char* datatype) {
      auto* in = r.add_inputs();
      in->set_name(name);
      in->set_datatype(datatype);
      in->add_shape(static_cast<int64_t>(kPeopleRows.size()));
      return in->mutable_contents();
    };
    auto* age = add("age", "INT64");
    auto* income = add("income", "FP64");
    auto* city = add("city", "BYTES");
    for (const PeopleRow& row : kPeopleRows) {
      age->add_int64_contents(row.age);
      income->add_fp64_contents(row.income);
      city->add_bytes_contents(row.city);
    }
    return r;
  }

  static inference::ModelInferRequest RawRequest() {
    inference::ModelInferRequest r;
    r.set_model_name("people");
    r.set_model_version("1");
    std::string ages, incomes, cities;
    auto put = [](std::string* out, uint64_t v, int bytes) {
      for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    for (const PeopleRow& row : kPeopleRows) {
      put(&ages, static_cast<uint64_t>(row.age), 8);
      put(&incomes, std::bit_cast<uint64_t>(row.income), 8);
      put(&cities, row.city.size(), 4);
      cities += row.city;
    }
    // In another order than the signature's, with [N, 1] shapes.
    for (const auto& [name, datatype, raw] :
         {std::tuple{"city", "BYTES", cities}, std::tuple{"income", "FP64", incomes},
          std::tuple{"age", "INT64", ages}}) {
      auto* in = r.add_inputs();
      in->set_name(name);
      in->set_datatype(datatype);
      in->add_shape(static_cast<int64_t>(kPeopleRows.size()));
      in->add_shape(1);
      r.add_raw_input_contents(raw);
    }
    return r;
  }

  static std::vector<float> Floats(const std::string& raw) {
    std::vector<float> out(raw.size() / 4);
    std::memcpy(out.data(), raw.data(), out.size() * 4);
    return out;
  }
  static std::vector<int64_t> Int64s(const std::string& raw) {
    std::vector<int64_t> out(raw.size() / 8);
    std::memcpy(out.data(), raw.data(), out.size() * 8);
    return out;
  }

  ModelManager manager_{Env::Default()};
  RecordingService service_{&manager_};
  std::shared_ptr<const train::Predictor> predictor_;
};

TEST_F(GrpcServerTest, LiveReadyAndServerMetadata) {
  auto server = StartServer();
  auto stub = Connect(server->port());
  {
    grpc::ClientContext c;
    inference::ServerLiveResponse r;
    ASSERT_TRUE(stub->ServerLive(&c, {}, &r).ok());
    EXPECT_TRUE(r.live());
  }
  {
    grpc::ClientContext c;
    inference::ServerReadyResponse r;
    ASSERT_TRUE(stub->ServerReady(&c, {}, &r).ok());
    EXPECT_TRUE(r.ready());
  }
  {
    grpc::ClientContext c;
    inference::ServerMetadataResponse r;
    ASSERT_TRUE(stub->ServerMetadata(&c, {}, &r).ok());
    EXPECT_EQ(r.name(), "kiln");
    EXPECT_EQ(r.version(), std::string(KilnVersion()));
  }
}

TEST_F(GrpcServerTest, ModelReadyIsFalseForAVersionNotServedAndAnErrorForAnUnknownModel) {
  auto server = StartServer();
  auto stub = Connect(server->port());
  auto ready = [&](const std::string& name, const std::string& version,
                   grpc::Status* status = nullptr) {
    grpc::ClientContext c;
    inference::ModelReadyRequest req;
    req.set_name(name);
    req.set_version(version);
    inference::ModelReadyResponse r;
    grpc::Status s = stub->ModelReady(&c, req, &r);
    if (status != nullptr) *status = s;
    EXPECT_EQ(s.ok(), status == nullptr) << s.error_message();
    return r.ready();
  };
  EXPECT_TRUE(ready("people", ""));
  EXPECT_TRUE(ready("people", "1"));
  EXPECT_FALSE(ready("people", "7"));
  grpc::Status s;
  ready("nope", "", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("no model 'nope'"));
  ready("people", "v1", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GrpcServerTest, ModelMetadataListsTheSignature) {
  auto server = StartServer();
  auto stub = Connect(server->port());
  grpc::ClientContext c;
  inference::ModelMetadataRequest req;
  req.set_name("people");
  inference::ModelMetadataResponse r;
  ASSERT_TRUE(stub->ModelMetadata(&c, req, &r).ok());
  EXPECT_EQ(r.name(), "people");
  EXPECT_THAT(r.versions(), ElementsAre("1"));
  EXPECT_EQ(r.platform(), "kiln_" + predictor_->manifest().backend);
  ASSERT_EQ(r.inputs_size(), 3);
  EXPECT_EQ(r.inputs(0).name(), "age");
  EXPECT_EQ(r.inputs(0).datatype(), "INT64");
  EXPECT_THAT(r.inputs(0).shape(), ElementsAre(-1));
  EXPECT_EQ(r.inputs(1).name(), "income");
  EXPECT_EQ(r.inputs(1).datatype(), "FP64");
  EXPECT_EQ(r.inputs(2).name(), "city");
  EXPECT_EQ(r.inputs(2).datatype(), "BYTES");
  ASSERT_EQ(r.outputs_size(), 2);
  EXPECT_EQ(r.outputs(0).name(), "scores");
  EXPECT_EQ(r.outputs(0).datatype(), "FP32");
  EXPECT_EQ(r.outputs(1).name(), "class_ids");
  EXPECT_EQ(r.outputs(1).datatype(), "INT64");

  grpc::ClientContext c2;
  req.set_version("3");
  EXPECT_EQ(stub->ModelMetadata(&c2, req, &r).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcServerTest, InferWithTypedAndRawContentsScoresAsThePredictor) {
  auto server = StartServer();
  auto stub = Connect(server->port());
  const std::vector<float> expected = Expected();
  ASSERT_EQ(expected.size(), kPeopleRows.size());
  std::vector<int64_t> expected_ids;
  for (float s : expected) expected_ids.push_back(s >= 0.5f ? 1 : 0);
  // The model learned the rule well enough to tell these rows apart.
  EXPECT_THAT(expected_ids, ElementsAre(0, 0, 1, 0));

  for (const inference::ModelInferRequest& req : {TypedRequest(), RawRequest()}) {
    grpc::ClientContext c;
    c.AddMetadata("x-routing-key", "user-42");
    inference::ModelInferResponse r;
    grpc::Status s = stub->ModelInfer(&c, req, &r);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(r.model_name(), "people");
    EXPECT_EQ(r.model_version(), "1");
    EXPECT_EQ(r.id(), req.id());
    ASSERT_EQ(r.outputs_size(), 2);
    ASSERT_EQ(r.raw_output_contents_size(), 2);
    EXPECT_EQ(r.outputs(0).name(), "scores");
    EXPECT_EQ(r.outputs(0).datatype(), "FP32");
    EXPECT_THAT(r.outputs(0).shape(), ElementsAre(4));
    EXPECT_EQ(Floats(r.raw_output_contents(0)), expected);
    EXPECT_EQ(r.outputs(1).name(), "class_ids");
    EXPECT_EQ(r.outputs(1).datatype(), "INT64");
    EXPECT_EQ(Int64s(r.raw_output_contents(1)), expected_ids);
  }
  // The client's metadata reached the inference service's routing.
  EXPECT_THAT(service_.routing_keys(), ElementsAre("user-42", "user-42"));

  // Only the outputs asked for.
  inference::ModelInferRequest req = TypedRequest();
  req.add_outputs()->set_name("class_ids");
  grpc::ClientContext c;
  inference::ModelInferResponse r;
  ASSERT_TRUE(stub->ModelInfer(&c, req, &r).ok());
  ASSERT_EQ(r.outputs_size(), 1);
  EXPECT_EQ(r.outputs(0).name(), "class_ids");
  EXPECT_EQ(Int64s(r.raw_output_contents(0)), expected_ids);
}

TEST_F(GrpcServerTest, BadRequestsGetTheMatchingStatus) {
  auto server = StartServer();
  auto stub = Connect(server->port());
  auto infer = [&](const inference::ModelInferRequest& req) {
    grpc::ClientContext c;
    inference::ModelInferResponse r;
    return stub->ModelInfer(&c, req, &r);
  };
  inference::ModelInferRequest req = TypedRequest();
  req.set_model_name("nope");
  grpc::Status s = infer(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("no model 'nope'"));

  req = TypedRequest();
  req.set_model_version("9");
  s = infer(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("no available version 9"));

  req = TypedRequest();
  req.mutable_inputs(1)->add_shape(2);
  s = infer(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "input 'income': shape [4, 2]; kiln takes [N] or [N, 1]");

  req = TypedRequest();
  req.mutable_inputs()->RemoveLast();
  s = infer(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "missing input 'city'; the model takes one tensor per input");

  req = RawRequest();
  req.mutable_raw_input_contents(1)->pop_back();
  s = infer(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "input 'income': shape [4, 1] of FP64 takes 32 bytes of raw contents, got 31");

  req = TypedRequest();
  req.add_outputs()->set_name("logits");
  s = infer(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("no output 'logits'"));
}

TEST_F(GrpcServerTest, TheAuthorizerSeesMetadataAndItsRefusalIsTheStatus) {
  GrpcServerOptions options;
  options.authorize = [](const std::function<std::string(std::string_view)>& metadata) {
    if (metadata("x-api-key") == "s3cret") return absl::OkStatus();
    return absl::UnauthenticatedError("a valid x-api-key is required");
  };
  auto server = StartServer(std::move(options));
  auto stub = Connect(server->port());
  {
    grpc::ClientContext c;
    inference::ModelInferResponse r;
    grpc::Status s = stub->ModelInfer(&c, TypedRequest(), &r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(s.error_message(), "a valid x-api-key is required");
  }
  {
    grpc::ClientContext c;
    c.AddMetadata("x-api-key", "wrong");
    inference::ModelMetadataRequest req;
    req.set_name("people");
    inference::ModelMetadataResponse r;
    EXPECT_EQ(stub->ModelMetadata(&c, req, &r).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext c;
    c.AddMetadata("x-api-key", "s3cret");
    inference::ModelInferResponse r;
    EXPECT_TRUE(stub->ModelInfer(&c, TypedRequest(), &r).ok());
  }
  {  // The probes stay open.
    grpc::ClientContext c;
    inference::ServerReadyResponse r;
    EXPECT_TRUE(stub->ServerReady(&c, {}, &r).ok());
  }
  EXPECT_THAT(service_.routing_keys(), ElementsAre(""));  // only the authorized call
}

TEST_F(GrpcServerTest, AMessageOverTheLimitIsRefusedAndTwoThreadsServe) {
  GrpcServerOptions options;
  options.max_message_bytes = 64 << 10;
  options.threads = 2;
  auto server = StartServer(std::move(options));
  auto stub = Connect(server->port());
  inference::ModelInferRequest req = TypedRequest();
  req.set_id(std::string(100 << 10, 'x'));
  grpc::ClientContext c;
  inference::ModelInferResponse r;
  EXPECT_EQ(stub->ModelInfer(&c, req, &r).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  grpc::ClientContext c2;
  EXPECT_TRUE(stub->ModelInfer(&c2, TypedRequest(), &r).ok());
}

TEST_F(GrpcServerTest, ATakenPortIsUnavailableAndShutdownIsIdempotent) {
  auto server = StartServer();
  GrpcServerOptions options;
  options.port = server->port();
  auto second = GrpcServer::Start(options, &service_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  options.port = 0;
  options.tls_cert_file = "/nonexistent/cert.pem";
  EXPECT_EQ(GrpcServer::Start(options, &service_).status().code(),
            absl::StatusCode::kInvalidArgument);
  server->Shutdown(std::chrono::milliseconds(100));
  server->Shutdown(std::chrono::milliseconds(100));
  auto stub = Connect(server->port());
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  inference::ServerLiveResponse r;
  EXPECT_EQ(stub->ServerLive(&c, {}, &r).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(GrpcServerTest, TfServingPredictScoresAsThePredictorAndHonoursLabels) {
  auto server = StartServer();
  auto channel =
      grpc::CreateChannel(StrCat("127.0.0.1:", server->port()), grpc::InsecureChannelCredentials());
  auto stub = tensorflow::serving::PredictionService::NewStub(channel);
  tensorflow::serving::PredictRequest req;
  req.mutable_model_spec()->set_name("people");
  req.mutable_model_spec()->set_version_label("stable");
  auto input = [&](const char* name, tensorflow::DataType dtype) {
    tensorflow::TensorProto& t = (*req.mutable_inputs())[name];
    t.set_dtype(dtype);
    t.mutable_tensor_shape()->add_dim()->set_size(static_cast<int64_t>(kPeopleRows.size()));
    return &t;
  };
  tensorflow::TensorProto* age = input("age", tensorflow::DT_INT64);
  tensorflow::TensorProto* income = input("income", tensorflow::DT_DOUBLE);
  tensorflow::TensorProto* city = input("city", tensorflow::DT_STRING);
  for (const PeopleRow& row : kPeopleRows) {
    age->add_int64_val(row.age);
    income->add_double_val(row.income);
    city->add_string_val(row.city);
  }
  {
    grpc::ClientContext c;
    c.AddMetadata("x-routing-key", "tf-client");
    tensorflow::serving::PredictResponse r;
    grpc::Status s = stub->Predict(&c, req, &r);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(r.model_spec().name(), "people");
    EXPECT_EQ(r.model_spec().version().value(), 1);
    EXPECT_EQ(r.model_spec().signature_name(), "serving_default");
    ASSERT_EQ(r.outputs().size(), 2u);
    const tensorflow::TensorProto& scores = r.outputs().at("scores");
    EXPECT_EQ(scores.dtype(), tensorflow::DT_FLOAT);
    EXPECT_EQ(std::vector<float>(scores.float_val().begin(), scores.float_val().end()), Expected());
    EXPECT_THAT(r.outputs().at("class_ids").int64_val(), ElementsAre(0, 0, 1, 0));
  }
  EXPECT_THAT(service_.routing_keys(), ElementsAre("tf-client"));
  {
    req.add_output_filter("class_ids");
    grpc::ClientContext c;
    tensorflow::serving::PredictResponse r;
    ASSERT_TRUE(stub->Predict(&c, req, &r).ok());
    EXPECT_EQ(r.outputs().size(), 1u);
    EXPECT_EQ(r.outputs().count("class_ids"), 1u);
  }
  auto status_of = [&](tensorflow::serving::PredictRequest bad) {
    grpc::ClientContext c;
    tensorflow::serving::PredictResponse r;
    return stub->Predict(&c, bad, &r);
  };
  tensorflow::serving::PredictRequest bad = req;
  bad.mutable_model_spec()->set_version_label("canary");
  EXPECT_EQ(status_of(bad).error_code(), grpc::StatusCode::NOT_FOUND);
  bad = req;
  bad.mutable_model_spec()->mutable_version()->set_value(4);
  EXPECT_EQ(status_of(bad).error_code(), grpc::StatusCode::NOT_FOUND);
  bad = req;
  bad.mutable_model_spec()->set_signature_name("classify");
  grpc::Status s = status_of(bad);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("unknown signature_name"));
  bad = req;
  (*bad.mutable_inputs())["income"].set_dtype(tensorflow::DT_STRING);
  s = status_of(bad);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "input 'income': expected a number (FP64, FP32, FP16, an integer type or BOOL), got "
            "BYTES");
}

TEST_F(GrpcServerTest, TfServingModelStatusListsTheVersions) {
  auto server = StartServer();
  auto stub = tensorflow::serving::ModelService::NewStub(grpc::CreateChannel(
      StrCat("127.0.0.1:", server->port()), grpc::InsecureChannelCredentials()));
  auto status = [&](tensorflow::serving::ModelSpec spec,
                    tensorflow::serving::GetModelStatusResponse* r) {
    grpc::ClientContext c;
    tensorflow::serving::GetModelStatusRequest req;
    *req.mutable_model_spec() = std::move(spec);
    return stub->GetModelStatus(&c, req, r);
  };
  tensorflow::serving::ModelSpec spec;
  spec.set_name("people");
  tensorflow::serving::GetModelStatusResponse r;
  ASSERT_TRUE(status(spec, &r).ok());
  ASSERT_EQ(r.model_version_status_size(), 1);
  EXPECT_EQ(r.model_version_status(0).version(), 1);
  EXPECT_EQ(r.model_version_status(0).state(), tensorflow::serving::ModelVersionStatus::AVAILABLE);
  EXPECT_EQ(r.model_version_status(0).status().error_code(), tensorflow::error::OK);
  spec.set_version_label("stable");
  r.Clear();
  ASSERT_TRUE(status(spec, &r).ok());
  EXPECT_EQ(r.model_version_status_size(), 1);
  spec.mutable_version()->set_value(2);
  grpc::Status s = status(spec, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "model 'people' has no version 2");
  spec.Clear();
  spec.set_name("nope");
  EXPECT_EQ(status(spec, &r).error_code(), grpc::StatusCode::NOT_FOUND);
}

// A self-signed certificate for "localhost" and its key, as PEM.
std::pair<std::string, std::string> SelfSignedCertificate() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "DNS:localhost");
  X509_add_ext(cert, san, -1);
  X509_EXTENSION_free(san);
  X509_sign(cert, key, EVP_sha256());
  auto pem = [](auto write) {
    BIO* bio = BIO_new(BIO_s_mem());
    write(bio);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string out(data, n);
    BIO_free(bio);
    return out;
  };
  std::string cert_pem = pem([&](BIO* b) { PEM_write_bio_X509(b, cert); });
  std::string key_pem =
      pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
  X509_free(cert);
  EVP_PKEY_free(key);
  return {cert_pem, key_pem};
}

TEST_F(GrpcServerTest, ServesTlsWhenGivenACertificateAndKey) {
  auto [cert, key] = SelfSignedCertificate();
  GrpcServerOptions options;
  options.tls_cert_file = tmp_->Write("tls/cert.pem", cert);
  options.tls_key_file = tmp_->Write("tls/key.pem", key);
  auto server = StartServer(std::move(options));
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = cert;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto stub = inference::GRPCInferenceService::NewStub(grpc::CreateCustomChannel(
      StrCat("127.0.0.1:", server->port()), grpc::SslCredentials(ssl), args));
  grpc::ClientContext c;
  inference::ModelInferResponse r;
  grpc::Status s = stub->ModelInfer(&c, TypedRequest(), &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Floats(r.raw_output_contents(0)), Expected());
  // A plaintext client gets nowhere.
  auto plain = Connect(server->port());
  grpc::ClientContext c2;
  c2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  inference::ServerLiveResponse live;
  EXPECT_EQ(plain->ServerLive(&c2, {}, &live).error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace kiln::serving
