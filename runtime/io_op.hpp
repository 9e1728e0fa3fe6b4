// io_op: the common body of every awaiter in ops.hpp, plus deadlines and explicit cancellation.
//
// An io_op prepares its SQE in await_suspend (never earlier: an awaiter that is built but not
// awaited must not reach the kernel), optionally links a timeout to it, and resumes the coroutine
// only when every CQE aimed at it has arrived: its own, the linked timeout's, any cancel
// request's and, for zero-copy sends, the notification. Until then the kernel may still touch the
// buffer, so the coroutine frame (and the buffer) must stay put; after it, nothing will.
//
// A deadline that fires turns the result into ETIMEDOUT; an explicit cancel into ECANCELED.
// An operation that completed before the cancel or deadline reached it keeps its real result.
#pragma once

#include <liburing.h>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <optional>

#include "runtime/op_base.hpp"

namespace ringfetch {

class reactor;
class io_op;

using steady_clock = std::chrono::steady_clock;
using time_point = steady_clock::time_point;

// Cancels the operations that carry it. Reactor-local: request_cancel() must run on the thread
// of the operations it targets. Once requested, new operations carrying it complete at once with
// ECANCELED. Destroying a source detaches the operations still attached (they run on, uncancelled).
class cancel_source {
 public:
  cancel_source() = default;
  cancel_source(const cancel_source&) = delete;
  cancel_source& operator=(const cancel_source&) = delete;
  ~cancel_source();

  // Submits an async cancel for every attached operation in flight. Returns how many.
  std::size_t request_cancel();
  bool cancel_requested() const noexcept { return requested_; }
  // Re-arms the source for new operations (those already cancelled stay cancelled).
  void reset() noexcept { requested_ = false; }

 private:
  friend class io_op;
  io_op* head_ = nullptr;
  bool requested_ = false;
};

struct op_options {
  std::optional<time_point> deadline{};  // absolute, steady clock; none: wait forever
  cancel_source* cancel = nullptr;     // must outlive the co_await
};

// Deadline helpers: `op::recv(fd, buf, within(2s))`.
inline op_options within(steady_clock::duration d) { return {.deadline = steady_clock::now() + d}; }
inline op_options until(time_point t) { return {.deadline = t}; }

class io_op : public op_base {
 public:
  io_op(const io_op&) = delete;
  io_op& operator=(const io_op&) = delete;

  bool await_ready() const noexcept { return false; }
  // Returns false (no suspension) when the op is refused before submission: its cancel source
  // was already triggered, or the reactor is stopping (except for cleanup ops: close, cancel).
  bool await_suspend(std::coroutine_handle<> waiter);

 protected:
  explicit io_op(op_options options, bool cleanup = false) noexcept
      : options_(options), cleanup_(cleanup) {}
  ~io_op();

  virtual void prep(io_uring_sqe* sqe) = 0;

  // The completion's result after deadline/cancel mapping: >= 0 or -errno.
  int result() const noexcept;
  std::uint32_t cqe_flags() const noexcept { return flags_; }

 private:
  friend class cancel_source;
  void complete(cqe_kind kind, int res, std::uint32_t flags) noexcept override;
  void submit_cancel();
  void attach(cancel_source& source) noexcept;
  void detach() noexcept;

  op_options options_;
  reactor* reactor_ = nullptr;
  std::coroutine_handle<> waiter_;
  __kernel_timespec timeout_{};
  int res_ = 0;
  std::uint32_t flags_ = 0;
  std::uint8_t pending_ = 0;  // CQEs still owed
  bool cleanup_;
  bool primary_done_ = false;
  bool timed_out_ = false;
  bool cancel_sent_ = false;
  io_op* prev_ = nullptr;     // cancel_source list
  io_op* next_ = nullptr;
  cancel_source* source_ = nullptr;
};

}  // namespace ringfetch
