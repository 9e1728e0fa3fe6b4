#include "gcs/jwt.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <vector>

#include "gcs/base64url.hpp"
#include "gcs/concat.hpp"
#include "http/openssl_errors.hpp"
#include "http/openssl_ptr.hpp"
#include "http/url.hpp"

namespace ringfetch::gcs {
namespace {

using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, http::openssl_deleter<EVP_MD_CTX_free>>;

error auth_failure(std::string_view what) {
  std::string message = concat("service-account key: ", what);
  if (std::string queued = http::drain_openssl_errors(); !queued.empty()) message += concat(" (", queued, ")");
  return error{.kind = error_kind::auth, .message = std::move(message)};
}

// A JSON string literal: the values come from a file we did not write.
std::string json_string(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20) {
      out += "\\u00";
      out += hex[byte >> 4];
      out += hex[byte & 15];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

// Without a callback OpenSSL would prompt on the terminal for an encrypted key's passphrase.
int refuse_passphrase(char*, int, int, void*) { return -1; }

result<http::evp_pkey_ptr> read_rsa_key(std::string_view pem) {
  // A PEM key is a few KiB; the bound keeps the length within BIO_new_mem_buf's int.
  if (pem.size() > max_credentials_file_size) return auth_failure("private_key is larger than a credentials file may be");
  ERR_clear_error();
  http::bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return auth_failure("out of memory reading the private key");
  http::evp_pkey_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr));
  if (!key) return auth_failure("private_key is not a readable unencrypted PEM private key");
  // RSA-PSS keys are RSA too, but they cannot make the PKCS#1 v1.5 signatures RS256 means.
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
    const char* type = EVP_PKEY_get0_type_name(key.get());
    return auth_failure(concat("private_key is of type ", type ? type : "unknown", "; RS256 needs an RSA key"));
  }
  return key;
}

result<std::string> sign_rs256(EVP_PKEY* key, std::string_view input) {
  ERR_clear_error();
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  if (!ctx) return auth_failure("out of memory signing the assertion");
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1)
    return auth_failure("cannot set up RS256 signing");
  auto data = reinterpret_cast<const unsigned char*>(input.data());
  std::size_t length = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &length, data, input.size()) != 1) return auth_failure("cannot sign the assertion");
  std::vector<std::byte> signature(length);
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, data, input.size()) != 1)
    return auth_failure("cannot sign the assertion");
  signature.resize(length);
  return base64url_encode(signature);
}

}  // namespace

result<std::string> make_jwt_assertion(const service_account_key& key, std::chrono::system_clock::time_point now,
                                       std::string_view scope) {
  auto rsa = read_rsa_key(key.private_key);
  if (!rsa) return std::move(rsa).error();

  std::string header = R"({"alg":"RS256","typ":"JWT")";
  if (!key.private_key_id.empty()) header += concat(R"(,"kid":)", json_string(key.private_key_id));
  header += '}';
  const auto iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const auto exp = iat + jwt_lifetime.count();
  std::string claims = concat(R"({"iss":)", json_string(key.client_email), R"(,"scope":)", json_string(scope),
                              R"(,"aud":)", json_string(key.token_uri), R"(,"iat":)", std::to_string(iat),
                              R"(,"exp":)", std::to_string(exp), "}");

  std::string signing_input = concat(base64url_encode(header), ".", base64url_encode(claims));
  auto signature = sign_rs256(rsa->get(), signing_input);
  if (!signature) return std::move(signature).error();
  return concat(signing_input, ".", *signature);
}

std::string jwt_bearer_form(std::string_view assertion) {
  return concat("grant_type=", http::percent_encode("urn:ietf:params:oauth:grant-type:jwt-bearer"),
                "&assertion=", http::percent_encode(assertion));
}

std::string refresh_token_form(const authorized_user& user) {
  return concat("grant_type=refresh_token&client_id=", http::percent_encode(user.client_id),
                "&client_secret=", http::percent_encode(user.client_secret),
                "&refresh_token=", http::percent_encode(user.refresh_token));
}

}  // namespace ringfetch::gcs
