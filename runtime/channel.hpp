// channel<T>: a bounded FIFO between coroutines of one reactor (the prefetch producer/consumer
// queue). Reactor-local.
//
// send() suspends while the channel is full and returns false if the channel is (or becomes)
// closed, dropping the value. recv() suspends while it is empty and returns nullopt once it is
// closed and drained. close() wakes everybody. Values handed from a waiting sender to a waiting
// receiver keep FIFO order.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <stdexcept>
#include <utility>

#include "runtime/waiter_list.hpp"

namespace ringfetch {

template <class T>
class channel {
 public:
  explicit channel(std::size_t capacity) : capacity_(capacity) {
    if (capacity == 0) throw std::invalid_argument("channel capacity must be at least 1");
  }
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;

  std::size_t size() const noexcept { return buffer_.size(); }
  std::size_t capacity() const noexcept { return capacity_; }
  bool closed() const noexcept { return closed_; }

  void close() {
    closed_ = true;
    receivers_.wake_all();
    while (detail::waiter_node* w = senders_.pop()) {
      static_cast<send_awaiter*>(w)->accepted = false;
      detail::waiter_list::wake(w);
    }
  }

  struct send_awaiter : detail::waiter_node {
    channel& ch;
    T value;
    bool accepted = false;

    bool await_ready() {
      accepted = ch.try_send(value);
      return accepted || ch.closed_;
    }
    void await_suspend(std::coroutine_handle<> h) noexcept {
      handle = h;
      ch.senders_.push(this);
    }
    bool await_resume() const noexcept { return accepted; }
  };

  struct recv_awaiter : detail::waiter_node {
    channel& ch;
    std::optional<T> slot;  // filled by the sender that woke us

    bool await_ready() const noexcept { return !ch.buffer_.empty() || ch.closed_; }
    void await_suspend(std::coroutine_handle<> h) noexcept {
      handle = h;
      ch.receivers_.push(this);
    }
    std::optional<T> await_resume() {
      if (slot) return std::move(slot);
      return ch.take();
    }
  };

  send_awaiter send(T value) { return send_awaiter{{}, *this, std::move(value)}; }
  recv_awaiter recv() noexcept { return recv_awaiter{{}, *this, std::nullopt}; }

  // Moves from `value` only when it returns true.
  bool try_send(T& value) {
    if (closed_) return false;
    // A receiver waits only while the buffer is empty: hand the value to it directly, so no
    // other coroutine can take it between the wake-up and the receiver running.
    if (detail::waiter_node* w = receivers_.pop()) {
      static_cast<recv_awaiter*>(w)->slot.emplace(std::move(value));
      detail::waiter_list::wake(w);
      return true;
    }
    if (buffer_.size() >= capacity_) return false;
    buffer_.push_back(std::move(value));
    return true;
  }
  std::optional<T> try_recv() { return take(); }

 private:
  std::optional<T> take() {
    if (buffer_.empty()) return std::nullopt;
    std::optional<T> out{std::move(buffer_.front())};
    buffer_.pop_front();
    // Room again: the oldest waiting sender's value moves in, keeping FIFO order.
    if (detail::waiter_node* w = senders_.pop()) {
      auto* s = static_cast<send_awaiter*>(w);
      buffer_.push_back(std::move(s->value));
      s->accepted = true;
      detail::waiter_list::wake(w);
    }
    return out;
  }

  std::size_t capacity_;
  std::deque<T> buffer_;
  bool closed_ = false;
  detail::waiter_list senders_;
  detail::waiter_list receivers_;
};

}  // namespace ringfetch
