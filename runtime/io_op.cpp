#include "runtime/io_op.hpp"

#include <cassert>
#include <cerrno>
#include <stdexcept>

#include "runtime/reactor.hpp"

namespace ringfetch {
namespace {

__kernel_timespec to_kernel_timespec(time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  if (ns < 0) ns = 0;
  return {.tv_sec = ns / 1'000'000'000, .tv_nsec = ns % 1'000'000'000};
}

}  // namespace

cancel_source::~cancel_source() {
  while (head_ != nullptr) head_->detach();
}

std::size_t cancel_source::request_cancel() {
  requested_ = true;
  std::size_t n = 0;
  for (io_op* op = head_; op != nullptr; op = op->next_) {
    if (!op->cancel_sent_) {
      op->submit_cancel();
      ++n;
    }
  }
  return n;
}

io_op::~io_op() {
  // A frame destroyed while the kernel still owes CQEs would be written to after it is gone.
  assert(pending_ == 0 && "an io_op was destroyed while its operation was still in flight");
  detach();
}

bool io_op::await_suspend(std::coroutine_handle<> waiter) {
  reactor_ = reactor::current();
  if (reactor_ == nullptr) {
    throw std::logic_error("an io_uring operation was awaited outside a reactor thread");
  }
  if ((options_.cancel && options_.cancel->cancel_requested()) ||
      (reactor_->stopping() && !cleanup_)) {
    res_ = -ECANCELED;
    return false;
  }
  waiter_ = waiter;
  const bool timed = options_.deadline.has_value();
  reactor_->reserve_sqes(timed ? 2 : 1);
  io_uring_sqe* sqe = reactor_->get_sqe();
  prep(sqe);
  io_uring_sqe_set_data64(sqe, user_data(cqe_kind::primary));
  pending_ = 1;
  if (timed) {
    sqe->flags |= IOSQE_IO_LINK;
    timeout_ = to_kernel_timespec(*options_.deadline);
    io_uring_sqe* t = reactor_->get_sqe();
    io_uring_prep_link_timeout(t, &timeout_, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(t, user_data(cqe_kind::timeout));
    ++pending_;
  }
  if (options_.cancel) attach(*options_.cancel);
  return true;
}

void io_op::complete(cqe_kind kind, int res, std::uint32_t flags) noexcept {
  switch (kind) {
    case cqe_kind::primary:
      if (flags & IORING_CQE_F_NOTIF) break;  // zero-copy send: the kernel let go of the buffer
      res_ = res;
      flags_ = flags;
      primary_done_ = true;
      detach();
      if (flags & IORING_CQE_F_MORE) return;  // the notification is still to come
      break;
    case cqe_kind::timeout:
      if (res == -ETIME) timed_out_ = true;
      break;
    case cqe_kind::cancel:
    case cqe_kind::message:  // never aimed at an io_op
      break;
  }
  if (--pending_ == 0) waiter_.resume();
}

int io_op::result() const noexcept {
  if (res_ == -ECANCELED && timed_out_) return -ETIMEDOUT;
  // A linked timeout can also cut a connect/recv short as -EINTR on some kernels.
  if (res_ == -EINTR && timed_out_) return -ETIMEDOUT;
  return res_;
}

void io_op::submit_cancel() {
  if (primary_done_ || cancel_sent_) return;
  cancel_sent_ = true;
  io_uring_sqe* sqe = reactor_->get_sqe();
  io_uring_prep_cancel64(sqe, user_data(cqe_kind::primary), 0);
  io_uring_sqe_set_data64(sqe, user_data(cqe_kind::cancel));
  ++pending_;
}

void io_op::attach(cancel_source& source) noexcept {
  source_ = &source;
  prev_ = nullptr;
  next_ = source.head_;
  if (next_) next_->prev_ = this;
  source.head_ = this;
}

void io_op::detach() noexcept {
  if (source_ == nullptr) return;
  if (prev_) prev_->next_ = next_;
  else source_->head_ = next_;
  if (next_) next_->prev_ = prev_;
  prev_ = next_ = nullptr;
  source_ = nullptr;
}

}  // namespace ringfetch
