#include "kiln/ui/ui_server.h"

#include <cctype>
#include <filesystem>
#include <utility>

#include "kiln/base/env.h"
#include "kiln/base/str.h"
#include "kiln/ui/url.h"

namespace kiln::ui {
namespace {

namespace fs = std::filesystem;

UiResponse Text(int status, std::string body) {
  return UiResponse{
      .status = status, .content_type = "text/plain; charset=utf-8", .body = std::move(body)};
}

// The page `/` shows when the web app is not where kiln ui looked for it.
UiResponse NotInstalled(const std::string& web_dir) {
  std::string dir;
  for (char c : web_dir) {  // HTML-escaped
    if (c == '<') {
      dir += "&lt;";
    } else if (c == '>') {
      dir += "&gt;";
    } else if (c == '&') {
      dir += "&amp;";
    } else {
      dir += c;
    }
  }
  return UiResponse{
      .status = 404,
      .content_type = "text/html; charset=utf-8",
      .body = StrCat(
          "<!doctype html><meta charset=utf-8><title>kiln ui</title>"
          "<h1>kiln ui: the web app is not installed</h1>"
          "<p>No index.html in <code>",
          dir,
          "</code>. Build kiln with the web app (web/, built with npm into web/dist and "
          "copied beside the kiln binary as web/), or pass <code>--web DIR</code> pointing at "
          "a built web/dist.</p>"
          "<p>The JSON API works without it: <a href=\"/api/summary\">/api/summary</a>, "
          "<a href=\"/api/runs\">/api/runs</a>, <a href=\"/api/artifacts\">/api/artifacts</a>, "
          "<a href=\"/api/training\">/api/training</a>, <a href=\"/api/models\">/api/models</a>, "
          "<a href=\"/api/serving\">/api/serving</a> (all of them: docs/ui.md).</p>\n")};
}

}  // namespace

std::string_view ContentTypeFor(std::string_view path) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".webmanifest", "application/manifest+json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".woff", "font/woff"},
      {".ttf", "font/ttf"},
      {".txt", "text/plain; charset=utf-8"},
      {".wasm", "application/wasm"},
  };
  const size_t slash = path.rfind('/');
  const size_t dot = path.rfind('.');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) {
    return "application/octet-stream";
  }
  std::string ext(path.substr(dot));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [e, type] : kTypes) {
    if (ext == e) return type;
  }
  return "application/octet-stream";
}

UiResponse ServeStatic(const std::string& web_dir, std::string_view target) {
  absl::StatusOr<std::string> decoded =
      PercentDecode(target.substr(0, target.find_first_of("?#")), false);
  if (!decoded.ok()) return Text(400, "bad %-escape in the path\n");
  const std::string& path = *decoded;
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos) {
    return Text(400, "bad path\n");
  }
  // Relative to the web directory, "." and empty segments dropped; ".." is refused
  // outright rather than resolved.
  fs::path rel;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string_view segment = std::string_view(path).substr(start, end - start);
    if (segment == "..") return Text(400, "'..' is not allowed in a path\n");
    if (!segment.empty() && segment != ".") rel /= std::string(segment);
    start = end + 1;
  }
  if (rel.empty()) rel = "index.html";

  std::error_code ec;
  if (!fs::is_regular_file(fs::path(web_dir) / "index.html", ec)) return NotInstalled(web_dir);
  // Resolved, symbolic links included, the file must still be inside the directory.
  const fs::path root = fs::weakly_canonical(web_dir, ec);
  if (ec) return NotInstalled(web_dir);
  const fs::path file = fs::weakly_canonical(root / rel, ec);
  const fs::path inside = ec ? fs::path("..") : file.lexically_relative(root);
  if (inside.empty() || *inside.begin() == ".." || !fs::is_regular_file(file, ec)) {
    return Text(404, StrCat("not found: ", path, "\n"));
  }
  absl::StatusOr<std::string> body = ReadFileToString(Env::Default(), file.string());
  if (!body.ok()) return Text(500, StrCat("cannot read ", path, "\n"));
  return UiResponse{.status = 200,
                    .content_type = std::string(ContentTypeFor(file.string())),
                    .body = *std::move(body)};
}

absl::StatusOr<std::unique_ptr<serving::HttpServer>> StartUiServer(UiApi* api,
                                                                   const UiServerOptions& options) {
  serving::HttpServerOptions http;
  http.host = "127.0.0.1";
  http.port = options.port;
  http.threads = options.threads;
  http.max_body_bytes = 64 << 10;  // GET only: no body worth the name
  const std::string web_dir = options.web_dir;
  return serving::HttpServer::Start(http, [api, web_dir](const serving::HttpRequest& request) {
    const bool is_api = UiApi::IsApiTarget(request.target);
    UiResponse r;
    if (is_api) {
      r = api->Handle(request.method, request.target);
    } else if (request.method != "GET") {
      r = Text(405, StrCat(request.method, " is not supported here: GET only\n"));
    } else {
      r = ServeStatic(web_dir, request.target);
    }
    serving::HttpResponse out;
    out.status = r.status;
    out.content_type = std::move(r.content_type);
    out.body = std::move(r.body);
    // The page polls the API: never a stale answer. index.html names the hashed assets,
    // so it is revalidated too.
    if (is_api || out.content_type.starts_with("text/html")) {
      out.headers.emplace_back("Cache-Control", "no-store");
    }
    return out;
  });
}

}  // namespace kiln::ui
