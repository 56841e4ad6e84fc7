// Authenticator: the JWS examples of RFC 7515 Appendix A.1 (HS256) and A.2 (RS256), tokens
// made here with OpenSSL (expiry, nbf and skew boundaries, issuer, audience, tampering,
// alg none, algorithm confusion), malformed headers, and API keys.
#include "kiln/serving/auth.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::serving {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// RFC 7515 A.1: the HMAC key (JWK "k") and the JWS.
constexpr char kA1Key[] =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
constexpr char kA1Token[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlf"
    "Q"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
// RFC 7515 A.2: the RSA public key (JWK "n", "e" = AQAB) and the JWS.
constexpr char kA2Modulus[] =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4"
    "QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-"
    "bSf63kpaSHSXndS5z5rexMdbB"
    "YUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-"
    "DWN"
    "moudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
constexpr char kA2Token[] =
    "eyJhbGciOiJSUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlf"
    "Q"
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5j"
    "ujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_"
    "nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07"
    "Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-"
    "eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUT"
    "I8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
constexpr int64_t kRfcExp = 1300819380;  // both examples' "exp"

// Test-side base64url, independent of the code under test.
std::string B64Url(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(n);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::string B64UrlDecode(std::string s) {
  for (char& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  const size_t pad = (4 - s.size() % 4) % 4;
  s.append(pad, '=');
  std::string out(s.size() / 4 * 3, '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(n - pad);
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

std::string RsaSha256(EVP_PKEY* key, std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EXPECT_EQ(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key), 1);
  size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                 data.size());
  std::string sig(len, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(data.data()), data.size()),
            1);
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  return sig;
}

std::string Hs256Token(std::string_view claims, std::string_view key,
                       std::string_view header = R"({"alg":"HS256","typ":"JWT"})") {
  std::string input = StrCat(B64Url(header), ".", B64Url(claims));
  return StrCat(input, ".", B64Url(HmacSha256(key, input)));
}

std::string Rs256Token(std::string_view claims, EVP_PKEY* key) {
  std::string input = StrCat(B64Url(R"({"alg":"RS256","typ":"JWT"})"), ".", B64Url(claims));
  return StrCat(input, ".", B64Url(RsaSha256(key, input)));
}

std::string PublicPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, n);
  BIO_free(bio);
  return pem;
}

// The RFC 7515 A.2 public key, built from its JWK n and e.
EVP_PKEY* RfcRsaKey() {
  const std::string n = B64UrlDecode(kA2Modulus);
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                           static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_new();
  BN_set_word(bn_e, 65537);  // "AQAB"
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n);
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e);
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  EVP_PKEY* key = nullptr;
  EXPECT_EQ(EVP_PKEY_fromdata_init(ctx), 1);
  EXPECT_EQ(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params), 1);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  return key;
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// A fresh 2048-bit RSA key pair, made once for the whole suite (generation takes a while).
EVP_PKEY* TestRsaKey() {
  static EVP_PKEY* key = EVP_RSA_gen(2048);
  return key;
}

constexpr char kSecret[] = "0123456789abcdef0123456789abcdef-kiln-test";  // 42 bytes
constexpr int64_t kNow = 1700000000;

class AuthTest : public ::testing::Test {
 protected:
  std::unique_ptr<Authenticator> Make(AuthOptions o) {
    auto a = Authenticator::Create(Env::Default(), std::move(o));
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? std::move(*a) : nullptr;
  }
  std::unique_ptr<Authenticator> Hs256(std::string issuer = "", std::string audience = "",
                                       int64_t skew = 60) {
    AuthOptions o;
    o.mode = AuthOptions::kJwt;
    o.jwt_hs256_secret_file = tmp_.Write("hs.secret", StrCat(kSecret, "\n"));
    o.jwt_issuer = std::move(issuer);
    o.jwt_audience = std::move(audience);
    o.jwt_clock_skew_seconds = skew;
    return Make(o);
  }
  std::string RfcRsaPemFile() {
    Pkey key(RfcRsaKey());
    return tmp_.Write("rfc_rsa.pem", PublicPem(key.get()));
  }
  // Expects kUnauthenticated with `why` in the message, and none of `token` echoed.
  static void ExpectRejected(const absl::Status& s, std::string_view why, std::string_view token) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(std::string(why)));
    // No part of the token (at least 8 characters of it) comes back.
    for (size_t i = 0; i + 8 <= token.size(); i += 4) {
      EXPECT_THAT(std::string(s.message()), Not(HasSubstr(std::string(token.substr(i, 8)))));
    }
  }

  testing::TempDir tmp_;
};

TEST_F(AuthTest, Rfc7515A1Hs256ExampleVerifies) {
  AuthOptions o;
  o.mode = AuthOptions::kJwt;
  o.jwt_hs256_secret_file = tmp_.Write("a1.key", B64UrlDecode(kA1Key));
  o.jwt_issuer = "joe";
  auto auth = Make(o);
  const std::string bearer = StrCat("Bearer ", kA1Token);
  EXPECT_TRUE(auth->Check(bearer, "", kRfcExp - 3600).ok());
  // The skew (60 s) extends "exp": accepted up to exp + 59, refused from exp + 60.
  EXPECT_TRUE(auth->Check(bearer, "", kRfcExp + 59).ok());
  ExpectRejected(auth->Check(bearer, "", kRfcExp + 60), "expired", kA1Token);
  // One changed character of the signature.
  std::string bad = kA1Token;
  bad[bad.size() - 2] = bad[bad.size() - 2] == 'X' ? 'Y' : 'X';
  ExpectRejected(auth->Check(StrCat("Bearer ", bad), "", kRfcExp - 3600),
                 "signature does not verify", bad);
}

TEST_F(AuthTest, Rfc7515A1WithAnotherIssuerOrARequiredAudienceIsRejected) {
  AuthOptions o;
  o.mode = AuthOptions::kJwt;
  o.jwt_hs256_secret_file = tmp_.Write("a1.key", B64UrlDecode(kA1Key));
  o.jwt_issuer = "bob";
  ExpectRejected(Make(o)->Check(StrCat("Bearer ", kA1Token), "", kRfcExp - 1),
                 "issuer (iss) is not accepted", kA1Token);
  o.jwt_issuer = "joe";
  o.jwt_audience = "kiln";  // the example has no "aud"
  ExpectRejected(Make(o)->Check(StrCat("Bearer ", kA1Token), "", kRfcExp - 1),
                 "audience (aud) is not accepted", kA1Token);
}

TEST_F(AuthTest, Rfc7515A2Rs256ExampleVerifiesWithTheKeyFromItsJwk) {
  AuthOptions o;
  o.mode = AuthOptions::kJwt;
  o.jwt_rs256_public_key_file = RfcRsaPemFile();
  o.jwt_issuer = "joe";
  o.jwt_clock_skew_seconds = 0;
  auto auth = Make(o);
  const std::string bearer = StrCat("Bearer ", kA2Token);
  EXPECT_TRUE(auth->Check(bearer, "", kRfcExp - 1).ok());
  ExpectRejected(auth->Check(bearer, "", kRfcExp), "expired", kA2Token);

  // The payload swapped for one with a later expiry, signature kept: refused.
  std::string token = kA2Token;
  const size_t d1 = token.find('.'), d2 = token.rfind('.');
  const std::string tampered = StrCat(token.substr(0, d1), ".",
                                      B64Url("{\"iss\":\"joe\",\r\n \"exp\":1999999999,\r\n "
                                             "\"http://example.com/is_root\":true}"),
                                      token.substr(d2));
  ExpectRejected(auth->Check(StrCat("Bearer ", tampered), "", kRfcExp - 1),
                 "signature does not verify", tampered);
  // A token signed by another RSA key: refused.
  const std::string other = Rs256Token(R"({"iss":"joe","exp":1999999999})", TestRsaKey());
  ExpectRejected(auth->Check(StrCat("Bearer ", other), "", kRfcExp - 1),
                 "signature does not verify", other);
}

TEST_F(AuthTest, Rs256TokensMadeHereVerifyAgainstTheirPublicKey) {
  AuthOptions o;
  o.mode = AuthOptions::kJwt;
  o.jwt_rs256_public_key_file = tmp_.Write("rsa.pem", PublicPem(TestRsaKey()));
  o.jwt_issuer = "https://idp.example";
  o.jwt_audience = "kiln";
  auto auth = Make(o);
  const std::string good = Rs256Token(
      StrCat(R"({"iss":"https://idp.example","aud":"kiln","exp":)", kNow + 300, "}"), TestRsaKey());
  EXPECT_TRUE(auth->Check(StrCat("Bearer ", good), "", kNow).ok());
  EXPECT_TRUE(auth->Check(StrCat("bearer  ", good), "", kNow).ok());  // scheme: any case
  // Many threads checking at once.
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) ok += auth->Check(StrCat("Bearer ", good), "", kNow).ok();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 200);
}

TEST_F(AuthTest, AlgNoneIsRejected) {
  auto auth = Hs256();
  for (const char* alg : {"none", "None", "NONE"}) {
    const std::string token = StrCat(B64Url(StrCat(R"({"alg":")", alg, R"("})")), ".",
                                     B64Url(StrCat(R"({"exp":)", kNow + 300, "}")), ".");
    ExpectRejected(auth->Check(StrCat("Bearer ", token), "", kNow), "alg none", token);
  }
}

TEST_F(AuthTest, Hs256SignedWithThePublicKeyIsRejected) {
  // The classic confusion: an HS256 token whose HMAC key is the server's RSA public key.
  const std::string pem_file = RfcRsaPemFile();
  const std::string pem = testing::ReadAll(pem_file);
  const std::string claims = StrCat(R"({"iss":"joe","exp":)", kNow + 300, "}");
  const std::string forged = Hs256Token(claims, pem);
  AuthOptions o;
  o.mode = AuthOptions::kJwt;
  o.jwt_rs256_public_key_file = pem_file;
  ExpectRejected(Make(o)->Check(StrCat("Bearer ", forged), "", kNow),
                 "algorithm is not accepted (accepted: RS256)", forged);
  // With an HS256 secret configured too, HS256 tokens are checked against that secret only.
  o.jwt_hs256_secret_file = tmp_.Write("hs.secret", kSecret);
  auto both = Make(o);
  ExpectRejected(both->Check(StrCat("Bearer ", forged), "", kNow), "signature does not verify",
                 forged);
  EXPECT_TRUE(both->Check(StrCat("Bearer ", Hs256Token(claims, kSecret)), "", kNow).ok());
  // ... and an RS256 token under an HS256-only configuration is refused.
  const std::string rs = Rs256Token(claims, TestRsaKey());
  ExpectRejected(Hs256()->Check(StrCat("Bearer ", rs), "", kNow),
                 "algorithm is not accepted (accepted: HS256)", rs);
}

TEST_F(AuthTest, ExpiryAndNotBeforeAtTheSkewBoundaries) {
  auto auth = Hs256("", "", 30);
  auto check = [&](std::string claims) {
    return auth->Check(StrCat("Bearer ", Hs256Token(claims, kSecret)), "", kNow);
  };
  // Valid while nbf - 30 <= now < exp + 30.
  EXPECT_TRUE(check(StrCat(R"({"exp":)", kNow - 29, "}")).ok());
  ExpectRejected(check(StrCat(R"({"exp":)", kNow - 30, "}")), "expired", "");
  ExpectRejected(check(StrCat(R"({"exp":)", kNow - 100000, "}")), "expired", "");
  EXPECT_TRUE(check(StrCat(R"({"exp":)", kNow + 100, R"(,"nbf":)", kNow + 30, "}")).ok());
  ExpectRejected(check(StrCat(R"({"exp":)", kNow + 100, R"(,"nbf":)", kNow + 31, "}")),
                 "not valid yet (nbf)", "");
  EXPECT_TRUE(check(R"({"exp":1699999970.5})").ok());  // NumericDate may have a fraction
  ExpectRejected(check(R"({"iss":"x"})"), "no numeric \"exp\"", "");
  ExpectRejected(check(R"({"exp":"tomorrow"})"), "no numeric \"exp\"", "");
  ExpectRejected(check(StrCat(R"({"exp":)", kNow + 100, R"(,"nbf":"now"})")), "\"nbf\" claim", "");
  // Skew 0: exp is exclusive.
  auto strict = Hs256("", "", 0);
  EXPECT_TRUE(
      strict
          ->Check(StrCat("Bearer ", Hs256Token(StrCat(R"({"exp":)", kNow + 1, "}"), kSecret)), "",
                  kNow)
          .ok());
  ExpectRejected(
      strict->Check(StrCat("Bearer ", Hs256Token(StrCat(R"({"exp":)", kNow, "}"), kSecret)), "",
                    kNow),
      "expired", "");
}

TEST_F(AuthTest, IssuerAndAudience) {
  auto auth = Hs256("https://idp.example", "kiln");
  auto check = [&](std::string claims) {
    const std::string token =
        Hs256Token(StrCat(R"({"exp":)", kNow + 60, ",", claims, "}"), kSecret);
    return std::make_pair(auth->Check(StrCat("Bearer ", token), "", kNow), token);
  };
  EXPECT_TRUE(check(R"("iss":"https://idp.example","aud":"kiln")").first.ok());
  EXPECT_TRUE(check(R"("iss":"https://idp.example","aud":["other","kiln"])").first.ok());
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"("iss":"https://idp.example","aud":"kiln-staging")", "audience"},
      {R"("iss":"https://idp.example","aud":["other","KILN"])", "audience"},
      {R"("iss":"https://idp.example","aud":[])", "audience"},
      {R"("iss":"https://idp.example","aud":7)", "audience"},
      {R"("iss":"https://idp.example")", "audience"},
      {R"("iss":"https://evil.example","aud":"kiln")", "issuer"},
      {R"("iss":["https://idp.example"],"aud":"kiln")", "issuer"},
      {R"("aud":"kiln")", "issuer"},
  };
  for (const auto& [claims, why] : bad) {
    auto [status, token] = check(claims);
    ExpectRejected(status, why, token);
    // The claim values are not echoed either.
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr("evil")));
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr("staging")));
  }
}

TEST_F(AuthTest, MalformedHeadersAndTokens) {
  auto auth = Hs256();
  const std::string good = Hs256Token(StrCat(R"({"exp":)", kNow + 60, "}"), kSecret);
  ASSERT_TRUE(auth->Check(StrCat("Bearer ", good), "", kNow).ok());
  const size_t d1 = good.find('.'), d2 = good.rfind('.');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "missing Authorization header"},
      {"   ", "missing Authorization header"},
      {good, "not 'Bearer <JWT>'"},
      {StrCat("Basic ", good), "not 'Bearer <JWT>'"},
      {"Bearer", "not 'Bearer <JWT>'"},
      {"Bearer ", "not 'Bearer <JWT>'"},
      {"Bearer ..", "header is not a JSON object"},
      {StrCat("Bearer ", good.substr(0, d2)), "not a JWT"},
      {StrCat("Bearer ", good, ".x"), "not a JWT"},
      {StrCat("Bearer ", good.substr(0, d1), "=", good.substr(d1)), "not valid base64url"},
      {StrCat("Bearer ", good, "="), "not valid base64url"},
      {StrCat("Bearer ", good.substr(0, d2 + 1), "a+b/"), "not valid base64url"},
      {StrCat("Bearer ", B64Url("not json"), good.substr(d1)), "header is not a JSON object"},
      {StrCat("Bearer ", B64Url("[1]"), good.substr(d1)), "header is not a JSON object"},
      {StrCat("Bearer ", B64Url(R"({"typ":"JWT"})"), good.substr(d1)), "has no \"alg\""},
      {StrCat("Bearer ", B64Url(R"({"alg":5})"), good.substr(d1)), "has no \"alg\""},
      {StrCat("Bearer ", B64Url(R"({"alg":"HS512"})"), good.substr(d1)), "not accepted"},
      {StrCat("Bearer ", Hs256Token("[]", kSecret)), "claims are not a JSON object"},
      {StrCat("Bearer ", Hs256Token(StrCat(R"({"exp":)", kNow + 60, "}"), kSecret,
                                    R"({"alg":"HS256","crit":["exp"]})")),
       "\"crit\""},
      // 20 000 levels of nesting in the (unauthenticated) header: refused, no crash.
      {StrCat("Bearer ", B64Url(std::string(20000, '[') + std::string(20000, ']')),
              good.substr(d1)),
       "header is not a JSON object"},
  };
  for (const auto& [header, why] : cases) {
    SCOPED_TRACE(header.substr(0, 60));
    ExpectRejected(auth->Check(header, "", kNow), why, header.size() > 7 ? header.substr(7) : "");
  }
  // Base64url with non-zero unused bits in the last character spells the same bytes as the
  // canonical form; only the canonical form is accepted.
  std::string sig = good.substr(d2 + 1);  // 43 characters: the last carries 2 unused bits
  ASSERT_EQ(sig.size(), 43u);
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const size_t last = std::string_view(alphabet).find(sig.back());
  std::string noncanonical = StrCat(good.substr(0, d2 + 1), sig.substr(0, 42), alphabet[last | 1]);
  ExpectRejected(auth->Check(StrCat("Bearer ", noncanonical), "", kNow), "not valid base64url",
                 noncanonical);
}

TEST_F(AuthTest, ApiKeysFromAFileWithComments) {
  AuthOptions o;
  o.mode = AuthOptions::kApiKey;
  o.api_keys_file = tmp_.Write("keys.txt",
                               "# production clients\n"
                               "k-3f9a1c77e2\n"
                               "\n"
                               "   k-with-spaces-around  \r\n"
                               "# k-commented-out\n"
                               "k-last-no-newline");
  auto auth = Make(o);
  for (const char* key : {"k-3f9a1c77e2", "k-with-spaces-around", "k-last-no-newline"}) {
    EXPECT_TRUE(auth->Check("", key, kNow).ok()) << key;
  }
  ExpectRejected(auth->Check("", "", kNow), "missing x-api-key header", "");
  // The Authorization header does not stand in for x-api-key.
  ExpectRejected(auth->Check("Bearer k-3f9a1c77e2", "", kNow), "missing x-api-key header", "");
  for (const char* wrong : {"k-3f9a1c77e", "k-3f9a1c77e20", "K-3F9A1C77E2", "# k-commented-out",
                            "k-commented-out", "# production clients"}) {
    ExpectRejected(auth->Check("", wrong, kNow), "API key is not accepted", wrong);
  }
}

TEST_F(AuthTest, NoneAcceptsEverything) {
  auto auth = Make(AuthOptions{});
  EXPECT_TRUE(auth->Check("", "", kNow).ok());
  EXPECT_TRUE(auth->Check("Bearer garbage", "whatever", kNow).ok());
}

TEST_F(AuthTest, CreateRefusesUnusableSettings) {
  auto create = [&](AuthOptions o) { return Authenticator::Create(Env::Default(), o).status(); };
  AuthOptions jwt;
  jwt.mode = AuthOptions::kJwt;
  EXPECT_THAT(std::string(create(jwt).message()),
              HasSubstr("needs an HS256 secret file or an RS256"));
  EXPECT_EQ(create(jwt).code(), absl::StatusCode::kInvalidArgument);

  AuthOptions o = jwt;
  o.jwt_hs256_secret_file = tmp_.Write("short.secret", "0123456789abcdef0123456789abcde\n");
  absl::Status s = create(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr(o.jwt_hs256_secret_file));
  EXPECT_THAT(std::string(s.message()), HasSubstr("31 bytes; HS256 needs at least 32"));

  o = jwt;
  o.jwt_hs256_secret_file = tmp_.File("absent.secret");
  s = create(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("absent.secret"));

  o = jwt;
  o.jwt_rs256_public_key_file = tmp_.Write("not.pem", "hello\n");
  s = create(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("not.pem"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("not a PEM public key"));

  Pkey ec(EVP_EC_gen("P-256"));
  o.jwt_rs256_public_key_file = tmp_.Write("ec.pem", PublicPem(ec.get()));
  EXPECT_THAT(std::string(create(o).message()), HasSubstr("ec.pem': not an RSA key"));

  Pkey small(EVP_RSA_gen(1024));
  o.jwt_rs256_public_key_file = tmp_.Write("small.pem", PublicPem(small.get()));
  EXPECT_THAT(std::string(create(o).message()),
              HasSubstr("small.pem': an RSA key of 1024 bits; RS256 needs at least 2048"));

  o = jwt;
  o.jwt_hs256_secret_file = tmp_.Write("hs.secret", kSecret);
  o.jwt_clock_skew_seconds = -1;
  EXPECT_THAT(std::string(create(o).message()), HasSubstr("clock skew must be >= 0"));

  AuthOptions keys;
  keys.mode = AuthOptions::kApiKey;
  EXPECT_THAT(std::string(create(keys).message()), HasSubstr("needs an API keys file"));
  keys.api_keys_file = tmp_.Write("empty.txt", "# nothing yet\n\n");
  s = create(keys);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("empty.txt': holds no keys"));

  // Settings the mode would ignore.
  AuthOptions none;
  none.jwt_audience = "kiln";
  EXPECT_THAT(std::string(create(none).message()), HasSubstr("the auth mode is not jwt"));
  keys.jwt_hs256_secret_file = o.jwt_hs256_secret_file;
  EXPECT_THAT(std::string(create(keys).message()), HasSubstr("the auth mode is not jwt"));
  jwt.jwt_hs256_secret_file = o.jwt_hs256_secret_file;
  jwt.api_keys_file = keys.api_keys_file;
  EXPECT_THAT(std::string(create(jwt).message()), HasSubstr("the auth mode is not api_key"));
}

TEST(RequiresAuthenticationTest, OnlyTheHealthProbesAreOpen) {
  EXPECT_FALSE(RequiresAuthentication("/v2/health/live"));
  EXPECT_FALSE(RequiresAuthentication("/v2/health/ready"));
  EXPECT_FALSE(RequiresAuthentication("/v2/health/ready?verbose=1"));
  for (const char* t :
       {"/v2/health/live/", "/v2/health/../models/m/infer", "/v2/health", "/v2", "/metrics",
        "/monitoring/prometheus/metrics", "/v1/models/m", "/v1/models/m:predict",
        "/v2/models/m/ready", "http://h/v2/health/live", "/V2/HEALTH/LIVE", ""}) {
    EXPECT_TRUE(RequiresAuthentication(t)) << t;
  }
}

}  // namespace
}  // namespace kiln::serving
