// libFuzzer target: fuzzed Authorization and x-api-key headers through kiln serve's
// Authenticator::Check, against JWT authenticators for an HS256 secret (with issuer and
// audience), an RS256 public key (a key pair made once at start-up) and both, and an API-key
// authenticator. The first byte picks how the rest becomes headers:
//   0-1  raw header values;
//   2-4  "Bearer " and three fuzzed parts, base64url-encoded, so the token gets past the
//        split and decoding into the header JSON, algorithm and signature checks;
//   5-6  HS256 tokens signed with the configured secret, so the claims (exp, nbf, iss, aud)
//        are read; whether they pass is checked against RFC 7519's rules computed here;
//   7    RS256 tokens signed with the key pair.
// Every answer is OK or kUnauthenticated; a JWT passes only with a signature made here, an
// API key only when listed; no message echoes the token or the key. Nothing may crash.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "fuzzer/FuzzedDataProvider.h"
#include "kiln/serving/auth.h"
#include "nlohmann/json.hpp"

namespace {

using kiln::serving::Authenticator;
using kiln::serving::AuthOptions;

constexpr char kSecret[] = "fuzz-secret-0123456789abcdef-0123456789";  // 39 bytes
constexpr char kIssuer[] = "kiln-issuer";
constexpr char kAudience[] = "kiln-audience";
constexpr int64_t kSkew = 60;

struct Fixture {
  EVP_PKEY* rsa = nullptr;               // the key pair; its public half is in the RS256 key file
  std::unique_ptr<Authenticator> hs256;  // secret, issuer, audience, skew kSkew
  std::unique_ptr<Authenticator> rs256;  // public key, no issuer or audience, skew kSkew
  std::unique_ptr<Authenticator> both;   // secret and public key, skew 0
  std::unique_ptr<Authenticator> api;    // keys "key-one" and "key two"
  std::unique_ptr<Authenticator> none;
};
Fixture* fixture = nullptr;

std::unique_ptr<Authenticator> Make(AuthOptions options) {
  auto a = Authenticator::Create(kiln::Env::Default(), std::move(options));
  if (!a.ok()) std::abort();
  return std::move(*a);
}

void Write(const std::filesystem::path& path, std::string_view text) {
  if (!kiln::WriteFileAtomically(kiln::Env::Default(), path.string(), text).ok()) std::abort();
}

void Setup() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("kiln-auth-fuzz-" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto* f = new Fixture;
  f->rsa = EVP_RSA_gen(2048);
  if (f->rsa == nullptr) std::abort();
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PUBKEY(bio, f->rsa) != 1) std::abort();
  char* pem = nullptr;
  const long pem_len = BIO_get_mem_data(bio, &pem);
  Write(dir / "rs256.pem", std::string_view(pem, pem_len));
  BIO_free(bio);
  Write(dir / "hs256.secret", std::string(kSecret) + "\n");
  Write(dir / "api.keys", "# comment\nkey-one\n  key two  \n\n");

  AuthOptions hs;
  hs.mode = AuthOptions::kJwt;
  hs.jwt_hs256_secret_file = (dir / "hs256.secret").string();
  hs.jwt_issuer = kIssuer;
  hs.jwt_audience = kAudience;
  hs.jwt_clock_skew_seconds = kSkew;
  f->hs256 = Make(hs);
  AuthOptions rs;
  rs.mode = AuthOptions::kJwt;
  rs.jwt_rs256_public_key_file = (dir / "rs256.pem").string();
  rs.jwt_clock_skew_seconds = kSkew;
  f->rs256 = Make(rs);
  AuthOptions both;
  both.mode = AuthOptions::kJwt;
  both.jwt_hs256_secret_file = hs.jwt_hs256_secret_file;
  both.jwt_rs256_public_key_file = rs.jwt_rs256_public_key_file;
  both.jwt_clock_skew_seconds = 0;
  f->both = Make(both);
  AuthOptions api;
  api.mode = AuthOptions::kApiKey;
  api.api_keys_file = (dir / "api.keys").string();
  f->api = Make(api);
  f->none = Make(AuthOptions{});
  fs::remove_all(dir);  // everything is read
  fixture = f;
}

std::string B64Url(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

std::string HmacSha256(std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret, sizeof(kSecret) - 1,
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

std::string RsaSha256(std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string sig;
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, fixture->rsa) != 1 ||
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    std::abort();
  }
  sig.resize(len);
  if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    std::abort();
  }
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  return sig;
}

// What RFC 7519 says of the claims of a token whose signature verified, for an
// authenticator with the given skew, issuer and audience.
bool ClaimsAccepted(std::string_view payload, int64_t now_seconds, int64_t skew,
                    std::string_view issuer, std::string_view audience) {
  const nlohmann::json claims = nlohmann::json::parse(payload, nullptr, false);
  if (!claims.is_object()) return false;
  const double now = static_cast<double>(now_seconds);
  if (!claims.contains("exp") || !claims["exp"].is_number()) return false;
  if (!(now < claims["exp"].get<double>() + static_cast<double>(skew))) return false;
  if (claims.contains("nbf")) {
    if (!claims["nbf"].is_number()) return false;
    if (now < claims["nbf"].get<double>() - static_cast<double>(skew)) return false;
  }
  if (!issuer.empty() &&
      claims.value("iss", nlohmann::json()) != nlohmann::json(std::string(issuer))) {
    return false;
  }
  if (!audience.empty()) {
    const nlohmann::json aud = claims.value("aud", nlohmann::json());
    const nlohmann::json want = std::string(audience);
    bool found = aud == want;
    if (aud.is_array()) {
      for (const auto& a : aud) found = found || a == want;
    }
    if (!found) return false;
  }
  return true;
}

// Checks one answer: only OK or kUnauthenticated; OK exactly when `expect_ok`; the secret
// (the token, the key) is not in the message.
void Expect(const absl::Status& s, bool expect_ok, std::string_view secret) {
  if (s.ok() != expect_ok) std::abort();
  if (!s.ok() && s.code() != absl::StatusCode::kUnauthenticated) std::abort();
  if (secret.size() >= 16 && std::string(s.message()).find(secret) != std::string::npos)
    std::abort();
}

std::string_view Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (fixture == nullptr) Setup();
  if (size == 0) return 0;
  const int mode = data[0] % 8;
  FuzzedDataProvider in(data + 1, size - 1);
  const Fixture& f = *fixture;

  if (mode <= 1) {
    // Raw headers: nothing here carries a signature made with the keys, so no JWT passes.
    const int64_t now = in.ConsumeIntegral<int64_t>();
    const std::string authorization = in.ConsumeRandomLengthString(4096);
    const std::string api_key = in.ConsumeRemainingBytesAsString();
    const std::string_view token = Trim(authorization);
    Expect(f.hs256->Check(authorization, api_key, now), false, token);
    Expect(f.rs256->Check(authorization, api_key, now), false, token);
    Expect(f.both->Check(authorization, api_key, now), false, token);
    const std::string_view key = Trim(api_key);
    Expect(f.api->Check(authorization, api_key, now), key == "key-one" || key == "key two", key);
    Expect(f.none->Check(authorization, api_key, now), true, "");
    return 0;
  }

  // A JWT: its header is one of a few, or fuzzed.
  static constexpr const char* kHeaders[] = {
      R"({"alg":"HS256","typ":"JWT"})", R"({"alg":"RS256"})", R"({"alg":"none"})",
      R"({"alg":"HS256","crit":["exp"]})", R"({"alg":"ES256"})"};
  const uint8_t pick = in.ConsumeIntegral<uint8_t>();
  std::string header = pick % 8 < 5 ? kHeaders[pick % 8] : in.ConsumeRandomLengthString(512);
  const int64_t now = pick & 8 ? 1700000000 : in.ConsumeIntegral<int64_t>();
  const std::string scheme = in.ConsumeBool() ? "Bearer " : "bearer \t";
  std::string payload;
  std::string signing_input;
  std::string signature;
  bool signed_hs256 = false;
  if (mode <= 4) {
    payload = in.ConsumeRandomLengthString(2048);
    signing_input = B64Url(header) + "." + B64Url(payload);
    signature = B64Url(in.ConsumeRemainingBytesAsString());
  } else if (mode <= 6) {
    payload = in.ConsumeRemainingBytesAsString();
    signing_input = B64Url(header) + "." + B64Url(payload);
    signature = B64Url(HmacSha256(signing_input));
    signed_hs256 = true;
  } else {
    header = R"({"alg":"RS256"})";
    payload = in.ConsumeRemainingBytesAsString();
    signing_input = B64Url(header) + "." + B64Url(payload);
    signature = B64Url(RsaSha256(signing_input));
  }
  const std::string token = signing_input + "." + signature;
  const std::string authorization = scheme + token;

  // Whether each authenticator must accept: the algorithm must be one it has a key for, the
  // signature made with that key, and the claims must pass.
  const nlohmann::json h = nlohmann::json::parse(header, nullptr, false);
  const bool header_ok =
      h.is_object() && h.contains("alg") && h["alg"].is_string() && !h.contains("crit");
  const std::string alg = header_ok ? h["alg"].get<std::string>() : "";
  const bool hs_signed = signed_hs256 && header_ok && alg == "HS256";
  const bool rs_signed = mode == 7;
  Expect(f.hs256->Check(authorization, "", now),
         hs_signed && ClaimsAccepted(payload, now, kSkew, kIssuer, kAudience), token);
  Expect(f.rs256->Check(authorization, "", now),
         rs_signed && ClaimsAccepted(payload, now, kSkew, "", ""), token);
  Expect(f.both->Check(authorization, "", now),
         (hs_signed || rs_signed) && ClaimsAccepted(payload, now, 0, "", ""), token);
  Expect(f.api->Check(authorization, "", now), false, token);
  return 0;
}
