#include "http/tcp_stream.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/ops.hpp"
#include "runtime/registered_arena.hpp"

namespace ringfetch::http {
namespace {

void tune(int fd, const tcp_options& o) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Best effort: the kernel clamps to net.core.{r,w}mem_max; autotuning is the fallback.
  if (o.receive_buffer > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o.receive_buffer, sizeof(int));
  if (o.send_buffer > 0) ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o.send_buffer, sizeof(int));
}

}  // namespace

task<result<std::unique_ptr<tcp_stream>>> tcp_stream::connect(resolver& names, std::string host,
                                                               std::uint16_t port,
                                                               tcp_options options) {
  const time_point deadline = steady_clock::now() + options.connect_timeout;
  auto where = [&] { return host + ":" + std::to_string(port); };
  auto addresses = co_await names.resolve(host, port);
  if (!addresses) co_return addresses.error();
  error last;
  for (const endpoint& e : *addresses) {
    int fd = ::socket(e.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last = error::from_code({errno, std::system_category()}, "socket for " + where());
      continue;
    }
    tune(fd, options);
    auto c = co_await op::connect(fd, e.sockaddr_ptr(), e.len, until(deadline));
    if (c) co_return std::make_unique<tcp_stream>(fd, e.str());
    ::close(fd);
    last = error::from_code(c.error(), "connect to " + where() + " (" + e.str() + ")");
    if (c.error() == std::errc::timed_out || c.error() == std::errc::operation_canceled) break;
  }
  co_return last;
}

tcp_stream::~tcp_stream() {
  if (fd_ >= 0) ::close(fd_);
}

task<io_result<std::size_t>> tcp_stream::read_some(std::span<std::byte> buffer, op_options o) {
  // A destination inside the reactor's registered arena is read by buffer index: the kernel
  // skips pinning its pages for every read.
  if (registered_arena* arena = reactor::current()->arena()) {
    if (int index = arena->index_of(buffer); index >= 0) {
      co_return co_await op::read_fixed(fd_, fixed_span{buffer, index}, ~std::uint64_t{0}, o);
    }
  }
  co_return co_await op::recv(fd_, buffer, o);
}

task<io_result<void>> tcp_stream::write_all(std::span<const std::byte> data, op_options o) {
  while (!data.empty()) {
    auto n = co_await op::send(fd_, data, o);
    if (!n) co_return n.error();
    data = data.subspan(*n);
  }
  co_return io_result<void>{};
}

task<void> tcp_stream::close() {
  if (fd_ < 0) co_return;
  int fd = std::exchange(fd_, -1);
  (void)co_await op::cancel_fd(fd);
  (void)co_await op::close(fd);
}

}  // namespace ringfetch::http
