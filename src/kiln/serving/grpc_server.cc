#include "kiln/serving/grpc_server.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <climits>
#include <exception>
#include <mutex>
#include <optional>

#include "kiln/base/build_info.h"
#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/serving/model_config.h"
#include "kiln/serving/rest_api.h"
#include "kiln/serving/tensors.h"
#include "kserve/grpc_predict_v2.grpc.pb.h"
#include "tensorflow_serving/apis/model_service.grpc.pb.h"
#include "tensorflow_serving/apis/prediction_service.grpc.pb.h"

namespace kiln::serving {
namespace {

using Authorize = decltype(GrpcServerOptions::authorize);

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // absl::StatusCode and grpc::StatusCode number the codes alike.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// The client's metadata value for a lowercase name (gRPC lowercases keys); empty when
// absent.
std::function<std::string(std::string_view)> MetadataLookup(const grpc::ServerContext* context) {
  return [context](std::string_view name) -> std::string {
    const auto& metadata = context->client_metadata();
    auto it = metadata.find(grpc::string_ref(name.data(), name.size()));
    if (it == metadata.end()) return "";
    return std::string(it->second.data(), it->second.size());
  };
}

// A version field: empty for none, else digits.
absl::StatusOr<std::optional<int64_t>> OptionalVersion(const std::string& text) {
  if (text.empty()) return std::nullopt;
  KILN_ASSIGN_OR_RETURN(int64_t v, ParseVersion(text));
  return v;
}

// What every RPC shares: the inference service, and the authorizer run before it.
class RpcRunner {
 public:
  RpcRunner(const InferenceService* service, Authorize authorize)
      : service_(service), authorize_(std::move(authorize)) {}

  const InferenceService& service() const { return *service_; }
  const ModelManager& manager() const { return service_->manager(); }

  // Authorizes (unless `open`) and runs `body`; an exception from a library becomes
  // kInternal rather than ending the server.
  template <typename Body>
  grpc::Status Call(grpc::ServerContext* context, bool open, Body body) const {
    try {
      if (!open && authorize_) {
        if (absl::Status st = authorize_(MetadataLookup(context)); !st.ok()) return ToGrpc(st);
      }
      return ToGrpc(body());
    } catch (const std::exception& e) {
      return grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
  }

 private:
  const InferenceService* service_;
  Authorize authorize_;
};

// KServe's v2 protocol.
class KserveService final : public inference::GRPCInferenceService::Service {
 public:
  explicit KserveService(const RpcRunner* handler) : h_(handler) {}

  grpc::Status ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* response) override {
    response->set_live(true);
    return grpc::Status::OK;
  }

  grpc::Status ServerReady(grpc::ServerContext* context, const inference::ServerReadyRequest*,
                           inference::ServerReadyResponse* response) override {
    return h_->Call(context, /*open=*/true, [&]() -> absl::Status {
      bool ready = true;
      for (const std::string& name : manager().Models()) ready = ready && manager().Find(name).ok();
      response->set_ready(ready);
      return absl::OkStatus();
    });
  }

  grpc::Status ModelReady(grpc::ServerContext* context, const inference::ModelReadyRequest* request,
                          inference::ModelReadyResponse* response) override {
    return h_->Call(context, /*open=*/false, [&]() -> absl::Status {
      KILN_RETURN_IF_ERROR(ValidateName("model name", request->name()));
      KILN_ASSIGN_OR_RETURN(std::optional<int64_t> version, OptionalVersion(request->version()));
      auto found = manager().FindVersion(request->name(), version);
      // An unknown model is an error; a known one without that version is not ready.
      if (!found.ok() && !manager().Status(request->name()).ok()) return found.status();
      response->set_ready(found.ok());
      return absl::OkStatus();
    });
  }

  grpc::Status ServerMetadata(grpc::ServerContext* context, const inference::ServerMetadataRequest*,
                              inference::ServerMetadataResponse* response) override {
    return h_->Call(context, /*open=*/false, [&]() -> absl::Status {
      response->set_name("kiln");
      response->set_version(std::string(KilnVersion()));
      return absl::OkStatus();
    });
  }

  grpc::Status ModelMetadata(grpc::ServerContext* context,
                             const inference::ModelMetadataRequest* request,
                             inference::ModelMetadataResponse* response) override {
    return h_->Call(context, /*open=*/false, [&]() -> absl::Status {
      KILN_RETURN_IF_ERROR(ValidateName("model name", request->name()));
      KILN_ASSIGN_OR_RETURN(std::optional<int64_t> version, OptionalVersion(request->version()));
      KILN_ASSIGN_OR_RETURN(ModelManager::Found found,
                            manager().FindVersion(request->name(), version));
      response->set_name(request->name());
      KILN_ASSIGN_OR_RETURN(std::vector<VersionStatus> versions, manager().Status(request->name()));
      for (const VersionStatus& s : versions) {
        if (s.state == VersionState::kAvailable) response->add_versions(StrCat(s.version));
      }
      const model::BundleManifest& manifest = found.predictor->manifest();
      response->set_platform(StrCat("kiln_", manifest.backend));
      auto add = [](const nlohmann::json& list, auto* out) {
        for (const TensorMetadata& t : SignatureTensors(list)) {
          inference::ModelMetadataResponse::TensorMetadata* m = out->Add();
          m->set_name(t.name);
          m->set_datatype(t.datatype);
          for (int64_t d : t.shape) m->add_shape(d);
        }
      };
      add(manifest.signature.value("inputs", nlohmann::json::array()), response->mutable_inputs());
      add(manifest.signature.value("outputs", nlohmann::json::array()),
          response->mutable_outputs());
      return absl::OkStatus();
    });
  }

  grpc::Status ModelInfer(grpc::ServerContext* context, const inference::ModelInferRequest* request,
                          inference::ModelInferResponse* response) override {
    return h_->Call(context, /*open=*/false, [&]() -> absl::Status {
      KILN_RETURN_IF_ERROR(ValidateName("model name", request->model_name()));
      KILN_ASSIGN_OR_RETURN(std::optional<int64_t> version,
                            OptionalVersion(request->model_version()));
      KILN_ASSIGN_OR_RETURN(
          Resolved resolved,
          h_->service().Resolve({request->model_name(), version, "", MetadataLookup(context)}));
      KILN_ASSIGN_OR_RETURN(std::vector<InputTensor> tensors, InputsFromProto(*request));
      KILN_ASSIGN_OR_RETURN(data::Batch batch,
                            TensorsToBatch(tensors, resolved.predictor->inputs()));
      std::vector<float> scores;
      KILN_RETURN_IF_ERROR(h_->service().Run(resolved, batch, &scores));
      std::vector<std::string> wanted;
      for (const auto& o : request->outputs()) wanted.push_back(o.name());
      KILN_ASSIGN_OR_RETURN(
          std::vector<OutputTensor> outputs,
          SelectOutputs(OutputTensors(resolved.predictor->task(), scores, batch.num_rows), wanted));
      response->set_model_name(request->model_name());
      response->set_model_version(StrCat(resolved.version));
      response->set_id(request->id());
      OutputsToProto(outputs, response);
      return absl::OkStatus();
    });
  }

 private:
  const ModelManager& manager() const { return h_->manager(); }
  const RpcRunner* h_;
};

// TF Serving's PredictionService (Predict) and ModelService (GetModelStatus).
class PredictionService final : public tensorflow::serving::PredictionService::Service {
 public:
  explicit PredictionService(const RpcRunner* handler) : h_(handler) {}

  grpc::Status Predict(grpc::ServerContext* context,
                       const tensorflow::serving::PredictRequest* request,
                       tensorflow::serving::PredictResponse* response) override {
    return h_->Call(context, /*open=*/false, [&]() -> absl::Status {
      const tensorflow::serving::ModelSpec& spec = request->model_spec();
      if (!spec.signature_name().empty() && spec.signature_name() != "serving_default") {
        return absl::InvalidArgumentError(
            "unknown signature_name; kiln models have one signature, serving_default");
      }
      KILN_ASSIGN_OR_RETURN(InferTarget target, Target(spec));
      target.header = MetadataLookup(context);
      KILN_ASSIGN_OR_RETURN(Resolved resolved, h_->service().Resolve(target));
      KILN_ASSIGN_OR_RETURN(std::vector<InputTensor> tensors, InputsFromPredictRequest(*request));
      KILN_ASSIGN_OR_RETURN(data::Batch batch,
                            TensorsToBatch(tensors, resolved.predictor->inputs()));
      std::vector<float> scores;
      KILN_RETURN_IF_ERROR(h_->service().Run(resolved, batch, &scores));
      std::vector<std::string> wanted(request->output_filter().begin(),
                                      request->output_filter().end());
      KILN_ASSIGN_OR_RETURN(
          std::vector<OutputTensor> outputs,
          SelectOutputs(OutputTensors(resolved.predictor->task(), scores, batch.num_rows), wanted));
      tensorflow::serving::ModelSpec* answered = response->mutable_model_spec();
      answered->set_name(resolved.model);
      answered->mutable_version()->set_value(resolved.version);
      answered->set_signature_name("serving_default");
      for (const OutputTensor& t : outputs) {
        OutputToTensorProto(t, &(*response->mutable_outputs())[t.name]);
      }
      return absl::OkStatus();
    });
  }

  // The model, and the version or label, a ModelSpec names.
  static absl::StatusOr<InferTarget> Target(const tensorflow::serving::ModelSpec& spec) {
    KILN_RETURN_IF_ERROR(ValidateName("model name", spec.name()));
    InferTarget target;
    target.model = spec.name();
    if (spec.has_version()) target.version = spec.version().value();
    if (!spec.version_label().empty()) {
      KILN_RETURN_IF_ERROR(ValidateName("label", spec.version_label()));
      target.label = spec.version_label();
    }
    return target;
  }

 private:
  const RpcRunner* h_;
};

class ModelService final : public tensorflow::serving::ModelService::Service {
 public:
  explicit ModelService(const RpcRunner* handler) : h_(handler) {}

  grpc::Status GetModelStatus(grpc::ServerContext* context,
                              const tensorflow::serving::GetModelStatusRequest* request,
                              tensorflow::serving::GetModelStatusResponse* response) override {
    return h_->Call(context, /*open=*/false, [&]() -> absl::Status {
      KILN_ASSIGN_OR_RETURN(InferTarget target, PredictionService::Target(request->model_spec()));
      const ModelManager& m = h_->manager();
      KILN_ASSIGN_OR_RETURN(std::vector<VersionStatus> versions, m.Status(target.model));
      std::optional<int64_t> only = target.version;
      if (!target.label.empty()) {
        KILN_ASSIGN_OR_RETURN(only, m.LabelVersion(target.model, target.label));
      }
      for (const VersionStatus& v : versions) {
        if (only && v.version != *only) continue;
        tensorflow::serving::ModelVersionStatus* out = response->add_model_version_status();
        out->set_version(v.version);
        // VersionState has ModelVersionStatus.State's numbers.
        out->set_state(
            static_cast<tensorflow::serving::ModelVersionStatus::State>(static_cast<int>(v.state)));
        out->mutable_status()->set_error_code(
            static_cast<tensorflow::error::Code>(static_cast<int>(v.error.code())));
        out->mutable_status()->set_error_message(std::string(v.error.message()));
      }
      if (only && response->model_version_status_size() == 0) {
        return absl::NotFoundError(StrCat("model '", target.model, "' has no version ", *only));
      }
      return absl::OkStatus();
    });
  }

 private:
  const RpcRunner* h_;
};

std::string ListenAddress(const std::string& host, int port) {
  // An IPv6 literal needs brackets before the port.
  if (host.find(':') != std::string::npos && host.front() != '[') {
    return StrCat("[", host, "]:", port);
  }
  return StrCat(host, ":", port);
}

}  // namespace

struct GrpcServer::Impl {
  Impl(const InferenceService* service, Authorize authorize)
      : handler(service, std::move(authorize)),
        kserve(&handler),
        prediction(&handler),
        models(&handler) {}
  RpcRunner handler;
  KserveService kserve;
  PredictionService prediction;
  ModelService models;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::once_flag shutdown;
};

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcServer::~GrpcServer() { Shutdown(std::chrono::milliseconds(0)); }

int GrpcServer::port() const { return impl_->port; }

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(GrpcServerOptions options,
                                                              const InferenceService* service) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "gRPC TLS needs both a certificate and a key file, or neither");
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!options.tls_cert_file.empty()) {
    KILN_ASSIGN_OR_RETURN(std::string cert,
                          ReadFileToString(Env::Default(), options.tls_cert_file));
    KILN_ASSIGN_OR_RETURN(std::string key, ReadFileToString(Env::Default(), options.tls_key_file));
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({std::move(key), std::move(cert)});
    credentials = grpc::SslServerCredentials(ssl);
  }
  auto impl = std::make_unique<Impl>(service, std::move(options.authorize));
  const std::string address = ListenAddress(options.host, options.port);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, credentials, &impl->port);
  builder.RegisterService(&impl->kserve);
  builder.RegisterService(&impl->prediction);
  builder.RegisterService(&impl->models);
  const int max_bytes = static_cast<int>(std::min<size_t>(options.max_message_bytes, INT_MAX));
  builder.SetMaxReceiveMessageSize(max_bytes);
  builder.SetMaxSendMessageSize(max_bytes);
  // Without this, Linux lets a second server bind a port already taken (SO_REUSEPORT).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (options.threads > 0) {
    grpc::ResourceQuota quota("kiln_grpc");
    quota.SetMaxThreads(options.threads);
    builder.SetResourceQuota(quota);
  }
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(
        StrCat("cannot serve gRPC on ", address, " (a bad address, or the port is taken)"));
  }
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

void GrpcServer::Shutdown(std::chrono::milliseconds grace) {
  std::call_once(impl_->shutdown, [&] {
    impl_->server->Shutdown(std::chrono::system_clock::now() + grace);
    impl_->server->Wait();
  });
}

}  // namespace kiln::serving
