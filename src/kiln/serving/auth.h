// Request authentication for `kiln serve`: a JWT bearer token (HS256 and/or RS256) or an
// API key, checked before a request reaches the REST API.
//
// What is open: the liveness and readiness probes, /v2/health/live and /v2/health/ready
// (see RequiresAuthentication), so that orchestrators can probe without credentials.
// Everything else, /metrics and /v2 server metadata included, needs credentials when a
// mode other than kNone is set.
//
// Thread safety: an Authenticator is immutable after Create; Check may be called from any
// number of threads at once.
#ifndef KILN_SERVING_AUTH_H_
#define KILN_SERVING_AUTH_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kiln/base/env.h"

namespace kiln::serving {

struct AuthOptions {
  enum Mode { kNone, kJwt, kApiKey };
  Mode mode = kNone;

  // kJwt: `Authorization: Bearer <compact JWS>`. At least one of the two key files must be
  // set; a token is accepted only when its header's "alg" is one whose key is configured
  // ("none" and every other algorithm are refused), so an HS256 token is never checked
  // against the RSA public key.
  //
  // HS256: the file's bytes are the HMAC key, less trailing "\r" / "\n" (so `echo` works);
  // at least 32 bytes (RFC 7518 3.2). Default: none.
  std::string jwt_hs256_secret_file;
  // RS256: a PEM public key ("BEGIN PUBLIC KEY"), RSA of at least 2048 bits (RFC 7518
  // 3.3). Default: none.
  std::string jwt_rs256_public_key_file;
  // When not empty, the "iss" claim must be present and equal this. Default: not checked.
  std::string jwt_issuer;
  // When not empty, the "aud" claim (a string or an array of strings) must be present and
  // contain this. Default: not checked.
  std::string jwt_audience;
  // Tolerance for "exp" and "nbf" against the server's clock: a token is accepted while
  // nbf - skew <= now < exp + skew. "exp" is always required. Default 60.
  int64_t jwt_clock_skew_seconds = 60;

  // kApiKey: the `x-api-key` header must hold one of the keys in this file: one per line,
  // surrounding spaces trimmed, blank lines and lines starting with '#' skipped. Only the
  // keys' SHA-256 digests are kept in memory, compared in constant time. Default: none.
  std::string api_keys_file;
};

class Authenticator {
 public:
  // Reads and checks the configured files. Errors: kInvalidArgument for a missing key file
  // for the mode, a file that cannot be used (names the file: not PEM, not RSA, too short
  // a key, no API keys), settings for another mode, or a negative clock skew; the file
  // system's error naming the file when it cannot be read (kNotFound when missing).
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(Env* env, AuthOptions options);
  ~Authenticator();

  // OK when the request's credentials are accepted (always, for kNone). Otherwise
  // kUnauthenticated saying why: missing or malformed header or token, an algorithm not
  // accepted, a bad signature, expired, not yet valid (nbf), wrong issuer or audience.
  // Messages never contain the token, the key or claim values taken from the token.
  // `authorization_header` is the Authorization header's value, `api_key_header` the
  // x-api-key header's; empty when absent.
  absl::Status Check(std::string_view authorization_header, std::string_view api_key_header,
                     int64_t now_unix_seconds) const;

  struct Keys;

 private:
  Authenticator(AuthOptions options, std::unique_ptr<Keys> keys);
  AuthOptions options_;
  std::unique_ptr<Keys> keys_;
};

// False for the paths served without credentials (/v2/health/live, /v2/health/ready; any
// query string is ignored); true for every other request target.
bool RequiresAuthentication(std::string_view target);

}  // namespace kiln::serving

#endif  // KILN_SERVING_AUTH_H_
