#include "http/h1_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "http/tcp_stream.hpp"
#include "http/tls_stream.hpp"
#include "runtime/log.hpp"
#include "runtime/ops.hpp"
#include "runtime/reactor.hpp"
#include "runtime/timer.hpp"

namespace ringfetch::http {
namespace {

constexpr std::size_t receive_buffer_size = 64 * 1024;
constexpr auto lingering_close_limit = std::chrono::seconds(1);
constexpr std::size_t lingering_close_bytes = 1 << 20;

std::string describe(const sockaddr_storage& a) {
  char host[INET6_ADDRSTRLEN] = "?";
  std::uint16_t port = 0;
  if (a.ss_family == AF_INET) {
    auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
    ::inet_ntop(AF_INET, &v4.sin_addr, host, sizeof host);
    port = ntohs(v4.sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (a.ss_family == AF_INET6) {
    auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
    ::inet_ntop(AF_INET6, &v6.sin6_addr, host, sizeof host);
    port = ntohs(v6.sin6_port);
  }
  // Appended piecewise: `"[" + std::string(...)` trips a false -Wrestrict in GCC 12.
  std::string out = "[";
  out += host;
  out += "]:";
  out += std::to_string(port);
  return out;
}

error system_error(std::string what) {
  return error::from_code({errno, std::system_category()}, what);
}

}  // namespace

// The state of one accepted connection; lives in (and dies with) its serve() coroutine.
struct h1_server::connection {
  connection(h1_server& s, int fd, std::string peer)
      : owner(s),
        stream(std::make_unique<tcp_stream>(fd, std::move(peer))),
        parser(s.options_.limits),
        in(receive_buffer_size) {
    ctx.stream = stream.get();
    ctx.cancel = &cancel;
    ctx.send_timeout = s.options_.send_timeout;
    ctx.wanted_pipe_capacity = s.options_.splice_pipe_bytes;
    where = owner.connections_.insert(owner.connections_.end(), this);
    ++owner.stats_.open_connections;
  }
  ~connection() {
    owner.connections_.erase(where);
    --owner.stats_.open_connections;
    if (ctx.pipe_read >= 0) ::close(ctx.pipe_read);
    if (ctx.pipe_write >= 0) ::close(ctx.pipe_write);
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  std::span<const std::byte> buffered() const { return std::span(in).subspan(begin, end - begin); }

  h1_server& owner;
  std::unique_ptr<transport> stream;
  cancel_source cancel;
  writer_context ctx;
  h1_request_parser parser;
  std::vector<std::byte> in;
  std::size_t begin = 0;  // unparsed bytes are in[begin, end)
  std::size_t end = 0;
  std::list<connection*>::iterator where;
};

// Counts a running coroutine of the server out when its frame ends, however it ends (returned,
// threw, or destroyed by a reactor shutdown).
class h1_server::live_guard {
 public:
  explicit live_guard(h1_server& s) noexcept : s_(s) {}
  live_guard(const live_guard&) = delete;
  live_guard& operator=(const live_guard&) = delete;
  ~live_guard() { s_.finished_one(); }

 private:
  h1_server& s_;
};

result<std::unique_ptr<h1_server>> h1_server::listen(request_handler& handler,
                                                     server_options options) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto& v4 = reinterpret_cast<sockaddr_in&>(addr);
  auto& v6 = reinterpret_cast<sockaddr_in6&>(addr);
  if (::inet_pton(AF_INET, options.address.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(options.port);
    len = sizeof v4;
  } else if (::inet_pton(AF_INET6, options.address.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(options.port);
    len = sizeof v6;
  } else {
    error e;
    e.kind = error_kind::invalid_argument;
    e.message = "listen address is not a numeric IP address: " + options.address;
    return e;
  }
  const std::string where = options.address + ":" + std::to_string(options.port);
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return system_error("socket for " + where);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(fd, options.backlog) != 0) {
    error e = system_error("listen on " + where);
    ::close(fd);
    return e;
  }
  socklen_t bound_len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &bound_len);
  const std::uint16_t port = ntohs(addr.ss_family == AF_INET ? v4.sin_port : v6.sin6_port);
  return std::unique_ptr<h1_server>(new h1_server(handler, std::move(options), fd, port));
}

h1_server::h1_server(request_handler& handler, server_options options, int fd, std::uint16_t port)
    : handler_(handler), options_(std::move(options)), listen_fd_(fd), port_(port) {}

h1_server::~h1_server() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void h1_server::start() {
  if (started_ || stopping_) return;
  started_ = true;
  ++live_;
  reactor::current()->spawn(accept_loop());
}

void h1_server::finished_one() {
  --live_;
  slot_freed_.set();
  if (live_ == 0) all_done_.set();
}

task<void> h1_server::stop() {
  if (!stopping_) {
    stopping_ = true;
    accept_cancel_.request_cancel();
    slot_freed_.set();
    for (connection* c : connections_) c->cancel.request_cancel();
  }
  if (live_ > 0) co_await all_done_.wait();
  if (listen_fd_ >= 0) ::close(std::exchange(listen_fd_, -1));
}

task<void> h1_server::accept_loop() {
  live_guard counted(*this);
  reactor* here = reactor::current();
  while (!stopping_) {
    // live_ counts this loop too.
    while (live_ - 1 >= options_.max_connections && !stopping_) {
      slot_freed_.reset();
      co_await slot_freed_.wait();
    }
    if (stopping_) break;
    sockaddr_storage peer{};
    const op_options o{.cancel = &accept_cancel_};
    auto fd = co_await op::accept(listen_fd_, &peer, o);
    if (!fd) {
      if (stopping_) break;
      // Out of descriptors or memory: the backlog keeps the client waiting; try again shortly
      // rather than spinning on the same failure.
      log::warn("h1_server: accept: " + fd.error().message());
      auto pause = co_await sleep_for(std::chrono::milliseconds(10), &accept_cancel_);
      (void)pause;
      continue;
    }
    int one = 1;
    ::setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ++stats_.accepted;
    ++live_;
    here->spawn(serve(std::make_unique<connection>(*this, *fd, describe(peer))));
  }
}

task<void> h1_server::serve(std::unique_ptr<connection> c) {
  live_guard counted(*this);
  if (options_.tls != nullptr) {
    const op_options o{.deadline = steady_clock::now() + options_.request_timeout,
                       .cancel = &c->cancel};
    auto secured = co_await tls_stream::accept(std::move(c->stream), *options_.tls, o);
    if (!secured) {
      log::debug("h1_server: TLS handshake: " + secured.error().describe());
      co_return;  // the transport went down with the failed handshake
    }
    c->stream = std::move(*secured);
    c->ctx.stream = c->stream.get();
    c->ctx.plain_socket = false;
  }
  while (!stopping_) {
    const bool again = co_await serve_one(*c);
    if (!again) break;
  }
  co_await c->stream->close();
}

task<void> h1_server::refuse(connection& c, const error& why) {
  ++stats_.bad_requests;
  const int status = why.http_status != 0 ? why.http_status : 400;
  response_writer w(c.ctx, false, false);
  const std::string text = why.message + "\n";
  const std::vector<header_field> headers{{"Content-Type", "text/plain"}};
  const std::span<const std::byte> body(reinterpret_cast<const std::byte*>(text.data()), text.size());
  auto sent = co_await w.send(status, headers, body);
  if (!sent || !c.stream->is_open()) co_return;
  // Lingering close: closing with unread request bytes in the socket makes the kernel send an RST,
  // which can destroy the answer before the client reads it. Half-close, then drain (bounded).
  ::shutdown(c.stream->native_handle(), SHUT_WR);
  const op_options o{.deadline = steady_clock::now() + lingering_close_limit, .cancel = &c.cancel};
  for (std::size_t drained = 0; drained < lingering_close_bytes;) {
    auto n = co_await c.stream->read_some(std::span(c.in), o);
    if (!n || *n == 0) break;
    drained += *n;
  }
}

task<bool> h1_server::serve_one(connection& c) {
  c.parser.begin();
  time_point deadline = steady_clock::now() + options_.idle_timeout;
  bool continue_sent = false;
  while (c.parser.current() != h1_request_parser::phase::complete) {
    if (c.begin == c.end) {
      c.begin = c.end = 0;
      const op_options o{.deadline = deadline, .cancel = &c.cancel};
      auto n = co_await c.stream->read_some(std::span(c.in), o);
      // EOF, timeout, reset or stop: between requests that is a normal end; inside one the
      // client cannot be answered meaningfully any more.
      if (!n || *n == 0) {
        // A client too slow to finish its request is told so (408) before the close.
        if (!n && n.error() == std::errc::timed_out && !c.parser.idle()) {
          error late;
          late.kind = error_kind::timeout;
          late.http_status = 408;
          late.message = "request not received within " +
                         std::to_string(options_.request_timeout.count()) + " ms";
          co_await refuse(c, late);
        }
        co_return false;
      }
      c.end = *n;
    }
    const bool was_idle = c.parser.idle();
    auto used = c.parser.feed(c.buffered());
    if (!used) {
      co_await refuse(c, used.error());
      co_return false;
    }
    c.begin += *used;
    if (was_idle && !c.parser.idle()) deadline = steady_clock::now() + options_.request_timeout;
    if (c.parser.expects_continue() && !continue_sent &&
        c.parser.current() == h1_request_parser::phase::body) {
      continue_sent = true;
      static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
      const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(go_on.data()),
                                             go_on.size());
      const op_options o{.deadline = steady_clock::now() + options_.send_timeout, .cancel = &c.cancel};
      auto w = co_await c.stream->write_all(bytes, o);
      if (!w) co_return false;
    }
  }
  ++stats_.requests;
  server_request req{.method = c.parser.method(),
                     .target = c.parser.target(),
                     .headers = c.parser.headers(),
                     .body = std::move(c.parser.body()),
                     .peer = c.stream->peer()};
  const bool head_request = req.method == "HEAD";
  response_writer w(c.ctx, head_request, c.parser.keep_alive() && !stopping_);
  co_await handler_.handle(req, w);
  if (!w.started()) {
    w.close_after();
    const std::vector<header_field> none;
    const std::span<const std::byte> empty;
    auto sent = co_await w.send(500, none, empty);
    (void)sent;
    co_return false;
  }
  co_return w.finished() && !w.closing() && c.stream->is_open() && !stopping_;
}

}  // namespace ringfetch::http
