#include "kiln/serving/http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>
#include <vector>

#include "kiln/base/str.h"

namespace kiln::serving {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::atomic<int> in_flight{0};
  std::atomic<bool> stopping{false};
  bool stopped = false;

  void Accept();
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl* server)
      : stream_(std::move(socket)), server_(server) {}

  void Read() {
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    stream_.expires_after(server_->options.read_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || server_->stopping) {
      Close();
      return;
    }
    HttpResponse response;
    bool keep_alive = false;
    unsigned version = 11;
    if (ec == http::error::body_limit) {
      response = Json413();
    } else if (ec) {
      // A request that is not HTTP, or headers beyond the limit: answer once, then close.
      response.status = ec == http::error::header_limit ? 431 : 400;
      response.body = StrCat("{\"error\": \"malformed HTTP request: ", ec.message(), "\"}");
    } else {
      const auto& req = parser_->get();
      keep_alive = req.keep_alive();
      version = req.version();
      HttpRequest request;
      request.method = std::string(req.method_string());
      request.target = std::string(req.target());
      request.body = req.body();
      ++server_->in_flight;
      try {
        response = server_->handler(request);
      } catch (const std::exception& e) {
        response.status = 500;
        response.body = "{\"error\": \"internal error\"}";
      }
      --server_->in_flight;
    }
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response.status), version);
    res->set(http::field::server, "kiln");
    res->set(http::field::content_type, response.content_type);
    res->keep_alive(keep_alive && !server_->stopping);
    res->body() = std::move(response.body);
    res->prepare_payload();
    ++server_->in_flight;
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code wec, size_t) {
                        --self->server_->in_flight;
                        if (wec || !res->keep_alive()) {
                          self->Close();
                        } else {
                          self->Read();
                        }
                      });
  }

  static HttpResponse Json413() {
    HttpResponse r;
    r.status = 413;
    r.body = "{\"error\": \"the request body is larger than the server accepts\"}";
    return r;
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpServer::Impl* server_;
};

}  // namespace

void HttpServer::Impl::Accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping) return;
    } else {
      std::make_shared<Session>(std::move(socket), this)->Read();
    }
    Accept();
  });
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Shutdown(std::chrono::milliseconds(0)); }

int HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                              HttpHandler handler) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->handler = std::move(handler);
  beast::error_code ec;
  const auto address = asio::ip::make_address(impl->options.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        StrCat("'", impl->options.host, "' is not an IP address: ", ec.message()));
  }
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(impl->options.port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        StrCat("listening on ", impl->options.host, ":", impl->options.port, ": ", ec.message()));
  }
  impl->Accept();
  const int threads = impl->options.threads > 0
                          ? impl->options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  Impl* raw = impl.get();
  for (int i = 0; i < threads; ++i) {
    impl->threads.emplace_back([raw] { raw->ioc.run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Shutdown(std::chrono::milliseconds grace) {
  if (impl_->stopped) return;
  impl_->stopping = true;
  asio::post(impl_->ioc, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (impl_->in_flight > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  impl_->ioc.stop();
  for (std::thread& t : impl_->threads) t.join();
  impl_->stopped = true;
}

}  // namespace kiln::serving
