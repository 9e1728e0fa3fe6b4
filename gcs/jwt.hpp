// The service-account flow's signed assertion (RFC 7523 JWT bearer grant, RS256) and the form
// bodies POSTed to a token endpoint. Pure and synchronous: the caller sends the request.
//
// Errors are error_kind::auth and never contain key material (OpenSSL's diagnostic codes are
// included; they describe the failure, not the key). Thread-safe; never throws for bad input.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "gcs/credentials_file.hpp"
#include "runtime/error.hpp"

namespace ringfetch::gcs {

inline constexpr std::string_view read_only_scope = "https://www.googleapis.com/auth/devstorage.read_only";
// Google refuses assertions valid for longer than an hour.
inline constexpr std::chrono::seconds jwt_lifetime{3600};

// header {"alg":"RS256","typ":"JWT","kid":private_key_id} (no kid when the id is empty),
// claims {"iss":client_email,"scope":scope,"aud":token_uri,"iat":now,"exp":now+3600},
// returned as base64url(header).base64url(claims).base64url(signature), signed with SHA-256 by
// the key's PEM private key. `now` is wall-clock time: Google checks iat against its own clock.
// An unreadable PEM, an encrypted key or a key that is not RSA is refused.
result<std::string> make_jwt_assertion(const service_account_key& key, std::chrono::system_clock::time_point now,
                                       std::string_view scope = read_only_scope);

// application/x-www-form-urlencoded bodies for the token endpoint. They hold secrets: never log
// them.
std::string jwt_bearer_form(std::string_view assertion);
std::string refresh_token_form(const authorized_user& user);

}  // namespace ringfetch::gcs
