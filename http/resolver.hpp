// resolver: host name → addresses, off the reactor thread, cached with a TTL. Reactor-local.
//
// getaddrinfo blocks (files, DNS), so each lookup runs on a short-lived helper thread, and the
// reactor waits for it through an eventfd read on its own ring: the wait is an ordinary io_op,
// so it has a deadline and is cancelled at shutdown like any other, and the helper thread owns
// everything it writes to (a late answer lands in memory nobody is waiting on, then is freed).
// Concurrent lookups of the same name share one helper. IP literals never leave the thread.
// Answers are cached for `ttl`, failures for `negative_ttl` (getaddrinfo reports no DNS TTL).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/event.hpp"
#include "runtime/io_op.hpp"
#include "runtime/task.hpp"

namespace ringfetch::http {

struct endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family() const noexcept { return addr.ss_family; }
  const sockaddr* sockaddr_ptr() const noexcept { return reinterpret_cast<const sockaddr*>(&addr); }
  std::string str() const;  // "127.0.0.1:80", "[::1]:443"
};

struct resolver_options {
  std::chrono::seconds ttl{30};
  std::chrono::seconds negative_ttl{5};
  std::chrono::milliseconds timeout{10'000};  // one lookup, helper thread included
};

class resolver {
 public:
  explicit resolver(resolver_options options = {}) : options_(options) {}
  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  // Addresses for host:port, IPv4 and IPv6 in getaddrinfo's preference order. Errors:
  // not_found (no such host), timeout, transport (resolver failure), cancelled (shutdown).
  task<result<std::vector<endpoint>>> resolve(std::string host, std::uint16_t port);

  // Lookups that actually ran getaddrinfo (cache misses), for tests and stats.
  std::size_t lookups() const noexcept { return lookups_; }
  void clear() { cache_.clear(); }

 private:
  struct entry {
    time_point expires;
    result<std::vector<endpoint>> answer = std::vector<endpoint>{};
    std::shared_ptr<event> pending;  // set while a helper is looking the name up
  };

  task<result<std::vector<endpoint>>> lookup(const std::string& host);

  resolver_options options_;
  std::unordered_map<std::string, entry> cache_;  // key: host (ports are applied afterwards)
  std::size_t lookups_ = 0;
};

}  // namespace ringfetch::http
