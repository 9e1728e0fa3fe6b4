#include "gcs/headers.hpp"

#include <algorithm>

#include "gcs/base64.hpp"
#include "gcs/concat.hpp"
#include "gcs/crc32c.hpp"
#include "gcs/decimal.hpp"
#include "gcs/timestamps.hpp"

namespace ringfetch::gcs {
namespace {

error protocol(std::string_view header, std::string_view value, std::string_view why) {
  error e;
  e.kind = error_kind::protocol;
  e.message = concat(header, " '", value.substr(0, 100), "': ", why);
  return e;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

bool all_digits(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

result<content_range> parse_content_range(std::string_view raw) {
  constexpr std::string_view header = "Content-Range";
  std::string_view value = trim(raw);
  if (value.size() < 6 || !iequals(value.substr(0, 5), "bytes") || value[5] != ' ')
    return protocol(header, raw, "expected 'bytes '");
  std::string_view spec = trim(value.substr(6));
  std::size_t slash = spec.find('/');
  if (slash == std::string_view::npos) return protocol(header, raw, "expected '/' before the length");
  std::string_view range = spec.substr(0, slash), total = spec.substr(slash + 1);

  content_range out;
  if (total != "*") {
    out.complete_length = decimal(total);
    if (!out.complete_length) return protocol(header, raw, "bad complete length");
  }
  if (range == "*") {
    if (!out.complete_length) return protocol(header, raw, "'*/*' says nothing");
    out.satisfiable = false;
    return out;
  }
  std::size_t dash = range.find('-');
  if (dash == std::string_view::npos) return protocol(header, raw, "expected 'first-last'");
  auto first = decimal(range.substr(0, dash)), last = decimal(range.substr(dash + 1));
  if (!first || !last) return protocol(header, raw, "bad byte position");
  if (*first > *last) return protocol(header, raw, "first byte after last byte");
  if (out.complete_length && *last >= *out.complete_length)
    return protocol(header, raw, "last byte past the complete length");
  out.first = *first;
  out.last = *last;
  return out;
}

result<goog_hashes> parse_goog_hash(std::string_view raw) {
  constexpr std::string_view header = "x-goog-hash";
  goog_hashes out;
  std::string_view rest = raw;
  while (true) {
    std::size_t comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    if (!item.empty()) {
      // The value is base64 and may itself end in '=': split at the first one.
      std::size_t eq = item.find('=');
      if (eq == std::string_view::npos || eq == 0) return protocol(header, raw, "expected name=value");
      std::string_view name = item.substr(0, eq), encoded = item.substr(eq + 1);
      if (iequals(name, "crc32c")) {
        auto crc = crc32c_from_base64(encoded);
        if (!crc) return protocol(header, raw, "crc32c is not base64 of 4 bytes");
        if (out.crc32c && *out.crc32c != *crc) return protocol(header, raw, "two different crc32c values");
        out.crc32c = *crc;
      } else if (iequals(name, "md5")) {
        auto bytes = base64_decode(encoded);
        if (!bytes || bytes->size() != 16) return protocol(header, raw, "md5 is not base64 of 16 bytes");
        std::array<std::byte, 16> md5{};
        std::copy(bytes->begin(), bytes->end(), md5.begin());
        if (out.md5 && *out.md5 != md5) return protocol(header, raw, "two different md5 values");
        out.md5 = md5;
      }
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

result<std::int64_t> parse_goog_generation(std::string_view raw) {
  auto value = decimal(trim(raw));
  if (!value || *value > static_cast<std::uint64_t>(INT64_MAX))
    return protocol("x-goog-generation", raw, "expected a non-negative 64-bit decimal number");
  return static_cast<std::int64_t>(*value);
}

result<std::chrono::seconds> parse_retry_after(std::string_view raw, std::chrono::system_clock::time_point now,
                                               std::chrono::seconds max_wait) {
  using namespace std::chrono;
  std::string_view value = trim(raw);
  if (all_digits(value)) {
    // Too many digits for 64 bits is still "a very long time": clamp, do not refuse.
    auto delta = decimal(value);
    if (!delta || *delta > static_cast<std::uint64_t>(max_wait.count())) return max_wait;
    return seconds(static_cast<seconds::rep>(*delta));
  }
  auto when = parse_http_date(value);
  if (!when) return protocol("Retry-After", raw, "neither delta-seconds nor an HTTP-date");
  if (*when <= now) return seconds(0);
  auto wait = ceil<seconds>(*when - now);
  return std::min(wait, max_wait);
}

}  // namespace ringfetch::gcs
