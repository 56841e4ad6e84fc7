#include "kiln/serving/auth.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <array>
#include <optional>
#include <utility>
#include <vector>

#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "nlohmann/json.hpp"

namespace kiln::serving {

using Json = nlohmann::json;
using Digest = std::array<unsigned char, 32>;

struct Authenticator::Keys {
  std::string hmac_key;  // empty: HS256 not accepted
  EVP_PKEY* rsa = nullptr;
  std::vector<Digest> api_key_digests;
  ~Keys() { EVP_PKEY_free(rsa); }
};

namespace {

constexpr std::string_view kSpace = " \t\r\n";

std::string_view Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Base64url without padding (RFC 7515 2). Only the canonical encoding is accepted (unused
// low bits of the last character zero), so a signature has exactly one spelling.
std::optional<std::string> Base64UrlDecode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = Base64UrlValue(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

Digest Sha256Digest(std::string_view data) {
  Digest d{};
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), d.data(), &n, EVP_sha256(), nullptr);
  return d;
}

absl::Status Unauthenticated(std::string_view message) {
  return absl::UnauthenticatedError(std::string(message));
}

absl::Status BadFile(std::string_view what, const std::string& path, std::string_view why) {
  return absl::InvalidArgumentError(StrCat(what, " '", path, "': ", why));
}

absl::StatusOr<EVP_PKEY*> ReadRsaPublicKey(Env* env, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string pem, ReadFileToString(env, path));
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = bio == nullptr ? nullptr : PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ERR_clear_error();
  if (key == nullptr) {
    return BadFile("RS256 public key file", path,
                   "not a PEM public key (-----BEGIN PUBLIC KEY-----)");
  }
  if (!EVP_PKEY_is_a(key, "RSA")) {
    EVP_PKEY_free(key);
    return BadFile("RS256 public key file", path, "not an RSA key");
  }
  if (EVP_PKEY_get_bits(key) < 2048) {
    const int bits = EVP_PKEY_get_bits(key);
    EVP_PKEY_free(key);
    return BadFile("RS256 public key file", path,
                   StrCat("an RSA key of ", bits, " bits; RS256 needs at least 2048"));
  }
  return key;
}

absl::StatusOr<std::vector<Digest>> ReadApiKeys(Env* env, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(env, path));
  std::vector<Digest> digests;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view line = Trim(std::string_view(text).substr(start, end - start));
    if (!line.empty() && line[0] != '#') digests.push_back(Sha256Digest(line));
    start = end + 1;
  }
  OPENSSL_cleanse(text.data(), text.size());
  if (digests.empty()) return BadFile("API keys file", path, "holds no keys");
  return digests;
}

bool VerifyHs256(const std::string& key, std::string_view signing_input,
                 std::string_view signature) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
           &mac_len) == nullptr) {
    return false;
  }
  return signature.size() == mac_len && CRYPTO_memcmp(mac, signature.data(), mac_len) == 0;
}

bool VerifyRs256(EVP_PKEY* key, std::string_view signing_input, std::string_view signature) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(
          ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
          reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

// A claim's NumericDate (seconds since the epoch; JSON allows a fraction).
std::optional<double> NumericDate(const Json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

}  // namespace

Authenticator::Authenticator(AuthOptions options, std::unique_ptr<Keys> keys)
    : options_(std::move(options)), keys_(std::move(keys)) {}

Authenticator::~Authenticator() = default;

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(Env* env,
                                                                     AuthOptions options) {
  const bool jwt_files =
      !options.jwt_hs256_secret_file.empty() || !options.jwt_rs256_public_key_file.empty();
  const bool jwt_claims = !options.jwt_issuer.empty() || !options.jwt_audience.empty();
  // A setting the mode would ignore is a mistake worth stopping for: whoever set it
  // believes requests are checked in a way they are not.
  if (options.mode != AuthOptions::kJwt && (jwt_files || jwt_claims)) {
    return absl::InvalidArgumentError(
        "JWT key files, issuer or audience are set, but the auth mode is not jwt");
  }
  if (options.mode != AuthOptions::kApiKey && !options.api_keys_file.empty()) {
    return absl::InvalidArgumentError("an API keys file is set, but the auth mode is not api_key");
  }
  auto keys = std::make_unique<Keys>();
  switch (options.mode) {
    case AuthOptions::kNone:
      break;
    case AuthOptions::kJwt: {
      if (!jwt_files) {
        return absl::InvalidArgumentError(
            "auth mode jwt needs an HS256 secret file or an RS256 public key file");
      }
      if (options.jwt_clock_skew_seconds < 0) {
        return absl::InvalidArgumentError(
            StrCat("the JWT clock skew must be >= 0, not ", options.jwt_clock_skew_seconds));
      }
      if (!options.jwt_hs256_secret_file.empty()) {
        KILN_ASSIGN_OR_RETURN(keys->hmac_key, ReadFileToString(env, options.jwt_hs256_secret_file));
        while (!keys->hmac_key.empty() &&
               (keys->hmac_key.back() == '\n' || keys->hmac_key.back() == '\r')) {
          keys->hmac_key.pop_back();
        }
        if (keys->hmac_key.size() < 32) {
          return BadFile(
              "HS256 secret file", options.jwt_hs256_secret_file,
              StrCat("the secret has ", keys->hmac_key.size(), " bytes; HS256 needs at least 32"));
        }
      }
      if (!options.jwt_rs256_public_key_file.empty()) {
        KILN_ASSIGN_OR_RETURN(keys->rsa, ReadRsaPublicKey(env, options.jwt_rs256_public_key_file));
      }
      break;
    }
    case AuthOptions::kApiKey: {
      if (options.api_keys_file.empty()) {
        return absl::InvalidArgumentError("auth mode api_key needs an API keys file");
      }
      KILN_ASSIGN_OR_RETURN(keys->api_key_digests, ReadApiKeys(env, options.api_keys_file));
      break;
    }
    default:
      return absl::InvalidArgumentError("unknown auth mode");
  }
  return std::unique_ptr<Authenticator>(new Authenticator(std::move(options), std::move(keys)));
}

absl::Status Authenticator::Check(std::string_view authorization_header,
                                  std::string_view api_key_header, int64_t now_unix_seconds) const {
  if (options_.mode == AuthOptions::kNone) return absl::OkStatus();

  if (options_.mode == AuthOptions::kApiKey) {
    const std::string_view key = Trim(api_key_header);
    if (key.empty()) return Unauthenticated("missing x-api-key header");
    // Every stored digest is compared, each in constant time: neither the time taken nor an
    // early exit says which key, or which prefix of one, came close.
    const Digest presented = Sha256Digest(key);
    int match = 0;
    for (const Digest& d : keys_->api_key_digests) {
      match |= CRYPTO_memcmp(d.data(), presented.data(), d.size()) == 0;
    }
    return match ? absl::OkStatus() : Unauthenticated("the API key is not accepted");
  }

  // JWT (RFC 7519) in JWS compact serialization (RFC 7515 7.1).
  const std::string_view auth = Trim(authorization_header);
  if (auth.empty())
    return Unauthenticated("missing Authorization header (expected 'Bearer <JWT>')");
  const size_t space = auth.find(' ');
  if (space == std::string_view::npos || !EqualsIgnoreCase(auth.substr(0, space), "Bearer")) {
    return Unauthenticated("the Authorization header is not 'Bearer <JWT>'");
  }
  const std::string_view token = Trim(auth.substr(space + 1));
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Unauthenticated("the bearer token is not a JWT (three base64url parts joined by '.')");
  }
  const std::optional<std::string> header_text = Base64UrlDecode(token.substr(0, dot1));
  const std::optional<std::string> signature = Base64UrlDecode(token.substr(dot2 + 1));
  if (!header_text || !signature) return Unauthenticated("the JWT is not valid base64url");
  const Json header = Json::parse(*header_text, nullptr, /*allow_exceptions=*/false);
  if (!header.is_object()) return Unauthenticated("the JWT header is not a JSON object");
  auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string()) {
    return Unauthenticated("the JWT header has no \"alg\"");
  }
  if (header.contains("crit")) {
    return Unauthenticated("the JWT header has \"crit\" extensions, which are not supported");
  }

  // The algorithm picks the key, and each key serves one algorithm only: an HS256 token is
  // never checked against the RSA key's bytes, nor an RS256 one against the secret.
  const std::string_view signing_input = token.substr(0, dot2);
  const std::string& alg_name = alg->get_ref<const std::string&>();
  bool verified = false;
  if (alg_name == "HS256" && !keys_->hmac_key.empty()) {
    verified = VerifyHs256(keys_->hmac_key, signing_input, *signature);
  } else if (alg_name == "RS256" && keys_->rsa != nullptr) {
    verified = VerifyRs256(keys_->rsa, signing_input, *signature);
  } else if (EqualsIgnoreCase(alg_name, "none")) {
    return Unauthenticated("unsigned JWTs (alg none) are not accepted");
  } else {
    std::string accepted;
    if (!keys_->hmac_key.empty()) accepted = "HS256";
    if (keys_->rsa != nullptr) StrAppend(&accepted, accepted.empty() ? "" : ", ", "RS256");
    return Unauthenticated(
        StrCat("the JWT's algorithm is not accepted (accepted: ", accepted, ")"));
  }
  if (!verified) return Unauthenticated("the JWT's signature does not verify");

  // Claims are read only from a payload whose signature verified.
  const std::optional<std::string> payload_text =
      Base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!payload_text) return Unauthenticated("the JWT is not valid base64url");
  const Json claims = Json::parse(*payload_text, nullptr, /*allow_exceptions=*/false);
  if (!claims.is_object()) return Unauthenticated("the JWT claims are not a JSON object");
  const double now = static_cast<double>(now_unix_seconds);
  const double skew = static_cast<double>(options_.jwt_clock_skew_seconds);
  const std::optional<double> exp = NumericDate(claims, "exp");
  if (!exp) return Unauthenticated("the JWT has no numeric \"exp\" (expiry) claim");
  if (now >= *exp + skew) return Unauthenticated("the JWT has expired");
  if (claims.contains("nbf")) {
    const std::optional<double> nbf = NumericDate(claims, "nbf");
    if (!nbf) return Unauthenticated("the JWT's \"nbf\" claim is not a number");
    if (now < *nbf - skew) return Unauthenticated("the JWT is not valid yet (nbf)");
  }
  if (!options_.jwt_issuer.empty()) {
    auto iss = claims.find("iss");
    if (iss == claims.end() || !iss->is_string() ||
        iss->get_ref<const std::string&>() != options_.jwt_issuer) {
      return Unauthenticated("the JWT's issuer (iss) is not accepted");
    }
  }
  if (!options_.jwt_audience.empty()) {
    auto aud = claims.find("aud");
    bool found = false;
    if (aud != claims.end() && aud->is_string()) {
      found = aud->get_ref<const std::string&>() == options_.jwt_audience;
    } else if (aud != claims.end() && aud->is_array()) {
      for (const Json& a : *aud) {
        found =
            found || (a.is_string() && a.get_ref<const std::string&>() == options_.jwt_audience);
      }
    }
    if (!found) return Unauthenticated("the JWT's audience (aud) is not accepted");
  }
  return absl::OkStatus();
}

bool RequiresAuthentication(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  return path != "/v2/health/live" && path != "/v2/health/ready";
}

}  // namespace kiln::serving
