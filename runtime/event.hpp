// event: a manual-reset flag coroutines wait on. Reactor-local: set(), reset() and waiting all
// happen on one reactor's thread (cross-reactor signalling goes through reactor::post).
#pragma once

#include "runtime/waiter_list.hpp"

namespace ringfetch {

class event {
 public:
  event() = default;
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  bool is_set() const noexcept { return set_; }
  // Wakes every waiter (on a later loop turn) and lets later waits pass at once.
  void set() {
    set_ = true;
    waiters_.wake_all();
  }
  void reset() noexcept { set_ = false; }

  auto wait() noexcept {
    struct awaiter : detail::waiter_node {
      event& ev;
      bool await_ready() const noexcept { return ev.set_; }
      void await_suspend(std::coroutine_handle<> h) noexcept {
        handle = h;
        ev.waiters_.push(this);
      }
      void await_resume() const noexcept {}
    };
    return awaiter{{}, *this};
  }

 private:
  bool set_ = false;
  detail::waiter_list waiters_;
};

}  // namespace ringfetch
