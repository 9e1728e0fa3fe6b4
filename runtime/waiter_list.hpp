// waiter_list: the FIFO of coroutines suspended on an event, semaphore or channel.
//
// Intrusive (each awaiter is its own node, living in the suspended coroutine's frame), so
// waiting never allocates. Waking schedules the coroutine on the current reactor's ready queue
// rather than resuming it inline, so set()/release()/send() never re-enter their caller.
// A node unlinks itself when destroyed: a frame destroyed while it waits (a task torn down at
// shutdown) leaves no dangling pointer behind for a later set()/release() to follow.
#pragma once

#include <coroutine>

#include "runtime/reactor.hpp"

namespace ringfetch::detail {

class waiter_list;

struct waiter_node {
  waiter_node() = default;
  // Awaiters are returned by value before they wait: a copy is a fresh, unlinked node.
  waiter_node(const waiter_node&) noexcept {}
  waiter_node& operator=(const waiter_node&) = delete;
  inline ~waiter_node();

  std::coroutine_handle<> handle;
  waiter_node* prev = nullptr;
  waiter_node* next = nullptr;
  waiter_list* list = nullptr;  // set while linked
  bool abandoned = false;       // woken by abandon(), not by what it waited for
};

class waiter_list {
 public:
  waiter_list() = default;
  waiter_list(const waiter_list&) = delete;
  waiter_list& operator=(const waiter_list&) = delete;
  ~waiter_list() {
    while (pop() != nullptr) {
    }
  }

  bool empty() const noexcept { return head_ == nullptr; }

  void push(waiter_node* w) noexcept {
    w->list = this;
    w->next = nullptr;
    w->prev = tail_;
    if (tail_) tail_->next = w;
    else head_ = w;
    tail_ = w;
  }

  waiter_node* pop() noexcept {
    waiter_node* w = head_;
    if (w) remove(w);
    return w;
  }

  void remove(waiter_node* w) noexcept {
    if (w->prev) w->prev->next = w->next;
    else head_ = w->next;
    if (w->next) w->next->prev = w->prev;
    else tail_ = w->prev;
    w->prev = w->next = nullptr;
    w->list = nullptr;
  }

  // Wakes `w` without what it waits for (a cancelled wait), if it still waits; the awaiter sees
  // `abandoned`. Reactor thread of the list only.
  static bool abandon(waiter_node* w) {
    if (w->list == nullptr) return false;
    w->list->remove(w);
    w->abandoned = true;
    wake(w);
    return true;
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

waiter_node::~waiter_node() {
  if (list) list->remove(this);
}

}  // namespace ringfetch::detail
