#include "http/client.hpp"

#include <poll.h>

#include <algorithm>
#include <utility>

#include "http/tls_stream.hpp"
#include "runtime/log.hpp"
#include "runtime/reactor.hpp"
#include "runtime/scheduling.hpp"

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
  explicit slot_guard(semaphore* s) noexcept : slots(s) {}
  slot_guard(const slot_guard&) = delete;
  slot_guard& operator=(const slot_guard&) = delete;
  ~slot_guard() { slots->release(); }
  semaphore* slots;
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
  if (!tcp) {
    ++stats_.connect_failures;
    co_return tcp.error();
  }
  ++stats_.connections_opened;
  if (!o.tls) {
    co_return connected{.stream = std::move(*tcp), .h2 = o.learned == protocol::h2};
  }
  if (!tls_) co_return *tls_failure_;
  op_options handshake = io;
  if (!handshake.deadline) handshake.deadline = steady_clock::now() + options_.tls.handshake_timeout;
  auto tls = co_await tls_stream::connect(std::move(*tcp), *tls_, o.host, handshake);
  if (!tls) {
    ++stats_.connect_failures;
    co_return tls.error();
  }
  const std::string alpn = (*tls)->alpn();
  if (options_.proto == protocol::h2 && alpn != "h2") {
    co_await (*tls)->close();
    co_return error{.kind = error_kind::protocol,
                    .message = "HTTP/2 was required but " + o.authority + " negotiated " +
                               (alpn.empty() ? std::string("no ALPN protocol") : "ALPN " + alpn)};
  }
  co_return connected{.stream = std::move(*tls), .h2 = alpn == "h2"};
}

namespace {

bool idempotent(const std::string& method) { return method == "GET" || method == "HEAD"; }

error cancelled_before_start(const std::string& authority, const std::string& target) {
  return error{.kind = error_kind::cancelled,
               .message = "request cancelled before it was sent",
               .url = authority + target};
}

}  // namespace

// Suspends until the origin's `changed` list is woken (a probe or a session opening ended).
struct client::wait_changed_awaiter : ringfetch::detail::waiter_node {
  origin& o;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    handle = h;
    o.changed.push(this);
  }
  void await_resume() const noexcept {}
};

// Ends the probe it holds however the probing coroutine ends, even if its frame is destroyed
// mid-connect: waiters must never wait for a probe nobody runs.
struct client::probe_guard {
  origin* o = nullptr;
  void start(origin& target) {
    o = &target;
    o->probing = true;
  }
  void finish(std::optional<error> failure) {
    if (o) end_probe(*o, std::move(failure));
    o = nullptr;
  }
  ~probe_guard() {
    finish(error{.kind = error_kind::cancelled,
                 .message = "the first connection to the server was abandoned"});
  }
};

// Links `wait` to `cancel` for as long as this object lives: cancel->request() abandons it.
struct client::cancellable_wait {
  cancellable_wait(ringfetch::detail::waiter_node& wait, request_cancel* cancel) {
    link.wait = &wait;
    if (cancel) cancel->queued_.push(&link);
  }
  request_cancel::queued_wait link;
};

task<result<void>> client::wait_for_probe(origin& o, request_cancel* cancel) {
  while (o.probing) {
    const std::uint64_t round = o.probe_round;
    wait_changed_awaiter changed{{}, o};  // named: see the GCC 12 note in client.hpp
    cancellable_wait linked(changed, cancel);
    co_await changed;
    if (changed.abandoned) co_return cancelled_before_start(o.authority, "");
    if (o.probe_round != round && o.probe_failure) co_return *o.probe_failure;
  }
  co_return result<void>{};
}

void client::end_probe(origin& o, std::optional<error> failure) {
  o.probing = false;
  ++o.probe_round;
  o.probe_failure = std::move(failure);
  o.changed.wake_all();
}

void client::drop_stale_idle(origin& o) {
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(o.idle, [&](idle_h1& c) {
    const bool drop = now - c.since > options_.idle_timeout;
    if (drop) --o.h1_open;
    return drop;  // the socket closes with the connection object
  });
}

client::pooled_session* client::adopt_session(origin& o, std::unique_ptr<h2_session> s) {
  ++stats_.h2_sessions_opened;
  auto pooled = std::make_unique<pooled_session>();
  pooled->session = std::move(s);
  o.sessions.push_back(std::move(pooled));
  return o.sessions.back().get();
}

task<void> client::retire_sessions(origin& o) {
  const auto now = std::chrono::steady_clock::now();
  for (;;) {
    // Moved out of the pool before the await, so exactly one caller closes each.
    auto it = std::find_if(o.sessions.begin(), o.sessions.end(), [&](const auto& p) {
      return !p->closing && p->active == 0 &&
             (!p->session->reusable() || now - p->last_used > options_.idle_timeout);
    });
    if (it == o.sessions.end()) co_return;
    std::unique_ptr<pooled_session> done = std::move(*it);
    o.sessions.erase(it);
    co_await done->session->close();
  }
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
  // A request the server did not act on may go again, a few times (a server rotating its
  // connections with GOAWAY can leave the same request unprocessed more than once); a request
  // that may have been acted on (a stale HTTP/1.1 connection), only once.
  constexpr int max_unprocessed_replays = 8;
  int unprocessed_replays = 0;
  bool replayed = false;
  for (;;) {
    // Until the first connection to an origin says which protocol it speaks (ALPN), the other
    // requests wait for it rather than opening a connection each.
    if (auto probed = co_await wait_for_probe(o, cancel); !probed) co_return probed.error();
    if (cancel && cancel->requested()) co_return cancelled_before_start(o.authority, req.target);
    outcome next = outcome::final;
    // Not a conditional expression: GCC 12 destroys the result of a co_await inside one twice.
    result<response> r = error{};
    if (o.learned == protocol::h2) r = co_await send_h2(o, req, dest, cancel, next);
    else r = co_await send_h1(o, req, dest, cancel, replayed, next);
    if (next == outcome::switch_to_h2) continue;
    if (next == outcome::final) co_return r;
    if (next == outcome::replay_unprocessed) {
      if (++unprocessed_replays > max_unprocessed_replays) co_return r;
    } else {
      if (replayed) co_return r;
      replayed = true;
    }
    ++stats_.stale_retries;
    log::debug("http: sending " + o.authority + req.target + " again on a fresh connection: " +
               r.error().describe());
  }
}

task<result<response>> client::send_h1(origin& o, const request& req, std::span<std::byte> dest,
                                       request_cancel* cancel, bool fresh, outcome& next) {
  auto slot_wait = o.h1_slots.acquire();  // named: see the GCC 12 note in client.hpp
  std::optional<slot_guard> slot;
  {
    cancellable_wait linked(slot_wait, cancel);
    if (!co_await slot_wait) co_return cancelled_before_start(o.authority, req.target);
  }
  slot.emplace(&o.h1_slots);
  if (cancel && cancel->requested()) co_return cancelled_before_start(o.authority, req.target);
  drop_stale_idle(o);
  if (fresh && !o.idle.empty()) {
    // A replay must not land on another connection as stale as the one that failed.
    o.idle.erase(o.idle.begin());
    --o.h1_open;
  }
  std::unique_ptr<h1_connection> c;
  bool reused = false;
  // The most recently used first: the least likely stale. Only the one about to carry the
  // request is checked (one poll), not every idle connection on every request.
  while (!fresh && !c && !o.idle.empty()) {
    std::unique_ptr<h1_connection> candidate = std::move(o.idle.back().connection);
    o.idle.pop_back();
    if (idle_connection_alive(candidate->stream())) {
      c = std::move(candidate);
      reused = true;
      ++stats_.connections_reused;
    } else {
      --o.h1_open;  // the server closed it while it was idle
    }
  }
  if (!c) {
    probe_guard probe;
    if (!o.learned) probe.start(o);
    ++o.h1_open;
    const op_options io{.cancel = cancel ? &cancel->io_ : nullptr};
    auto made = co_await connect(o, io);
    --o.h1_open;
    if (!made) {
      probe.finish(made.error());
      co_return made.error();
    }
    if (made->h2) {
      // ALPN chose HTTP/2: this connection becomes the origin's first session.
      o.learned = protocol::h2;
      auto started = co_await h2_session::start(std::move(made->stream), o.authority, options_.h2);
      if (!started) {
        probe.finish(started.error());
        co_return started.error();
      }
      adopt_session(o, std::move(*started));
      probe.finish(std::nullopt);
      next = outcome::switch_to_h2;
      co_return error{.kind = error_kind::internal, .message = "switched to HTTP/2"};
    }
    if (!o.learned) o.learned = protocol::http1;
    probe.finish(std::nullopt);
    ++o.h1_open;
    c = std::make_unique<h1_connection>(std::move(made->stream), o.authority, options_.h1);
  }
  ++o.h1_busy;
  auto r = co_await c->send(req, dest, cancel ? &cancel->io_ : nullptr);
  --o.h1_busy;
  const bool started = c->response_started();
  if (c->reusable() && !(cancel && cancel->requested())) {
    o.idle.push_back({std::move(c), std::chrono::steady_clock::now()});
  } else {
    --o.h1_open;
    co_await c->close();
  }
  // A kept-alive connection the server closed just as we sent it a request: nothing was
  // answered, and a GET or HEAD can safely go again.
  if (!r && reused && !started && idempotent(req.method) &&
      (r.error().kind == error_kind::transport || r.error().kind == error_kind::protocol)) {
    next = outcome::replay;
  }
  co_return r;
}

task<result<client::pooled_session*>> client::session_for(origin& o, request_cancel* cancel) {
  const std::size_t limit = std::max<std::size_t>(1, options_.max_h2_sessions);
  for (;;) {
    co_await retire_sessions(o);
    if (cancel && cancel->requested()) {
      co_return error{.kind = error_kind::cancelled, .message = "request cancelled before it was sent"};
    }
    // Only sessions that take new streams count: a draining one finishes its streams elsewhere.
    pooled_session* best = nullptr;
    std::size_t usable = 0;
    for (auto& p : o.sessions) {
      if (p->closing || !p->session->reusable()) continue;
      ++usable;
      if (!best || p->session->available_streams() > best->session->available_streams()) best = p.get();
    }
    if (best && best->session->available_streams() > 0) co_return best;
    if (usable + o.h2_opening < limit) {
      probe_guard probe;
      if (usable == 0 && o.h2_opening == 0) probe.start(o);
      ++o.h2_opening;
      const op_options io{.cancel = cancel ? &cancel->io_ : nullptr};
      auto made = co_await connect(o, io);
      result<std::unique_ptr<h2_session>> started = error{};
      if (!made) started = made.error();
      else started = co_await h2_session::start(std::move(made->stream), o.authority, options_.h2);
      --o.h2_opening;
      o.changed.wake_all();
      if (!started) {
        probe.finish(started.error());
        co_return started.error();
      }
      pooled_session* raw = adopt_session(o, std::move(*started));
      probe.finish(std::nullopt);
      co_return raw;
    }
    // Every usable session is saturated and no more may be opened: the one with the most room
    // queues the stream until one of its own ends.
    if (best) co_return best;
    // The only sessions there will be are still being opened: wait for one.
    if (o.probing) {
      if (auto probed = co_await wait_for_probe(o, cancel); !probed) co_return probed.error();
    } else {
      wait_changed_awaiter changed{{}, o};
      cancellable_wait linked(changed, cancel);
      co_await changed;
      if (changed.abandoned) co_return cancelled_before_start(o.authority, "");
    }
  }
}

task<result<response>> client::send_h2(origin& o, const request& req, std::span<std::byte> dest,
                                       request_cancel* cancel, outcome& next) {
  auto picked = co_await session_for(o, cancel);
  if (!picked) co_return picked.error();
  pooled_session& p = **picked;
  // `active` keeps the pooled session (and its h2_session) alive across the send.
  ++p.active;
  auto r = co_await p.session->send(req, dest, cancel ? &cancel->streams_ : nullptr);
  --p.active;
  p.last_used = std::chrono::steady_clock::now();
  if (!r && r.error().not_processed && !(cancel && cancel->requested())) {
    next = outcome::replay_unprocessed;
  }
  co_await retire_sessions(o);
  co_return r;
}

task<void> client::close() {
  for (;;) {
    bool busy = false;
    for (auto& [key, o] : origins_) {
      std::vector<idle_h1> idle = std::move(o->idle);
      o->idle.clear();
      for (auto& c : idle) {
        --o->h1_open;
        co_await c.connection->close();
      }
      // One at a time by pointer: sends finishing meanwhile may retire (erase) other sessions.
      for (;;) {
        auto it = std::find_if(o->sessions.begin(), o->sessions.end(),
                               [](const auto& p) { return !p->closing; });
        if (it == o->sessions.end()) break;
        pooled_session* p = it->get();
        p->closing = true;
        co_await p->session->close();
      }
      std::erase_if(o->sessions, [](const auto& p) { return p->closing && p->active == 0; });
      if (o->h1_busy > 0 || o->h2_opening > 0 || o->probing || !o->sessions.empty() || !o->idle.empty()) {
        busy = true;
      }
    }
    if (!busy) co_return;
    co_await yield();  // requests still running end on their own (they all have deadlines)
  }
}

}  // namespace ringfetch::http
