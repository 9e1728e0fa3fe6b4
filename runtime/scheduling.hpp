// Moving a coroutine in time and space: yield to other ready work, or hop to another reactor.
#pragma once

#include <coroutine>

#include "runtime/reactor.hpp"

namespace ringfetch {

// Lets every other ready coroutine of this reactor run, and I/O be reaped, before continuing.
inline auto yield() noexcept {
  struct awaiter {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const { reactor::current()->schedule(h); }
    void await_resume() const noexcept {}
  };
  return awaiter{};
}

// Continues the coroutine on `target`'s thread (by message; no lock). Afterwards,
// reactor::current() is `target`. Everything the coroutine touches from then on must belong to
// `target` (or be thread-safe).
inline auto resume_on(reactor& target) noexcept {
  struct awaiter {
    reactor& target;
    bool await_ready() const noexcept { return reactor::current() == &target; }
    void await_suspend(std::coroutine_handle<> h) const { target.post([h] { h.resume(); }); }
    void await_resume() const noexcept {}
  };
  return awaiter{target};
}

}  // namespace ringfetch
