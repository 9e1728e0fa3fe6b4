#include <doctest/doctest.h>

#include <cstdlib>
#include <vector>

#include "runtime/ops.hpp"
#include "runtime/when_all.hpp"
#include "test_support.hpp"

using namespace ringfetch;
using test::reactor_fixture;

namespace {

constexpr std::size_t chunk = 256 * 1024;

// Echoes everything it receives until the peer shuts down its side.
task<std::size_t> echo_server(int listen_fd) {
  auto accepted = co_await op::accept(listen_fd);
  REQUIRE(accepted);
  test::unique_fd conn(*accepted);
  std::vector<std::byte> buf(chunk);
  std::size_t total = 0;
  for (;;) {
    auto n = co_await op::recv(conn.get(), buf);
    REQUIRE(n);
    if (*n == 0) break;
    for (std::size_t sent = 0; sent < *n;) {
      auto s = co_await op::send(conn.get(), std::span(buf).subspan(sent, *n - sent));
      REQUIRE(s);
      sent += *s;
    }
    total += *n;
  }
  co_return total;
}

task<std::size_t> send_pattern(int fd, std::size_t total) {
  std::vector<std::byte> buf(chunk + 13);  // odd chunk: sends and receives never line up
  for (std::size_t off = 0; off < total;) {
    std::size_t n = std::min(buf.size(), total - off);
    test::fill_pattern(std::span(buf).first(n), off);
    for (std::size_t sent = 0; sent < n;) {
      auto s = co_await op::send(fd, std::span(buf).subspan(sent, n - sent));
      REQUIRE(s);
      sent += *s;
    }
    off += n;
  }
  ::shutdown(fd, SHUT_WR);
  co_return total;
}

task<std::size_t> receive_and_verify(int fd, bool* exact) {
  std::vector<std::byte> buf(chunk - 7);
  std::size_t off = 0;
  *exact = true;
  for (;;) {
    auto n = co_await op::recv(fd, buf);
    REQUIRE(n);
    if (*n == 0) break;
    if (!test::matches_pattern(std::span(buf).first(*n), off)) *exact = false;
    off += *n;
  }
  co_return off;
}

}  // namespace

TEST_SUITE("tcp echo") {
  TEST_CASE("TCP echo over loopback moves 1 GiB byte-exact through one reactor") {
    // RINGFETCH_ECHO_MIB shrinks it for quick local runs; CI uses the full GiB.
    std::size_t mib = 1024;
    if (const char* env = std::getenv("RINGFETCH_ECHO_MIB")) mib = std::strtoull(env, nullptr, 10);
    const std::size_t total = mib << 20;
    reactor_fixture f;
    test::tcp_listener listener;
    auto client = test::tcp_socket();
    bool exact = false;
    auto [echoed, sent, received] = f.run([&]() -> task<std::tuple<std::size_t, std::size_t, std::size_t>> {
      auto connect_then_send = [&]() -> task<std::size_t> {
        auto c = co_await op::connect(client.get(), listener.sockaddr_ptr(), sizeof(sockaddr_in));
        REQUIRE(c);
        co_return co_await send_pattern(client.get(), total);
      };
      co_return co_await when_all(echo_server(listener.fd.get()), connect_then_send(),
                                  receive_and_verify(client.get(), &exact));
    }());
    CHECK(sent == total);
    CHECK(echoed == total);
    CHECK(received == total);
    CHECK(exact);
  }
}
