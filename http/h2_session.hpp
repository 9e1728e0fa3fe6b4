// h2_session: an HTTP/2 client connection over one transport, many concurrent requests, bodies
// copied once from the receive buffer into each caller's span.
//
// nghttp2 only parses and frames (nghttp2_session_mem_recv / mem_send); the session owns two
// coroutines that do the I/O: a reader that pumps transport::read_some into a large receive
// buffer and feeds it to nghttp2 (DATA payloads are copied from there straight into the stream's
// destination), and a writer that flushes whatever nghttp2 wants to send (requests, WINDOW_UPDATE,
// PING acks, RST_STREAM, GOAWAY). The transport must allow one read_some and one write_all in
// flight at the same time (full duplex), as tcp_stream does.
//
// Each send() is one stream. The server's SETTINGS_MAX_CONCURRENT_STREAMS is honoured: extra
// sends wait (FIFO) for a stream to finish. Errors are per stream where the protocol allows it
// (RST_STREAM from the server, a body larger than `dest`, a timeout, a cancel: the session goes
// on); session-level failures (transport error, malformed frames, peer closed) fail every open
// stream. After GOAWAY, streams the server will not process fail with a retryable error and new
// sends fail with "connection is going away".
//
// Threading and lifetime: reactor-local, like the transport. Created by start(); close() must
// have completed before the session is destroyed (it stops both coroutines and waits for every
// send() still running to return), and no send() may be started after close().
#pragma once

#include <nghttp2/nghttp2.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "http/message.hpp"
#include "http/transport.hpp"
#include "runtime/error.hpp"
#include "runtime/event.hpp"
#include "runtime/io_op.hpp"
#include "runtime/task.hpp"

namespace ringfetch::http {

struct h2_options {
  std::chrono::milliseconds settings_timeout{10'000};    // start() → the server's SETTINGS
  std::chrono::milliseconds first_byte_timeout{30'000};  // request queued → response HEADERS
  std::chrono::milliseconds idle_timeout{30'000};        // longest silence inside a response
  std::uint32_t stream_window = 32u << 20;       // SETTINGS_INITIAL_WINDOW_SIZE we advertise
  std::uint32_t connection_window = 256u << 20;  // our receive window on stream 0
  std::uint32_t max_frame_size = 1u << 20;       // SETTINGS_MAX_FRAME_SIZE we accept
  std::size_t receive_buffer = 1u << 20;         // bytes asked of each read_some
  std::size_t max_streams = 256;                 // our own cap, below the server's
  std::size_t max_header_bytes = 64 * 1024;      // per response, names + values
};

namespace detail {
struct h2_stream;
}

// Cancels the sends that carry it, on any session of its reactor. Reactor-local. A cancelled
// send() resets its stream (RST_STREAM CANCEL) and returns error_kind::cancelled; it returns only
// once nothing can write into its destination any more. Must outlive the sends that carry it.
class stream_cancel {
 public:
  stream_cancel() = default;
  stream_cancel(const stream_cancel&) = delete;
  stream_cancel& operator=(const stream_cancel&) = delete;
  ~stream_cancel();

  void request_cancel();
  bool cancel_requested() const noexcept { return requested_; }
  void reset() noexcept { requested_ = false; }

 private:
  friend class h2_session;
  detail::h2_stream* head_ = nullptr;
  bool requested_ = false;
};

class h2_session {
 public:
  // Sends the connection preface and our SETTINGS over `t` (already connected: h2c with prior
  // knowledge on tcp_stream, or TLS whose ALPN chose "h2"), starts the reader and writer, and
  // returns once the server's SETTINGS arrived. `authority` is the :authority of every request.
  // The scheme is "https" when the transport negotiated ALPN "h2", else "http".
  static task<result<std::unique_ptr<h2_session>>> start(std::unique_ptr<transport> t,
                                                         std::string authority,
                                                         h2_options options = {});

  h2_session(const h2_session&) = delete;
  h2_session& operator=(const h2_session&) = delete;
  ~h2_session();

  // Sends `req` on a new stream and receives its response: a 2xx body into `dest`, another
  // status's body (first 64 KiB) into response::error_body. `req` and `dest` must stay valid until
  // the co_await returns; after it returns nothing writes into `dest`. Errors carry the target and
  // the body bytes that arrived (error::offset).
  task<result<response>> send(const request& req, std::span<std::byte> dest,
                              stream_cancel* cancel = nullptr);

  // New sends may still be made: not going away, not failed, not closing.
  bool reusable() const noexcept;
  // How many more sends would start a stream at once (0 when not reusable).
  std::size_t available_streams() const noexcept;
  std::size_t open_streams() const noexcept { return open_streams_; }
  // The server's stream limit, capped by h2_options::max_streams.
  std::size_t stream_limit() const noexcept { return stream_limit_; }
  transport& stream() noexcept { return *transport_; }

  // Sends GOAWAY (best effort), fails whatever is still open, closes the transport and waits for
  // the reader, the writer and every running send() to finish. Idempotent.
  task<void> close();

 private:
  h2_session(std::unique_ptr<transport> t, std::string authority, h2_options options);

  task<void> read_loop();
  task<void> write_loop();
  void want_write() { write_wanted_.set(); }
  // Fails every open stream and refuses new ones; the first failure is kept and reported.
  void fail_session(error e);
  void finish_stream(detail::h2_stream& s, std::optional<error> e);
  // Stops the stream: detaches it from nghttp2 (no callback reaches it any more) and sends
  // RST_STREAM with `code` if the stream is still open.
  void abandon_stream(detail::h2_stream& s, std::uint32_t code);
  task<bool> acquire_slot(detail::h2_stream& s);
  void release_slot();
  void grant_slots();
  void wake_all_slot_waiters();
  void update_stream_limit();
  void link(detail::h2_stream& s);
  void unlink(detail::h2_stream& s);
  error stream_error(error e, const detail::h2_stream& s) const;
  std::vector<nghttp2_nv> request_headers(const request& req, std::deque<std::string>& storage) const;

  // nghttp2 callbacks (user_data is the session).
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_header(nghttp2_session*, const nghttp2_frame*, const std::uint8_t*, std::size_t,
                       const std::uint8_t*, std::size_t, std::uint8_t, void*);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_data_chunk_recv(nghttp2_session*, std::uint8_t, std::int32_t, const std::uint8_t*,
                                std::size_t, void*);
  static int on_stream_close(nghttp2_session*, std::int32_t, std::uint32_t, void*);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_frame_not_send(nghttp2_session*, const nghttp2_frame*, int, void*);
  static int on_error(nghttp2_session*, int, const char*, std::size_t, void*);

  std::unique_ptr<transport> transport_;
  std::string authority_;
  std::string scheme_;
  h2_options options_;
  nghttp2_session* session_ = nullptr;
  std::vector<std::byte> receive_buffer_;
  std::vector<std::byte> send_buffer_;

  task<void> reader_;
  task<void> writer_;
  event reader_done_;
  event writer_done_;
  event write_wanted_;
  event sends_finished_;
  cancel_source settings_wake_;  // cancelled (woken) when the server's SETTINGS arrive

  detail::h2_stream* streams_ = nullptr;       // every send() in progress
  detail::h2_stream* slot_waiters_ = nullptr;  // FIFO of sends waiting for a stream slot
  detail::h2_stream* slot_waiters_tail_ = nullptr;
  std::size_t running_sends_ = 0;
  std::size_t open_streams_ = 0;
  std::size_t stream_limit_ = 100;  // RFC 9113's suggested minimum until SETTINGS says otherwise
  std::optional<error> failure_;    // the session is dead
  std::string last_protocol_error_;
  bool settings_received_ = false;
  bool going_away_ = false;
  std::int32_t goaway_last_stream_ = 0;
  bool closing_ = false;
  bool closed_ = false;
  bool stop_writer_ = false;
  bool write_broken_ = false;
  bool writing_ = false;
};

}  // namespace ringfetch::http
