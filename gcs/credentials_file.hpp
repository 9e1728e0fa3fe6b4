// Google credentials files (what GOOGLE_APPLICATION_CREDENTIALS and gcloud's
// application_default_credentials.json hold), parsed into the two kinds ringfetch can use:
// a service-account key (signs its own JWT assertions) or an authorized user (a refresh token).
//
// Errors are error_kind::auth and name the file and the field at fault. They never contain a
// secret: not the private key, client secret or refresh token, nor any other field's value
// (only the "type", which is not secret, shortened). Unknown fields are ignored. The functions
// are thread-safe and never throw for bad input.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "runtime/error.hpp"

namespace ringfetch::gcs {

inline constexpr std::string_view default_token_uri = "https://oauth2.googleapis.com/token";

// "type": "service_account". Required: client_email, private_key. The others are optional:
// an empty private_key_id means the JWT header carries no "kid".
struct service_account_key {
  std::string client_email{};
  std::string private_key{};     // PEM ("-----BEGIN PRIVATE KEY-----..."): secret
  std::string private_key_id{};
  std::string token_uri{default_token_uri};
  std::string project_id{};
};

// "type": "authorized_user" (gcloud auth application-default login). Required: client_id,
// client_secret, refresh_token.
struct authorized_user {
  std::string client_id{};
  std::string client_secret{};   // secret
  std::string refresh_token{};   // secret
  std::string token_uri{default_token_uri};
};

using credentials = std::variant<service_account_key, authorized_user>;

// Parses the JSON text of a credentials file; `source` (the path) only labels error messages.
result<credentials> parse_credentials(std::string_view json, std::string_view source);

// A real file is never this large; a larger one is refused rather than read into memory.
inline constexpr std::size_t max_credentials_file_size = 1 << 20;

// Reads and parses `path`. A missing, unreadable or oversized file is an auth error naming the
// path (with the system error in error::code when there is one).
result<credentials> load_credentials_file(const std::string& path);

}  // namespace ringfetch::gcs
