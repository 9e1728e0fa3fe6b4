// The two time formats GCS speaks: RFC 3339 in JSON resources ("updated") and HTTP-dates in
// headers (Retry-After). Pure functions; std::nullopt for anything that is not exactly one.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace ringfetch::gcs {

// "2026-11-22T10:00:00.000Z", "...+01:00", any number of fraction digits (nanoseconds kept).
// Leap seconds (":60") are refused.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

// An HTTP-date in any of the three forms RFC 9110 §5.6.7 requires recipients to accept:
// IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT"
// (two-digit years read as 1970-2069) and asctime "Sun Nov  6 08:49:37 1994".
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text);

}  // namespace ringfetch::gcs
