// runtime: N reactors, one thread each, pinned one per CPU. Share nothing: work reaches a
// reactor only by message (reactor::post, lock-free), never through a shared lock.
//
// Thread contract: construct, stop and destroy from a plain thread (not from one of its own
// reactors). post/spawn_on/block_on may be called from any thread while it runs.
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "runtime/reactor.hpp"
#include "runtime/task.hpp"
#include "runtime/when_all.hpp"

namespace ringfetch {

struct start_sync;
struct drain_sync;

struct runtime_options {
  unsigned reactors = 0;    // 0: one per CPU this process may run on
  bool pin_threads = true;  // pin reactor i to the i-th allowed CPU (best effort)
  reactor_options reactor{};
};

class runtime {
 public:
  // Starts every reactor and returns once all are running. If one cannot start (io_uring
  // refused, say), the others are stopped and the reason is thrown.
  explicit runtime(runtime_options options = {});
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  unsigned size() const noexcept { return static_cast<unsigned>(reactors_.size()); }
  // Valid until stop(). Use only its thread-safe members from other threads.
  reactor& at(unsigned i) { return *reactors_.at(i); }
  // The CPU reactor i is pinned to, or -1.
  int cpu_of(unsigned i) const noexcept { return cpus_.at(i); }

  // Runs `fn` on reactor i. Throws std::logic_error once stop() has begun.
  template <class F>
  void post(unsigned i, F&& fn) {
    // Counted so that stop() cannot let a reactor die while this call still touches it.
    posting_.fetch_add(1, std::memory_order_seq_cst);
    struct leave {
      std::atomic<unsigned>& n;
      ~leave() { n.fetch_sub(1, std::memory_order_release); }
    } guard{posting_};
    check_running();
    at(i).post(std::forward<F>(fn));
  }

  // Starts `t` detached on reactor i.
  template <class T>
  void spawn_on(unsigned i, task<T> t) {
    reactor* r = &at(i);
    post(i, [r, t = std::move(t)]() mutable { r->spawn(std::move(t)); });
  }

  // From a plain thread: runs `t` on reactor i and blocks until it completes; returns its
  // value or rethrows its exception. If the runtime stops first (the task is destroyed
  // unfinished), throws std::runtime_error instead of waiting forever.
  template <class T>
  T block_on(unsigned i, task<T> t);

  // Stops every reactor: each cancels its in-flight operations, waits for the kernel to hand
  // back every buffer, destroys tasks that can no longer run, then the threads are joined.
  // Idempotent. Returns the number of detached-task failures seen over the runtime's life.
  std::size_t stop();

  // The first exception a detached task threw, on any reactor (valid after stop()).
  std::exception_ptr first_exception() const noexcept { return first_exception_; }

 private:
  void thread_main(unsigned i, reactor_options options, start_sync& sync);
  void check_running() const {
    if (stopped_.load(std::memory_order_seq_cst)) throw std::logic_error("runtime is stopped");
  }

  std::vector<std::unique_ptr<reactor>> reactors_;
  std::vector<int> cpus_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
  std::atomic<unsigned> posting_{0};  // post() calls under way
  std::atomic<std::size_t> failures_{0};
  std::exception_ptr first_exception_;
  std::exception_ptr start_error_;
  std::unique_ptr<drain_sync> drain_;
};

namespace detail {
template <class T>
struct block_state {
  std::optional<stored_t<T>> value;
  std::exception_ptr failure;
  std::atomic<bool> done{false};
};

// Lives in run_blocking's frame: if that frame is destroyed before the task finished (the
// runtime stopped, or the message that would start it was dropped), the blocked caller is
// released with an error instead of waiting forever.
template <class T>
struct block_guard {
  explicit block_guard(std::shared_ptr<block_state<T>> s) noexcept : state(std::move(s)) {}
  block_guard(block_guard&& o) noexcept : state(std::move(o.state)) {}
  block_guard& operator=(block_guard&&) = delete;
  ~block_guard() {
    if (!state || state->done.load(std::memory_order_acquire)) return;
    state->failure = std::make_exception_ptr(
        std::runtime_error("the runtime stopped before the task passed to block_on finished"));
    state->done.store(true, std::memory_order_release);
    state->done.notify_one();
  }
  std::shared_ptr<block_state<T>> state;
};

template <class T>
task<void> run_blocking(task<T> t, block_guard<T> guard) {
  auto& state = guard.state;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(t);
      state->value.emplace();
    } else {
      state->value.emplace(co_await std::move(t));
    }
  } catch (...) {
    state->failure = std::current_exception();
  }
  state->done.store(true, std::memory_order_release);
  state->done.notify_one();
}
}  // namespace detail

template <class T>
T runtime::block_on(unsigned i, task<T> t) {
  if (reactor::current() != nullptr) {
    throw std::logic_error("runtime::block_on called on a reactor thread: co_await the task");
  }
  auto state = std::make_shared<detail::block_state<T>>();
  spawn_on(i, detail::run_blocking(std::move(t), detail::block_guard<T>(state)));
  state->done.wait(false, std::memory_order_acquire);
  if (state->failure) std::rethrow_exception(state->failure);
  if constexpr (!std::is_void_v<T>) return std::move(*state->value);
}

}  // namespace ringfetch
