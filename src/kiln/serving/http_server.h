// An event-driven HTTP/1.1 server (Boost.Beast on an Asio io_context run by a few threads;
// no thread per connection): keep-alive, limits on header and body size, read timeouts,
// and a graceful shutdown that lets requests in flight finish. Boost stays in this file's
// .cc; the handler sees plain HttpRequest / HttpResponse.
#ifndef KILN_SERVING_HTTP_SERVER_H_
#define KILN_SERVING_HTTP_SERVER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "kiln/serving/rest_api.h"

namespace kiln::serving {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8501;  // 0: a free port (see HttpServer::port)
  size_t max_body_bytes = size_t{16} << 20;
  size_t max_header_bytes = size_t{16} << 10;
  std::chrono::milliseconds read_timeout{30000};  // per request, headers and body
  int threads = 0;                                // 0: the machine's cores
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  // Binds and starts serving. Errors: kInvalidArgument for a bad host, kUnavailable when
  // the address cannot be bound (e.g. the port is taken).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                           HttpHandler handler);
  ~HttpServer();  // Shutdown(0)
  int port() const;
  // Stops accepting; requests being handled finish (for up to `grace`); then closes every
  // connection and returns.
  void Shutdown(std::chrono::milliseconds grace);

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::serving

#endif  // KILN_SERVING_HTTP_SERVER_H_
