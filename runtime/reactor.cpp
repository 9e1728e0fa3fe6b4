#include "runtime/reactor.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "runtime/log.hpp"
#include "runtime/registered_arena.hpp"

namespace ringfetch {
namespace {

thread_local reactor* current_reactor = nullptr;

constexpr unsigned reap_batch = 128;

// How long shutdown waits for the kernel to hand back buffers after cancelling everything. Only
// a zero-copy send whose peer never acknowledges can hold one that long (its notification is not
// cancellable); its frame is then leaked rather than freed under the kernel.
constexpr std::chrono::seconds shutdown_grace{10};

// A MSG_RING wake-up sent to another reactor, completed on the sender's ring. If the target's
// ring refused it (full CQ, ring gone), the target's eventfd is written instead; the shared
// wake_fd keeps that eventfd open even if the target reactor is already destroyed.
struct msg_ring_send final : op_base {
  explicit msg_ring_send(std::shared_ptr<detail::wake_fd> t) noexcept : target(std::move(t)) {}
  void complete(cqe_kind, int res, std::uint32_t) noexcept override {
    if (res < 0) target->signal();
    delete this;
  }
  std::shared_ptr<detail::wake_fd> target;
};

[[noreturn]] void throw_setup_error(int err) {
  std::string why = "io_uring_queue_init failed: ";
  why += std::strerror(err);
  if (err == EPERM) {
    why +=
        ". io_uring is not permitted for this process: a seccomp profile (Docker's default "
        "blocks io_uring) or the sysctl kernel.io_uring_disabled forbids it. Run the container "
        "with --security-opt seccomp=unconfined (or a profile allowing io_uring_setup, "
        "io_uring_enter, io_uring_register), or set kernel.io_uring_disabled=0.";
  } else if (err == ENOSYS) {
    why += ". This kernel has no io_uring (Linux 5.19 or newer is required).";
  } else if (err == ENOMEM) {
    why += ". Not enough locked memory for the rings: raise RLIMIT_MEMLOCK (ulimit -l) or use "
           "fewer/smaller reactors.";
  }
  throw std::system_error(err, std::system_category(), why);
}

// Tries the preferred flags first and drops them one at a time where the kernel refuses.
unsigned init_ring(io_uring& ring, const reactor_options& o) {
  const unsigned cq = o.cq_entries ? o.cq_entries : o.sq_entries * 8;
  unsigned wanted = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
  if (o.single_issuer) wanted |= IORING_SETUP_SINGLE_ISSUER;
  if (o.single_issuer && o.defer_taskrun) wanted |= IORING_SETUP_DEFER_TASKRUN;
  const unsigned droppable[] = {IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_SINGLE_ISSUER,
                                IORING_SETUP_SUBMIT_ALL};
  unsigned flags = wanted;
  for (std::size_t i = 0;; ++i) {
    io_uring_params p{};
    p.flags = flags;
    p.cq_entries = cq;
    int rc = io_uring_queue_init_params(o.sq_entries, &ring, &p);
    if (rc == 0) {
      if (flags != wanted) {
        log::info("io_uring: kernel refused some setup flags; running with " +
                  std::to_string(flags) + " instead of " + std::to_string(wanted));
      }
      return flags;
    }
    if (rc != -EINVAL || i == std::size(droppable)) throw_setup_error(-rc);
    flags &= ~droppable[i];
  }
}

}  // namespace

namespace detail {

// A spawned task may finish on another reactor (it moved there with resume_on): its owner's
// list and failure counters belong to the owner's thread, so the frame is handed back by message.
// Should that message be dropped at shutdown, the owner still destroys the frame (and reports
// its failure) in destroy_suspended().
void detached_promise::final_awaiter::await_suspend(
    std::coroutine_handle<detached_promise> self) noexcept {
  detached_promise& p = self.promise();
  reactor* owner = p.owner;
  if (reactor::current() == owner) {
    owner->finish_detached(p);
    return;
  }
  try {
    owner->post([&p] { p.owner->finish_detached(p); });
  } catch (...) {
    // Out of memory: the owner destroys the frame at shutdown.
  }
}

void detached_promise::unhandled_exception() noexcept { failure = std::current_exception(); }

wake_fd::~wake_fd() { ::close(fd); }

void wake_fd::signal() const noexcept {
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
}

std::string describe_failure(const std::error_code& e) { return e.message(); }
std::string describe_failure(const error& e) { return e.describe(); }

}  // namespace detail

reactor::reactor(reactor_options options) {
  if (current_reactor != nullptr) {
    throw std::logic_error("a thread can own only one reactor at a time");
  }
  setup_flags_ = init_ring(ring_, options);
  // The destructor does not run for a throwing constructor: undo by hand from here on.
  try {
    int fd = ::eventfd(0, EFD_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::system_category(), "eventfd");
    wake_fd_ = std::make_shared<detail::wake_fd>(fd);
    completed_.reserve(reap_batch * 2);
    ready_.reserve(256);
    running_.reserve(256);
    current_reactor = this;
    wakeup_.self = this;
    message_.self = this;
    if (io_uring_probe* probe = io_uring_get_probe_ring(&ring_)) {
      msg_ring_ = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
      io_uring_free_probe(probe);
    }
    arm_wakeup();
    if (options.arena_bytes > 0) {
      arena_ = std::make_unique<registered_arena>(
          *this, registered_arena::options{.bytes = options.arena_bytes,
                                           .block_size = options.arena_block,
                                           .try_register = options.arena_register});
    }
  } catch (...) {
    io_uring_queue_exit(&ring_);  // the armed eventfd read dies with the ring
    wake_fd_.reset();
    current_reactor = nullptr;
    throw;
  }
}

reactor::~reactor() {
  shutdown();
  // Messages posted after the final drain (by a reactor that was still stopping) are dropped.
  if (std::size_t dropped = drop_messages()) {
    log::debug("reactor: dropped " + std::to_string(dropped) + " late messages");
  }
  arena_.reset();
  io_uring_queue_exit(&ring_);
  wake_fd_.reset();
  current_reactor = nullptr;
}

reactor* reactor::current() noexcept { return current_reactor; }

std::string reactor::describe_setup() const {
  std::string out;
  auto add = [&](unsigned flag, const char* name) {
    if (setup_flags_ & flag) {
      if (!out.empty()) out += ' ';
      out += name;
    }
  };
  add(IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER");
  add(IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN");
  add(IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL");
  add(IORING_SETUP_CQSIZE, "CQSIZE");
  out += ", sq " + std::to_string(sq_entries()) + ", cq " + std::to_string(cq_entries());
  return out;
}

io_uring_sqe* reactor::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    flush();
    sqe = io_uring_get_sqe(&ring_);
  }
  ++inflight_;
  ++stats_.sqes;
  return sqe;
}

void reactor::reserve_sqes(unsigned n) {
  if (io_uring_sq_space_left(&ring_) < n) flush();
}

void reactor::schedule(std::coroutine_handle<> h) { ready_.push_back(h); }

// Submits queued SQEs without running any coroutine. When the kernel pushes back (CQ overflow:
// EBUSY, or no memory for requests: EAGAIN) completions are moved to completed_ first.
void reactor::flush() {
  ++stats_.sq_full_flushes;
  for (;;) {
    ++stats_.enters;
    int rc = io_uring_submit(&ring_);
    if (rc >= 0) return;
    if (rc == -EINTR) continue;
    if (rc == -EBUSY || rc == -EAGAIN) {
      io_uring_get_events(&ring_);
      reap();
      continue;
    }
    throw std::system_error(-rc, std::system_category(), "io_uring_submit");
  }
}

void reactor::submit_pending() {
  if (io_uring_sq_ready(&ring_) > 0) flush();
}

void reactor::enter(bool wait, const __kernel_timespec* max_wait) {
  // Without DEFER_TASKRUN, completions are visible without a syscall: skip it when idle-free.
  const bool deferred = (setup_flags_ & IORING_SETUP_DEFER_TASKRUN) != 0;
  if (!wait && io_uring_sq_ready(&ring_) == 0 && !deferred) return;
  for (;;) {
    ++stats_.enters;
    int rc;
    if (wait && max_wait) {
      io_uring_cqe* cqe = nullptr;
      rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1,
                                            const_cast<__kernel_timespec*>(max_wait), nullptr);
    } else {
      rc = wait ? io_uring_submit_and_wait(&ring_, 1) : io_uring_submit_and_get_events(&ring_);
    }
    if (rc >= 0 || rc == -EINTR || rc == -ETIME) return;
    if (rc == -EBUSY || rc == -EAGAIN) {
      reap();
      if (!completed_.empty()) return;
      continue;
    }
    throw std::system_error(-rc, std::system_category(), "io_uring_enter");
  }
}

void reactor::reap() {
  io_uring_cqe* cqes[reap_batch];
  for (;;) {
    unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, reap_batch);
    if (n == 0) return;
    for (unsigned i = 0; i < n; ++i) {
      const std::uint64_t data = cqes[i]->user_data;
      completed_.push_back({data, cqes[i]->res, cqes[i]->flags});
      const bool ours = op_base::kind_of(data) != cqe_kind::message;
      if (ours && (cqes[i]->flags & IORING_CQE_F_MORE) == 0) --inflight_;
    }
    stats_.cqes += n;
    io_uring_cq_advance(&ring_, n);
  }
}

void reactor::dispatch() {
  // Index loop: completions reaped by a flush inside a resumed coroutine are appended here.
  for (std::size_t i = 0; i < completed_.size(); ++i) {
    const completion c = completed_[i];
    if (op_base* op = op_base::from_user_data(c.user_data)) {
      op->complete(op_base::kind_of(c.user_data), c.res, c.flags);
    }
  }
  completed_.clear();
}

void reactor::run_ready() {
  // Handles scheduled while these run wait for the next turn, so I/O is never starved.
  running_.swap(ready_);
  for (auto h : running_) h.resume();
  running_.clear();
}

void reactor::drain_remote() {
  while (auto* node = remote_.pop()) {
    auto* m = static_cast<detail::remote_message*>(node);
    ++stats_.remote_messages;
    m->run();
    delete m;
  }
}

// I/O first, then queued work: a caller that loops on a condition (block_on) re-checks it right
// after the coroutines that could change it ran, before it may block again.
void reactor::turn(bool may_block, const __kernel_timespec* max_wait) {
  // completed_ can hold completions reaped by a flush inside the last turn's coroutines.
  enter(may_block && ready_.empty() && completed_.empty() && inflight_ > 0, max_wait);
  in_turn_ = true;
  reap();
  dispatch();
  drain_remote();
  run_ready();
  in_turn_ = false;
}

void reactor::run_until_stopped() {
  while (!stop_requested()) turn(true);
}

void reactor::run() {
  run_until_stopped();
  shutdown();
}

void reactor::shutdown() {
  if (shut_down_) return;
  drain_io();
  destroy_suspended();
  drop_messages();
  shut_down_ = true;
}

void reactor::drain_io() {
  stopping_ = true;
  // One request cancels everything in flight; its own CQE carries user_data 0 (ignored).
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
  io_uring_sqe_set_data64(sqe, 0);
  const auto give_up = std::chrono::steady_clock::now() + shutdown_grace;
  const __kernel_timespec tick{.tv_sec = 0, .tv_nsec = 100'000'000};
  for (;;) {
    while (inflight_ > 0 || !ready_.empty() || !completed_.empty()) {
      if (std::chrono::steady_clock::now() > give_up) {
        // Leaking the frames that still own those operations is the only safe choice left.
        log::error("reactor: " + std::to_string(inflight_) +
                   " operation(s) still held by the kernel " +
                   std::to_string(shutdown_grace.count()) + " s after cancellation; their tasks "
                   "are leaked instead of destroyed");
        abandoned_ = true;
        return;
      }
      turn(true, &tick);
    }
    drain_remote();
    if (ready_.empty()) return;
  }
}

void reactor::destroy_suspended() noexcept {
  if (abandoned_) return;
  if (detached_head_ == nullptr) return;
  // Only tasks suspended on something that can no longer happen are left: destroy them.
  // Destroying a root destroys its whole chain of awaited child tasks.
  log::debug("reactor: destroying " + std::to_string(detached_count_) +
             " suspended task(s) at shutdown");
  while (detached_head_ != nullptr) finish_detached(*detached_head_);
  // Nothing is alive to resume any more; whatever the destructors scheduled is stale.
  ready_.clear();
}

std::size_t reactor::drop_messages() noexcept {
  std::size_t dropped = 0;
  while (auto* node = remote_.pop()) {
    delete static_cast<detail::remote_message*>(node);
    ++dropped;
  }
  return dropped;
}

void reactor::request_stop() noexcept {
  stop_requested_.store(true, std::memory_order_release);
  notified_.store(true, std::memory_order_relaxed);
  wake_fd_->signal();
}

void reactor::arm_wakeup() {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, wake_fd_->fd, &wakeup_.value, sizeof wakeup_.value, 0);
  io_uring_sqe_set_data64(sqe, wakeup_.user_data(cqe_kind::primary));
}

void reactor::wakeup_op::complete(cqe_kind, int, std::uint32_t) noexcept {
  self->rearm_notifications();
  if (!self->stopping_) self->arm_wakeup();
}

// Called before the next drain of the remote queue: a post that lands after it wakes us again.
// This is Dekker's pattern (we store the flag then read the queue; a poster writes the queue then
// reads the flag), so both sides need a full fence: release/acquire would let our store sit in
// the store buffer past our reads of the queue, and a message could be stranded while we sleep.
void reactor::rearm_notifications() noexcept {
  notified_.store(false, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void reactor::message_op::complete(cqe_kind, int, std::uint32_t) noexcept {
  self->rearm_notifications();
}

void reactor::wake() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with rearm_notifications()
  if (notified_.exchange(true, std::memory_order_relaxed)) return;
  // From another reactor's loop, the wake-up rides in that reactor's next submission batch: no
  // extra syscall, and the target sees a CQE rather than an eventfd read completing. Only from
  // inside a turn, whose end is sure to submit it: a thread that owns a reactor but is not
  // looping (between two block_on calls, say) would strand the SQE in its queue.
  reactor* from = current_reactor;
  if (from != nullptr && from != this && from->msg_ring_ && from->in_turn_ && !from->stopping_) {
    try {
      auto sent = std::make_unique<msg_ring_send>(wake_fd_);
      io_uring_sqe* sqe = from->get_sqe();
      io_uring_prep_msg_ring(sqe, ring_.ring_fd, 0, message_.user_data(cqe_kind::message), 0);
      io_uring_sqe_set_data64(sqe, sent.release()->user_data(cqe_kind::primary));
      return;
    } catch (...) {
      // Out of memory or a failing flush: fall through to the eventfd.
    }
  }
  wake_fd_->signal();
}

void reactor::push_remote(detail::remote_message* m) noexcept {
  remote_.push(m);
  wake();
}

void reactor::adopt(detail::detached_promise& p) noexcept {
  p.owner = this;
  p.prev = nullptr;
  p.next = detached_head_;
  if (detached_head_) detached_head_->prev = &p;
  detached_head_ = &p;
  ++detached_count_;
}

void reactor::forget(detail::detached_promise& p) noexcept {
  if (p.prev) p.prev->next = p.next;
  else detached_head_ = p.next;
  if (p.next) p.next->prev = p.prev;
  p.prev = p.next = nullptr;
  --detached_count_;
}

void reactor::finish_detached(detail::detached_promise& p) noexcept {
  forget(p);
  std::exception_ptr failure = std::move(p.failure);
  std::coroutine_handle<detail::detached_promise>::from_promise(p).destroy();
  if (failure) report_exception(failure);
}

void reactor::report_exception(std::exception_ptr e) noexcept {
  if (!first_exception_) first_exception_ = e;
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
  }
  report_failure(what);
}

void reactor::report_failure(const std::string& what) noexcept {
  ++failures_;
  log::error("a spawned task failed: " + what);
}

}  // namespace ringfetch
