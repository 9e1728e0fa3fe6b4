// One awaiter per io_uring operation: `auto n = co_await op::recv(fd, buffer, within(5s));`
//
// Each returns an io_result: the value on success, the kernel's error as std::error_code on
// failure (ETIMEDOUT when its deadline fired, ECANCELED when cancelled). None throws for an I/O
// error. Buffers are borrowed: a span passed in must stay valid until the co_await returns, and
// not a moment longer (the awaiter resumes only once the kernel is done with it). Size results
// are byte counts; recv/read returning 0 is end of stream, not an error.
// All options (deadline, cancel source) are in the trailing op_options (see io_op.hpp).
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "runtime/io_op.hpp"
#include "runtime/registered_arena.hpp"
#include "runtime/result.hpp"

namespace ringfetch::op {

namespace detail {
inline io_result<std::size_t> size_result(int res) {
  if (res < 0) return errno_code(res);
  return static_cast<std::size_t>(res);
}
inline io_result<void> void_result(int res) {
  if (res < 0) return errno_code(res);
  return {};
}
// An SQE length is 32 bits and the kernel moves at most MAX_RW_COUNT (2 GiB - 4 KiB) per call:
// longer spans are clamped, so a caller sees a short transfer (and loops) instead of a length
// that wrapped around.
inline unsigned clamp_len(std::size_t n) {
  constexpr std::size_t max_rw_count = 0x7ffff000;
  return static_cast<unsigned>(std::min(n, max_rw_count));
}
inline io_result<int> int_result(int res) {
  if (res < 0) return errno_code(res);
  return res;
}
}  // namespace detail

// Completes at once with 0: the cheapest round trip through the ring (benchmarks, yields).
class nop final : public io_op {
 public:
  explicit nop(op_options o = {}) : io_op(o) {}
  io_result<void> await_resume() const { return detail::void_result(result()); }
 private:
  void prep(io_uring_sqe* sqe) override { io_uring_prep_nop(sqe); }
};

class connect final : public io_op {
 public:
  // The address is copied: it need not outlive the call.
  connect(int fd, const sockaddr* addr, socklen_t len, op_options o = {}) : io_op(o), fd_(fd), len_(len) {
    std::memcpy(&addr_, addr, std::min<std::size_t>(len, sizeof addr_));
  }
  io_result<void> await_resume() const { return detail::void_result(result()); }
 private:
  void prep(io_uring_sqe* sqe) override {
    io_uring_prep_connect(sqe, fd_, reinterpret_cast<sockaddr*>(&addr_), len_);
  }
  int fd_;
  socklen_t len_;
  sockaddr_storage addr_{};
};

// Returns the accepted socket (close-on-exec). `peer`, if given, must outlive the co_await.
class accept final : public io_op {
 public:
  explicit accept(int fd, sockaddr_storage* peer = nullptr, op_options o = {})
      : io_op(o), fd_(fd), peer_(peer), len_(sizeof(sockaddr_storage)) {}
  io_result<int> await_resume() const { return detail::int_result(result()); }
 private:
  void prep(io_uring_sqe* sqe) override {
    io_uring_prep_accept(sqe, fd_, reinterpret_cast<sockaddr*>(peer_), peer_ ? &len_ : nullptr,
                         SOCK_CLOEXEC);
  }
  int fd_;
  sockaddr_storage* peer_;
  socklen_t len_;
};

// May send fewer bytes than given (like send(2)); MSG_NOSIGNAL is always added.
class send final : public io_op {
 public:
  send(int fd, std::span<const std::byte> data, op_options o = {}, int flags = 0)
      : io_op(o), fd_(fd), data_(data), flags_(flags | MSG_NOSIGNAL) {}
  io_result<std::size_t> await_resume() const { return detail::size_result(result()); }
 private:
  void prep(io_uring_sqe* sqe) override {
    io_uring_prep_send(sqe, fd_, data_.data(), detail::clamp_len(data_.size()), flags_);
  }
  int fd_;
  std::span<const std::byte> data_;
  int flags_;
};

// Zero-copy send: the kernel transmits from `data` itself. Resumes only after the kernel's
// notification that it released the pages, so the buffer may be reused as soon as this returns.
class send_zc final : public io_op {
 public:
  send_zc(int fd, std::span<const std::byte> data, op_options o = {}, int flags = 0)
      : io_op(o), fd_(fd), data_(data), flags_(flags | MSG_NOSIGNAL) {}
  io_result<std::size_t> await_resume() const { return detail::size_result(result()); }
 private:
  void prep(io_uring_sqe* sqe) override {
    io_uring_prep_send_zc(sqe, fd_, data_.data(), detail::clamp_len(data_.size()), flags_, 0);
  }
  int fd_;
  std::span<const std::byte> data_;
  int flags_;
};

class recv final : public io_op {
 public:
  recv(int fd, std::span<std::byte> buffer, op_options o = {}, int flags = 0)
      : io_op(o), fd_(fd), buffer_(buffer), flags_(flags) {}
  io_result<std::size_t> await_resume() const { return detail::size_result(result()); }
 private:
  void prep(io_uring_sqe* sqe) override {
    io_uring_prep_recv(sqe, fd_, buffer_.data(), detail::clamp_len(buffer_.size()), flags_);
  }
  int fd_;
  std::span<std::byte> buffer_;
  int flags_;
};

// offset: file position, or -1 (as uint64) for the current position / streams.
class read final : public io_op {
 public:
  read(int fd, std::span<std::byte> buffer, std::uint64_t offset = ~std::uint64_t{0}, op_options o = {})
      : io_op(o), fd_(fd), buffer_(buffer), offset_(offset) {}
  io_result<std::size_t> await_resume() const { return detail::size_result(result()); }
 private:
  void prep(io_uring_sqe* sqe) override {
    io_uring_prep_read(sqe, fd_, buffer_.data(), detail::clamp_len(buffer_.size()), offset_);
  }
  int fd_;
  std::span<std::byte> buffer_;
  std::uint64_t offset_;
};

class write final : public io_op {
 public:
  write(int fd, std::span<const std::byte> data, std::uint64_t offset = ~std::uint64_t{0}, op_options o = {})
      : io_op(o), fd_(fd), data_(data), offset_(offset) {}
  io_result<std::size_t> await_resume() const { return detail::size_result(result()); }
 private:
  void prep(io_uring_sqe* sqe) override {
    io_uring_prep_write(sqe, fd_, data_.data(), detail::clamp_len(data_.size()), offset_);
  }
  int fd_;
  std::span<const std::byte> data_;
  std::uint64_t offset_;
};

// Reads into registered memory without per-I/O page pinning. A span outside the registered
// arena (index -1, the arena's plain-memory fallback) is read with a plain read: same result.
class read_fixed final : public io_op {
 public:
  read_fixed(int fd, fixed_span buffer, std::uint64_t offset = ~std::uint64_t{0}, op_options o = {})
      : io_op(o), fd_(fd), buffer_(buffer), offset_(offset) {}
  io_result<std::size_t> await_resume() const { return detail::size_result(result()); }
 private:
  void prep(io_uring_sqe* sqe) override {
    auto* p = buffer_.bytes.data();
    auto n = detail::clamp_len(buffer_.bytes.size());
    if (buffer_.index >= 0) io_uring_prep_read_fixed(sqe, fd_, p, n, offset_, buffer_.index);
    else io_uring_prep_read(sqe, fd_, p, n, offset_);
  }
  int fd_;
  fixed_span buffer_;
  std::uint64_t offset_;
};

class write_fixed final : public io_op {
 public:
  write_fixed(int fd, fixed_span data, std::uint64_t offset = ~std::uint64_t{0}, op_options o = {})
      : io_op(o), fd_(fd), data_(data), offset_(offset) {}
  io_result<std::size_t> await_resume() const { return detail::size_result(result()); }
 private:
  void prep(io_uring_sqe* sqe) override {
    auto* p = data_.bytes.data();
    auto n = detail::clamp_len(data_.bytes.size());
    if (data_.index >= 0) io_uring_prep_write_fixed(sqe, fd_, p, n, offset_, data_.index);
    else io_uring_prep_write(sqe, fd_, p, n, offset_);
  }
  int fd_;
  fixed_span data_;
  std::uint64_t offset_;
};

// A cleanup op: runs even while the reactor is stopping.
class close final : public io_op {
 public:
  explicit close(int fd) : io_op({}, /*cleanup=*/true), fd_(fd) {}
  io_result<void> await_resume() const { return detail::void_result(result()); }
 private:
  void prep(io_uring_sqe* sqe) override { io_uring_prep_close(sqe, fd_); }
  int fd_;
};

// Cancels every operation in flight on `fd` (any reactor thread's own ops). Returns how many
// were found; 0 is not an error. The cancelled operations still complete (with ECANCELED) on
// their own and resume their coroutines only then. A cleanup op.
class cancel_fd final : public io_op {
 public:
  explicit cancel_fd(int fd) : io_op({}, /*cleanup=*/true), fd_(fd) {}
  io_result<std::size_t> await_resume() const {
    int r = result();
    if (r == -ENOENT) return std::size_t{0};
    return detail::size_result(r);
  }
 private:
  void prep(io_uring_sqe* sqe) override {
    io_uring_prep_cancel_fd(sqe, fd_, IORING_ASYNC_CANCEL_ALL);
  }
  int fd_;
};

// One-shot poll: returns the ready events (POLLIN, POLLOUT, POLLHUP, ...).
class poll final : public io_op {
 public:
  poll(int fd, unsigned events, op_options o = {}) : io_op(o), fd_(fd), events_(events) {}
  io_result<unsigned> await_resume() const {
    int r = result();
    if (r < 0) return errno_code(r);
    return static_cast<unsigned>(r);
  }
 private:
  void prep(io_uring_sqe* sqe) override { io_uring_prep_poll_add(sqe, fd_, events_); }
  int fd_;
  unsigned events_;
};

// Moves up to `len` bytes between two fds, one of which must be a pipe, without a user copy.
// Offsets: -1 for pipes and the current position.
class splice final : public io_op {
 public:
  splice(int fd_in, std::int64_t off_in, int fd_out, std::int64_t off_out, std::size_t len,
         op_options o = {}, unsigned flags = 0)
      : io_op(o), in_(fd_in), out_(fd_out), off_in_(off_in), off_out_(off_out), len_(len), flags_(flags) {}
  io_result<std::size_t> await_resume() const { return detail::size_result(result()); }
 private:
  void prep(io_uring_sqe* sqe) override {
    io_uring_prep_splice(sqe, in_, off_in_, out_, off_out_, detail::clamp_len(len_), flags_);
  }
  int in_, out_;
  std::int64_t off_in_, off_out_;
  std::size_t len_;
  unsigned flags_;
};

}  // namespace ringfetch::op
