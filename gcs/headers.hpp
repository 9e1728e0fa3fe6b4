// Parsers for the response headers a GCS media read depends on: Content-Range, x-goog-hash,
// x-goog-generation and Retry-After.
//
// Values come from the network and are untrusted: each parser accepts exactly the grammar it
// documents (surrounding whitespace is trimmed) and answers anything else with an error of kind
// error_kind::protocol naming the header. Pure functions, thread-safe, no allocation beyond the
// error message.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "runtime/error.hpp"

namespace ringfetch::gcs {

struct content_range {
  bool satisfiable = true;       // false for "bytes */SIZE", the form a 416 carries
  std::uint64_t first = 0;       // inclusive byte positions; meaningful when satisfiable
  std::uint64_t last = 0;
  std::optional<std::uint64_t> complete_length;  // std::nullopt for "bytes A-B/*"

  std::uint64_t length() const noexcept { return satisfiable ? last - first + 1 : 0; }
};

// "bytes A-B/SIZE", "bytes A-B/*" or "bytes */SIZE" (RFC 9110 §14.4), with A <= B < SIZE.
result<content_range> parse_content_range(std::string_view value);

struct goog_hashes {
  std::optional<std::uint32_t> crc32c;
  std::optional<std::array<std::byte, 16>> md5;
};

// "crc32c=<b64>,md5=<b64>" in any order, either may be absent, unknown names ignored. Repeated
// header lines joined with ',' are accepted if they agree.
result<goog_hashes> parse_goog_hash(std::string_view value);

// A decimal, non-negative 64-bit generation number.
result<std::int64_t> parse_goog_generation(std::string_view value);

// Retry-After as delta-seconds or an HTTP-date (IMF-fixdate, RFC 850 or asctime form), turned
// into a wait from `now` clamped to [0, max_wait]: a date in the past means retry now, a huge
// value waits max_wait.
result<std::chrono::seconds> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now,
                                               std::chrono::seconds max_wait = std::chrono::seconds(60));

}  // namespace ringfetch::gcs
