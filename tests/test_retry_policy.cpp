#include <doctest/doctest.h>

#include <chrono>

#include "gcs/retry_policy.hpp"

using namespace ringfetch;
using namespace ringfetch::gcs;
using namespace std::chrono_literals;

namespace {

error status(int code) {
  return error{.kind = error_kind::http_status, .message = "status", .http_status = code};
}

}  // namespace

TEST_SUITE("retry_policy") {
  TEST_CASE("transient failures are retried, answers a retry cannot change are not") {
    for (int code : {408, 429, 500, 502, 503, 504}) {
      CAPTURE(code);
      CHECK(is_retryable(status(code)));
    }
    for (int code : {400, 401, 403, 404, 412, 416}) {
      CAPTURE(code);
      CHECK_FALSE(is_retryable(status(code)));
    }
    CHECK(is_retryable(error{.kind = error_kind::transport, .message = "reset"}));
    CHECK(is_retryable(error{.kind = error_kind::timeout, .message = "idle"}));
    CHECK_FALSE(is_retryable(error{.kind = error_kind::cancelled, .message = "seek"}));
    CHECK_FALSE(is_retryable(error{.kind = error_kind::protocol, .message = "bad frame"}));
    CHECK(is_retryable(error{.kind = error_kind::protocol, .message = "refused", .not_processed = true}));
  }

  TEST_CASE("waits are full-jitter exponential, capped, and stop after the last attempt") {
    const retry_options o{.initial_delay = 100ms, .multiplier = 2.0, .max_delay = 1'000ms,
                          .max_attempts = 8, .total_time = 0ms};
    const auto start = retry_state::clock::now();
    // Over many seeds, each wait lies in [0, ceiling] and the largest seen approaches the ceiling.
    std::chrono::milliseconds largest[7]{};
    for (std::uint64_t seed = 0; seed < 300; ++seed) {
      retry_state r(o, seed, start);
      for (int n = 0; n < 7; ++n) {
        auto d = r.next_delay(status(503), std::nullopt, start);
        REQUIRE(d);
        const auto ceiling = std::min<std::chrono::milliseconds>(100ms * (1 << n), 1'000ms);
        CHECK(*d >= 0ms);
        CHECK(*d <= ceiling);
        largest[n] = std::max(largest[n], *d);
      }
      CHECK_FALSE(r.next_delay(status(503), std::nullopt, start));  // the 8th attempt was the last
      CHECK(r.attempts() == 8);
    }
    CHECK(largest[0] > 80ms);
    CHECK(largest[3] > 640ms);
    CHECK(largest[6] > 800ms);  // capped at 1 s, not 6.4 s
  }

  TEST_CASE("the same seed gives the same waits") {
    retry_state a({}, 42), b({}, 42), c({}, 43);
    bool differs = false;
    for (int n = 0; n < 5; ++n) {
      auto x = a.next_delay(status(500));
      auto y = b.next_delay(status(500));
      auto z = c.next_delay(status(500));
      REQUIRE(x);
      CHECK(x == y);
      differs = differs || x != z;
    }
    CHECK(differs);
  }

  TEST_CASE("Retry-After raises the wait, within its cap") {
    retry_state r({.initial_delay = 10ms, .total_time = 0ms, .max_retry_after = 5s}, 1);
    CHECK(r.next_delay(status(429), 2s) == std::chrono::milliseconds(2000));
    CHECK(r.next_delay(status(429), 3600s) == std::chrono::milliseconds(5000));
  }

  TEST_CASE("no retry is scheduled past the total time") {
    const auto start = retry_state::clock::now();
    retry_state r({.initial_delay = 100ms, .max_attempts = 0, .total_time = 1'000ms}, 7, start);
    CHECK(r.next_delay(status(503), std::nullopt, start));
    CHECK_FALSE(r.next_delay(status(503), 2s, start));                   // would end at 2 s
    CHECK_FALSE(r.next_delay(status(503), std::nullopt, start + 1'001ms));  // already past
  }

  TEST_CASE("a non-retryable failure ends the retries at once") {
    retry_state r({}, 3);
    CHECK_FALSE(r.next_delay(status(404)));
    CHECK(r.attempts() == 1);
  }
}
