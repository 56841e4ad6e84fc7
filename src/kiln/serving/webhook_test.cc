#include "kiln/serving/webhook.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"

namespace kiln::serving {
namespace {

using ::testing::HasSubstr;
using Ms = std::chrono::milliseconds;

// A one-connection-at-a-time HTTP endpoint on 127.0.0.1 written on raw sockets, so that the
// client is tested against bytes it did not produce itself. Each connection: read one
// request (headers and a Content-Length body), record it, optionally wait for Release(),
// answer `response` (or, with `respond` false, say nothing until destroyed) and close.
class RawServer {
 public:
  explicit RawServer(std::string response, bool respond = true, bool gated = false)
      : response_(std::move(response)), respond_(respond), gated_(gated) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~RawServer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    close(fd_);
  }

  int port() const { return port_; }
  std::string url(std::string_view path = "/alert") const {
    return StrCat("http://127.0.0.1:", port_, path);
  }

  // Waits (up to 10 s) until `n` requests have arrived; returns those received.
  std::vector<std::string> WaitForRequests(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return requests_.size() >= n; });
    return requests_;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }

 private:
  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }

  void Serve() {
    while (!Stopping()) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const int conn = accept(fd_, nullptr, nullptr);
      if (conn < 0) continue;
      std::string request = ReadRequest(conn);
      {
        std::unique_lock<std::mutex> lock(mu_);
        requests_.push_back(request);
        cv_.notify_all();
        if (gated_) cv_.wait(lock, [&] { return released_ || stop_; });
        if (!respond_) cv_.wait(lock, [&] { return stop_; });
      }
      if (respond_) (void)!write(conn, response_.data(), response_.size());
      close(conn);
    }
  }

  // Reads headers and a Content-Length body, for up to 5 s.
  std::string ReadRequest(int conn) {
    std::string data;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      const size_t end = data.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        const size_t at = data.find("Content-Length: ");
        if (at != std::string::npos && at < end) length = std::stoul(data.substr(at + 16));
        if (data.size() >= end + 4 + length) return data;
      }
      pollfd p{conn, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(conn, buf, sizeof(buf));
      if (n <= 0) break;
      data.append(buf, static_cast<size_t>(n));
    }
    return data;
  }

  const std::string response_;
  const bool respond_;
  const bool gated_;
  int fd_ = -1;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> requests_;  // guarded by mu_
  bool released_ = false;              // guarded by mu_
  bool stop_ = false;                  // guarded by mu_
  std::thread thread_;
};

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

std::string Body(const std::string& request) {
  const size_t at = request.find("\r\n\r\n");
  return at == std::string::npos ? "" : request.substr(at + 4);
}

TEST(ParseHttpUrlTest, Parts) {
  EXPECT_EQ(*ParseHttpUrl("http://127.0.0.1:9000/alert?x=1"),
            (HttpUrl{"127.0.0.1", "9000", "/alert?x=1"}));
  EXPECT_EQ(*ParseHttpUrl("HTTP://alerts.local"), (HttpUrl{"alerts.local", "80", "/"}));
  EXPECT_EQ(*ParseHttpUrl("http://[::1]:81/a"), (HttpUrl{"::1", "81", "/a"}));
  EXPECT_EQ(*ParseHttpUrl("http://h?q"), (HttpUrl{"h", "80", "/?q"}));
  const std::pair<const char*, const char*> bad[] = {
      {"https://h/x", "only http:// URLs are supported"},
      {"ftp://h", "only http://"},
      {"http://", "has no host"},
      {"http://:80/x", "has no host"},
      {"http://h:0/", "port '0' is not 1..65535"},
      {"http://h:70000/", "port '70000' is not 1..65535"},
      {"http://h:8x/", "port '8x' is not"},
      {"http://h:/", "has an empty port"},
      {"http://u:p@h/", "has user info"},
      {"http://h/#top", "has a fragment"},
      {"http://h/a b", "has a space or control character"},
      {"http://[::1/", "unclosed '['"},
  };
  for (const auto& [url, message] : bad) {
    absl::StatusOr<HttpUrl> u = ParseHttpUrl(url);
    EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_THAT(std::string(u.status().message()), HasSubstr(message)) << url;
  }
}

TEST(PostJsonTest, PostsTheBody) {
  RawServer server(kOk);
  const std::string body = R"({"event":"kiln.rollback","model":"clicks"})";
  ASSERT_TRUE(PostJson(server.url("/hooks/a?k=v"), body, Ms(5000)).ok());
  std::vector<std::string> got = server.WaitForRequests(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].rfind("POST /hooks/a?k=v HTTP/1.1\r\n", 0), 0u) << got[0];
  EXPECT_THAT(got[0], HasSubstr(StrCat("Host: 127.0.0.1:", server.port(), "\r\n")));
  EXPECT_THAT(got[0], HasSubstr("Content-Type: application/json\r\n"));
  EXPECT_THAT(got[0], HasSubstr(StrCat("Content-Length: ", body.size(), "\r\n")));
  EXPECT_EQ(Body(got[0]), body);
}

TEST(PostJsonTest, ErrorStatusesByWhatTheCallerShouldDo) {
  {
    RawServer server("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    absl::Status s = PostJson(server.url(), "{}", Ms(5000));
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(std::string(s.message()), HasSubstr("answered 503 Service Unavailable"));
  }
  {
    RawServer server("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    absl::Status s = PostJson(server.url(), "{}", Ms(5000));
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(s.message()), HasSubstr("answered 404 Not Found"));
  }
  {
    // Nothing listens on a port just released.
    int port;
    { port = RawServer(kOk).port(); }
    absl::Status s = PostJson(StrCat("http://127.0.0.1:", port, "/x"), "{}", Ms(5000));
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(std::string(s.message()), HasSubstr("connecting: "));
  }
  EXPECT_EQ(PostJson("https://127.0.0.1/x", "{}", Ms(100)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PostJsonTest, SilentEndpointTimesOut) {
  RawServer server(kOk, /*respond=*/false);
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = PostJson(server.url(), "{}", Ms(300));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("no response within 300 ms (reading the response)"));
  EXPECT_GE(took, Ms(300));
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(WebhookSenderTest, PostsInOrderOffTheCallersThread) {
  RawServer server(kOk);
  std::mutex mu;
  std::vector<absl::Status> done;
  WebhookSender sender({.on_done = [&](const std::string& url, const absl::Status& s) {
    EXPECT_EQ(url, server.url());
    std::lock_guard<std::mutex> lock(mu);
    done.push_back(s);
  }});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(sender.Enqueue(server.url(), StrCat("{\"n\":", i, "}")));
  sender.Flush();
  std::vector<std::string> got = server.WaitForRequests(3);
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Body(got[i]), StrCat("{\"n\":", i, "}"));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(done.size(), 3u);
  for (const absl::Status& s : done) EXPECT_TRUE(s.ok()) << s;
}

TEST(WebhookSenderTest, QueueIsBounded) {
  RawServer server(kOk, /*respond=*/true, /*gated=*/true);
  std::atomic<int> ok{0};
  WebhookSender sender({.max_queued = 2, .on_done = [&](const std::string&, const absl::Status& s) {
                          ok += s.ok();
                        }});
  ASSERT_TRUE(sender.Enqueue(server.url(), "{\"n\":0}"));
  ASSERT_EQ(server.WaitForRequests(1).size(), 1u);  // in progress, held by the server
  EXPECT_TRUE(sender.Enqueue(server.url(), "{\"n\":1}"));
  EXPECT_TRUE(sender.Enqueue(server.url(), "{\"n\":2}"));
  EXPECT_FALSE(sender.Enqueue(server.url(), "{\"n\":3}"));  // full: refused, not waited on
  server.Release();
  sender.Flush();
  EXPECT_EQ(ok.load(), 3);
  std::vector<std::string> got = server.WaitForRequests(3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(Body(got[2]), "{\"n\":2}");
  EXPECT_TRUE(sender.Enqueue(server.url(), "{\"n\":4}"));  // room again
  sender.Flush();
  EXPECT_EQ(ok.load(), 4);
}

TEST(WebhookSenderTest, DestructionDropsQueuedPosts) {
  RawServer server(kOk, /*respond=*/true, /*gated=*/true);
  std::atomic<int> calls{0};
  std::thread releaser;
  {
    WebhookSender sender({.on_done = [&](const std::string&, const absl::Status&) { ++calls; }});
    ASSERT_TRUE(sender.Enqueue(server.url(), "{}"));
    ASSERT_EQ(server.WaitForRequests(1).size(), 1u);
    ASSERT_TRUE(sender.Enqueue(server.url(), "{}"));
    // The server answers the first post only once the destructor is waiting on it.
    releaser = std::thread([&] {
      std::this_thread::sleep_for(Ms(200));
      server.Release();
    });
  }  // finishes the first post, drops the second
  releaser.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(server.WaitForRequests(1).size(), 1u);
}

}  // namespace
}  // namespace kiln::serving
