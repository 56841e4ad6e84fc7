#include "kiln/serving/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::serving {
namespace {

using ::testing::HasSubstr;

// A keep-alive HTTP/1.1 client on one connection, with blocking POSIX sockets.
class Client {
 public:
  explicit Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{.tv_sec = 10, .tv_usec = 0};  // a hung server fails the test, not the run
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }

  // Sends GET `path` and returns "STATUS BODY", or "" when the connection fails first.
  std::string Get(const std::string& path) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n";
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      return "";
    }
    size_t header_end;
    while ((header_end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return "";
    }
    const std::string head = buf_.substr(0, header_end);
    size_t length = 0;
    if (size_t at = head.find("Content-Length: "); at != std::string::npos) {
      length = std::stoul(head.substr(at + 16));
    }
    while (buf_.size() < header_end + 4 + length) {
      if (!Fill()) return "";
    }
    std::string out = head.substr(9, 3) + " " + buf_.substr(header_end + 4, length);
    buf_.erase(0, header_end + 4 + length);
    return out;
  }

  // True when the server sends nothing more within `ms` (no stray second answer).
  bool QuietFor(int ms) {
    timeval tv{.tv_sec = 0, .tv_usec = ms * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char c;
    const ssize_t n = ::recv(fd_, &c, 1, 0);
    timeval back{.tv_sec = 10, .tv_usec = 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &back, sizeof(back));
    return n < 0 && buf_.empty();
  }

 private:
  bool Fill() {
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = "text/plain";
  return r;
}

std::unique_ptr<HttpServer> StartOrDie(AsyncHttpHandler handler, int threads = 2) {
  HttpServerOptions o;
  o.port = 0;
  o.threads = threads;
  auto server = HttpServer::StartAsync(o, std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status();
  return std::move(server).value();
}

// Answers later, from threads of its own, as the batcher does.
class LateAnswers {
 public:
  ~LateAnswers() {
    for (std::thread& t : threads_) t.join();
  }
  void Later(HttpReply reply, HttpResponse r, std::chrono::milliseconds after) {
    std::lock_guard<std::mutex> l(mu_);
    threads_.emplace_back([reply = std::move(reply), r = std::move(r), after]() mutable {
      std::this_thread::sleep_for(after);
      reply(std::move(r));
    });
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

TEST(HttpServerAsyncTest, RepliesFromOtherThreadsReachTheirOwnConnections) {
  LateAnswers late;
  // One I/O thread: requests in flight hold none of it while they wait.
  auto server = StartOrDie(
      [&](HttpRequest request, HttpReply reply) {
        // The later request answers first.
        const auto wait = std::chrono::milliseconds(request.target == "/slow" ? 200 : 10);
        late.Later(std::move(reply), Text(200, "answer to " + request.target), wait);
      },
      /*threads=*/1);
  Client slow(server->port()), fast(server->port());
  ASSERT_TRUE(slow.connected() && fast.connected());
  auto slow_answer = std::async(std::launch::async, [&] { return slow.Get("/slow"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto before = std::chrono::steady_clock::now();
  EXPECT_EQ(fast.Get("/fast"), "200 answer to /fast");
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(150));
  EXPECT_EQ(slow_answer.get(), "200 answer to /slow");
  // Keep-alive: the same connections take further requests.
  EXPECT_EQ(fast.Get("/again"), "200 answer to /again");
  EXPECT_EQ(slow.Get("/fast"), "200 answer to /fast");
}

TEST(HttpServerAsyncTest, OnlyTheFirstReplyIsSent) {
  auto server = StartOrDie([](HttpRequest request, HttpReply reply) {
    reply(Text(201, "first"));
    reply(Text(500, "second"));
  });
  Client c(server->port());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Get("/a"), "201 first");
  EXPECT_TRUE(c.QuietFor(100));
  EXPECT_EQ(c.Get("/b"), "201 first");
}

TEST(HttpServerAsyncTest, AReplyDroppedUncalledOrAThrowingHandlerIsA500) {
  LateAnswers late;
  auto server = StartOrDie([&](HttpRequest request, HttpReply reply) {
    if (request.target == "/throw") throw std::runtime_error("handler bug");
    if (request.target == "/drop-later") {
      // Handed to another thread, which drops it.
      std::thread([r = std::move(reply)]() mutable { HttpReply gone = std::move(r); }).join();
      return;
    }
    if (request.target == "/drop") return;  // `reply` goes out of scope uncalled
    late.Later(std::move(reply), Text(200, "ok"), std::chrono::milliseconds(1));
  });
  Client c(server->port());
  ASSERT_TRUE(c.connected());
  for (const char* path : {"/throw", "/drop", "/drop-later"}) {
    const std::string answer = c.Get(path);
    EXPECT_EQ(answer.substr(0, 4), "500 ") << path;
    EXPECT_THAT(answer, HasSubstr("internal error")) << path;
  }
  EXPECT_EQ(c.Get("/fine"), "200 ok");  // the connection survived all three
}

TEST(HttpServerAsyncTest, ShutdownWaitsForRepliesStillToCome) {
  LateAnswers late;
  std::atomic<int> received{0};
  auto server = StartOrDie([&](HttpRequest, HttpReply reply) {
    ++received;
    late.Later(std::move(reply), Text(200, "late"), std::chrono::milliseconds(300));
  });
  Client c(server->port());
  ASSERT_TRUE(c.connected());
  auto answer = std::async(std::launch::async, [&] { return c.Get("/x"); });
  while (received == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server->Shutdown(std::chrono::seconds(5));
  EXPECT_EQ(answer.get(), "200 late");
}

TEST(HttpServerTest, SyncHandlerStillServes) {
  HttpServerOptions o;
  o.port = 0;
  auto server = HttpServer::Start(o, [](const HttpRequest& r) { return Text(200, r.method); });
  ASSERT_TRUE(server.ok()) << server.status();
  Client c((*server)->port());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Get("/"), "200 GET");
}

}  // namespace
}  // namespace kiln::serving
