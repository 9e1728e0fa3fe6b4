// mpsc_queue: a lock-free intrusive queue, many producer threads, one consumer (the reactor).
//
// Dmitry Vyukov's non-blocking MPSC algorithm: push is one atomic exchange plus one store, so a
// thread posting work to a reactor never takes a lock. pop() may briefly return nullptr while a
// producer is between its two steps; that producer then wakes the reactor again (see
// reactor::post), so no message is ever stranded.
#pragma once

#include <atomic>

namespace ringfetch {

struct mpsc_node {
  std::atomic<mpsc_node*> next{nullptr};
};

class mpsc_queue {
 public:
  mpsc_queue() noexcept : head_(&stub_), tail_(&stub_) {}
  mpsc_queue(const mpsc_queue&) = delete;
  mpsc_queue& operator=(const mpsc_queue&) = delete;

  // Any thread.
  void push(mpsc_node* node) noexcept {
    node->next.store(nullptr, std::memory_order_relaxed);
    mpsc_node* prev = head_.exchange(node, std::memory_order_acq_rel);
    prev->next.store(node, std::memory_order_release);
  }

  // Consumer thread only.
  mpsc_node* pop() noexcept {
    mpsc_node* tail = tail_;
    mpsc_node* next = tail->next.load(std::memory_order_acquire);
    if (tail == &stub_) {
      if (next == nullptr) return nullptr;
      tail_ = next;
      tail = next;
      next = next->next.load(std::memory_order_acquire);
    }
    if (next != nullptr) {
      tail_ = next;
      return tail;
    }
    if (tail != head_.load(std::memory_order_acquire)) return nullptr;  // a push is half done
    push(&stub_);
    next = tail->next.load(std::memory_order_acquire);
    if (next != nullptr) {
      tail_ = next;
      return tail;
    }
    return nullptr;
  }

 private:
  std::atomic<mpsc_node*> head_;
  mpsc_node* tail_;
  mpsc_node stub_;
};

}  // namespace ringfetch
