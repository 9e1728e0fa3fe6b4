#include "http/response_writer.hpp"

#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "runtime/ops.hpp"
#include "runtime/timer.hpp"

namespace ringfetch::http {
namespace {

// How long a reset fault waits for the bytes before it to be acknowledged by the client's
// kernel: an RST discards whatever is still in our send queue.
constexpr auto reset_drain_limit = std::chrono::seconds(2);
constexpr auto reset_drain_poll = std::chrono::milliseconds(1);

std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

error transport_error(std::string what) {
  error e;
  e.kind = error_kind::transport;
  e.message = std::move(what);
  return e;
}

}  // namespace

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

op_options response_writer::options() const {
  return {.deadline = steady_clock::now() + ctx_.send_timeout, .cancel = ctx_.cancel};
}

error response_writer::fail(error e) {
  broken_ = true;
  return e;
}

result<void> response_writer::refuse_twice() const {
  error e;
  e.kind = error_kind::invalid_argument;
  e.message = "response already started";
  return e;
}

std::string response_writer::head(int status, const std::vector<header_field>& headers,
                                  std::string_view framing) const {
  std::string h;
  h.reserve(256);
  h += "HTTP/1.1 ";
  h += std::to_string(status);
  h += ' ';
  h += reason_phrase(status);
  h += "\r\nServer: ringfetch\r\n";
  h += framing;
  h += keep_alive_ ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  for (auto& f : headers) {
    h += f.name;
    h += ": ";
    h += f.value;
    h += "\r\n";
  }
  h += "\r\n";
  return h;
}

task<result<void>> response_writer::write(std::span<const std::byte> data) {
  if (!ctx_.stream->is_open()) co_return fail(transport_error("connection already closed"));
  auto w = co_await ctx_.stream->write_all(data, options());
  if (!w) co_return fail(error::from_code(w.error(), "send to " + ctx_.stream->peer()));
  co_return result<void>{};
}

std::uint64_t response_writer::allowance(std::uint64_t wanted) const noexcept {
  if (fault_.what == fault::kind::none) return wanted;
  if (body_sent_ >= fault_.after_body_bytes) return 0;
  return std::min(wanted, fault_.after_body_bytes - body_sent_);
}

task<result<void>> response_writer::fire_fault() {
  broken_ = true;
  int fd = ctx_.stream->native_handle();
  const std::string where = std::to_string(body_sent_) + " body bytes";
  switch (fault_.what) {
    case fault::kind::reset: {
      // Let the client's kernel acknowledge what went before, so it sees exactly N bytes and
      // then the reset (an RST drops our unsent queue).
      const time_point limit = steady_clock::now() + reset_drain_limit;
      int queued = 0;
      while (::ioctl(fd, SIOCOUTQ, &queued) == 0 && queued > 0 && steady_clock::now() < limit) {
        auto slept = co_await sleep_for(reset_drain_poll, ctx_.cancel);
        if (!slept) break;
      }
      linger hard{.l_onoff = 1, .l_linger = 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
      co_await ctx_.stream->close();
      co_return transport_error("fault injected: connection reset after " + where);
    }
    case fault::kind::truncate:
      co_await ctx_.stream->close();
      co_return transport_error("fault injected: connection closed after " + where);
    case fault::kind::stall: {
      // Hold the connection without sending: wait for the client to give up (or the timeout, or
      // stop()), discarding whatever it sends meanwhile.
      std::byte sink[512];
      const op_options o = options();
      for (;;) {
        auto n = co_await op::recv(fd, sink, o);
        if (!n || *n == 0) break;
      }
      co_await ctx_.stream->close();
      co_return transport_error("fault injected: stalled after " + where);
    }
    case fault::kind::none: break;
  }
  co_return result<void>{};
}

task<result<void>> response_writer::body(std::span<const std::byte> data) {
  const std::size_t allowed = allowance(data.size());
  if (allowed > 0) {
    auto w = co_await write(data.first(allowed));
    if (!w) co_return w;
    body_sent_ += allowed;
  }
  if (allowed < data.size()) co_return co_await fire_fault();
  co_return result<void>{};
}

task<result<void>> response_writer::send(int status, const std::vector<header_field>& headers,
                                         std::span<const std::byte> data) {
  if (started_) co_return refuse_twice();
  started_ = true;
  const std::string framing = "Content-Length: " + std::to_string(data.size()) + "\r\n";
  std::string h = head(status, headers, framing);
  // Small bodies go out with the head in one send.
  if (!head_request_ && !data.empty() && data.size() <= 16 * 1024 &&
      fault_.what == fault::kind::none) {
    const std::size_t head_size = h.size();
    h.resize(head_size + data.size());
    std::memcpy(h.data() + head_size, data.data(), data.size());
    auto w = co_await write(as_bytes(h));
    if (!w) co_return w;
    body_sent_ = data.size();
    finished_ = true;
    co_return result<void>{};
  }
  auto w = co_await write(as_bytes(h));
  if (!w) co_return w;
  if (!head_request_) {
    auto b = co_await body(data);
    if (!b) co_return b;
  }
  finished_ = true;
  co_return result<void>{};
}

result<void> response_writer::ensure_pipe() {
  if (ctx_.pipe_read >= 0) return {};
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0)
    return fail(error::from_code({errno, std::system_category()}, "pipe for splice"));
  ctx_.pipe_read = p[0];
  ctx_.pipe_write = p[1];
  // A bigger pipe means fewer splice round trips; the default 64 KiB is the fallback when
  // pipe-max-size refuses.
  int got = ::fcntl(p[1], F_SETPIPE_SZ, ctx_.wanted_pipe_capacity);
  if (got < 0) got = ::fcntl(p[1], F_GETPIPE_SZ);
  ctx_.pipe_capacity = got > 0 ? static_cast<std::size_t>(got) : 64 * 1024;
  return {};
}

task<result<void>> response_writer::splice_file(int file_fd, std::uint64_t offset,
                                                std::uint64_t length) {
  if (auto p = ensure_pipe(); !p) co_return p;
  const int sock = ctx_.stream->native_handle();
  while (length > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(length, ctx_.pipe_capacity));
    const op_options o = options();
    auto in = co_await op::splice(file_fd, static_cast<std::int64_t>(offset), ctx_.pipe_write, -1,
                                  want, o, SPLICE_F_MOVE);
    if (!in) co_return fail(error::from_code(in.error(), "splice from file"));
    if (*in == 0) co_return fail(transport_error("file ended " + std::to_string(length) +
                                                 " bytes before the range sent"));
    std::size_t in_pipe = *in;
    offset += in_pipe;
    length -= in_pipe;
    while (in_pipe > 0) {
      const op_options so = options();
      auto out = co_await op::splice(ctx_.pipe_read, -1, sock, -1, in_pipe, so, SPLICE_F_MOVE);
      if (!out || *out == 0) {
        // The pipe still holds bytes of this body: it cannot serve another response.
        ::close(std::exchange(ctx_.pipe_read, -1));
        ::close(std::exchange(ctx_.pipe_write, -1));
        if (!out) co_return fail(error::from_code(out.error(), "splice to " + ctx_.stream->peer()));
        co_return fail(transport_error("splice to " + ctx_.stream->peer() + " moved nothing"));
      }
      in_pipe -= *out;
      body_sent_ += *out;
    }
  }
  co_return result<void>{};
}

task<result<void>> response_writer::copy_file(int file_fd, std::uint64_t offset,
                                              std::uint64_t length) {
  std::vector<std::byte> buffer(static_cast<std::size_t>(
      std::min<std::uint64_t>(length, static_cast<std::uint64_t>(ctx_.wanted_pipe_capacity))));
  while (length > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(length, buffer.size()));
    const std::span<std::byte> into = std::span(buffer).first(want);
    auto n = co_await op::read(file_fd, into, offset);
    if (!n) co_return fail(error::from_code(n.error(), "read from file"));
    if (*n == 0) co_return fail(transport_error("file ended " + std::to_string(length) +
                                                " bytes before the range sent"));
    auto w = co_await write(into.first(*n));
    if (!w) co_return w;
    offset += *n;
    length -= *n;
    body_sent_ += *n;
  }
  co_return result<void>{};
}

task<result<void>> response_writer::send_file(int status, const std::vector<header_field>& headers,
                                              int file_fd, std::uint64_t offset,
                                              std::uint64_t length) {
  if (started_) co_return refuse_twice();
  started_ = true;
  const std::string framing = "Content-Length: " + std::to_string(length) + "\r\n";
  const std::string h = head(status, headers, framing);
  auto w = co_await write(as_bytes(h));
  if (!w) co_return w;
  if (!head_request_) {
    const std::uint64_t allowed = allowance(length);
    result<void> s;
    if (ctx_.plain_socket) s = co_await splice_file(file_fd, offset, allowed);
    else s = co_await copy_file(file_fd, offset, allowed);
    if (!s) co_return s;
    if (allowed < length) co_return co_await fire_fault();
  }
  finished_ = true;
  co_return result<void>{};
}

task<result<void>> response_writer::begin_chunked(int status,
                                                  const std::vector<header_field>& headers) {
  if (started_) co_return refuse_twice();
  started_ = true;
  const std::string h = head(status, headers, head_request_ ? "" : "Transfer-Encoding: chunked\r\n");
  co_return co_await write(as_bytes(h));
}

task<result<void>> response_writer::write_chunk(std::span<const std::byte> data) {
  if (head_request_ || data.empty()) co_return result<void>{};
  const std::size_t allowed = allowance(data.size());
  if (allowed > 0) {
    char size_line[32];
    const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", allowed);
    const std::string_view line(size_line, static_cast<std::size_t>(n));
    auto a = co_await write(as_bytes(line));
    if (!a) co_return a;
    auto b = co_await write(data.first(allowed));
    if (!b) co_return b;
    body_sent_ += allowed;
    auto c = co_await write(as_bytes("\r\n"));
    if (!c) co_return c;
  }
  if (allowed < data.size()) co_return co_await fire_fault();
  co_return result<void>{};
}

task<result<void>> response_writer::end_chunked() {
  if (!head_request_) {
    auto w = co_await write(as_bytes("0\r\n\r\n"));
    if (!w) co_return w;
  }
  finished_ = true;
  co_return result<void>{};
}

}  // namespace ringfetch::http
