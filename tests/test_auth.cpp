#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <simdjson.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gcs/access_token.hpp"
#include "gcs/base64url.hpp"
#include "gcs/credentials_file.hpp"
#include "gcs/jwt.hpp"

using namespace ringfetch;
using namespace ringfetch::gcs;
using namespace std::chrono_literals;

namespace {

// Secrets planted in the fixtures: no error message may ever contain them.
constexpr std::string_view key_secret = "MIIEsecretKEYmaterial";
constexpr std::string_view client_secret = "d-FL95Q19q7MQmFpd7hHD0Ty";
constexpr std::string_view refresh_secret = "1//0refreshSECRET";
constexpr std::string_view token_secret = "ya29.a0AfH6SMBtokenSECRET";

const std::string service_account_json = R"({
  "type": "service_account",
  "project_id": "ringfetch-test",
  "private_key_id": "8f2c1d",
  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEsecretKEYmaterial\n-----END PRIVATE KEY-----\n",
  "client_email": "reader@ringfetch-test.iam.gserviceaccount.com",
  "client_id": "1234",
  "token_uri": "https://oauth2.example.test/token"
})";

const std::string authorized_user_json = R"({
  "type": "authorized_user",
  "client_id": "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com",
  "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty",
  "refresh_token": "1//0refreshSECRET"
})";

void check_no_secret(const error& e) {
  CAPTURE(e.message);
  for (std::string_view secret : {key_secret, client_secret, refresh_secret, token_secret})
    CHECK(e.message.find(secret) == std::string::npos);
}

// Replaces the first occurrence of `from` in `text`.
std::string replaced(std::string text, std::string_view from, std::string_view to) {
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

struct pkey_deleter {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

std::string private_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  return pem;
}

// RSA key generation is slow under sanitizers: one key for the whole suite.
EVP_PKEY* test_rsa_key() {
  static pkey_ptr key(EVP_RSA_gen(2048));
  REQUIRE(key);
  return key.get();
}

std::string decoded(std::string_view part) {
  auto bytes = base64url_decode(part);
  REQUIRE(bytes);
  return std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size());
}

std::vector<std::string_view> split_jwt(std::string_view jwt) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    auto dot = jwt.find('.', start);
    parts.push_back(jwt.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

bool verifies(EVP_PKEY* key, std::string_view signed_part, const std::vector<std::byte>& signature) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

struct temp_file {
  std::string path;
  explicit temp_file(std::string_view contents) {
    char name[] = "/tmp/ringfetch-auth-XXXXXX";
    int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    ::close(fd);
    path = name;
    std::ofstream(path, std::ios::binary) << contents;
  }
  ~temp_file() { std::remove(path.c_str()); }
};

}  // namespace

TEST_SUITE("auth") {
  TEST_CASE("a service-account key file parses into its fields") {
    auto parsed = parse_credentials(service_account_json, "sa.json");
    REQUIRE(parsed);
    auto* key = std::get_if<service_account_key>(&*parsed);
    REQUIRE(key);
    CHECK(key->client_email == "reader@ringfetch-test.iam.gserviceaccount.com");
    CHECK(key->private_key == "-----BEGIN PRIVATE KEY-----\nMIIEsecretKEYmaterial\n-----END PRIVATE KEY-----\n");
    CHECK(key->private_key_id == "8f2c1d");
    CHECK(key->token_uri == "https://oauth2.example.test/token");
    CHECK(key->project_id == "ringfetch-test");
  }

  TEST_CASE("a service-account key without token_uri uses Google's token endpoint") {
    auto parsed = parse_credentials(replaced(service_account_json, "\"token_uri\"", "\"ignored\""), "sa.json");
    REQUIRE(parsed);
    CHECK(std::get<service_account_key>(*parsed).token_uri == "https://oauth2.googleapis.com/token");
  }

  TEST_CASE("an authorized-user file parses into its fields with the default token endpoint") {
    auto parsed = parse_credentials(authorized_user_json, "adc.json");
    REQUIRE(parsed);
    auto* user = std::get_if<authorized_user>(&*parsed);
    REQUIRE(user);
    CHECK(user->client_id == "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com");
    CHECK(user->client_secret == client_secret);
    CHECK(user->refresh_token == refresh_secret);
    CHECK(user->token_uri == "https://oauth2.googleapis.com/token");
  }

  TEST_CASE("hostile credentials files are refused with the field and file named and no secret shown") {
    struct hostile {
      std::string json;
      std::string expected;  // part of the message
    };
    const hostile cases[] = {
        {replaced(service_account_json, "\"private_key\"", "\"private_kee\""), "field 'private_key' is missing"},
        {replaced(service_account_json, "\"client_email\"", "\"email\""), "field 'client_email' is missing"},
        {replaced(service_account_json, "\"reader@ringfetch-test.iam.gserviceaccount.com\"", "\"\""),
         "field 'client_email' is empty"},
        {replaced(service_account_json, "\"8f2c1d\"", "[\"MIIEsecretKEYmaterial\"]"), "field 'private_key_id' is not a string"},
        {replaced(service_account_json, "\"https://oauth2.example.test/token\"", "42"), "field 'token_uri' is not a string"},
        {replaced(service_account_json, "\"service_account\"", "\"external_account\""),
         "unsupported credentials type 'external_account'"},
        {replaced(service_account_json, "\"type\": \"service_account\",", ""), "field 'type' is missing"},
        {replaced(service_account_json, "\"service_account\"", "true"), "field 'type' is not a string"},
        {service_account_json.substr(0, service_account_json.find("MIIE") + 10), "invalid JSON"},
        {replaced(authorized_user_json, "\"client_secret\"", "\"secret\""), "field 'client_secret' is missing"},
        {replaced(authorized_user_json, "\"1//0refreshSECRET\"", "{\"v\": \"1//0refreshSECRET\"}"),
         "field 'refresh_token' is not a string"},
        {replaced(authorized_user_json, "\"client_id\"", "\"id\""), "field 'client_id' is missing"},
        {authorized_user_json.substr(0, authorized_user_json.find("refresh") + 25), "invalid JSON"},
        {"[\"d-FL95Q19q7MQmFpd7hHD0Ty\"]", "not a JSON object"},
        {"", "invalid JSON"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.json);
      auto parsed = parse_credentials(c.json, "/etc/creds/key.json");
      REQUIRE_FALSE(parsed);
      CHECK(parsed.error().kind == error_kind::auth);
      CAPTURE(parsed.error().message);
      CHECK(parsed.error().message.find(c.expected) != std::string::npos);
      CHECK(parsed.error().message.find("/etc/creds/key.json") != std::string::npos);
      check_no_secret(parsed.error());
    }
  }

  TEST_CASE("an unknown type is shown shortened and printable") {
    std::string type = "\\u0007" + std::string(100, 'x');
    auto parsed = parse_credentials(replaced(service_account_json, "service_account", type), "f");
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().message.find('\a') == std::string::npos);
    CHECK(parsed.error().message.find(std::string(50, 'x')) == std::string::npos);
  }

  TEST_CASE("a credentials file is read from disk") {
    temp_file file(authorized_user_json);
    auto loaded = load_credentials_file(file.path);
    REQUIRE(loaded);
    CHECK(std::holds_alternative<authorized_user>(*loaded));
  }

  TEST_CASE("missing, unreadable and oversized credentials files are auth errors naming the path") {
    SUBCASE("missing") {
      auto loaded = load_credentials_file("/nonexistent/ringfetch/key.json");
      REQUIRE_FALSE(loaded);
      CHECK(loaded.error().kind == error_kind::auth);
      CHECK(loaded.error().code == std::errc::no_such_file_or_directory);
      CHECK(loaded.error().message.find("/nonexistent/ringfetch/key.json") != std::string::npos);
    }
    SUBCASE("a directory") {
      auto loaded = load_credentials_file("/tmp");
      REQUIRE_FALSE(loaded);
      CHECK(loaded.error().kind == error_kind::auth);
      CHECK(loaded.error().code == std::errc::is_a_directory);
    }
    SUBCASE("larger than 1 MiB") {
      temp_file file(authorized_user_json + std::string(max_credentials_file_size, ' '));
      auto loaded = load_credentials_file(file.path);
      REQUIRE_FALSE(loaded);
      CHECK(loaded.error().kind == error_kind::auth);
      CHECK(loaded.error().message.find("larger than") != std::string::npos);
      CHECK(loaded.error().message.find(file.path) != std::string::npos);
    }
    SUBCASE("exactly 1 MiB is still read") {
      std::string text = authorized_user_json;
      text.append(max_credentials_file_size - text.size(), ' ');
      temp_file file(text);
      CHECK(load_credentials_file(file.path));
    }
  }

  TEST_CASE("base64url encodes without padding and decodes strictly") {
    const std::string_view bytes = "\xfb\xff\xfe";
    CHECK(base64url_encode(bytes) == "-__-");
    CHECK(base64url_encode(std::string_view("a")) == "YQ");
    CHECK(base64url_encode(std::string_view("ab")) == "YWI");
    CHECK(decoded("YWI") == "ab");
    CHECK(decoded("") == "");
    CHECK_FALSE(base64url_decode("YQ=="));
    CHECK_FALSE(base64url_decode("+/+/"));
    CHECK_FALSE(base64url_decode("YWJjZ"));
    CHECK_FALSE(base64url_decode("YR"));  // non-zero trailing bits
  }

  TEST_CASE("the JWT assertion is signed RS256 by the key and carries the header and claims Google expects") {
    service_account_key key{.client_email = "reader@p.iam.gserviceaccount.com", .private_key = private_pem(test_rsa_key()),
                            .private_key_id = "8f2c1d", .token_uri = "https://oauth2.example.test/token"};
    const auto now = std::chrono::system_clock::time_point(1'700'000'000s);
    auto jwt = make_jwt_assertion(key, now);
    REQUIRE(jwt);
    auto parts = split_jwt(*jwt);
    REQUIRE(parts.size() == 3);

    auto signature = base64url_decode(parts[2]);
    REQUIRE(signature);
    CHECK(signature->size() == 256);
    std::string_view signed_part(jwt->data(), parts[0].size() + 1 + parts[1].size());
    CHECK(verifies(test_rsa_key(), signed_part, *signature));
    std::string tampered = std::string(signed_part);
    tampered.back() ^= 1;
    CHECK_FALSE(verifies(test_rsa_key(), tampered, *signature));

    simdjson::dom::parser parser;
    simdjson::dom::element header;
    REQUIRE(parser.parse(decoded(parts[0])).get(header) == simdjson::SUCCESS);
    CHECK(std::string_view(header["alg"]) == "RS256");
    CHECK(std::string_view(header["typ"]) == "JWT");
    CHECK(std::string_view(header["kid"]) == "8f2c1d");

    simdjson::dom::parser claims_parser;
    simdjson::dom::element claims;
    REQUIRE(claims_parser.parse(decoded(parts[1])).get(claims) == simdjson::SUCCESS);
    CHECK(std::string_view(claims["iss"]) == "reader@p.iam.gserviceaccount.com");
    CHECK(std::string_view(claims["scope"]) == "https://www.googleapis.com/auth/devstorage.read_only");
    CHECK(std::string_view(claims["aud"]) == "https://oauth2.example.test/token");
    CHECK(std::int64_t(claims["iat"]) == 1'700'000'000);
    CHECK(std::int64_t(claims["exp"]) == 1'700'003'600);
  }

  TEST_CASE("the JWT takes a custom scope, escapes JSON and omits kid when the key has no id") {
    service_account_key key{.client_email = "a\"b\\c\n@x", .private_key = private_pem(test_rsa_key())};
    auto jwt = make_jwt_assertion(key, std::chrono::system_clock::time_point(10s), "https://scope/rw");
    REQUIRE(jwt);
    auto parts = split_jwt(*jwt);
    REQUIRE(parts.size() == 3);
    simdjson::dom::parser parser;
    simdjson::dom::element header;
    REQUIRE(parser.parse(decoded(parts[0])).get(header) == simdjson::SUCCESS);
    CHECK(header["kid"].error() == simdjson::NO_SUCH_FIELD);
    simdjson::dom::parser claims_parser;
    simdjson::dom::element claims;
    REQUIRE(claims_parser.parse(decoded(parts[1])).get(claims) == simdjson::SUCCESS);
    CHECK(std::string_view(claims["iss"]) == "a\"b\\c\n@x");
    CHECK(std::string_view(claims["scope"]) == "https://scope/rw");
    CHECK(std::string_view(claims["aud"]) == "https://oauth2.googleapis.com/token");
  }

  TEST_CASE("keys that cannot sign RS256 are refused without showing key material") {
    service_account_key key{.client_email = "a@b"};
    std::string expected;
    SUBCASE("an EC key") {
      pkey_ptr ec(EVP_EC_gen("P-256"));
      REQUIRE(ec);
      key.private_key = private_pem(ec.get());
      expected = "private_key is of type EC; RS256 needs an RSA key";
    }
    SUBCASE("an RSA-PSS key, which cannot make RS256's PKCS#1 v1.5 signatures") {
      EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA-PSS", nullptr);
      REQUIRE(ctx);
      EVP_PKEY* pss = nullptr;
      REQUIRE(EVP_PKEY_keygen_init(ctx) == 1);
      REQUIRE(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 1024) == 1);
      REQUIRE(EVP_PKEY_generate(ctx, &pss) == 1);
      EVP_PKEY_CTX_free(ctx);
      pkey_ptr owned(pss);
      key.private_key = private_pem(pss);
      expected = "private_key is of type RSA-PSS; RS256 needs an RSA key";
    }
    SUBCASE("not PEM at all") {
      key.private_key = "MIIEsecretKEYmaterial";
      expected = "not a readable unencrypted PEM private key";
    }
    SUBCASE("a truncated PEM") {
      std::string pem = private_pem(test_rsa_key());
      key.private_key = pem.substr(0, pem.size() / 2) + "MIIEsecretKEYmaterial";
      expected = "not a readable unencrypted PEM private key";
    }
    SUBCASE("an encrypted PEM, which must not prompt for a passphrase") {
      BIO* bio = BIO_new(BIO_s_mem());
      char passphrase[] = "hunter2";
      REQUIRE(PEM_write_bio_PrivateKey(bio, test_rsa_key(), EVP_aes_128_cbc(), nullptr, 0, nullptr, passphrase) == 1);
      char* data = nullptr;
      long size = BIO_get_mem_data(bio, &data);
      key.private_key.assign(data, static_cast<std::size_t>(size));
      BIO_free(bio);
      expected = "not a readable unencrypted PEM private key";
    }
    auto jwt = make_jwt_assertion(key, std::chrono::system_clock::now());
    REQUIRE_FALSE(jwt);
    CHECK(jwt.error().kind == error_kind::auth);
    CAPTURE(jwt.error().message);
    CHECK(jwt.error().message.find(expected) != std::string::npos);
    CHECK(jwt.error().message.find("BEGIN") == std::string::npos);
    const std::string body = key.private_key.substr(key.private_key.find('\n') + 1, 20);
    CHECK(jwt.error().message.find(body) == std::string::npos);
    check_no_secret(jwt.error());
  }

  TEST_CASE("token endpoint forms are percent-encoded") {
    CHECK(jwt_bearer_form("aa.bb.cc") ==
          "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=aa.bb.cc");
    authorized_user user{.client_id = "id 1", .client_secret = "s&=+", .refresh_token = "1//0x"};
    CHECK(refresh_token_form(user) ==
          "grant_type=refresh_token&client_id=id%201&client_secret=s%26%3D%2B&refresh_token=1%2F%2F0x");
  }

  TEST_CASE("a token response parses into the token and its expiry counted from the request") {
    const auto requested = access_token::clock::time_point(1000s);
    SUBCASE("from the token endpoint") {
      auto token = parse_access_token(R"({"access_token":"ya29.abc","expires_in":3599,"token_type":"Bearer"})", requested);
      REQUIRE(token);
      CHECK(token->value == "ya29.abc");
      CHECK(token->expires == requested + 3599s);
    }
    SUBCASE("from the metadata server, token_type in another case and extra fields") {
      auto token = parse_access_token(R"({"token_type":"bearer","expires_in":0,"access_token":"t","id":1})", requested);
      REQUIRE(token);
      CHECK(token->expires == requested);
    }
  }

  TEST_CASE("bad token responses name the field and never the token") {
    const std::string token = std::string(token_secret);
    struct bad {
      std::string json;
      std::string expected;
      error_kind kind = error_kind::protocol;
    };
    const bad cases[] = {
        {R"({"expires_in":3599})", "field 'access_token' is missing"},
        {R"({"access_token":42,"expires_in":3599})", "field 'access_token' is not a string"},
        {R"({"access_token":"","expires_in":3599})", "field 'access_token' is empty"},
        {R"({"access_token":")" + token + R"(\r\nX: y","expires_in":3599})", "characters a header cannot carry"},
        {R"({"access_token":")" + token + R"("})", "field 'expires_in' is missing"},
        {R"({"access_token":")" + token + R"(","expires_in":"3599"})", "field 'expires_in' is not an integer"},
        {R"({"access_token":")" + token + R"(","expires_in":35.5})", "field 'expires_in' is not an integer"},
        {R"({"access_token":")" + token + R"(","expires_in":-1})", "field 'expires_in' is negative"},
        {R"({"access_token":")" + token + R"(","expires_in":9223372036854775807})", "longer than a day"},
        {R"({"access_token":")" + token + R"(","expires_in":60,"token_type":"MAC"})", "field 'token_type' is not 'Bearer'"},
        {R"({"access_token":")" + token + R"(","expires_in":60,"token_type":1})", "field 'token_type' is not a string"},
        {R"({"access_token":")" + token, "invalid JSON"},
        {R"(["ya29.a0AfH6SMBtokenSECRET"])", "not a JSON object"},
        {R"({"error":"invalid_grant","error_description":"Bad d-FL95Q19q7MQmFpd7hHD0Ty"})", "refused the credentials ('invalid_grant')",
         error_kind::auth},
    };
    for (const auto& c : cases) {
      CAPTURE(c.json);
      auto parsed = parse_access_token(c.json, access_token::clock::now());
      REQUIRE_FALSE(parsed);
      CHECK(parsed.error().kind == c.kind);
      CAPTURE(parsed.error().message);
      CHECK(parsed.error().message.find(c.expected) != std::string::npos);
      check_no_secret(parsed.error());
    }
  }

  TEST_CASE("the cache refreshes once less than five minutes of the token remain") {
    using clock = token_cache::clock;
    const auto t0 = clock::time_point(100h);
    token_cache cache;
    CHECK(cache.needs_refresh(t0));
    CHECK_FALSE(cache.usable_token(t0));

    cache.store({.value = "tok", .expires = t0 + 3600s}, t0);
    CHECK_FALSE(cache.needs_refresh(t0));
    CHECK_FALSE(cache.needs_refresh(t0 + 3600s - 5min));
    CHECK(cache.needs_refresh(t0 + 3600s - 5min + 1ns));
    // Due for refresh, yet still good for a request while the refresh runs.
    REQUIRE(cache.usable_token(t0 + 3600s - 1ns));
    CHECK(*cache.usable_token(t0 + 3600s - 1ns) == "tok");
    CHECK_FALSE(cache.usable_token(t0 + 3600s));
    CHECK(cache.needs_refresh(t0 + 3600s));

    cache.clear();
    CHECK(cache.needs_refresh(t0));
    CHECK_FALSE(cache.usable_token(t0));
  }

  TEST_CASE("the refresh margin is configurable") {
    using clock = token_cache::clock;
    const auto t0 = clock::time_point(100h);
    token_cache cache(1min);
    cache.store({.value = "tok", .expires = t0 + 3600s}, t0);
    CHECK_FALSE(cache.needs_refresh(t0 + 3600s - 1min));
    CHECK(cache.needs_refresh(t0 + 3600s - 1min + 1ns));

    token_cache never_early(-1min);
    never_early.store({.value = "tok", .expires = t0 + 3600s}, t0);
    CHECK_FALSE(never_early.needs_refresh(t0 + 3600s - 1ns));
    CHECK(never_early.needs_refresh(t0 + 3600s));
  }

  TEST_CASE("a token living less than twice the margin is refreshed at half its life, not on every use") {
    using clock = token_cache::clock;
    const auto t0 = clock::time_point(100h);
    token_cache cache;
    cache.store({.value = "short", .expires = t0 + 4min}, t0);
    CHECK_FALSE(cache.needs_refresh(t0));
    CHECK_FALSE(cache.needs_refresh(t0 + 2min));
    CHECK(cache.needs_refresh(t0 + 2min + 1ns));
    SUBCASE("an already expired token needs refreshing at once") {
      cache.store({.value = "old", .expires = t0 - 1s}, t0);
      CHECK(cache.needs_refresh(t0));
      CHECK_FALSE(cache.usable_token(t0));
    }
  }
}
