#include "http/h2_session.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>

#include "runtime/reactor.hpp"
#include "runtime/timer.hpp"

namespace ringfetch::http {
namespace detail {

// One send(): lives in the send() coroutine's frame. nghttp2 reaches it through the stream's
// user data only while it is attached (abandon_stream detaches it before send() returns).
struct h2_stream {
  const request* req = nullptr;
  std::span<std::byte> dest;
  std::int32_t id = -1;
  response resp;
  std::uint64_t received = 0;  // body bytes (into dest for 2xx, counted otherwise)
  std::optional<std::uint64_t> content_length;
  std::size_t header_bytes = 0;
  bool final_headers = false;
  bool open_in_nghttp2 = false;
  bool finished = false;
  bool has_slot = false;
  bool queued_for_slot = false;
  std::optional<error> failure;
  time_point started{};
  time_point last_activity{};
  bool first_byte = false;
  cancel_source wake;  // request_cancel() wakes the send() sleeping on it

  h2_stream* prev = nullptr;  // h2_session::streams_
  h2_stream* next = nullptr;
  h2_stream* next_waiter = nullptr;  // h2_session::slot_waiters_
  stream_cancel* cancel = nullptr;
  h2_stream* cancel_prev = nullptr;
  h2_stream* cancel_next = nullptr;

  bool success() const noexcept { return resp.status >= 200 && resp.status < 300; }
  void notify() { wake.request_cancel(); }
};

}  // namespace detail

using detail::h2_stream;

namespace {

constexpr std::size_t max_error_body = 64 * 1024;
constexpr std::size_t send_batch = 256 * 1024;
constexpr auto close_flush_timeout = std::chrono::seconds(1);

// "after 70000 of 100000 body bytes"
std::string progress(const h2_stream& s) {
  std::string out = "after " + std::to_string(s.received);
  if (s.content_length) out += " of " + std::to_string(*s.content_length);
  return out + " body bytes";
}

h2_stream* stream_of(nghttp2_session* session, std::int32_t id) {
  return static_cast<h2_stream*>(nghttp2_session_get_stream_user_data(session, id));
}

h2_session& self(void* user_data) { return *static_cast<h2_session*>(user_data); }

std::string_view as_view(const std::uint8_t* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

bool connection_specific(std::string_view lower_name) {
  return lower_name == "connection" || lower_name == "keep-alive" ||
         lower_name == "proxy-connection" || lower_name == "transfer-encoding" ||
         lower_name == "upgrade" || lower_name == "host";
}

}  // namespace

// ---- stream_cancel ------------------------------------------------------------------------------

stream_cancel::~stream_cancel() {
  for (h2_stream* s = head_; s != nullptr; s = s->cancel_next) s->cancel = nullptr;
}

void stream_cancel::request_cancel() {
  requested_ = true;
  for (h2_stream* s = head_; s != nullptr; s = s->cancel_next) s->notify();
}

// ---- set-up and tear-down -----------------------------------------------------------------------

h2_session::h2_session(std::unique_ptr<transport> t, std::string authority, h2_options options)
    : transport_(std::move(t)),
      authority_(std::move(authority)),
      scheme_(transport_->alpn() == "h2" ? "https" : "http"),
      options_(options),
      receive_buffer_(options.receive_buffer) {
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &on_frame_send);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, &on_frame_not_send);
  nghttp2_session_callbacks_set_error_callback2(cbs, &on_error);
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) == 0) {
    nghttp2_option_set_peer_max_concurrent_streams(opt, static_cast<std::uint32_t>(stream_limit_));
    nghttp2_option_set_max_send_header_block_length(opt, 1 << 20);
  }
  if (nghttp2_session_client_new2(&session_, cbs, this, opt) != 0) session_ = nullptr;
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (!session_) return;
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.stream_window},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, options_.max_frame_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(options_.max_header_bytes)},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  // SETTINGS only sets stream windows; the connection window (stream 0) must be raised on its own.
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<std::int32_t>(options_.connection_window));
}

h2_session::~h2_session() {
  // The reader and writer frames are suspended on I/O until close() has run.
  if ((reader_.valid() && !reader_.done()) || (writer_.valid() && !writer_.done())) {
    std::fputs("ringfetch: h2_session destroyed before close() completed\n", stderr);
    std::terminate();
  }
  if (session_) nghttp2_session_del(session_);
}

task<result<std::unique_ptr<h2_session>>> h2_session::start(std::unique_ptr<transport> t,
                                                            std::string authority,
                                                            h2_options options) {
  std::unique_ptr<h2_session> s(new h2_session(std::move(t), std::move(authority), options));
  if (!s->session_) {
    co_await s->transport_->close();
    co_return error{.kind = error_kind::resource, .message = "nghttp2 session set-up failed"};
  }
  s->reader_ = s->read_loop();
  s->writer_ = s->write_loop();
  reactor::current()->schedule(s->reader_.handle());
  reactor::current()->schedule(s->writer_.handle());
  s->want_write();
  const time_point deadline = steady_clock::now() + options.settings_timeout;
  while (!s->settings_received_ && !s->failure_ && steady_clock::now() < deadline) {
    sleep_until nap(deadline, &s->settings_wake_);
    (void)co_await nap;
    s->settings_wake_.reset();
    if (reactor::current()->stopping()) break;
  }
  if (!s->settings_received_) {
    error e = s->failure_ ? *s->failure_
                          : error{.kind = error_kind::timeout,
                                  .message = "no HTTP/2 SETTINGS from " + s->transport_->peer() +
                                             " within " +
                                             std::to_string(options.settings_timeout.count()) + " ms",
                                  .retryable = true};
    co_await s->close();
    co_return e;
  }
  co_return s;
}

task<void> h2_session::close() {
  if (closing_) {
    // A second close() waits for the first.
    co_await reader_done_.wait();
    co_await writer_done_.wait();
    if (running_sends_ > 0) co_await sends_finished_.wait();
    co_return;
  }
  closing_ = true;
  if (!failure_) nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
  // A write stuck on a peer that does not read would hold close() for the idle timeout: the
  // GOAWAY is best effort, so cut it short.
  if (writing_) co_await transport_->close();
  stop_writer_ = true;
  want_write();
  co_await writer_done_.wait();
  fail_session({.kind = error_kind::cancelled, .message = "the HTTP/2 session was closed"});
  co_await transport_->close();
  co_await reader_done_.wait();
  if (running_sends_ > 0) co_await sends_finished_.wait();
  closed_ = true;
}

bool h2_session::reusable() const noexcept {
  return !failure_ && !going_away_ && !closing_ && transport_->is_open();
}

std::size_t h2_session::available_streams() const noexcept {
  if (!reusable() || open_streams_ >= stream_limit_ || slot_waiters_) return 0;
  return stream_limit_ - open_streams_;
}

// ---- I/O loops ----------------------------------------------------------------------------------

task<void> h2_session::read_loop() {
  while (!failure_) {
    auto n = co_await transport_->read_some(receive_buffer_);
    if (!n) {
      fail_session(error::from_code(n.error(), "receive from " + transport_->peer()));
      break;
    }
    if (*n == 0) {
      fail_session({.kind = error_kind::transport,
                    .message = "the server " + transport_->peer() + " closed the HTTP/2 connection",
                    .retryable = true});
      break;
    }
    auto used = nghttp2_session_mem_recv(
        session_, reinterpret_cast<const std::uint8_t*>(receive_buffer_.data()), *n);
    if (used < 0) {
      std::string what = nghttp2_strerror(static_cast<int>(used));
      if (!last_protocol_error_.empty()) what += " (" + last_protocol_error_ + ")";
      fail_session({.kind = error_kind::protocol,
                     .message = "HTTP/2 protocol error from " + transport_->peer() + ": " + what});
      break;
    }
    // WINDOW_UPDATE, SETTINGS and PING acks, RST_STREAM, GOAWAY on a protocol error.
    if (nghttp2_session_want_write(session_)) want_write();
  }
  reader_done_.set();
}

task<void> h2_session::write_loop() {
  for (;;) {
    co_await write_wanted_.wait();
    write_wanted_.reset();
    while (!write_broken_) {
      send_buffer_.clear();
      while (send_buffer_.size() < send_batch) {
        const std::uint8_t* data = nullptr;
        auto len = nghttp2_session_mem_send(session_, &data);
        if (len < 0) {
          fail_session({.kind = error_kind::internal,
                        .message = std::string("nghttp2 could not frame: ") +
                                   nghttp2_strerror(static_cast<int>(len))});
          write_broken_ = true;
          break;
        }
        if (len == 0) break;
        auto bytes = std::as_bytes(std::span(data, static_cast<std::size_t>(len)));
        send_buffer_.insert(send_buffer_.end(), bytes.begin(), bytes.end());
      }
      if (send_buffer_.empty() || write_broken_) break;
      const auto timeout = stop_writer_ ? std::chrono::milliseconds(close_flush_timeout)
                                        : options_.idle_timeout;
      writing_ = true;
      auto w = co_await transport_->write_all(send_buffer_, within(timeout));
      writing_ = false;
      if (!w) {
        write_broken_ = true;
        fail_session(error::from_code(w.error(), "send to " + transport_->peer()));
      }
    }
    // nghttp2 is done once a terminating GOAWAY went out or both sides went away with no streams.
    if (!failure_ && !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
      std::string why = last_protocol_error_.empty() ? "the session ended" : last_protocol_error_;
      fail_session({.kind = going_away_ ? error_kind::transport : error_kind::protocol,
                    .message = "HTTP/2 session with " + transport_->peer() + " is over: " + why,
                    .retryable = going_away_});
    }
    if (stop_writer_) break;
  }
  writer_done_.set();
}

void h2_session::fail_session(error e) {
  if (failure_) return;
  failure_ = e;
  settings_wake_.request_cancel();
  for (h2_stream* s = streams_; s != nullptr; s = s->next) {
    if (s->finished) continue;
    error mine = e;
    if (s->id > 0) mine.message += " (stream " + std::to_string(s->id) + ", " + progress(*s) + ")";
    // Never sent, or above the last stream a GOAWAY promised to process: safe to send again.
    if (s->id <= 0 || (going_away_ && s->id > goaway_last_stream_)) mine.not_processed = true;
    abandon_stream(*s, NGHTTP2_NO_ERROR);
    finish_stream(*s, stream_error(std::move(mine), *s));
  }
  wake_all_slot_waiters();
}

// ---- streams ------------------------------------------------------------------------------------

error h2_session::stream_error(error e, const h2_stream& s) const {
  e.url = authority_ + (s.req ? s.req->target : std::string());
  e.offset = s.received;
  return e;
}

void h2_session::finish_stream(h2_stream& s, std::optional<error> e) {
  if (s.finished) return;
  s.finished = true;
  s.failure = std::move(e);
  s.notify();
}

void h2_session::abandon_stream(h2_stream& s, std::uint32_t code) {
  if (!s.open_in_nghttp2) return;
  s.open_in_nghttp2 = false;
  nghttp2_session_set_stream_user_data(session_, s.id, nullptr);
  if (code != NGHTTP2_NO_ERROR && !failure_) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, code);
    want_write();
  }
}

void h2_session::link(h2_stream& s) {
  s.next = streams_;
  if (streams_) streams_->prev = &s;
  streams_ = &s;
  ++running_sends_;
  if (s.cancel) {
    s.cancel_next = s.cancel->head_;
    if (s.cancel_next) s.cancel_next->cancel_prev = &s;
    s.cancel->head_ = &s;
  }
}

void h2_session::unlink(h2_stream& s) {
  if (s.prev) s.prev->next = s.next;
  else streams_ = s.next;
  if (s.next) s.next->prev = s.prev;
  if (s.cancel) {
    if (s.cancel_prev) s.cancel_prev->cancel_next = s.cancel_next;
    else s.cancel->head_ = s.cancel_next;
    if (s.cancel_next) s.cancel_next->cancel_prev = s.cancel_prev;
  }
  if (--running_sends_ == 0 && closing_) sends_finished_.set();
}

task<bool> h2_session::acquire_slot(h2_stream& s) {
  if (!slot_waiters_ && open_streams_ < stream_limit_) {
    ++open_streams_;
    s.has_slot = true;
    co_return true;
  }
  s.queued_for_slot = true;
  if (slot_waiters_tail_) slot_waiters_tail_->next_waiter = &s;
  else slot_waiters_ = &s;
  slot_waiters_tail_ = &s;
  while (!s.has_slot && !failure_ && !going_away_ && !closing_ &&
         !(s.cancel && s.cancel->cancel_requested()) && !reactor::current()->stopping()) {
    sleep_until nap(steady_clock::now() + std::chrono::hours(24), &s.wake);
    (void)co_await nap;
    s.wake.reset();
  }
  if (s.queued_for_slot) {  // woken for another reason: leave the queue
    h2_stream** p = &slot_waiters_;
    h2_stream* before = nullptr;
    while (*p != &s) {
      before = *p;
      p = &(*p)->next_waiter;
    }
    *p = s.next_waiter;
    if (slot_waiters_tail_ == &s) slot_waiters_tail_ = before;
    s.queued_for_slot = false;
  }
  co_return s.has_slot;
}

void h2_session::release_slot() {
  --open_streams_;
  grant_slots();
}

void h2_session::grant_slots() {
  while (slot_waiters_ && open_streams_ < stream_limit_) {
    h2_stream* w = slot_waiters_;
    slot_waiters_ = w->next_waiter;
    if (!slot_waiters_) slot_waiters_tail_ = nullptr;
    w->queued_for_slot = false;
    w->has_slot = true;
    ++open_streams_;
    w->notify();
  }
}

void h2_session::wake_all_slot_waiters() {
  for (h2_stream* w = slot_waiters_; w != nullptr; w = w->next_waiter) w->notify();
}

void h2_session::update_stream_limit() {
  const std::uint32_t remote =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  stream_limit_ = std::min<std::size_t>(remote, options_.max_streams);
  grant_slots();
}

std::vector<nghttp2_nv> h2_session::request_headers(const request& req,
                                                    std::deque<std::string>& storage) const {
  std::vector<nghttp2_nv> nv;
  nv.reserve(req.headers.size() + 6);
  auto add = [&](std::string name, std::string value) {
    storage.push_back(std::move(name));
    const std::string& n = storage.back();
    storage.push_back(std::move(value));
    const std::string& v = storage.back();
    nv.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                  reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                  NGHTTP2_NV_FLAG_NONE});
  };
  add(":method", req.method);
  add(":scheme", scheme_);
  add(":authority", authority_);
  add(":path", req.target);
  add("user-agent", "ringfetch/0.1");
  if (req.range) {
    add("range", "bytes=" + std::to_string(req.range->first) + "-" +
                     std::to_string(req.range->last));
  }
  for (const header_field& h : req.headers) {
    std::string name = h.name;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (connection_specific(name)) continue;  // forbidden in HTTP/2
    add(std::move(name), h.value);
  }
  return nv;
}

task<result<response>> h2_session::send(const request& req, std::span<std::byte> dest,
                                        stream_cancel* cancel) {
  h2_stream s;
  s.req = &req;
  s.dest = dest;
  s.cancel = cancel;
  if (closing_) {
    co_return stream_error({.kind = error_kind::invalid_argument,
                            .message = "send() on a closed HTTP/2 session",
                            .not_processed = true},
                           s);
  }
  if (going_away_) {
    co_return stream_error({.kind = error_kind::transport,
                            .message = "HTTP/2 connection is going away (GOAWAY from " +
                                       transport_->peer() + ")",
                            .retryable = true,
                            .not_processed = true},
                           s);
  }
  if (failure_) {
    error e = *failure_;
    e.message = "HTTP/2 connection is not usable: " + e.message;
    co_return stream_error(std::move(e), s);
  }
  link(s);
  struct unlink_on_exit {
    h2_session& session;
    h2_stream& stream;
    ~unlink_on_exit() {
      session.abandon_stream(stream, NGHTTP2_CANCEL);
      if (stream.has_slot) session.release_slot();
      session.unlink(stream);
    }
  } guard{*this, s};

  const bool slot = co_await acquire_slot(s);
  if (!slot || failure_ || going_away_ || closing_) {
    if (cancel && cancel->cancel_requested()) {
      co_return stream_error({.kind = error_kind::cancelled,
                              .message = "cancelled while waiting for an HTTP/2 stream"},
                             s);
    }
    // The stream never left us: the server cannot have acted on it.
    if (failure_) {
      error e = *failure_;
      e.not_processed = true;
      co_return stream_error(std::move(e), s);
    }
    co_return stream_error({.kind = going_away_ ? error_kind::transport : error_kind::cancelled,
                            .message = going_away_ ? "HTTP/2 connection is going away"
                                                   : "the HTTP/2 session was closed",
                            .retryable = going_away_,
                            .not_processed = going_away_},
                           s);
  }

  if (!req.body.empty()) {
    co_return stream_error({.kind = error_kind::invalid_argument,
                            .message = "request bodies are sent over HTTP/1.1 only"},
                           s);
  }
  std::deque<std::string> storage;  // stable addresses for the name/value pointers
  const std::vector<nghttp2_nv> nv = request_headers(req, storage);
  const std::int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), nullptr, &s);
  if (id < 0) {
    co_return stream_error({.kind = error_kind::internal,
                            .message = std::string("nghttp2 refused the request: ") +
                                       nghttp2_strerror(id)},
                           s);
  }
  s.id = id;
  s.open_in_nghttp2 = true;
  s.started = steady_clock::now();
  want_write();

  while (!s.finished) {
    const time_point now = steady_clock::now();
    const time_point deadline = s.first_byte ? s.last_activity + options_.idle_timeout
                                             : s.started + options_.first_byte_timeout;
    if (cancel && cancel->cancel_requested()) {
      abandon_stream(s, NGHTTP2_CANCEL);
      finish_stream(s, stream_error({.kind = error_kind::cancelled,
                                     .message = "HTTP/2 stream " + std::to_string(id) +
                                                " cancelled " + progress(s)},
                                    s));
      break;
    }
    if (now >= deadline || reactor::current()->stopping()) {
      abandon_stream(s, NGHTTP2_CANCEL);
      const char* what = s.first_byte ? "no data for " : "no response within ";
      const auto ms = s.first_byte ? options_.idle_timeout : options_.first_byte_timeout;
      finish_stream(s, stream_error({.kind = error_kind::timeout,
                                     .message = std::string(what) + std::to_string(ms.count()) +
                                                " ms on HTTP/2 stream " + std::to_string(id) +
                                                " " + progress(s),
                                     .retryable = true},
                                    s));
      break;
    }
    sleep_until nap(deadline, &s.wake);
    (void)co_await nap;
    s.wake.reset();
  }
  if (s.failure) co_return std::move(*s.failure);
  response out = std::move(s.resp);
  if (out.status >= 200 && out.status < 300) out.body_bytes = s.received;
  co_return out;
}

// ---- nghttp2 callbacks --------------------------------------------------------------------------

int h2_session::on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void*) {
  if (h2_stream* s = stream_of(session, frame->hd.stream_id)) {
    s->first_byte = true;
    s->last_activity = steady_clock::now();
  }
  return 0;
}

int h2_session::on_header(nghttp2_session* session, const nghttp2_frame* frame,
                          const std::uint8_t* name, std::size_t namelen, const std::uint8_t* value,
                          std::size_t valuelen, std::uint8_t, void* user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  h2_stream* s = stream_of(session, frame->hd.stream_id);
  if (!s || s->final_headers) return 0;  // detached, or trailers (not used)
  h2_session& me = self(user_data);
  const std::string_view n = as_view(name, namelen);
  const std::string_view v = as_view(value, valuelen);
  s->header_bytes += namelen + valuelen;
  if (s->header_bytes > me.options_.max_header_bytes) {
    me.abandon_stream(*s, NGHTTP2_CANCEL);
    me.finish_stream(*s, me.stream_error({.kind = error_kind::protocol,
                                          .message = "HTTP/2 response headers exceed " +
                                                     std::to_string(me.options_.max_header_bytes) +
                                                     " bytes"},
                                         *s));
    return 0;
  }
  if (n == ":status") {
    int status = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), status);
    if (ec != std::errc{} || end != v.data() + v.size()) status = 0;
    s->resp.status = status;  // nghttp2 has checked it is three digits
    return 0;
  }
  if (s->resp.status >= 100 && s->resp.status < 200) return 0;  // interim response
  s->resp.headers.push_back({std::string(n), std::string(v)});
  return 0;
}

int h2_session::on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame,
                              void* user_data) {
  h2_session& me = self(user_data);
  switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
      if (frame->hd.flags & NGHTTP2_FLAG_ACK) break;
      me.update_stream_limit();
      if (!me.settings_received_) {
        me.settings_received_ = true;
        me.settings_wake_.request_cancel();
      }
      break;
    case NGHTTP2_GOAWAY: {
      me.going_away_ = true;
      me.goaway_last_stream_ = frame->goaway.last_stream_id;
      const char* code = nghttp2_http2_strerror(frame->goaway.error_code);
      for (h2_stream* s = me.streams_; s != nullptr; s = s->next) {
        if (s->finished || s->id <= me.goaway_last_stream_) continue;
        me.abandon_stream(*s, NGHTTP2_NO_ERROR);
        me.finish_stream(*s, me.stream_error({.kind = error_kind::transport,
                                              .message = "HTTP/2 connection is going away (GOAWAY " +
                                                         std::string(code) + "): stream " +
                                                         std::to_string(s->id) +
                                                         " was not processed",
                                              .retryable = true,
                            .not_processed = true},
                                             *s));
      }
      me.wake_all_slot_waiters();
      break;
    }
    case NGHTTP2_HEADERS: {
      h2_stream* s = stream_of(session, frame->hd.stream_id);
      if (!s || s->final_headers) break;
      if (s->resp.status >= 100 && s->resp.status < 200) {
        s->resp.status = 0;  // an interim response; the final one follows
        break;
      }
      s->final_headers = true;
      if (const std::string* cl = s->resp.header("content-length")) {
        std::uint64_t length = 0;
        auto [end, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), length);
        if (ec == std::errc{} && end == cl->data() + cl->size()) s->content_length = length;
      }
      if (s->success() && s->content_length && *s->content_length > s->dest.size()) {
        me.abandon_stream(*s, NGHTTP2_CANCEL);
        me.finish_stream(*s, me.stream_error({.kind = error_kind::invalid_argument,
                                              .message = "response body of " +
                                                         std::to_string(*s->content_length) +
                                                         " bytes is larger than the destination (" +
                                                         std::to_string(s->dest.size()) + " bytes)",
                                              .http_status = s->resp.status},
                                             *s));
      }
      break;
    }
    default:
      break;
  }
  return 0;
}

int h2_session::on_data_chunk_recv(nghttp2_session* session, std::uint8_t, std::int32_t stream_id,
                                   const std::uint8_t* data, std::size_t len, void* user_data) {
  h2_stream* s = stream_of(session, stream_id);
  if (!s) return 0;  // abandoned: nghttp2 still credits the flow-control windows
  h2_session& me = self(user_data);
  s->last_activity = steady_clock::now();
  if (s->success()) {
    if (len > s->dest.size() - s->received) {
      me.abandon_stream(*s, NGHTTP2_CANCEL);
      me.finish_stream(*s, me.stream_error({.kind = error_kind::invalid_argument,
                                            .message = "response body is larger than the destination (" +
                                                       std::to_string(s->dest.size()) + " bytes)",
                                            .http_status = s->resp.status},
                                           *s));
      return 0;
    }
    std::memcpy(s->dest.data() + s->received, data, len);
  } else {
    const std::size_t room = max_error_body - std::min(max_error_body, s->resp.error_body.size());
    s->resp.error_body.append(reinterpret_cast<const char*>(data), std::min(room, len));
  }
  s->received += len;
  return 0;
}

int h2_session::on_stream_close(nghttp2_session* session, std::int32_t stream_id,
                                std::uint32_t error_code, void* user_data) {
  h2_stream* s = stream_of(session, stream_id);
  if (!s) return 0;
  h2_session& me = self(user_data);
  s->open_in_nghttp2 = false;
  if (error_code == NGHTTP2_REFUSED_STREAM) {
    me.finish_stream(*s, me.stream_error({.kind = error_kind::transport,
                                          .message = "the server refused HTTP/2 stream " +
                                                     std::to_string(stream_id) + " (REFUSED_STREAM)",
                                          .retryable = true,
                            .not_processed = true},
                                         *s));
  } else if (error_code != NGHTTP2_NO_ERROR) {
    me.finish_stream(*s, me.stream_error({.kind = error_kind::protocol,
                                          .message = "HTTP/2 stream " + std::to_string(stream_id) +
                                                     " reset with " +
                                                     nghttp2_http2_strerror(error_code) + " " +
                                                     progress(*s),
                                          .retryable = error_code == NGHTTP2_INTERNAL_ERROR},
                                         *s));
  } else if (!s->final_headers) {
    me.finish_stream(*s, me.stream_error({.kind = error_kind::protocol,
                                          .message = "HTTP/2 stream " + std::to_string(stream_id) +
                                                     " ended without a response"},
                                         *s));
  } else if (s->content_length && s->received != *s->content_length) {
    me.finish_stream(*s, me.stream_error({.kind = error_kind::protocol,
                                          .message = "HTTP/2 stream " + std::to_string(stream_id) +
                                                     " ended " + progress(*s),
                                          .retryable = true},
                                         *s));
  } else {
    me.finish_stream(*s, std::nullopt);
  }
  return 0;
}

int h2_session::on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  h2_session& me = self(user_data);
  // A GOAWAY we did not ask for: nghttp2 found a connection error in what the server sent.
  if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
    std::string why = me.last_protocol_error_.empty()
                          ? std::string(nghttp2_http2_strerror(frame->goaway.error_code))
                          : me.last_protocol_error_;
    me.fail_session({.kind = error_kind::protocol,
                     .message = "HTTP/2 protocol error from " + me.transport_->peer() + ": " + why});
  }
  return 0;
}

int h2_session::on_frame_not_send(nghttp2_session* session, const nghttp2_frame* frame,
                                  int lib_error, void* user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  h2_stream* s = stream_of(session, frame->hd.stream_id);
  if (!s) return 0;
  h2_session& me = self(user_data);
  me.abandon_stream(*s, NGHTTP2_NO_ERROR);
  me.finish_stream(*s, me.stream_error({.kind = error_kind::transport,
                                        .message = std::string("HTTP/2 request not sent: ") +
                                                   nghttp2_strerror(lib_error),
                                        .retryable = true,
                            .not_processed = true},
                                       *s));
  return 0;
}

int h2_session::on_error(nghttp2_session*, int, const char* msg, std::size_t len, void* user_data) {
  self(user_data).last_protocol_error_.assign(msg, len);
  return 0;
}

}  // namespace ringfetch::http
