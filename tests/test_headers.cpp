#include <doctest/doctest.h>

#include <chrono>
#include <random>
#include <string>

#include "gcs/headers.hpp"
#include "gcs/timestamps.hpp"

using namespace ringfetch;
using namespace ringfetch::gcs;
using namespace std::chrono;

namespace {

const auto nov_6_1994 = sys_days(year(1994) / 11 / 6) + hours(8) + minutes(49) + seconds(37);

std::string random_text(std::mt19937_64& rng, std::string_view alphabet, std::size_t max_len) {
  std::string s(rng() % (max_len + 1), ' ');
  for (char& c : s) c = alphabet[rng() % alphabet.size()];
  return s;
}

}  // namespace

TEST_SUITE("headers") {
  TEST_CASE("Content-Range gives the inclusive range and the complete length") {
    auto r = parse_content_range("bytes 0-1048575/1073741824");
    REQUIRE(r);
    CHECK(r->satisfiable);
    CHECK(r->first == 0u);
    CHECK(r->last == 1048575u);
    CHECK(r->length() == 1048576u);
    CHECK(r->complete_length == 1073741824u);

    auto big = parse_content_range("  Bytes 4294967296-4294967296/4294967297 ");
    REQUIRE(big);
    CHECK(big->first == 4294967296u);
    CHECK(big->length() == 1u);

    auto unknown = parse_content_range("bytes 5-9/*");
    REQUIRE(unknown);
    CHECK_FALSE(unknown->complete_length);

    auto unsatisfied = parse_content_range("bytes */1000");
    REQUIRE(unsatisfied);
    CHECK_FALSE(unsatisfied->satisfiable);
    CHECK(unsatisfied->complete_length == 1000u);
    CHECK(unsatisfied->length() == 0u);
  }

  TEST_CASE("garbage Content-Range values are protocol errors saying why") {
    struct bad_case {
      const char* value;
      const char* says;
    };
    for (auto c : {bad_case{"", "expected 'bytes '"}, bad_case{"items 0-1/2", "expected 'bytes '"},
                   bad_case{"bytes0-1/2", "expected 'bytes '"}, bad_case{"bytes 0-1", "expected '/'"},
                   bad_case{"bytes 0-1/", "bad complete length"}, bad_case{"bytes 0-1/x", "bad complete length"},
                   bad_case{"bytes 01/2", "expected 'first-last'"}, bad_case{"bytes -1/2", "bad byte position"},
                   bad_case{"bytes 0-/2", "bad byte position"}, bad_case{"bytes +0-1/2", "bad byte position"},
                   bad_case{"bytes 0- 1/2", "bad byte position"}, bad_case{"bytes 5-4/10", "first byte after last"},
                   bad_case{"bytes 0-10/10", "past the complete length"}, bad_case{"bytes */*", "says nothing"},
                   bad_case{"bytes 0-18446744073709551616/5", "bad byte position"},
                   bad_case{"bytes 0-1/18446744073709551616", "bad complete length"}}) {
      CAPTURE(c.value);
      auto r = parse_content_range(c.value);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == error_kind::protocol);
      CHECK(r.error().message.find("Content-Range") != std::string::npos);
      CHECK_MESSAGE(r.error().message.find(c.says) != std::string::npos, r.error().message);
    }
  }

  TEST_CASE("x-goog-hash gives crc32c and md5 in any order and ignores unknown names") {
    auto h = parse_goog_hash("crc32c=4waSgw==,md5=1B2M2Y8AsgTpgAmY7PhCfg==");
    REQUIRE(h);
    CHECK(h->crc32c == 0xE3069283u);
    REQUIRE(h->md5);
    CHECK((*h->md5)[0] == std::byte{0xD4});
    auto reversed = parse_goog_hash(" md5=1B2M2Y8AsgTpgAmY7PhCfg== , CRC32C=AAAAAA== ,sha256=abc");
    REQUIRE(reversed);
    CHECK(reversed->crc32c == 0u);
    CHECK(reversed->md5);
    auto composite = parse_goog_hash("crc32c=AAAAAA==");
    REQUIRE(composite);
    CHECK_FALSE(composite->md5);
    auto repeated = parse_goog_hash("crc32c=AAAAAA==, crc32c=AAAAAA==");
    REQUIRE(repeated);
    auto empty = parse_goog_hash("");
    REQUIRE(empty);
    CHECK_FALSE(empty->crc32c);
    for (const char* bad : {"crc32c=AAAA", "crc32c=", "crc32c", "=AAAAAA==", "md5=AAAAAA==",
                            "crc32c=AAAAAA==,crc32c=4waSgw==", "crc32c=AA AAA=="}) {
      CAPTURE(bad);
      auto r = parse_goog_hash(bad);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == error_kind::protocol);
      CHECK(r.error().message.find("x-goog-hash") != std::string::npos);
    }
  }

  TEST_CASE("x-goog-generation is a non-negative 64-bit number") {
    CHECK(parse_goog_generation("1700000000000000").value() == 1700000000000000);
    CHECK(parse_goog_generation(" 0 ").value() == 0);
    CHECK(parse_goog_generation("9223372036854775807").value() == INT64_MAX);
    for (const char* bad : {"", "-1", "9223372036854775808", "12a", "0x10", "1 2", "+1"}) {
      CAPTURE(bad);
      auto r = parse_goog_generation(bad);
      REQUIRE_FALSE(r);
      CHECK(r.error().message.find("x-goog-generation") != std::string::npos);
    }
  }

  TEST_CASE("Retry-After in seconds is clamped to the maximum wait") {
    auto now = system_clock::now();
    CHECK(parse_retry_after("0", now).value() == seconds(0));
    CHECK(parse_retry_after(" 7 ", now).value() == seconds(7));
    CHECK(parse_retry_after("3600", now).value() == seconds(60));
    CHECK(parse_retry_after("3600", now, seconds(7200)).value() == seconds(3600));
    CHECK(parse_retry_after("99999999999999999999999999", now).value() == seconds(60));
  }

  TEST_CASE("Retry-After as an HTTP-date waits until then, or not at all when it is past") {
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", nov_6_1994 - seconds(10)).value() == seconds(10));
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", nov_6_1994 - milliseconds(1500)).value() == seconds(2));
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", nov_6_1994 + hours(1)).value() == seconds(0));
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", nov_6_1994 - hours(5)).value() == seconds(60));
    for (const char* bad : {"", "soon", "-5", "1.5", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 31 Feb 1994 08:49:37 GMT"}) {
      CAPTURE(bad);
      auto r = parse_retry_after(bad, nov_6_1994);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == error_kind::protocol);
      CHECK(r.error().message.find("Retry-After") != std::string::npos);
    }
  }

  TEST_CASE("HTTP-dates parse in all three RFC 9110 forms") {
    CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == nov_6_1994);
    CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == nov_6_1994);
    CHECK(parse_http_date("Sun Nov  6 08:49:37 1994") == nov_6_1994);
    CHECK(parse_http_date("Thursday, 01-Jan-26 00:00:00 GMT") == sys_days(year(2026) / 1 / 1));
    for (const char* bad : {"Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
                            "Sunday, 06-Nov-94 08:49:37 UTC", "Sun Nov  6 08:49:37 94", "Sun Nov 36 08:49:37 1994",
                            "Sun, 00 Nov 1994 08:49:37 GMT"}) {
      CAPTURE(bad);
      CHECK_FALSE(parse_http_date(bad).has_value());
    }
  }

  TEST_CASE("dates outside what the clock can represent are refused, not overflowed") {
    CHECK_FALSE(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"));
    CHECK_FALSE(parse_http_date("Sat, 01 Jan 1000 00:00:00 GMT"));
    CHECK_FALSE(parse_rfc3339("9999-12-31T23:59:59Z"));
    CHECK(parse_rfc3339("2261-12-31T23:59:59Z"));
  }

  TEST_CASE("random and mutated header values never crash and stay within bounds") {
    std::mt19937_64 rng(42);
    const std::string_view alphabet = "0123456789-*/ ,=bytesBYTESGMTNovSun:+crc32cmd5AZaz\t\x01\xff";
    const std::string seeds[] = {"bytes 0-1048575/1073741824", "bytes */1000", "crc32c=4waSgw==,md5=1B2M2Y8AsgTpgAmY7PhCfg==",
                                 "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                                 "Sun Nov  6 08:49:37 1994", "1700000000000000"};
    auto now = system_clock::now();
    for (int round = 0; round < 20000; ++round) {
      std::string value;
      if (round % 2 == 0) {
        value = random_text(rng, alphabet, 40);
      } else {
        value = seeds[rng() % std::size(seeds)];
        for (int e = 0; e < 1 + static_cast<int>(rng() % 3); ++e) {
          if (value.empty()) break;
          std::size_t at = rng() % value.size();
          if (rng() % 2) value[at] = alphabet[rng() % alphabet.size()];
          else value.erase(at, 1);
        }
      }
      if (auto r = parse_content_range(value)) {
        if (r->satisfiable) {
          CHECK(r->first <= r->last);
          if (r->complete_length) CHECK(r->last < *r->complete_length);
        }
      }
      (void)parse_goog_hash(value);
      (void)parse_goog_generation(value);
      if (auto w = parse_retry_after(value, now)) {
        CHECK(*w >= seconds(0));
        CHECK(*w <= seconds(60));
      }
    }
  }
}
