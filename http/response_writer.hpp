// response_writer: how a request handler answers one HTTP/1.1 request on the server side.
//
// A handler answers exactly once, with one of:
//  - send(): status, headers and a body from memory (Content-Length framing);
//  - send_file(): status, headers and a byte range of an open file, moved file → pipe → socket
//    with splice, never copied through user space (plain TCP);
//  - begin_chunked() + write_chunk()* + end_chunked(): chunked output of unknown length.
// The writer adds Content-Length / Transfer-Encoding, Connection and Server; the caller's headers
// must not repeat them. A response to HEAD carries the same head and no body.
// inject() arms a fault on the body (reset, stall or truncate after N body bytes), for the fake
// GCS server. Any failure (or fault) makes the connection unusable: the server closes it.
// Buffers and the file descriptor are borrowed for the duration of each co_await. Reactor-local;
// valid only inside the handler call that received it. Over TLS, file bodies are read into a
// buffer and encrypted (splice needs the plain socket).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/h1_parser.hpp"
#include "http/transport.hpp"
#include "runtime/error.hpp"
#include "runtime/io_op.hpp"
#include "runtime/task.hpp"

namespace ringfetch::http {

// What happens once `after_body_bytes` bytes of the body have been sent.
struct fault {
  enum class kind {
    none,
    reset,     // the connection is reset (SO_LINGER 0 + close: the client sees ECONNRESET)
    stall,     // nothing more is sent; the connection stays open until the client leaves, the
               // send timeout passes or the server stops
    truncate,  // the connection is closed cleanly (FIN) mid-body
  };
  kind what = kind::none;
  std::uint64_t after_body_bytes = 0;
};

// Per-connection state the writer works on; owned by the server's connection.
struct writer_context {
  transport* stream = nullptr;
  bool plain_socket = true;          // stream is the socket itself: file bodies may be spliced
  cancel_source* cancel = nullptr;   // the server's stop() cancels through it
  std::chrono::milliseconds send_timeout{30'000};
  int pipe_read = -1;   // lazily made splice pipe, closed by the connection
  int pipe_write = -1;
  std::size_t pipe_capacity = 0;
  int wanted_pipe_capacity = 1 << 20;  // asked of F_SETPIPE_SZ when the pipe is made
};

class response_writer {
 public:
  response_writer(writer_context& ctx, bool head_request, bool keep_alive) noexcept
      : ctx_(ctx), head_request_(head_request), keep_alive_(keep_alive) {}
  response_writer(const response_writer&) = delete;
  response_writer& operator=(const response_writer&) = delete;

  task<result<void>> send(int status, const std::vector<header_field>& headers,
                          std::span<const std::byte> body);
  // Sends bytes [offset, offset + length) of `file_fd` (a regular file). A file shorter than
  // that is an error after the head went out: the connection is closed mid-body.
  task<result<void>> send_file(int status, const std::vector<header_field>& headers, int file_fd,
                               std::uint64_t offset, std::uint64_t length);
  task<result<void>> begin_chunked(int status, const std::vector<header_field>& headers);
  task<result<void>> write_chunk(std::span<const std::byte> data);
  task<result<void>> end_chunked();

  // Arms a fault for this response's body. Call before sending.
  void inject(fault f) noexcept { fault_ = f; }
  // Ask for the connection to close after this response (Connection: close).
  void close_after() noexcept { keep_alive_ = false; }

  bool started() const noexcept { return started_; }
  bool finished() const noexcept { return finished_; }
  // The connection must close after this response (asked for, failed, or a fault fired).
  bool closing() const noexcept { return !keep_alive_ || broken_; }
  std::uint64_t body_bytes_sent() const noexcept { return body_sent_; }

 private:
  std::string head(int status, const std::vector<header_field>& headers,
                   std::string_view framing) const;
  task<result<void>> write(std::span<const std::byte> data);
  task<result<void>> body(std::span<const std::byte> data);
  task<result<void>> splice_file(int file_fd, std::uint64_t offset, std::uint64_t length);
  task<result<void>> copy_file(int file_fd, std::uint64_t offset, std::uint64_t length);
  task<result<void>> fire_fault();
  result<void> ensure_pipe();
  result<void> refuse_twice() const;
  error fail(error e);
  op_options options() const;
  // Body bytes that may still go out before the armed fault fires.
  std::uint64_t allowance(std::uint64_t wanted) const noexcept;

  writer_context& ctx_;
  bool head_request_;
  bool keep_alive_;
  bool started_ = false;
  bool finished_ = false;
  bool broken_ = false;
  fault fault_{};
  std::uint64_t body_sent_ = 0;
};

// "Not Found" for 404; "Unknown" for codes it does not know.
std::string_view reason_phrase(int status) noexcept;

}  // namespace ringfetch::http
