// h1_server: an HTTP/1.1 server on one reactor (the base of the fake GCS server).
//
// listen() binds a TCP socket (127.0.0.1 and a kernel-chosen port by default; SO_REUSEADDR) and
// start() runs its accept loop on the calling reactor: one coroutine per connection, which
// parses requests (h1_request_parser), hands each to the request_handler with a response_writer,
// and keeps the connection alive between requests for at most idle_timeout. Pipelined requests
// are answered in order. A request the parser refuses gets 400 (413, 431) and the connection is
// closed. At most max_connections are served at once; more wait in the listen backlog.
//
// Ownership and threads: everything runs on the reactor that called start(); the handler must
// outlive the server. stop() closes the listener, cancels every connection (a response under
// way is cut off) and returns once no coroutine of the server is left running; only then may the
// server be destroyed (destroying a started, unstopped server is a bug).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "http/h1_request_parser.hpp"
#include "http/response_writer.hpp"
#include "http/tls_context.hpp"
#include "runtime/error.hpp"
#include "runtime/event.hpp"
#include "runtime/io_op.hpp"
#include "runtime/task.hpp"

namespace ringfetch::http {

// One parsed request, valid for the duration of the handler call.
struct server_request {
  std::string method;
  std::string target;                 // as sent: path and query, percent-encoded
  std::vector<header_field> headers;  // names lower case
  std::vector<std::byte> body;
  std::string peer;                   // "127.0.0.1:51234"

  const std::string* header(std::string_view lower_case_name) const noexcept {
    for (auto& h : headers)
      if (h.name == lower_case_name) return &h.value;
    return nullptr;
  }
};

class request_handler {
 public:
  virtual ~request_handler() = default;
  // Answers `req` through `w` (exactly one response). Returning without answering makes the
  // server send 500; returning after a partial answer closes the connection.
  virtual task<void> handle(server_request& req, response_writer& w) = 0;
};

struct server_options {
  std::string address = "127.0.0.1";  // numeric IPv4 or IPv6
  std::uint16_t port = 0;             // 0: the kernel picks; see h1_server::port()
  int backlog = 1024;
  std::chrono::milliseconds idle_timeout{30'000};     // a kept-alive connection waiting for a request
  std::chrono::milliseconds request_timeout{30'000};  // first byte of a request → all of it
  std::chrono::milliseconds send_timeout{30'000};     // longest wait for the client to take bytes
  std::size_t max_connections = 1024;
  // Splice pipe size for file bodies (more: fewer splice calls; above pipe-max-size needs
  // CAP_SYS_RESOURCE, else the kernel default of 64 KiB is used).
  int splice_pipe_bytes = 1 << 20;
  request_limits limits{};
  // Serve HTTPS: a server context (offer "http/1.1" in its ALPN; this server speaks no h2).
  // Borrowed: must outlive the server. Null: plain HTTP.
  tls_context* tls = nullptr;
};

struct server_stats {
  std::uint64_t accepted = 0;
  std::uint64_t requests = 0;
  std::uint64_t bad_requests = 0;  // answered 4xx by the parser and closed
  std::size_t open_connections = 0;
};

class h1_server {
 public:
  // Binds and listens. Any thread; the socket is served by the reactor that calls start().
  static result<std::unique_ptr<h1_server>> listen(request_handler& handler,
                                                   server_options options = {});
  ~h1_server();
  h1_server(const h1_server&) = delete;
  h1_server& operator=(const h1_server&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  // Reactor thread. Starts accepting on reactor::current().
  void start();
  // Reactor thread. Closes the listener, cancels every connection and returns when none of the
  // server's coroutines is left. Idempotent.
  task<void> stop();
  const server_stats& stats() const noexcept { return stats_; }

 private:
  struct connection;
  class live_guard;

  h1_server(request_handler& handler, server_options options, int fd, std::uint16_t port);
  task<void> accept_loop();
  task<void> serve(std::unique_ptr<connection> c);
  task<bool> serve_one(connection& c);
  task<void> refuse(connection& c, const error& why);
  void finished_one();

  request_handler& handler_;
  server_options options_;
  int listen_fd_;
  std::uint16_t port_;
  bool started_ = false;
  bool stopping_ = false;
  cancel_source accept_cancel_;
  std::list<connection*> connections_;
  std::size_t live_ = 0;   // accept loop + connection coroutines still running
  event all_done_;
  event slot_freed_;
  server_stats stats_;
};

}  // namespace ringfetch::http
