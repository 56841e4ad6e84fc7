// An event-driven HTTP/1.1 server (Boost.Beast on an Asio io_context run by a few threads;
// no thread per connection): keep-alive, limits on header and body size and on open
// connections, read and write timeouts, optional TLS (HTTPS only, then), and a graceful
// shutdown that lets requests in flight finish. Boost and OpenSSL stay in this file's .cc;
// the handler sees plain HttpRequest / HttpResponse.
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
  // Per request, headers and body; also bounds the TLS handshake. Default 30 s.
  std::chrono::milliseconds read_timeout{30000};
  // Per response: a client that does not take it in time is disconnected. Default 30 s.
  std::chrono::milliseconds write_timeout{30000};
  int threads = 0;  // 0: the machine's cores
  // Open connections (idle keep-alive ones included). A connection beyond the limit is
  // accepted and closed at once, without a response: the client sees the connection
  // closed and may retry; those already open are unaffected. Default 1024.
  int max_connections = 1024;
  // PEM files: the certificate chain (leaf first) and its private key. Both set: the
  // server speaks HTTPS only (TLS 1.2 or newer; a plain HTTP request gets no answer, the
  // connection is closed). Both empty (default): plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
// A handler that may answer later, from any thread: it calls `reply` once (HttpReply,
// rest_api.h). It runs on a server thread, so it should hand slow work elsewhere (the
// batcher) rather than block. Should every copy of `reply` be dropped uncalled, the
// client gets a 500.
using AsyncHttpHandler = std::function<void(HttpRequest request, HttpReply reply)>;

class HttpServer {
 public:
  // Binds and starts serving. Errors: kInvalidArgument for a bad host, max_connections
  // < 1, only one of the TLS files, or a certificate or key that cannot be loaded (naming
  // the file; also when the key does not match the certificate); kUnavailable when the
  // address cannot be bound (e.g. the port is taken).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                           HttpHandler handler);
  static absl::StatusOr<std::unique_ptr<HttpServer>> StartAsync(HttpServerOptions options,
                                                                AsyncHttpHandler handler);
  ~HttpServer();  // Shutdown(0)
  int port() const;
  // Stops accepting; requests being handled finish (for up to `grace`), answered ones
  // included; then closes every connection and returns. An async handler's reply that
  // comes later is dropped, so whatever calls it must not outlive the server.
  void Shutdown(std::chrono::milliseconds grace);

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::serving

#endif  // KILN_SERVING_HTTP_SERVER_H_
