// semaphore: a counting semaphore for coroutines, FIFO and fair. Reactor-local.
//
// release() hands a permit straight to the oldest waiter (it never goes back to the count
// first), so a steady stream of try_acquire() callers cannot starve a waiting coroutine.
#pragma once

#include <cstddef>

#include "runtime/waiter_list.hpp"

namespace ringfetch {

class semaphore {
 public:
  explicit semaphore(std::size_t permits) noexcept : permits_(permits) {}
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;

  std::size_t available() const noexcept { return permits_; }

  bool try_acquire() noexcept {
    if (permits_ == 0) return false;
    --permits_;
    return true;
  }

  auto acquire() noexcept {
    struct awaiter : detail::waiter_node {
      semaphore& sem;
      bool await_ready() noexcept { return sem.try_acquire(); }
      void await_suspend(std::coroutine_handle<> h) noexcept {
        handle = h;
        sem.waiters_.push(this);
      }
      // False only for a wait ended by waiter_list::abandon(): no permit was taken.
      bool await_resume() const noexcept { return !abandoned; }
    };
    return awaiter{{}, *this};
  }

  void release(std::size_t n = 1) {
    for (; n > 0; --n) {
      if (detail::waiter_node* w = waiters_.pop()) detail::waiter_list::wake(w);
      else ++permits_;
    }
  }

 private:
  std::size_t permits_;
  detail::waiter_list waiters_;
};

}  // namespace ringfetch
