// Steady-clock timers on the ring: `co_await sleep_for(10ms)`.
//
// A sleep is an IORING_OP_TIMEOUT with an absolute CLOCK_MONOTONIC expiry (std::chrono's
// steady_clock on Linux), so no thread and no timer fd is involved. It returns success when the
// time has come, ECANCELED when cancelled through its cancel source or by reactor shutdown.
#pragma once

#include <chrono>

#include "runtime/io_op.hpp"
#include "runtime/result.hpp"

namespace ringfetch {

class sleep_until final : public io_op {
 public:
  explicit sleep_until(time_point when, cancel_source* cancel = nullptr)
      : io_op({.cancel = cancel}) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
    if (ns < 0) ns = 0;
    ts_ = {.tv_sec = ns / 1'000'000'000, .tv_nsec = ns % 1'000'000'000};
  }
  io_result<void> await_resume() const {
    int r = result();
    if (r == -ETIME || r >= 0) return {};
    return errno_code(r);
  }

 private:
  void prep(io_uring_sqe* sqe) override { io_uring_prep_timeout(sqe, &ts_, 0, IORING_TIMEOUT_ABS); }
  __kernel_timespec ts_{};
};

inline sleep_until sleep_for(steady_clock::duration d, cancel_source* cancel = nullptr) {
  return sleep_until(steady_clock::now() + d, cancel);
}

}  // namespace ringfetch
