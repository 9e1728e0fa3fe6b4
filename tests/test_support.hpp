// Shared test fixtures: an RAII reactor, loopback sockets, temporary files, byte patterns.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "runtime/log.hpp"
#include "runtime/ops.hpp"
#include "runtime/reactor.hpp"
#include "runtime/task.hpp"

namespace ringfetch::test {

// One reactor on the test's own thread; run() drives a task to completion on it.
struct reactor_fixture {
  explicit reactor_fixture(reactor_options o = {}) : r(o) {}
  template <class T>
  T run(task<T> t) {
    return r.block_on(std::move(t));
  }
  reactor r;
};

// Closes on destruction.
struct unique_fd {
  int fd = -1;
  unique_fd() = default;
  explicit unique_fd(int f) : fd(f) {}
  unique_fd(unique_fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    reset();
    fd = std::exchange(o.fd, -1);
    return *this;
  }
  ~unique_fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  int get() const { return fd; }
};

inline std::pair<unique_fd, unique_fd> socket_pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::runtime_error("socketpair");
  return {unique_fd(sv[0]), unique_fd(sv[1])};
}

// A TCP listener on 127.0.0.1 with a kernel-chosen port.
struct tcp_listener {
  unique_fd fd;
  sockaddr_in addr{};
  tcp_listener() {
    fd = unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd.get(), 128) != 0)
      throw std::runtime_error("listen on 127.0.0.1");
    socklen_t len = sizeof addr;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  }
  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&addr); }
};

// The server half of a hostile-server test: accepts one connection on `listen_fd` and reads (up
// to 4 KiB of) its first request, leaving the answer to the test. An invalid fd if accept failed.
inline task<unique_fd> accept_and_read_request(int listen_fd) {
  auto fd = co_await op::accept(listen_fd);
  if (!fd) co_return unique_fd();
  unique_fd conn(*fd);
  std::array<std::byte, 4096> request{};
  (void)co_await op::recv(conn.get(), request);
  co_return conn;
}

inline unique_fd tcp_socket() {
  unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

// An unlinked temporary file in /tmp.
inline unique_fd temp_file() {
  int fd = ::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("O_TMPFILE in /tmp");
  return unique_fd(fd);
}

// Deterministic bytes: byte i of the stream is pattern_byte(i). The period is prime, so it never
// lines up with power-of-two chunk sizes and a misplaced chunk cannot compare equal.
constexpr std::size_t pattern_period = 1'048'583;
inline std::byte pattern_byte(std::uint64_t i) {
  std::uint64_t x = (i % pattern_period) * 0x9E3779B97F4A7C15ull;
  return static_cast<std::byte>((x >> 56) ^ (x >> 29));
}
// One period, computed once, so large transfers are checked with memcmp rather than per byte.
inline const std::vector<std::byte>& pattern_table() {
  static const std::vector<std::byte> table = [] {
    std::vector<std::byte> t(pattern_period);
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = pattern_byte(i);
    return t;
  }();
  return table;
}
inline void fill_pattern(std::span<std::byte> out, std::uint64_t offset) {
  const auto& t = pattern_table();
  for (std::size_t done = 0; done < out.size();) {
    std::size_t at = (offset + done) % pattern_period;
    std::size_t n = std::min(out.size() - done, pattern_period - at);
    std::memcpy(out.data() + done, t.data() + at, n);
    done += n;
  }
}
inline bool matches_pattern(std::span<const std::byte> in, std::uint64_t offset) {
  const auto& t = pattern_table();
  for (std::size_t done = 0; done < in.size();) {
    std::size_t at = (offset + done) % pattern_period;
    std::size_t n = std::min(in.size() - done, pattern_period - at);
    if (std::memcmp(in.data() + done, t.data() + at, n) != 0) return false;
    done += n;
  }
  return true;
}

// Captures log lines for the lifetime of the object.
struct log_capture {
  std::mutex m;
  std::vector<std::string> lines;
  log_capture() {
    log::set_sink([this](log::level, std::string_view s) {
      std::lock_guard g(m);
      lines.emplace_back(s);
    });
  }
  ~log_capture() { log::set_sink(nullptr); }
  std::size_t count_containing(std::string_view needle) {
    std::lock_guard g(m);
    std::size_t n = 0;
    for (auto& l : lines)
      if (l.find(needle) != std::string::npos) ++n;
    return n;
  }
};

}  // namespace ringfetch::test
