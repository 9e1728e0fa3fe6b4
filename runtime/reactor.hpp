// reactor: one io_uring, one thread, every coroutine that runs on that thread.
//
// Threading contract: a reactor is created, run and destroyed on one thread (its io_uring is set
// up with SINGLE_ISSUER + DEFER_TASKRUN, so only that thread may submit or wait). From any other
// thread only post(), request_stop() and the read-only accessors may be called. Coroutines find
// their reactor with reactor::current().
//
// Submission is batched: get_sqe() hands out SQEs that are submitted together once per loop turn
// (one io_uring_enter both submits and reaps). get_sqe() never returns null: when the SQ is full
// it submits what is queued and retries. Completions are reaped in batches into a local queue
// before any coroutine resumes, so a resumed coroutine may submit freely, even from inside
// get_sqe's flush. The CQ is sized generously and overflowed CQEs (IORING_FEAT_NODROP) are
// flushed by the reaper, so no completion is ever lost.
#pragma once

#include <liburing.h>

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/mpsc_queue.hpp"
#include "runtime/op_base.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace ringfetch {

class registered_arena;
class reactor;

struct reactor_options {
  unsigned sq_entries = 256;
  unsigned cq_entries = 0;      // 0: 8 × sq_entries, so bursts of completions never overflow
  bool single_issuer = true;    // IORING_SETUP_SINGLE_ISSUER; dropped if the kernel refuses it
  bool defer_taskrun = true;    // IORING_SETUP_DEFER_TASKRUN (needs single_issuer); same
  std::size_t arena_bytes = 0;  // size of this reactor's registered_arena; 0: no arena
  std::size_t arena_block = std::size_t{1} << 20;
  bool arena_register = true;   // false forces the arena's plain-memory fallback
};

struct reactor_stats {
  std::uint64_t sqes = 0;         // SQEs handed out by get_sqe
  std::uint64_t enters = 0;       // io_uring_enter calls (submit and/or wait)
  std::uint64_t cqes = 0;         // completions reaped
  std::uint64_t sq_full_flushes = 0;
  std::uint64_t remote_messages = 0;
};

namespace detail {

struct remote_message : mpsc_node {
  virtual void run() = 0;
  virtual ~remote_message() = default;
};

template <class F>
struct remote_call final : remote_message {
  explicit remote_call(F&& f) : fn(std::move(f)) {}
  void run() override { fn(); }
  F fn;
};

struct detached_promise;

// An eventfd, closed when the last owner lets go.
struct wake_fd {
  explicit wake_fd(int f) noexcept : fd(f) {}
  ~wake_fd();
  wake_fd(const wake_fd&) = delete;
  wake_fd& operator=(const wake_fd&) = delete;
  void signal() const noexcept;
  int fd;
};

struct detached_frame {
  using promise_type = detached_promise;
  std::coroutine_handle<detached_promise> handle;
};

struct detached_promise {
  detached_frame get_return_object() noexcept {
    return {std::coroutine_handle<detached_promise>::from_promise(*this)};
  }
  std::suspend_always initial_suspend() const noexcept { return {}; }
  struct final_awaiter {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<detached_promise> self) noexcept;
    void await_resume() const noexcept {}
  };
  final_awaiter final_suspend() const noexcept { return {}; }
  void return_void() const noexcept {}
  void unhandled_exception() noexcept;

  reactor* owner = nullptr;
  std::exception_ptr failure;  // reported by the owner when the frame is finished
  detached_promise* prev = nullptr;
  detached_promise* next = nullptr;
};

std::string describe_failure(const std::error_code& e);
std::string describe_failure(const error& e);

}  // namespace detail

class reactor {
 public:
  explicit reactor(reactor_options options = {});
  ~reactor();
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;

  // The reactor of the calling thread, or nullptr on a plain thread.
  static reactor* current() noexcept;

  // ---- reactor thread only ------------------------------------------------------------------
  // Never null. Every SQE handed out must be prepared and will produce (at least) one CQE.
  io_uring_sqe* get_sqe();
  // Ensures the next `n` get_sqe() calls come from one batch, so linked SQEs are never split.
  void reserve_sqes(unsigned n);
  // Resumes `h` on a later loop turn (FIFO), never inline.
  void schedule(std::coroutine_handle<> h);
  // Starts `t` detached on this reactor. An exception it throws, or an error result it returns,
  // is logged and counted (never lost); see failures() and first_exception().
  template <class T>
  void spawn(task<T> t);
  // Runs the loop until request_stop(), then cancels all work and drains (see shutdown()).
  void run();
  // Runs the loop until `t` completes and returns its value (used by sync_wait).
  template <class T>
  T block_on(task<T> t);
  // Stops: new operations fail with ECANCELED (close and cancel still run), every operation in
  // flight is cancelled and awaited, then detached tasks still suspended (on an event nobody
  // will set, say) are destroyed. Returns when the kernel holds no buffer of ours.
  // Equivalent to drain_io(), destroy_suspended(), drop_messages().
  void shutdown();
  // The phases of shutdown(), for a runtime that must finish one phase on every reactor before
  // any reactor starts the next (a task may be owned by one reactor and suspended on another).
  // drain_io: cancel and await every operation; runs what completes and what is posted.
  void drain_io();
  // Destroys the detached tasks still suspended; reports failures they recorded.
  void destroy_suspended() noexcept;
  // Deletes posted messages without running them; returns how many.
  std::size_t drop_messages() noexcept;
  // Runs the loop until request_stop() (no shutdown: the caller runs the phases).
  void run_until_stopped();

  bool stopping() const noexcept { return stopping_; }
  registered_arena* arena() noexcept { return arena_.get(); }
  io_uring* ring() noexcept { return &ring_; }
  const reactor_stats& stats() const noexcept { return stats_; }
  std::size_t in_flight() const noexcept { return inflight_; }
  std::size_t detached_tasks() const noexcept { return detached_count_; }

  // ---- any thread ---------------------------------------------------------------------------
  // Runs `fn` on this reactor's thread on a later loop turn. Lock-free: an MPSC queue, plus a
  // wake-up (a MSG_RING CQE when posted from another reactor, else an eventfd write).
  template <class F>
  void post(F&& fn) {
    push_remote(new detail::remote_call<std::decay_t<F>>(std::forward<F>(fn)));
  }
  void request_stop() noexcept;
  bool stop_requested() const noexcept { return stop_requested_.load(std::memory_order_acquire); }

  unsigned setup_flags() const noexcept { return setup_flags_; }
  unsigned sq_entries() const noexcept { return ring_.sq.ring_entries; }
  unsigned cq_entries() const noexcept { return ring_.cq.ring_entries; }
  std::string describe_setup() const;  // "SINGLE_ISSUER DEFER_TASKRUN ..., sq 256, cq 2048"

  // Failures of detached tasks (exceptions and error results) since start.
  std::size_t failures() const noexcept { return failures_; }
  std::exception_ptr first_exception() const noexcept { return first_exception_; }

 private:
  friend struct detail::detached_promise;

  struct wakeup_op final : op_base {
    void complete(cqe_kind, int res, std::uint32_t flags) noexcept override;
    reactor* self = nullptr;
    std::uint64_t value = 0;
  };
  // Target of the CQE another reactor posts into this ring with IORING_OP_MSG_RING.
  struct message_op final : op_base {
    void complete(cqe_kind, int res, std::uint32_t flags) noexcept override;
    reactor* self = nullptr;
  };
  
  // Runs one loop turn. Blocks for I/O only when `may_block` and nothing is runnable, for at
  // most `max_wait` when given.
  void turn(bool may_block, const __kernel_timespec* max_wait = nullptr);
  void enter(bool wait, const __kernel_timespec* max_wait);
  void submit_pending();
  void flush();
  void reap();
  void dispatch();
  void run_ready();
  void drain_remote();
  void arm_wakeup();
  void wake() noexcept;
  void rearm_notifications() noexcept;
  void push_remote(detail::remote_message* m) noexcept;
  void adopt(detail::detached_promise& p) noexcept;
  void forget(detail::detached_promise& p) noexcept;
  void finish_detached(detail::detached_promise& p) noexcept;
  void report_exception(std::exception_ptr e) noexcept;
  void report_failure(const std::string& what) noexcept;

  struct completion {
    std::uint64_t user_data;
    int res;
    std::uint32_t flags;
  };

  io_uring ring_{};
  unsigned setup_flags_ = 0;
  // The eventfd others write to wake us. Shared with in-flight MSG_RING sends aimed at us, whose
  // failure falls back to it: it outlives this reactor until the last of them completes.
  std::shared_ptr<detail::wake_fd> wake_fd_;
  wakeup_op wakeup_;
  message_op message_;
  bool msg_ring_ = false;  // the kernel has IORING_OP_MSG_RING
  bool in_turn_ = false;   // inside turn(): SQEs queued now are submitted by this thread soon
  std::size_t inflight_ = 0;  // CQEs still owed by the kernel
  std::vector<completion> completed_;
  std::vector<std::coroutine_handle<>> ready_;
  std::vector<std::coroutine_handle<>> running_;  // ready_ swapped out while it runs
  mpsc_queue remote_;
  std::atomic<bool> notified_{false};
  std::atomic<bool> stop_requested_{false};
  bool stopping_ = false;
  bool shut_down_ = false;
  bool abandoned_ = false;  // drain_io gave up on the kernel: leak suspended frames, never free
  detail::detached_promise* detached_head_ = nullptr;
  std::size_t detached_count_ = 0;
  std::size_t failures_ = 0;
  std::exception_ptr first_exception_;
  std::unique_ptr<registered_arena> arena_;
  reactor_stats stats_;
};

namespace detail {

template <class T>
detached_frame run_detached(task<T> t) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(t);
  } else {
    T value = co_await std::move(t);
    if constexpr (is_basic_result_v<T>) {
      if (!value) throw std::runtime_error(describe_failure(value.error()));
    }
  }
}

}  // namespace detail

template <class T>
void reactor::spawn(task<T> t) {
  detail::detached_frame frame = detail::run_detached(std::move(t));
  adopt(frame.handle.promise());
  schedule(frame.handle);
}

template <class T>
T reactor::block_on(task<T> t) {
  schedule(t.handle());
  while (!t.done()) turn(true);
  submit_pending();  // wake-ups queued by the last turn must not wait for a next one
  return std::move(t).operator co_await().await_resume();
}

}  // namespace ringfetch
