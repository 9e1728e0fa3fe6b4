#include "gcs/access_token.hpp"

#include <simdjson.h>

#include <algorithm>

#include "gcs/concat.hpp"

namespace ringfetch::gcs {
namespace {

namespace dom = simdjson::dom;

constexpr std::string_view context = "token response";
constexpr std::int64_t max_expires_in = 24 * 60 * 60;

error protocol(std::string_view what) {
  return error{.kind = error_kind::protocol, .message = concat(context, ": ", what)};
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

// The OAuth error code ("invalid_grant") is a fixed word from the server, not a secret; shown
// shortened and printable only. error_description is left out: it is free text.
std::string printable_prefix(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 40)) out += c >= 0x20 && c < 0x7f ? c : '?';
  return out;
}

}  // namespace

result<access_token> parse_access_token(std::string_view json, access_token::clock::time_point requested_at) {
  dom::parser parser;
  dom::element root;
  if (auto err = parser.parse(json.data(), json.size()).get(root); err != simdjson::SUCCESS)
    return protocol(concat("invalid JSON (", simdjson::error_message(err), ")"));
  dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) return protocol("not a JSON object");

  dom::element value;
  if (object.at_key("access_token").get(value) != simdjson::SUCCESS) {
    std::string_view code;
    if (object.at_key("error").get_string().get(code) == simdjson::SUCCESS)
      return error{.kind = error_kind::auth, .message = concat(context, ": the token endpoint refused the credentials ('",
                                                               printable_prefix(code), "')")};
    return protocol("field 'access_token' is missing");
  }
  std::string_view token;
  if (value.get_string().get(token) != simdjson::SUCCESS) return protocol("field 'access_token' is not a string");
  if (token.empty()) return protocol("field 'access_token' is empty");
  // The token goes into a header line: a CR or LF in it would split the request.
  if (std::any_of(token.begin(), token.end(), [](char c) { return static_cast<unsigned char>(c) < 0x21 || c == 0x7f; }))
    return protocol("field 'access_token' holds characters a header cannot carry");

  if (object.at_key("expires_in").get(value) != simdjson::SUCCESS) return protocol("field 'expires_in' is missing");
  std::int64_t seconds = 0;
  if (value.get_int64().get(seconds) != simdjson::SUCCESS) return protocol("field 'expires_in' is not an integer");
  if (seconds < 0) return protocol("field 'expires_in' is negative");
  if (seconds > max_expires_in) return protocol("field 'expires_in' is longer than a day");

  if (object.at_key("token_type").get(value) == simdjson::SUCCESS) {
    std::string_view type;
    if (value.get_string().get(type) != simdjson::SUCCESS) return protocol("field 'token_type' is not a string");
    if (!equals_ignoring_case(type, "Bearer")) return protocol("field 'token_type' is not 'Bearer'");
  }
  return access_token{.value = std::string(token), .expires = requested_at + std::chrono::seconds(seconds)};
}

void token_cache::store(access_token token, clock::time_point now) {
  const auto lifetime = std::max(token.expires - now, clock::duration::zero());
  refresh_at_ = token.expires - std::min(margin_, lifetime / 2);
  token_ = std::move(token);
}

bool token_cache::needs_refresh(clock::time_point now) const noexcept {
  // "Less than the margin remains" is strict: with exactly the margin left, the token is kept.
  return !token_ || now >= token_->expires || now > refresh_at_;
}

std::optional<std::string_view> token_cache::usable_token(clock::time_point now) const noexcept {
  if (!token_ || now >= token_->expires) return std::nullopt;
  return std::string_view(token_->value);
}

}  // namespace ringfetch::gcs
