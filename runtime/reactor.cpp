#include "runtime/reactor.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "runtime/log.hpp"
#include "runtime/registered_arena.hpp"

namespace ringfetch {
namespace {

thread_local reactor* current_reactor = nullptr;

constexpr unsigned reap_batch = 128;

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

void detached_promise::final_awaiter::await_suspend(
    std::coroutine_handle<detached_promise> self) noexcept {
  self.promise().owner->forget(self.promise());
  self.destroy();
}

void detached_promise::unhandled_exception() noexcept {
  owner->report_exception(std::current_exception());
}

std::string describe_failure(const std::error_code& e) { return e.message(); }
std::string describe_failure(const error& e) { return e.describe(); }

}  // namespace detail

reactor::reactor(reactor_options options) {
  if (current_reactor != nullptr) {
    throw std::logic_error("a thread can own only one reactor at a time");
  }
  setup_flags_ = init_ring(ring_, options);
  event_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (event_fd_ < 0) {
    int err = errno;
    io_uring_queue_exit(&ring_);
    throw std::system_error(err, std::system_category(), "eventfd");
  }
  completed_.reserve(reap_batch * 2);
  ready_.reserve(256);
  running_.reserve(256);
  current_reactor = this;
  wakeup_.self = this;
  message_.self = this;
  message_sent_.self = this;
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
}

reactor::~reactor() {
  shutdown();
  // Messages posted after the final drain (by a reactor that was still stopping) are dropped.
  std::size_t dropped = 0;
  while (auto* node = remote_.pop()) {
    delete static_cast<detail::remote_message*>(node);
    ++dropped;
  }
  if (dropped) log::debug("reactor: dropped " + std::to_string(dropped) + " late messages");
  arena_.reset();
  ::close(event_fd_);
  io_uring_queue_exit(&ring_);
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

void reactor::enter(bool wait) {
  // Without DEFER_TASKRUN, completions are visible without a syscall: skip it when idle-free.
  const bool deferred = (setup_flags_ & IORING_SETUP_DEFER_TASKRUN) != 0;
  if (!wait && io_uring_sq_ready(&ring_) == 0 && !deferred) return;
  for (;;) {
    ++stats_.enters;
    int rc = wait ? io_uring_submit_and_wait(&ring_, 1) : io_uring_submit_and_get_events(&ring_);
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
void reactor::turn(bool may_block) {
  enter(may_block && ready_.empty() && inflight_ > 0);
  reap();
  dispatch();
  drain_remote();
  run_ready();
}

void reactor::run() {
  while (!stop_requested()) turn(true);
  shutdown();
}

void reactor::shutdown() {
  if (shut_down_) return;
  stopping_ = true;
  // One request cancels everything in flight; its own CQE carries user_data 0 (ignored).
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
  io_uring_sqe_set_data64(sqe, 0);
  for (int rounds = 0;; ++rounds) {
    while (inflight_ > 0 || !ready_.empty()) turn(true);
    drain_remote();
    if (!ready_.empty()) continue;
    if (detached_head_ == nullptr) break;
    // Only tasks suspended on something that can no longer happen are left: destroy them.
    // Destroying a root destroys its whole chain of awaited child tasks.
    log::debug("reactor: destroying " + std::to_string(detached_count_) +
               " suspended task(s) at shutdown");
    while (detached_head_ != nullptr) {
      detail::detached_promise* p = detached_head_;
      forget(*p);
      std::coroutine_handle<detail::detached_promise>::from_promise(*p).destroy();
    }
    // Nothing is alive to resume any more; whatever the destructors scheduled is stale.
    ready_.clear();
  }
  shut_down_ = true;
}

void reactor::request_stop() noexcept {
  stop_requested_.store(true, std::memory_order_release);
  notified_.store(true, std::memory_order_relaxed);
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof one);
}

void reactor::arm_wakeup() {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, event_fd_, &wakeup_.value, sizeof wakeup_.value, 0);
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

void reactor::message_sent_op::complete(cqe_kind, int res, std::uint32_t) noexcept {
  if (res < 0) {
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(self->event_fd_, &one, sizeof one);
  }
}

void reactor::wake() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with rearm_notifications()
  if (notified_.exchange(true, std::memory_order_relaxed)) return;
  // From another reactor, the wake-up rides in that reactor's next submission batch: no extra
  // syscall, and the target sees a CQE rather than an eventfd read completing.
  reactor* from = current_reactor;
  if (from != nullptr && from != this && from->msg_ring_ && !from->stopping_) {
    try {
      io_uring_sqe* sqe = from->get_sqe();
      io_uring_prep_msg_ring(sqe, ring_.ring_fd, 0, message_.user_data(cqe_kind::message), 0);
      io_uring_sqe_set_data64(sqe, message_sent_.user_data(cqe_kind::primary));
      return;
    } catch (...) {
      // A failing flush: fall through to the eventfd.
    }
  }
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof one);
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
