// The HTTP side of `kiln ui`: the JSON API (ui_api.h) under /api/ and the built web app's
// static files everywhere else, on serving::HttpServer. Listens on 127.0.0.1 only: the
// dashboard shows the store and artifact contents to whoever can connect.
#ifndef KILN_UI_UI_SERVER_H_
#define KILN_UI_UI_SERVER_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "kiln/serving/http_server.h"
#include "kiln/ui/ui_api.h"

namespace kiln::ui {

// The content type a static file is sent with, by its extension (html, js, css, json,
// svg, png, ico, woff2, map, ...); application/octet-stream for anything else.
std::string_view ContentTypeFor(std::string_view path);

// Answers GET `target` from the files under `web_dir`: "/" is index.html; the path is
// %-decoded and must stay inside `web_dir` once resolved (symbolic links included).
// 400 for a path with a ".." segment or a bad escape; 404 for a missing file (or a
// directory); 404 with a page saying so when `web_dir` holds no index.html at all.
UiResponse ServeStatic(const std::string& web_dir, std::string_view target);

struct UiServerOptions {
  int port = 8080;  // 0: a free port (see HttpServer::port)
  // The built web app (web/dist): index.html and its assets. May be missing: the API
  // still answers.
  std::string web_dir;
  int threads = 2;
};

// Starts serving `api` (not owned; must outlive the server) and the web app on
// 127.0.0.1. GET only; API answers are sent with Cache-Control: no-store (the page
// polls them). Errors: those of HttpServer::Start (kUnavailable when the port is taken).
absl::StatusOr<std::unique_ptr<serving::HttpServer>> StartUiServer(UiApi* api,
                                                                   const UiServerOptions& options);

}  // namespace kiln::ui

#endif  // KILN_UI_UI_SERVER_H_
