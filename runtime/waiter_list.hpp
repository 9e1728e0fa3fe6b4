// waiter_list: the FIFO of coroutines suspended on an event, semaphore or channel.
//
// Intrusive (each awaiter is its own node, living in the suspended coroutine's frame), so
// waiting never allocates. Waking schedules the coroutine on the current reactor's ready queue
// rather than resuming it inline, so set()/release()/send() never re-enter their caller.
#pragma once

#include <coroutine>

#include "runtime/reactor.hpp"

namespace ringfetch::detail {

struct waiter_node {
  std::coroutine_handle<> handle;
  waiter_node* next = nullptr;
};

class waiter_list {
 public:
  bool empty() const noexcept { return head_ == nullptr; }

  void push(waiter_node* w) noexcept {
    w->next = nullptr;
    if (tail_) tail_->next = w;
    else head_ = w;
    tail_ = w;
  }

  waiter_node* pop() noexcept {
    waiter_node* w = head_;
    if (w) {
      head_ = w->next;
      if (!head_) tail_ = nullptr;
    }
    return w;
  }

  static void wake(waiter_node* w) {
    reactor* r = reactor::current();
    if (r) r->schedule(w->handle);
    else w->handle.resume();
  }

  void wake_all() {
    while (waiter_node* w = pop()) wake(w);
  }

 private:
  waiter_node* head_ = nullptr;
  waiter_node* tail_ = nullptr;
};

}  // namespace ringfetch::detail
