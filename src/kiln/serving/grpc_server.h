// The gRPC side of `kiln serve`, on one port and on the same InferenceService as the REST
// APIs (so routing, batching and accounting are the same whichever protocol a client
// speaks):
// - KServe's v2 inference protocol, inference.GRPCInferenceService: ServerLive,
//   ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer. Outputs are
//   answered in raw_output_contents, as Triton answers.
// - TF Serving's tensorflow.serving.PredictionService/Predict (a ModelSpec's version or
//   version_label is honoured) and tensorflow.serving.ModelService/GetModelStatus.
// Tensors map to rows and back as tensors.h says.
//
// Errors are the RPC's status, with the absl code's number (absl and gRPC share them):
// kNotFound for an unknown model, version or label, kInvalidArgument for a bad request,
// kUnavailable for a model without a version yet. gRPC stays in this file's .cc.
//
// Thread safety: the RPCs run on gRPC's threads; Shutdown may be called from any thread.
#ifndef KILN_SERVING_GRPC_SERVER_H_
#define KILN_SERVING_GRPC_SERVER_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "kiln/serving/inference.h"

namespace kiln::serving {

struct GrpcServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: a free port (see GrpcServer::port)
  // The largest request or response message. Default 16 MiB (REST's body limit); larger
  // requests are refused with kResourceExhausted.
  size_t max_message_bytes = size_t{16} << 20;
  int threads = 0;  // the most RPCs served at once; 0: gRPC's default
  // PEM files. Both set: TLS (grpc::SslServerCredentials); neither: plaintext. Default:
  // neither.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Called before each RPC but ServerLive and ServerReady (the probes, open as REST's
  // /v2/health/* are) with a lookup of the client's metadata by lowercase name (empty when
  // absent). A non-OK status is the RPC's answer. Called from gRPC's threads, several at
  // once. Default: every RPC is allowed.
  std::function<absl::Status(const std::function<std::string(std::string_view)>& metadata)>
      authorize;
};

class GrpcServer {
 public:
  // Binds and starts serving; `service` must outlive the server. Errors: kInvalidArgument
  // for only one of the TLS files; the file system's error for a TLS file that cannot be
  // read; kUnavailable when the address cannot be bound (a bad host, a taken port).
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(GrpcServerOptions options,
                                                           const InferenceService* service);
  ~GrpcServer();  // Shutdown(0)
  int port() const;
  // Stops accepting RPCs; those in flight finish for up to `grace`, then are cancelled.
  // Returns once every RPC is done. Later calls do nothing.
  void Shutdown(std::chrono::milliseconds grace);

  struct Impl;

 private:
  explicit GrpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::serving

#endif  // KILN_SERVING_GRPC_SERVER_H_
