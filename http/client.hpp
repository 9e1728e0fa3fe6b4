// client: GET (or any request) by URL over pooled connections, HTTP/1.1 or HTTP/2, plain or TLS,
// with the response body landing in the caller's span.
//
//   http::client c;                       // on a reactor thread
//   auto r = co_await c.get(u, {}, byte_range{0, n - 1}, dest);
//
// Connections are pooled per origin (scheme, host, port). The protocol is chosen by ALPN over
// TLS (h2 when the server offers it) or configured (protocol::h2 on plain http is h2c with prior
// knowledge). HTTP/1.1: at most max_connections per origin carry one request each; further
// requests wait for a connection to come back. HTTP/2: requests share a session (the session
// itself queues what exceeds the server's MAX_CONCURRENT_STREAMS); a new session is opened only
// while every open one is saturated, up to max_h2_sessions. A session that received GOAWAY
// drains: its running streams finish, new ones go to another session. The first connection to
// an origin decides its protocol; requests that arrive meanwhile wait for it and share its
// failure instead of each trying in turn.
// Idle connections older than idle_timeout are closed when their origin is next used, and an
// idle HTTP/1.1 connection is checked before reuse (a peer that closed it is noticed without
// sending a request into it). A request is sent again only when the server cannot have acted on
// it: an HTTP/2 stream refused, never sent, or left unprocessed by GOAWAY (any method, up to 8
// times), or a GET/HEAD whose reused HTTP/1.1 connection failed before any response byte (once,
// on a fresh connection).
//
// Threading: reactor-local. Create, use and close() a client on one reactor's thread; every
// connection it owns lives there. Await close() before destroying a client that may hold HTTP/2
// sessions while its reactor still runs: an h2_session destroyed unclosed ends the process.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "http/h1_connection.hpp"
#include "http/h2_session.hpp"
#include "http/message.hpp"
#include "http/resolver.hpp"
#include "http/tcp_stream.hpp"
#include "http/tls_context.hpp"
#include "http/url.hpp"
#include "runtime/error.hpp"
#include "runtime/io_op.hpp"
#include "runtime/semaphore.hpp"
#include "runtime/task.hpp"
#include "runtime/waiter_list.hpp"

namespace ringfetch::http {

enum class protocol {
  automatic,  // ALPN over TLS (h2 preferred); HTTP/1.1 on plain http
  http1,      // HTTP/1.1 only (ALPN offers only http/1.1)
  h2,         // HTTP/2 only: ALPN h2 over TLS, h2c with prior knowledge on plain http
};

struct client_options {
  protocol proto = protocol::automatic;
  std::size_t max_connections = 8;   // HTTP/1.1 connections per origin
  std::size_t max_h2_sessions = 1;   // HTTP/2 sessions per origin
  std::chrono::milliseconds idle_timeout{60'000};  // an unused pooled connection is closed after
  tcp_options tcp{};
  tls_client_options tls{};          // its alpn list is derived from `proto`
  h1_options h1{};
  h2_options h2{};
};

// Cancels the requests that carry it (reactor-local; must outlive them). A cancelled request
// returns error_kind::cancelled once nothing can write into its destination any more: an
// HTTP/1.1 connection is dropped, an HTTP/2 stream is reset and its session lives on; a request
// still queued (for a connection slot, or behind the origin's first connection) leaves the queue
// at once.
class request_cancel {
 public:
  request_cancel() = default;
  request_cancel(const request_cancel&) = delete;
  request_cancel& operator=(const request_cancel&) = delete;
  ~request_cancel() {
    while (queued_.pop() != nullptr) {
    }
  }

  void request() {
    io_.request_cancel();
    streams_.request_cancel();
    while (ringfetch::detail::waiter_node* w = queued_.pop()) {
      static_cast<queued_wait*>(w)->abandon();
    }
  }
  bool requested() const noexcept { return io_.cancel_requested(); }
  // For the caller's own waits that must end with the request (a backoff sleep, say).
  cancel_source* waits() noexcept { return &io_; }

 private:
  friend class client;
  // Links a wait on some other waiter list (a semaphore's, say) to this cancel: request()
  // abandons that wait. Lives in the waiting coroutine's frame; unlinks itself when destroyed.
  struct queued_wait : ringfetch::detail::waiter_node {
    ringfetch::detail::waiter_node* wait = nullptr;
    void abandon() { ringfetch::detail::waiter_list::abandon(wait); }
  };
  cancel_source io_;
  stream_cancel streams_;
  ringfetch::detail::waiter_list queued_;
};

struct client_stats {
  std::uint64_t requests = 0;
  std::uint64_t connections_opened = 0;  // TCP (+TLS) connections, both protocols
  std::uint64_t connections_reused = 0;  // HTTP/1.1 requests on a pooled connection
  std::uint64_t stale_retries = 0;       // requests replayed on a fresh connection
  std::uint64_t h2_sessions_opened = 0;
  std::uint64_t connect_failures = 0;    // TCP or TLS set-up that failed
};

class client {
 public:
  // Fails only if the TLS context cannot be made (a CA file that does not load, say): then every
  // https request returns that error.
  explicit client(client_options options = {});
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // GET `u` (optionally a byte range) with extra headers; a 2xx body into `dest`, which must
  // stay valid until the co_await returns. A body larger than `dest` is an error.
  // Parameters are views and references (all must outlive the co_await), never class
  // temporaries: GCC 12 destroys a class temporary in a co_await expression twice.
  task<result<response>> get(const url& u, std::span<const header_field> headers,
                             std::optional<byte_range> range, std::span<std::byte> dest,
                             request_cancel* cancel = nullptr);
  // Any request; its target is taken from `u`, not from `req`.
  task<result<response>> send(const url& u, const request& req, std::span<std::byte> dest,
                              request_cancel* cancel = nullptr);

  // Closes every pooled connection (HTTP/2: GOAWAY, which fails the streams still open) and
  // returns once none is left: HTTP/1.1 requests still running finish first (they have their
  // timeouts), then their connections close. Idempotent; the client is usable again afterwards.
  task<void> close();

  const client_stats& stats() const noexcept { return stats_; }
  // Open connections (idle or busy, both protocols) to the origin of `u`.
  std::size_t open_connections(const url& u) const;
  resolver& names() noexcept { return names_; }

 private:
  struct idle_h1 {
    std::unique_ptr<h1_connection> connection;
    std::chrono::steady_clock::time_point since;
  };
  struct pooled_session {
    std::unique_ptr<h2_session> session;
    std::size_t active = 0;  // sends of ours running on it: it is not freed before they end
    bool closing = false;    // close() owns it
    std::chrono::steady_clock::time_point last_used = std::chrono::steady_clock::now();
  };
  struct origin {
    explicit origin(std::size_t max) : h1_slots(max) {}
    std::string scheme, host, authority;
    std::uint16_t port = 0;
    bool tls = false;
    std::optional<protocol> learned;  // what the server speaks, once a connection told us
    semaphore h1_slots;               // requests in flight on HTTP/1.1 connections
    std::size_t h1_open = 0;          // HTTP/1.1 connections: connecting, busy or idle
    std::size_t h1_busy = 0;          // ... carrying a request now
    std::vector<idle_h1> idle;
    std::vector<std::unique_ptr<pooled_session>> sessions;
    std::size_t h2_opening = 0;
    bool probing = false;             // the first connection is being made
    std::uint64_t probe_round = 0;    // probes finished so far
    std::optional<error> probe_failure;  // how the last probe failed, if it did
    ringfetch::detail::waiter_list changed;      // woken when a probe ends or a session opening ends
  };
  struct probe_guard;
  struct wait_changed_awaiter;
  struct cancellable_wait;
  struct connected {
    std::unique_ptr<transport> stream;
    bool h2 = false;
  };

  origin& origin_of(const url& u);
  task<result<connected>> connect(origin& o, op_options io);
  // What send() does after one attempt.
  enum class outcome { final, replay, replay_unprocessed, switch_to_h2 };
  task<result<response>> send_h1(origin& o, const request& req, std::span<std::byte> dest,
                                 request_cancel* cancel, bool fresh, outcome& next);
  task<result<response>> send_h2(origin& o, const request& req, std::span<std::byte> dest,
                                 request_cancel* cancel, outcome& next);
  task<result<pooled_session*>> session_for(origin& o, request_cancel* cancel);
  // Waits while the origin's first connection is being made; its failure, if it failed.
  task<result<void>> wait_for_probe(origin& o, request_cancel* cancel);
  static void end_probe(origin& o, std::optional<error> failure);
  // Closes idle HTTP/1.1 connections older than idle_timeout.
  void drop_stale_idle(origin& o);
  pooled_session* adopt_session(origin& o, std::unique_ptr<h2_session> s);
  // Closes sessions that can take no new stream (or idled too long) once no send runs on them.
  task<void> retire_sessions(origin& o);

  client_options options_;
  resolver names_;
  std::optional<tls_context> tls_;
  std::optional<error> tls_failure_;
  std::map<std::string, std::unique_ptr<origin>> origins_;
  client_stats stats_;
};

}  // namespace ringfetch::http
