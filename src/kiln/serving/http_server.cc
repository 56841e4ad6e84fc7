#include "kiln/serving/http_server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::serving {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpServer::Impl {
  HttpServerOptions options;
  AsyncHttpHandler handler;
  // Declared before the io_contexts: sessions still queued in one when it is destroyed use
  // these from their destructors.
  std::atomic<int> connections{0};
  std::unique_ptr<ssl::context> tls;  // null: plain HTTP
  // One io_context per I/O thread, each run by its thread alone: a connection lives on one
  // of them, so its handlers never run concurrently and need no strand (whose locking
  // and reference counting cost more per request than the parsing). Connections are dealt
  // out round-robin. The work guards keep an idle context's thread waiting for its first
  // connection; Shutdown stops every context.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
  std::unique_ptr<tcp::acceptor> acceptor;  // on contexts[0]
  size_t next_context = 0;                  // only touched on contexts[0]'s thread
  std::vector<std::thread> threads;
  std::atomic<int> in_flight{0};
  std::atomic<bool> stopping{false};
  bool stopped = false;

  void Accept();
};

namespace {

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection: requests are read one after another (keep-alive) and each answered; it
// is closed on a read error, a timeout, "Connection: close" or shutdown. Over TLS the
// handshake comes first (bounded by the read timeout), and a connection closed by either
// side after a clean exchange gets a close_notify.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  template <class... StreamArgs>
  explicit Session(HttpServer::Impl* server, StreamArgs&&... args)
      : stream_(std::forward<StreamArgs>(args)...), server_(server) {
    ++server_->connections;
  }
  ~Session() { --server_->connections; }

  void Start() {
    if constexpr (kTls) {
      Lowest().expires_after(server_->options.read_timeout);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) {
                                  self->CloseSocket();  // not TLS, or too slow: no answer
                                  return;
                                }
                                self->tls_up_ = true;
                                self->Read();
                              });
    } else {
      Read();
    }
  }

 private:
  void Read() {
    // Room for a whole typical request, so it arrives in one read instead of 512-byte
    // pieces (Beast reads what the buffer's free capacity holds, at least 512 bytes).
    buffer_.reserve(kReadBufferBytes);
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    Lowest().expires_after(server_->options.read_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream) {
      Close();
      return;
    }
    if (ec == beast::error::timeout || ec == asio::error::operation_aborted || server_->stopping) {
      CloseSocket();
      return;
    }
    if constexpr (kTls) {
      // The TLS layer failed (a truncated stream, a bad record): there is no channel left
      // to answer on.
      if (ec == ssl::error::stream_truncated || ec.category() == asio::error::get_ssl_category()) {
        CloseSocket();
        return;
      }
    }
    bool keep_alive = false;
    unsigned version = 11;
    ++server_->in_flight;  // until the response is written
    if (ec) {
      HttpResponse response;
      if (ec == http::error::body_limit) {
        response = Json413();
      } else {
        // A request that is not HTTP, or headers beyond the limit: answer once, then close.
        response.status = ec == http::error::header_limit ? 431 : 400;
        response.body = StrCat("{\"error\": \"malformed HTTP request: \", ec.message(), \"\"}");
      }
      Write(std::move(response), keep_alive, version);
      return;
    }
    auto& req = parser_->get();
    keep_alive = req.keep_alive();
    version = req.version();
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.body = std::move(req.body());
    for (const auto& field : req) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    auto answer = std::make_shared<Answer>(this->shared_from_this(), keep_alive, version);
    HttpReply reply = [answer](HttpResponse r) { answer->Send(std::move(r)); };
    try {
      server_->handler(std::move(request), reply);
    } catch (const std::exception& e) {
      answer->Send(InternalError());
    }
  }

  // One request's answer. The handler may give it on any thread; the write runs on the
  // session's I/O thread. Only the first answer counts; dropped unanswered, it is a 500.
  class Answer {
   public:
    Answer(std::shared_ptr<Session> session, bool keep_alive, unsigned version)
        : session_(std::move(session)), keep_alive_(keep_alive), version_(version) {}
    ~Answer() { Send(InternalError()); }
    void Send(HttpResponse response) {
      if (sent_.exchange(true)) return;
      Session* s = session_.get();
      asio::dispatch(s->stream_.get_executor(),
                     [self = std::move(session_), response = std::move(response),
                      keep_alive = keep_alive_, version = version_]() mutable {
                       self->Write(std::move(response), keep_alive, version);
                     });
    }

   private:
    std::shared_ptr<Session> session_;
    const bool keep_alive_;
    const unsigned version_;
    std::atomic<bool> sent_{false};
  };

  // Sends `response`; then reads the next request, or closes.
  void Write(HttpResponse response, bool keep_alive, unsigned version) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response.status), version);
    res->set(http::field::server, "kiln");
    res->set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) res->set(name, value);
    res->keep_alive(keep_alive && !server_->stopping);
    res->body() = std::move(response.body);
    res->prepare_payload();
    Lowest().expires_after(server_->options.write_timeout);
    http::async_write(stream_, *res,
                      [self = this->shared_from_this(), res](beast::error_code wec, size_t) {
                        --self->server_->in_flight;
                        if (wec) {
                          self->CloseSocket();
                        } else if (!res->keep_alive()) {
                          self->Close();
                        } else {
                          self->Read();
                        }
                      });
  }

  static HttpResponse InternalError() {
    HttpResponse r;
    r.status = 500;
    r.body = "{\"error\": \"internal error\"}";
    return r;
  }

  static HttpResponse Json413() {
    HttpResponse r;
    r.status = 413;
    r.body = "{\"error\": \"the request body is larger than the server accepts\"}";
    return r;
  }

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  // A clean close: over TLS, close_notify first (for up to the write timeout).
  void Close() {
    if constexpr (kTls) {
      if (tls_up_) {
        tls_up_ = false;
        Lowest().expires_after(server_->options.write_timeout);
        stream_.async_shutdown(
            [self = this->shared_from_this()](beast::error_code) { self->CloseSocket(); });
        return;
      }
    }
    CloseSocket();
  }

  void CloseSocket() {
    beast::error_code ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    Lowest().socket().close(ec);
  }

  static constexpr size_t kReadBufferBytes = 16 << 10;

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpServer::Impl* server_;
  bool tls_up_ = false;  // the handshake completed and no close_notify was sent yet
};

// The reason OpenSSL gives for `ec`, or the system's.
std::string Describe(const beast::error_code& ec) {
  std::string m = ec.message();
  ERR_clear_error();
  return m;
}

absl::Status CheckReadable(std::string_view what, const std::string& path) {
  if (::access(path.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(StrCat(what, " '", path, "': ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// A TLS 1.2+ server context with the certificate chain and key of `o`.
absl::StatusOr<std::unique_ptr<ssl::context>> MakeTlsContext(const HttpServerOptions& o) {
  KILN_RETURN_IF_ERROR(CheckReadable("TLS certificate file", o.tls_cert_file));
  KILN_RETURN_IF_ERROR(CheckReadable("TLS key file", o.tls_key_file));
  try {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                     ssl::context::single_dh_use);
    if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1) {
      return absl::InternalError("cannot require TLS 1.2");
    }
    beast::error_code ec;
    ctx->use_certificate_chain_file(o.tls_cert_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(StrCat("TLS certificate file '", o.tls_cert_file,
                                               "': not a PEM certificate (", Describe(ec), ")"));
    }
    ctx->use_private_key_file(o.tls_key_file, ssl::context::pem, ec);
    const auto mismatch = [&o] {
      ERR_clear_error();
      return absl::InvalidArgumentError(StrCat("TLS key file '", o.tls_key_file,
                                               "' does not match the certificate in '",
                                               o.tls_cert_file, "'"));
    };
    if (ec && ec.category() == asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
      return mismatch();
    }
    if (ec) {
      return absl::InvalidArgumentError(StrCat("TLS key file '", o.tls_key_file,
                                               "': not a PEM private key (", Describe(ec), ")"));
    }
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) return mismatch();
    return ctx;
  } catch (const boost::system::system_error& e) {
    ERR_clear_error();
    return absl::InternalError(StrCat("setting up TLS: ", e.what()));
  }
}

}  // namespace

void HttpServer::Impl::Accept() {
  asio::io_context& context = *contexts[next_context++ % contexts.size()];
  acceptor->async_accept(context, [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping) return;
    } else if (connections >= options.max_connections) {
      // Over the limit: closed before anything is read (closing with unread data could
      // reset the connection under a response anyway).
      socket.close(ec);
    } else if (tls) {
      std::make_shared<Session<TlsStream>>(this, std::move(socket), *tls)->Start();
    } else {
      std::make_shared<Session<PlainStream>>(this, std::move(socket))->Start();
    }
    Accept();
  });
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Shutdown(std::chrono::milliseconds(0)); }

int HttpServer::port() const { return impl_->acceptor->local_endpoint().port(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                              HttpHandler handler) {
  return StartAsync(std::move(options),
                    [handler = std::move(handler)](HttpRequest request, HttpReply reply) {
                      reply(handler(request));
                    });
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::StartAsync(HttpServerOptions options,
                                                                   AsyncHttpHandler handler) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->handler = std::move(handler);
  const HttpServerOptions& o = impl->options;
  if (o.max_connections < 1) {
    return absl::InvalidArgumentError(
        StrCat("max_connections must be at least 1, not ", o.max_connections));
  }
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both a certificate file and a key file (or neither, for plain HTTP)");
  }
  if (!o.tls_cert_file.empty()) {
    KILN_ASSIGN_OR_RETURN(impl->tls, MakeTlsContext(o));
  }
  beast::error_code ec;
  const auto address = asio::ip::make_address(o.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        StrCat("'", o.host, "' is not an IP address: ", ec.message()));
  }
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(o.port));
  const int threads = o.threads > 0 ? o.threads : NumCpus();
  for (int i = 0; i < threads; ++i) {
    // Run by one thread; locking stays on, since answers are posted from other threads.
    impl->contexts.push_back(std::make_unique<asio::io_context>(1));
    impl->keep_running.push_back(asio::make_work_guard(*impl->contexts.back()));
  }
  impl->acceptor = std::make_unique<tcp::acceptor>(*impl->contexts[0]);
  tcp::acceptor& acceptor = *impl->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(StrCat("listening on ", o.host, ":", o.port, ": ", ec.message()));
  }
  impl->Accept();
  for (auto& context : impl->contexts) {
    impl->threads.emplace_back([c = context.get()] { c->run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Shutdown(std::chrono::milliseconds grace) {
  if (impl_->stopped) return;
  impl_->stopping = true;
  asio::post(*impl_->contexts[0], [this] {
    beast::error_code ec;
    impl_->acceptor->close(ec);
  });
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (impl_->in_flight > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& context : impl_->contexts) context->stop();
  for (std::thread& t : impl_->threads) t.join();
  impl_->stopped = true;
}

}  // namespace kiln::serving
