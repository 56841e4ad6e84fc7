#include "kiln/serving/webhook.h"

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <charconv>
#include <exception>
#include <optional>

#include "kiln/base/str.h"

namespace kiln::serving {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

absl::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(StrCat("URL '", url, "': ", why));
  };
  constexpr std::string_view kScheme = "http://";
  if (url.size() < kScheme.size() ||
      !std::equal(kScheme.begin(), kScheme.end(), url.begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      })) {
    return bad("only http:// URLs are supported");
  }
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find('#') != std::string_view::npos) return bad("has a fragment");
  const size_t path_at = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_at);
  HttpUrl out;
  if (path_at != std::string_view::npos) {
    out.target = std::string(rest.substr(path_at));
    if (out.target.front() == '?') out.target.insert(0, "/");
  }
  if (authority.find('@') != std::string_view::npos) return bad("has user info");
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("has an unclosed '['");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("has text after the ']'");
      port = after.substr(1);
      if (port.empty()) return bad("has an empty port");
    }
  } else {
    const size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return bad("has an empty port");
    }
  }
  if (out.host.empty()) return bad("has no host");
  for (char c : out.target) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return bad("has a space or control character");
    }
  }
  if (!port.empty()) {
    int n = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (ec != std::errc() || ptr != port.data() + port.size() || n < 1 || n > 65535) {
      return bad(StrCat("port '", port, "' is not 1..65535"));
    }
    out.port = std::to_string(n);
  }
  return out;
}

namespace {

// One request and its response (see HttpPostJson); a body only with POST.
absl::StatusOr<HttpResult> Exchange(http::verb verb, const std::string& url,
                                    const std::string& body, std::chrono::milliseconds timeout) {
  absl::StatusOr<HttpUrl> parsed = ParseHttpUrl(url);
  if (!parsed.ok()) return parsed.status();
  const HttpUrl& u = *parsed;
  try {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    tcp::socket socket(ioc);
    asio::steady_timer timer(ioc);

    http::request<http::string_body> request{verb, u.target, 11};
    const bool ipv6 = u.host.find(':') != std::string::npos;
    request.set(http::field::host, StrCat(ipv6 ? "[" : "", u.host, ipv6 ? "]" : "",
                                          u.port == "80" ? "" : ":", u.port == "80" ? "" : u.port));
    request.set(http::field::user_agent, "kiln");
    request.set(http::field::connection, "close");
    if (verb == http::verb::post) {
      request.set(http::field::content_type, "application/json");
      request.body() = body;
      request.prepare_payload();
    }

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> response;
    response.header_limit(16 << 10);
    response.body_limit(64 << 10);

    std::string stage = "resolving";
    beast::error_code error;
    bool done = false;
    bool timed_out = false;
    auto finish = [&](beast::error_code ec) {
      if (done) return;
      done = true;
      error = ec;
      timer.cancel();
      beast::error_code ignored;
      socket.close(ignored);
    };

    timer.expires_after(timeout);
    timer.async_wait([&](beast::error_code ec) {
      if (ec || done) return;
      timed_out = true;
      resolver.cancel();
      finish(asio::error::timed_out);
    });

    // Numeric hosts skip the resolver's lookup (it cannot be interrupted).
    beast::error_code numeric_ec;
    asio::ip::make_address(u.host, numeric_ec);
    const auto flags = numeric_ec ? tcp::resolver::flags() : tcp::resolver::numeric_host;
    resolver.async_resolve(
        u.host, u.port, flags,
        [&](beast::error_code ec, const tcp::resolver::results_type& endpoints) {
          if (done) return;
          if (ec) return finish(ec);
          stage = "connecting";
          asio::async_connect(socket, endpoints, [&](beast::error_code ec, const tcp::endpoint&) {
            if (done) return;
            if (ec) return finish(ec);
            stage = "sending";
            http::async_write(socket, request, [&](beast::error_code ec, size_t) {
              if (done) return;
              if (ec) return finish(ec);
              stage = "reading the response";
              http::async_read(socket, buffer, response,
                               [&](beast::error_code ec, size_t) { finish(ec); });
            });
          });
        });
    ioc.run();

    if (timed_out) {
      return absl::DeadlineExceededError(
          StrCat(url, ": no response within ", timeout.count(), " ms (", stage, ")"));
    }
    if (error) return absl::UnavailableError(StrCat(url, ": ", stage, ": ", error.message()));
    HttpResult result;
    result.status = static_cast<int>(response.get().result_int());
    result.reason = std::string(response.get().reason());
    result.body = std::move(response.get().body());
    return result;
  } catch (const std::exception& e) {
    return absl::InternalError(StrCat(url, ": ", e.what()));
  }
}

}  // namespace

absl::StatusOr<HttpResult> HttpPostJson(const std::string& url, const std::string& body,
                                        std::chrono::milliseconds timeout) {
  return Exchange(http::verb::post, url, body, timeout);
}

absl::StatusOr<HttpResult> HttpGet(const std::string& url, std::chrono::milliseconds timeout) {
  return Exchange(http::verb::get, url, "", timeout);
}

absl::Status PostJson(const std::string& url, const std::string& body,
                      std::chrono::milliseconds timeout) {
  absl::StatusOr<HttpResult> r = HttpPostJson(url, body, timeout);
  if (!r.ok()) return absl::Status(r.status().code(), StrCat("webhook ", r.status().message()));
  if (r->status >= 200 && r->status < 300) return absl::OkStatus();
  const std::string message = StrCat("webhook ", url, ": answered ", r->status, " ", r->reason);
  if (r->status >= 500 || r->status == 429) return absl::UnavailableError(message);
  return absl::FailedPreconditionError(message);
}

WebhookSender::WebhookSender(WebhookSenderOptions options) : options_(std::move(options)) {}

WebhookSender::~WebhookSender() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool WebhookSender::Enqueue(std::string url, std::string body) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() >= options_.max_queued) return false;
    queue_.push_back(Post{std::move(url), std::move(body)});
    // The thread starts with the first post: most servers configure no webhook.
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  }
  cv_.notify_all();
  return true;
}

void WebhookSender::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return stopping_ || (queue_.empty() && !busy_); });
}

void WebhookSender::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Post post = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    const absl::Status status = PostJson(post.url, post.body, options_.timeout);
    if (options_.on_done) options_.on_done(post.url, status);
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace kiln::serving
