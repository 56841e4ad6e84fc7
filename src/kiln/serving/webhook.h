// Posting a JSON document to an http:// URL: how `kiln serve` tells an operator's endpoint
// (an alert manager, a chat hook) that a canary was rolled back; and a GET (HttpGet), how
// `kiln ui` asks a `kiln serve` for its status. PostJson blocks, bounded by its timeout;
// WebhookSender posts from its own thread so that the caller (a request path, a rollback
// callback) never waits on the network. Plain HTTP only: no TLS. Boost stays in webhook.cc.
#ifndef KILN_SERVING_WEBHOOK_H_
#define KILN_SERVING_WEBHOOK_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kiln::serving {

// The parts of `http://host[:port][/path][?query]`. IPv6 hosts are written in brackets.
struct HttpUrl {
  std::string host;          // without brackets, e.g. "127.0.0.1", "::1", "alerts.local"
  std::string port = "80";   // decimal, 1..65535
  std::string target = "/";  // path and query; "/" when the URL has none
  bool operator==(const HttpUrl&) const = default;
};

// Errors: kInvalidArgument naming what is wrong (not http://, e.g. https://; no host; a
// port that is not 1..65535; user info or a fragment, which kiln does not send).
absl::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url);

struct HttpResult {
  int status = 0;
  std::string reason;
  std::string body;  // at most 64 KiB
};
// POSTs `body` as application/json to `url` and returns the response, whatever its
// status, within `timeout` (as PostJson). Errors: those of PostJson but for the status.
absl::StatusOr<HttpResult> HttpPostJson(const std::string& url, const std::string& body,
                                        std::chrono::milliseconds timeout);
// GETs `url` and returns the response, whatever its status, within `timeout`: what
// `kiln ui` asks a `kiln serve` for. Errors: as HttpPostJson.
absl::StatusOr<HttpResult> HttpGet(const std::string& url, std::chrono::milliseconds timeout);

// POSTs `body` as application/json to `url` and waits for the response, for at most
// `timeout` from the call (connecting, sending and reading; name resolution of a host
// that is not an IP address is bounded by the system resolver instead). Thread-safe.
// Errors: kInvalidArgument for a bad URL (see ParseHttpUrl); kDeadlineExceeded when
// `timeout` passes; kUnavailable when the endpoint cannot be reached or answers 5xx or 429
// (a retry may succeed); kFailedPrecondition when it answers another non-2xx status.
absl::Status PostJson(const std::string& url, const std::string& body,
                      std::chrono::milliseconds timeout);

struct WebhookSenderOptions {
  // Posts waiting behind the one in progress; Enqueue refuses more (default 16).
  size_t max_queued = 16;
  // Per post (default 5 s).
  std::chrono::milliseconds timeout{5000};
  // Called on the sender's thread after each post with its outcome (e.g. to log a
  // failure); may be empty. Posts are not retried.
  std::function<void(const std::string& url, const absl::Status& status)> on_done;
};

// Posts JSON documents one at a time from its own thread, in the order enqueued, with a
// bounded queue. Thread-safe.
class WebhookSender {
 public:
  explicit WebhookSender(WebhookSenderOptions options = {});
  // Finishes the post in progress (bounded by the timeout) and drops those still queued;
  // call Flush() first to deliver them.
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  // Queues a POST of `body` to `url` and returns at once. False (nothing queued) when
  // `max_queued` posts are already waiting or the sender is being destroyed.
  bool Enqueue(std::string url, std::string body);
  // Waits until every post enqueued so far is done (each bounded by the timeout).
  void Flush();

 private:
  struct Post {
    std::string url;
    std::string body;
  };
  void Run();

  const WebhookSenderOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Post> queue_;  // guarded by mu_
  bool busy_ = false;       // guarded by mu_: a post is in progress
  bool stopping_ = false;   // guarded by mu_
  std::thread thread_;
};

}  // namespace kiln::serving

#endif  // KILN_SERVING_WEBHOOK_H_
