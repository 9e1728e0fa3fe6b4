// OAuth access tokens: parsing a token endpoint's (or the GCE metadata server's) answer
// {"access_token":"...","expires_in":3599,"token_type":"Bearer"}, and the cache logic that says
// when a token must be refreshed. Pure: the caller passes the time, so tests drive the clock.
//
// Errors name the field, never the token. An OAuth error document ({"error":"invalid_grant"})
// in place of a token is error_kind::auth (the credentials were refused); any other malformed
// answer is error_kind::protocol. Thread-safe parse; token_cache is a plain value, used by one
// thread at a time.
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/error.hpp"

namespace ringfetch::gcs {

struct access_token {
  using clock = std::chrono::steady_clock;
  std::string value{};          // secret: goes in "Authorization: Bearer <value>" and nowhere else
  clock::time_point expires{};
};

// `requested_at` is when the request was sent (not when the answer arrived), so the computed
// expiry errs early. expires_in must be a non-negative integer no larger than a day; token_type,
// when present, must be Bearer (any case).
result<access_token> parse_access_token(std::string_view json, access_token::clock::time_point requested_at);

// Holds the current token and decides when to fetch the next one: a token is refreshed once
// less than `refresh_margin` of its life remains (a request that starts with it then still has
// time to finish), or once half its lifetime has passed for a token that lives less than twice
// the margin, so a short-lived token is not refreshed on every use.
class token_cache {
 public:
  using clock = access_token::clock;
  static constexpr std::chrono::seconds default_refresh_margin{5 * 60};

  // A negative margin counts as zero (refresh only once the token has expired).
  explicit token_cache(clock::duration refresh_margin = default_refresh_margin)
      : margin_(std::max(refresh_margin, clock::duration::zero())) {}

  // `now` is when the token was received: it dates the token's lifetime.
  void store(access_token token, clock::time_point now);
  // Forgets the token (after a 401, say): needs_refresh() is then true.
  void clear() noexcept { token_.reset(); }

  // True when there is no token or it is due for refresh.
  bool needs_refresh(clock::time_point now) const noexcept;
  // The token while it has not expired (it may be due for refresh yet still usable while the
  // refresh runs); std::nullopt otherwise. Valid until the next store() or clear().
  std::optional<std::string_view> usable_token(clock::time_point now) const noexcept;

 private:
  clock::duration margin_;
  std::optional<access_token> token_;
  clock::time_point refresh_at_{};
};

}  // namespace ringfetch::gcs
