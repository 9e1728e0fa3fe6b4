#include "gcs/retry_policy.hpp"

#include <algorithm>
#include <cmath>

namespace ringfetch::gcs {

bool is_retryable(const error& e) noexcept {
  switch (e.kind) {
    case error_kind::transport:
    case error_kind::timeout:
      return true;
    case error_kind::http_status:
      switch (e.http_status) {
        case 408: case 429: case 500: case 502: case 503: case 504:
          return true;
        default:
          return false;
      }
    default:
      // An HTTP/2 stream the server never processed is safe to send again, whatever the kind.
      return e.not_processed;
  }
}

retry_state::retry_state(retry_options options, std::uint64_t seed, clock::time_point start)
    : options_(options), start_(start), rng_(seed) {}

std::optional<std::chrono::milliseconds> retry_state::next_delay(
    const error& e, std::optional<std::chrono::seconds> retry_after, clock::time_point now) {
  ++attempts_;
  if (!is_retryable(e)) return std::nullopt;
  if (options_.max_attempts != 0 && attempts_ >= options_.max_attempts) return std::nullopt;
  // The ceiling grows as initial × multiplier^(n-1), computed in double so it cannot overflow.
  const double grown = static_cast<double>(options_.initial_delay.count()) *
                       std::pow(std::max(1.0, options_.multiplier), attempts_ - 1);
  const double ceiling = std::min(grown, static_cast<double>(options_.max_delay.count()));
  std::uniform_real_distribution<double> jitter(0.0, std::max(0.0, ceiling));
  std::chrono::milliseconds delay{static_cast<std::int64_t>(jitter(rng_))};
  if (retry_after) {
    const auto asked = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::min(*retry_after, options_.max_retry_after));
    delay = std::max(delay, asked);
  }
  if (options_.total_time.count() != 0 && now + delay > start_ + options_.total_time) {
    return std::nullopt;
  }
  return delay;
}

}  // namespace ringfetch::gcs
