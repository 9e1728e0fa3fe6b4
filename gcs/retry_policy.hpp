// retry_policy: which GCS failures are worth another attempt, and how long to wait before it.
//
// Exponential backoff with full jitter (the wait before attempt n+1 is uniform in
// [0, min(max_delay, initial_delay × multiplier^n)]), bounded by a number of attempts and by a
// total time, whichever ends first. A server's Retry-After raises the wait to what it asked for
// (capped by max_retry_after). Retried: connection failures and resets, timeouts, and the HTTP
// statuses 408, 429, 500, 502, 503, 504. Never retried: cancellation, and every other status
// (401, 403, 404, 412 say something a retry cannot change).
//
// A retry_state belongs to one operation (a stat, or one ranged read that resumes where it
// stopped); not thread-safe. Pure logic: it computes waits, the caller sleeps.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>

#include "runtime/error.hpp"

namespace ringfetch::gcs {

struct retry_options {
  std::chrono::milliseconds initial_delay{100};
  double multiplier = 2.0;
  std::chrono::milliseconds max_delay{30'000};
  unsigned max_attempts = 6;                       // first attempt included; 0: no limit
  std::chrono::milliseconds total_time{120'000};   // from the first attempt; 0: no limit
  std::chrono::seconds max_retry_after{60};        // a longer Retry-After is capped to this
};

// Whether `e` is a failure another attempt may cure.
bool is_retryable(const error& e) noexcept;

class retry_state {
 public:
  using clock = std::chrono::steady_clock;

  // `seed` makes the jitter reproducible in tests; use a random one otherwise.
  retry_state(retry_options options, std::uint64_t seed, clock::time_point start = clock::now());

  // Called after a failed attempt. Returns how long to wait before the next attempt, or nullopt
  // when there is none: `e` is not retryable, the attempts are used up, or the wait would end
  // past the total time.
  std::optional<std::chrono::milliseconds> next_delay(
      const error& e, std::optional<std::chrono::seconds> retry_after = std::nullopt,
      clock::time_point now = clock::now());

  unsigned attempts() const noexcept { return attempts_; }  // failed attempts so far

 private:
  retry_options options_;
  clock::time_point start_;
  unsigned attempts_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace ringfetch::gcs
