// `ringfetch check`: a self-check of the runtime a user can watch. Every line exercises one
// piece for real (the ring, timers, deadlines, cancellation, the arena, messages between
// reactors, loopback TCP), verifies the result, and prints what it measured.
#include "tools/check_command.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/event.hpp"
#include "runtime/ops.hpp"
#include "runtime/registered_arena.hpp"
#include "runtime/runtime.hpp"
#include "runtime/scheduling.hpp"
#include "runtime/timer.hpp"
#include "runtime/when_all.hpp"
#include "tools/cli_args.hpp"

namespace ringfetch::tools {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
constexpr std::size_t MiB = std::size_t{1} << 20;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

struct check_line {
  std::string name;
  bool ok = false;
  std::string detail;
};

// Byte i of a test stream. Cheap to compute, never periodic at power-of-two strides.
inline std::byte stream_byte(std::uint64_t i) {
  return static_cast<std::byte>((i * 2654435761u) >> 13 ^ (i >> 20));
}
void fill_stream(std::span<std::byte> out, std::uint64_t offset) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = stream_byte(offset + i);
}
bool verify_stream(std::span<const std::byte> in, std::uint64_t offset) {
  for (std::size_t i = 0; i < in.size(); ++i)
    if (in[i] != stream_byte(offset + i)) return false;
  return true;
}

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

// Returns {client, server} of a loopback TCP connection.
bool loopback_pair(fd_guard& client, fd_guard& server) {
  fd_guard listener{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listener.fd, 1) != 0 ||
      ::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return false;
  client.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(client.fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) return false;
  server.fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
  int one = 1;
  ::setsockopt(client.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return server.fd >= 0;
}

task<check_line> check_nops() {
  constexpr int n = 200'000;
  auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i) {
    if (!co_await op::nop()) co_return check_line{"nop round trip", false, "a nop failed"};
  }
  double single = seconds_since(t0) / n * 1e9;
  auto one = []() -> task<bool> { co_return static_cast<bool>(co_await op::nop()); };
  t0 = clock_type::now();
  std::size_t ok = 0;
  for (int round = 0; round < n / 256; ++round) {
    std::vector<task<bool>> batch;
    for (int i = 0; i < 256; ++i) batch.push_back(one());
    for (bool b : co_await when_all(std::move(batch))) ok += b;
  }
  double batched = seconds_since(t0) / (n / 256 * 256) * 1e9;
  co_return check_line{"nop round trip", ok == n / 256 * 256,
                       fmt("%.0f ns per await one at a time; ", single) +
                           fmt("%.0f ns each with 256 in flight", batched)};
}

task<check_line> check_timer() {
  auto t0 = clock_type::now();
  auto r = co_await sleep_for(10ms);
  double ms = seconds_since(t0) * 1e3;
  co_return check_line{"timers", r && ms >= 10.0, fmt("sleep_for(10 ms) woke after %.2f ms", ms)};
}

task<check_line> check_deadline_and_cancel() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    co_return check_line{"deadline + cancel", false, "socketpair failed"};
  fd_guard a{sv[0]}, b{sv[1]};
  std::array<std::byte, 64> buf{};
  auto t0 = clock_type::now();
  auto timed = co_await op::recv(b.fd, buf, within(20ms));
  double ms = seconds_since(t0) * 1e3;
  bool deadline_ok = !timed && timed.error() == std::errc::timed_out && ms >= 20.0;

  std::vector<std::byte> victim(4096, std::byte{0x5A});
  cancel_source cancel;
  auto reader = [&]() -> task<io_result<std::size_t>> {
    co_return co_await op::recv(b.fd, victim, {.cancel = &cancel});
  };
  auto canceller = [&]() -> task<void> {
    co_await yield();
    cancel.request_cancel();
  };
  auto [r, _] = co_await when_all(reader(), canceller());
  [[maybe_unused]] auto w = ::write(a.fd, "after", 5);
  auto later = co_await op::recv(b.fd, buf, within(1s));
  bool untouched = std::all_of(victim.begin(), victim.end(), [](std::byte x) { return x == std::byte{0x5A}; });
  bool cancel_ok = !r && r.error() == std::errc::operation_canceled && untouched && later && *later == 5;
  co_return check_line{"deadline + cancel", deadline_ok && cancel_ok,
                       fmt("recv with a 20 ms deadline gave ETIMEDOUT after %.1f ms; ", ms) +
                           (cancel_ok ? "cancelled recv left its buffer untouched"
                                      : "cancelled recv misbehaved")};
}

task<check_line> check_read_fixed(registered_arena& arena) {
  const std::size_t size = 64 * MiB;
  fd_guard file{::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)};
  if (file.fd < 0) co_return check_line{"read_fixed", false, "cannot create a file in /tmp"};
  {
    std::vector<std::byte> data(4 * MiB);
    for (std::size_t off = 0; off < size; off += data.size()) {
      fill_stream(data, off);
      auto w = co_await op::write(file.fd, data, off);
      if (!w || *w != data.size()) co_return check_line{"read_fixed", false, "writing the file failed"};
    }
  }
  auto buf = arena.allocate(8 * MiB);
  if (!buf) co_return check_line{"read_fixed", false, "arena allocation failed"};
  auto t0 = clock_type::now();
  bool exact = true;
  for (std::size_t off = 0; off < size;) {
    auto n = co_await op::read_fixed(file.fd, buf->fixed(), off);
    if (!n || *n == 0) co_return check_line{"read_fixed", false, "read_fixed failed"};
    exact = exact && verify_stream(buf->bytes().first(*n), off);
    off += *n;
  }
  double s = seconds_since(t0);
  co_return check_line{"read_fixed", exact,
                       std::string("64 MiB page-cached file into ") +
                           (buf->index() >= 0 ? "registered" : "plain (fallback)") +
                           fmt(" arena blocks at %.2f GB/s (incl. verify), byte-exact", size / s / 1e9)};
}

task<check_line> check_echo(std::size_t total) {
  fd_guard client, server;
  if (!loopback_pair(client, server)) co_return check_line{"loopback TCP echo", false, "no loopback"};
  constexpr std::size_t chunk = 256 * 1024;
  auto echo = [&]() -> task<bool> {
    std::vector<std::byte> buf(chunk);
    for (;;) {
      auto n = co_await op::recv(server.fd, buf, within(10s));
      if (!n) co_return false;
      if (*n == 0) {
        ::shutdown(server.fd, SHUT_WR);  // pass the end of stream on to the receiver
        co_return true;
      }
      for (std::size_t s = 0; s < *n;) {
        auto w = co_await op::send(server.fd, std::span(buf).subspan(s, *n - s), within(10s));
        if (!w) co_return false;
        s += *w;
      }
    }
  };
  auto sender = [&]() -> task<bool> {
    std::vector<std::byte> buf(chunk);
    for (std::size_t off = 0; off < total;) {
      std::size_t n = std::min(chunk, total - off);
      fill_stream(std::span(buf).first(n), off);
      for (std::size_t s = 0; s < n;) {
        auto w = co_await op::send(client.fd, std::span(buf).subspan(s, n - s), within(10s));
        if (!w) co_return false;
        s += *w;
      }
      off += n;
    }
    ::shutdown(client.fd, SHUT_WR);
    co_return true;
  };
  auto receiver = [&]() -> task<std::size_t> {
    std::vector<std::byte> buf(chunk);
    std::size_t off = 0;
    for (;;) {
      auto n = co_await op::recv(client.fd, buf, within(10s));
      if (!n || *n == 0) break;
      if (!verify_stream(std::span(buf).first(*n), off)) co_return 0;
      off += *n;
    }
    co_return off;
  };
  auto t0 = clock_type::now();
  auto [echo_ok, send_ok, received] = co_await when_all(echo(), sender(), receiver());
  double s = seconds_since(t0);
  bool ok = echo_ok && send_ok && received == total;
  co_return check_line{"loopback TCP echo", ok,
                       fmt("%.0f MiB sent, echoed and verified through one reactor: ", total / double(MiB)) +
                           fmt("%.2f GB/s each way, byte-exact", total / s / 1e9)};
}

// Receive throughput of one loopback stream: through the runtime vs a blocking read() loop,
// alternated A B A B on the same kind of connection, medians compared.
check_line compare_receive(std::size_t bytes) {
  auto measure = [&](bool through_runtime) -> double {
    fd_guard client, server;
    if (!loopback_pair(client, server)) return 0;
    std::thread pump([&] {
      std::vector<char> chunk(256 * 1024, 'x');
      for (std::size_t sent = 0; sent < bytes;) {
        ssize_t n = ::send(server.fd, chunk.data(), std::min(chunk.size(), bytes - sent), MSG_NOSIGNAL);
        if (n <= 0) return;
        sent += static_cast<std::size_t>(n);
      }
    });
    std::vector<std::byte> buf(256 * 1024);
    auto t0 = clock_type::now();
    std::size_t got = 0;
    if (through_runtime) {
      reactor r;
      got = r.block_on([&]() -> task<std::size_t> {
        std::size_t total = 0;
        while (total < bytes) {
          auto n = co_await op::recv(client.fd, buf);
          if (!n || *n == 0) break;
          total += *n;
        }
        co_return total;
      }());
    } else {
      while (got < bytes) {
        ssize_t n = ::read(client.fd, buf.data(), buf.size());
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
      }
    }
    double s = seconds_since(t0);
    pump.join();
    return got == bytes ? bytes / s / 1e9 : 0;
  };
  std::vector<double> ring, blocking;
  for (int i = 0; i < 5; ++i) {
    ring.push_back(measure(true));
    blocking.push_back(measure(false));
  }
  std::sort(ring.begin(), ring.end());
  std::sort(blocking.begin(), blocking.end());
  double a = ring[2], b = blocking[2];
  bool ok = a > 0 && b > 0;
  return {"loopback receive", ok,
          fmt("runtime recv %.2f GB/s", a) + fmt(" vs blocking read() %.2f GB/s", b) +
              fmt(" (ratio %.2f, medians of 5 alternated runs)", b > 0 ? a / b : 0)};
}

task<check_line> check_cross_reactor(runtime& rt) {
  constexpr int hops = 50'000;
  reactor& home = rt.at(0);
  reactor& away = rt.at(rt.size() > 1 ? 1 : 0);
  auto t0 = clock_type::now();
  bool ok = true;
  for (int i = 0; i < hops / 2; ++i) {
    co_await resume_on(away);
    ok = ok && reactor::current() == &away;
    co_await resume_on(home);
    ok = ok && reactor::current() == &home;
  }
  double us = seconds_since(t0) / hops * 1e6;
  co_return check_line{"cross-reactor messages", ok,
                       std::to_string(hops) + " hops between " + std::to_string(rt.size()) +
                           fmt(" reactors: %.2f us per hop", us)};
}

void print(const check_line& c) {
  std::printf("  %-24s %-4s %s\n", c.name.c_str(), c.ok ? "ok" : "FAIL", c.detail.c_str());
  std::fflush(stdout);
}

}  // namespace

int check_command(std::span<const std::string_view> args) {
  cli_args cli("ringfetch check",
               "Checks the io_uring runtime on this machine and prints what it measured.\n"
               "Every check verifies its result; the exit status is 0 only if all pass.");
  auto& echo_mib = cli.add_size("--echo-mib", "MiB sent through the loopback TCP echo check", 1024);
  auto& receive_mib = cli.add_size("--receive-mib", "MiB per loopback receive comparison run", 512);
  auto& reactors = cli.add_size("--reactors", "reactors in the runtime (0: one per CPU)", 0);
  if (auto rc = cli.parse(args)) return *rc;

  utsname uts{};
  ::uname(&uts);
  std::printf("ringfetch check: the io_uring runtime on %s %s\n", uts.sysname, uts.release);
  std::vector<check_line> lines;
  auto record = [&](check_line c) {
    print(c);
    lines.push_back(std::move(c));
  };
  try {
    runtime rt({.reactors = static_cast<unsigned>(reactors),
                .reactor = {.arena_bytes = 64 * MiB}});
    std::string cpus;
    for (unsigned i = 0; i < rt.size(); ++i) {
      if (i) cpus += ',';
      cpus += std::to_string(rt.cpu_of(i));
    }
    std::string setup = rt.block_on(0, []() -> task<std::string> {
      co_return reactor::current()->describe_setup();
    }());
    record({"io_uring", true, setup});
    record({"runtime", true, std::to_string(rt.size()) + " reactor thread(s) pinned to CPUs " + cpus});
    std::string arena = rt.block_on(0, []() -> task<std::string> {
      registered_arena& a = *reactor::current()->arena();
      co_return std::to_string(a.capacity() / MiB) + " MiB in " + std::to_string(a.block_size() / MiB) +
          " MiB blocks, " + (a.registered() ? "registered with the ring" : "plain memory: " + a.fallback_reason());
    }());
    record({"registered arena", true, arena});
    record(rt.block_on(0, check_nops()));
    record(rt.block_on(0, check_timer()));
    record(rt.block_on(0, check_deadline_and_cancel()));
    record(rt.block_on(0, check_cross_reactor(rt)));
    record(rt.block_on(0, []() -> task<check_line> {
      co_return co_await check_read_fixed(*reactor::current()->arena());
    }()));
    record(rt.block_on(0, check_echo(echo_mib * MiB)));
    std::size_t failures = rt.stop();
    record({"clean shutdown", failures == 0,
            failures == 0 ? "all reactors drained and joined"
                          : std::to_string(failures) + " detached task(s) failed"});
  } catch (const std::exception& e) {
    record({"runtime", false, e.what()});
  }
  record(compare_receive(receive_mib * MiB));

  auto failed = std::count_if(lines.begin(), lines.end(), [](auto& c) { return !c.ok; });
  if (failed == 0) {
    std::printf("all %zu checks passed\n", lines.size());
    return 0;
  }
  std::printf("%ld of %zu checks FAILED\n", static_cast<long>(failed), lines.size());
  return 1;
}

}  // namespace ringfetch::tools
