#include "http/resolver.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <thread>

#include "runtime/ops.hpp"

namespace ringfetch::http {
namespace {

// What the helper thread fills in. Shared: whoever finishes last (helper or waiter) frees it.
struct lookup_state {
  int efd = ::eventfd(0, EFD_CLOEXEC);
  int gai_error = 0;
  int sys_errno = 0;
  std::vector<endpoint> addresses;
  ~lookup_state() {
    if (efd >= 0) ::close(efd);
  }
};

void run_getaddrinfo(const std::string& host, lookup_state& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  out.gai_error = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (out.gai_error == EAI_SYSTEM) out.sys_errno = errno;
  for (addrinfo* a = list; a != nullptr; a = a->ai_next) {
    if (a->ai_addrlen > sizeof(sockaddr_storage)) continue;
    endpoint e;
    std::memcpy(&e.addr, a->ai_addr, a->ai_addrlen);
    e.len = a->ai_addrlen;
    out.addresses.push_back(e);
  }
  if (list) ::freeaddrinfo(list);
}

error resolve_error(const std::string& host, error_kind kind, std::string why) {
  error e;
  e.kind = kind;
  e.retryable = kind != error_kind::not_found;
  e.message = "cannot resolve host '" + host + "': " + why;
  return e;
}

void set_port(endpoint& e, std::uint16_t port) {
  if (e.family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&e.addr)->sin6_port = htons(port);
  else reinterpret_cast<sockaddr_in*>(&e.addr)->sin_port = htons(port);
}

// An IPv4 or IPv6 literal, or nothing.
std::optional<endpoint> literal(const std::string& host) {
  endpoint e;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&e.addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    e.len = sizeof(sockaddr_in);
    return e;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&e.addr);
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    e.len = sizeof(sockaddr_in6);
    return e;
  }
  return std::nullopt;
}

}  // namespace

std::string endpoint::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    std::string out = "[";
    out += buf;
    out += "]:";
    out += std::to_string(ntohs(a->sin6_port));
    return out;
  }
  auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
  ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
}

task<result<std::vector<endpoint>>> resolver::resolve(std::string host, std::uint16_t port) {
  std::vector<endpoint> found;
  if (auto lit = literal(host)) {
    found.push_back(*lit);
  } else {
    for (;;) {
      auto it = cache_.find(host);
      if (it == cache_.end() || (!it->second.pending && steady_clock::now() >= it->second.expires)) {
        auto answer = co_await lookup(host);
        if (!answer) co_return answer;
        found = std::move(*answer);
        break;
      }
      if (it->second.pending) {
        auto pending = it->second.pending;  // keep it alive while we wait
        co_await pending->wait();
        continue;  // the entry now holds the answer (or was dropped)
      }
      if (!it->second.answer) co_return it->second.answer.error();
      found = *it->second.answer;
      break;
    }
  }
  for (auto& e : found) set_port(e, port);
  co_return found;
}

task<result<std::vector<endpoint>>> resolver::lookup(const std::string& host) {
  auto pending = std::make_shared<event>();
  cache_[host] = entry{.expires = {}, .pending = pending};
  ++lookups_;
  auto state = std::make_shared<lookup_state>();
  result<std::vector<endpoint>> answer = std::vector<endpoint>{};
  if (state->efd < 0) {
    answer = error::from_code({errno, std::system_category()}, "resolver eventfd");
  } else {
    try {
      std::thread([host, state] {
        run_getaddrinfo(host, *state);
        std::uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(state->efd, &one, sizeof one);
      }).detach();
    } catch (const std::system_error& e) {
      answer = error::from_code(e.code(), "resolver thread");
    }
    if (answer) {
      std::uint64_t value = 0;
      auto done = co_await op::read(state->efd, std::as_writable_bytes(std::span(&value, 1)), 0,
                                    within(options_.timeout));
      if (!done) {
        answer = done.error() == std::errc::timed_out
                     ? resolve_error(host, error_kind::timeout, "no answer within the timeout")
                     : error::from_code(done.error(), "cannot resolve host '" + host + "'");
      } else if (state->gai_error != 0) {
        std::string why = state->gai_error == EAI_SYSTEM ? std::strerror(state->sys_errno)
                                                         : ::gai_strerror(state->gai_error);
        bool no_such = state->gai_error == EAI_NONAME || state->gai_error == EAI_NODATA;
        answer = resolve_error(host, no_such ? error_kind::not_found : error_kind::transport, why);
      } else if (state->addresses.empty()) {
        answer = resolve_error(host, error_kind::not_found, "no addresses");
      } else {
        answer = std::move(state->addresses);
      }
    }
  }
  const bool cancelled = !answer && answer.error().kind == error_kind::cancelled;
  if (cancelled) {
    cache_.erase(host);  // nothing learned
  } else {
    auto ttl = answer ? options_.ttl : options_.negative_ttl;
    cache_[host] = entry{.expires = steady_clock::now() + ttl, .answer = answer, .pending = nullptr};
  }
  pending->set();
  co_return answer;
}

}  // namespace ringfetch::http
