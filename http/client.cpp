#include "http/client.hpp"

#include <poll.h>

#include <algorithm>
#include <utility>

#include "http/tls_stream.hpp"
#include "runtime/log.hpp"
#include "runtime/reactor.hpp"

namespace ringfetch::http {
namespace {

// A pooled connection is healthy only if nothing is readable on it: an idle HTTP/1.1 connection
// that became readable was closed or reset by the server, or got bytes nobody asked for.
bool idle_connection_alive(transport& t) {
  if (!t.is_open()) return false;
  const int fd = t.native_handle();
  if (fd < 0) return true;
  pollfd p{.fd = fd, .events = POLLIN | POLLRDHUP, .revents = 0};
  return ::poll(&p, 1, 0) == 0;
}

// Holds one HTTP/1.1 request slot of an origin until the request is done.
struct slot_guard {
  semaphore* slots;
  ~slot_guard() { slots->release(); }
};

}  // namespace

client::client(client_options options) : options_(std::move(options)) {
  tls_client_options t = options_.tls;
  if (options_.proto == protocol::http1) t.alpn = {"http/1.1"};
  if (options_.proto == protocol::h2) t.alpn = {"h2"};
  auto ctx = tls_context::client(std::move(t));
  if (ctx) tls_.emplace(std::move(*ctx));
  else tls_failure_ = ctx.error();
}

client::~client() = default;

client::origin& client::origin_of(const url& u) {
  std::string key = u.scheme + "://" + u.authority();
  auto it = origins_.find(key);
  if (it != origins_.end()) return *it->second;
  auto o = std::make_unique<origin>(std::max<std::size_t>(1, options_.max_connections));
  o->scheme = u.scheme;
  o->host = u.host;
  o->port = u.port;
  o->authority = u.authority();
  o->tls = u.tls();
  if (options_.proto != protocol::automatic) o->learned = options_.proto;
  else if (!o->tls) o->learned = protocol::http1;  // no ALPN without TLS: prior knowledge only
  return *origins_.emplace(std::move(key), std::move(o)).first->second;
}

std::size_t client::open_connections(const url& u) const {
  auto it = origins_.find(u.scheme + "://" + u.authority());
  if (it == origins_.end()) return 0;
  return it->second->h1_open + it->second->sessions.size();
}

task<result<client::connected>> client::connect(origin& o, op_options io) {
  auto tcp = co_await tcp_stream::connect(names_, o.host, o.port, options_.tcp);
  if (!tcp) co_return tcp.error();
  ++stats_.connections_opened;
  if (!o.tls) {
    co_return connected{.stream = std::move(*tcp), .h2 = o.learned == protocol::h2};
  }
  if (!tls_) co_return *tls_failure_;
  op_options handshake = io;
  if (!handshake.deadline) handshake.deadline = steady_clock::now() + options_.tls.handshake_timeout;
  auto tls = co_await tls_stream::connect(std::move(*tcp), *tls_, o.host, handshake);
  if (!tls) co_return tls.error();
  const std::string alpn = (*tls)->alpn();
  if (options_.proto == protocol::h2 && alpn != "h2") {
    co_await (*tls)->close();
    co_return error{.kind = error_kind::protocol,
                    .message = "HTTP/2 was required but " + o.authority + " negotiated " +
                               (alpn.empty() ? std::string("no ALPN protocol") : "ALPN " + alpn)};
  }
  co_return connected{.stream = std::move(*tls), .h2 = alpn == "h2"};
}

task<void> client::wait_for_probe(origin& o) {
  struct awaiter {
    origin& o;
    bool await_ready() const noexcept { return !o.probing; }
    void await_suspend(std::coroutine_handle<> h) { o.probe_waiters.push_back(h); }
    void await_resume() const noexcept {}
  };
  while (o.probing) co_await awaiter{o};
}

void client::end_probe(origin& o) {
  o.probing = false;
  for (auto h : std::exchange(o.probe_waiters, {})) reactor::current()->schedule(h);
}

void client::drop_expired(origin& o) {
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(o.idle, [&](idle_h1& c) {
    const bool drop = now - c.since > options_.idle_timeout || !idle_connection_alive(c.connection->stream());
    if (drop) --o.h1_open;
    return drop;  // the socket closes with the connection object
  });
}

task<result<response>> client::get(const url& u, std::span<const header_field> headers,
                                   std::optional<byte_range> range, std::span<std::byte> dest,
                                   request_cancel* cancel) {
  const request req{.method = "GET",
                    .target = u.target,
                    .headers = std::vector<header_field>(headers.begin(), headers.end()),
                    .range = range};
  co_return co_await send(u, req, dest, cancel);
}

task<result<response>> client::send(const url& u, const request& original,
                                    std::span<std::byte> dest, request_cancel* cancel) {
  ++stats_.requests;
  request req = original;
  req.target = u.target;
  origin& o = origin_of(u);
  bool replayed = false;
  for (;;) {
    // Until the first connection to an origin says which protocol it speaks (ALPN), the other
    // requests wait for it rather than opening a connection each.
    co_await wait_for_probe(o);
    outcome next = outcome::final;
    // Not a conditional expression: GCC 12 destroys the result of a co_await inside one twice.
    result<response> r = error{};
    if (o.learned == protocol::h2) r = co_await send_h2(o, req, dest, cancel, next);
    else r = co_await send_h1(o, req, dest, cancel, next);
    if (next == outcome::switch_to_h2) continue;
    if (next == outcome::final || replayed) co_return r;
    replayed = true;
    ++stats_.stale_retries;
    log::debug("http: replaying " + o.authority + req.target + " on a fresh connection: " +
               r.error().describe());
  }
}

task<result<response>> client::send_h1(origin& o, const request& req, std::span<std::byte> dest,
                                       request_cancel* cancel, outcome& next) {
  co_await o.h1_slots.acquire();
  slot_guard slot{&o.h1_slots};
  drop_expired(o);
  std::unique_ptr<h1_connection> c;
  bool reused = false;
  if (!o.idle.empty()) {
    c = std::move(o.idle.back().connection);  // the most recently used: the least likely stale
    o.idle.pop_back();
    reused = true;
    ++stats_.connections_reused;
  } else {
    const bool probe = !o.learned;
    if (probe) o.probing = true;
    ++o.h1_open;
    const op_options io{.cancel = cancel ? &cancel->io_ : nullptr};
    auto made = co_await connect(o, io);
    --o.h1_open;
    if (!made) {
      if (probe) end_probe(o);
      co_return made.error();
    }
    if (made->h2) {
      // ALPN chose HTTP/2: this connection becomes the origin's first session.
      o.learned = protocol::h2;
      auto started = co_await h2_session::start(std::move(made->stream), o.authority, options_.h2);
      if (probe) end_probe(o);
      if (!started) co_return started.error();
      ++stats_.h2_sessions_opened;
      o.sessions.push_back(std::move(*started));
      next = outcome::switch_to_h2;
      co_return error{.kind = error_kind::internal, .message = "switched to HTTP/2"};
    }
    ++o.h1_open;
    if (probe) {
      o.learned = protocol::http1;
      end_probe(o);
    }
    c = std::make_unique<h1_connection>(std::move(made->stream), o.authority, options_.h1);
  }
  auto r = co_await c->send(req, dest, cancel ? &cancel->io_ : nullptr);
  const bool started = c->response_started();
  if (c->reusable() && !(cancel && cancel->requested())) {
    o.idle.push_back({std::move(c), std::chrono::steady_clock::now()});
  } else {
    --o.h1_open;
    co_await c->close();
  }
  // A kept-alive connection the server closed just as we sent it a request: nothing was
  // answered, so the request can go again on a fresh connection.
  if (!r && reused && !started && r.error().kind != error_kind::cancelled &&
      r.error().kind != error_kind::timeout) {
    next = outcome::replay;
  }
  co_return r;
}

task<result<h2_session*>> client::session_for(origin& o, request_cancel* cancel) {
  for (;;) {
    // Sessions that can take no new stream (GOAWAY, failed) leave the pool; closing one waits
    // for its running sends, so it is moved out first and closed by exactly one caller.
    for (std::size_t i = 0; i < o.sessions.size();) {
      if (o.sessions[i]->reusable()) {
        ++i;
        continue;
      }
      std::unique_ptr<h2_session> dead = std::move(o.sessions[i]);
      o.sessions.erase(o.sessions.begin() + static_cast<std::ptrdiff_t>(i));
      co_await dead->close();
    }
    h2_session* best = nullptr;
    for (auto& s : o.sessions)
      if (!best || s->available_streams() > best->available_streams()) best = s.get();
    if (best && best->available_streams() > 0) co_return best;
    if (o.sessions.size() + o.h2_opening < std::max<std::size_t>(1, options_.max_h2_sessions)) {
      const bool first = o.sessions.empty() && o.h2_opening == 0;
      if (first) o.probing = true;
      ++o.h2_opening;
      const op_options io{.cancel = cancel ? &cancel->io_ : nullptr};
      auto made = co_await connect(o, io);
      result<std::unique_ptr<h2_session>> started = error{};
      if (!made) started = made.error();
      else started = co_await h2_session::start(std::move(made->stream), o.authority, options_.h2);
      --o.h2_opening;
      if (first) end_probe(o);
      if (!started) co_return started.error();
      ++stats_.h2_sessions_opened;
      o.sessions.push_back(std::move(*started));
      co_return o.sessions.back().get();
    }
    // Every session is saturated and no more may be opened: the busiest still queues the
    // stream until one of its own ends.
    if (best) co_return best;
    co_await wait_for_probe(o);  // the only session is still being opened
  }
}

task<result<response>> client::send_h2(origin& o, const request& req, std::span<std::byte> dest,
                                       request_cancel* cancel, outcome& next) {
  auto s = co_await session_for(o, cancel);
  if (!s) co_return s.error();
  // The session may be closed and freed by another request once this send returns: it is not
  // touched afterwards.
  auto r = co_await (*s)->send(req, dest, cancel ? &cancel->streams_ : nullptr);
  // A stream the server refused or never processed (GOAWAY, REFUSED_STREAM, a connection lost
  // before any response byte) can go again on another session.
  if (!r && r.error().retryable && (r.error().offset == 0 || r.error().offset == error::no_offset) &&
      !(cancel && cancel->requested())) {
    next = outcome::replay;
  }
  co_return r;
}

task<void> client::close() {
  for (auto& [key, o] : origins_) {
    std::vector<idle_h1> idle = std::move(o->idle);
    o->idle.clear();
    for (auto& c : idle) {
      --o->h1_open;
      co_await c.connection->close();
    }
    std::vector<std::unique_ptr<h2_session>> sessions = std::move(o->sessions);
    o->sessions.clear();
    for (auto& s : sessions) co_await s->close();
  }
}

}  // namespace ringfetch::http
