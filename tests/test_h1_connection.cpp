#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "http/h1_connection.hpp"
#include "http/tcp_stream.hpp"
#include "runtime/ops.hpp"
#include "runtime/when_all.hpp"
#include "nginx_fixture.hpp"
#include "test_support.hpp"

using namespace ringfetch;
using namespace ringfetch::http;
using namespace std::chrono_literals;
using test::reactor_fixture;

// Requests are named locals, never braced temporaries inside `co_await c->send({...})`: GCC 12
// destroys such a temporary twice (free(): invalid pointer).

namespace {

constexpr std::size_t MiB = 1 << 20;

task<std::unique_ptr<h1_connection>> connect_h1(resolver& names, std::uint16_t port) {
  auto s = co_await tcp_stream::connect(names, "127.0.0.1", port);
  REQUIRE(s);
  co_return std::make_unique<h1_connection>(std::move(*s), "127.0.0.1:" + std::to_string(port));
}

}  // namespace

TEST_SUITE("h1_connection against nginx") {
  TEST_CASE("whole and ranged reads are byte-exact, reusing one keep-alive connection") {
    test::nginx_fixture nginx;
    const std::size_t size = 48 * MiB + 12345;  // odd size
    nginx.write_file("obj.bin", size, 0);
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      auto c = co_await connect_h1(names, nginx.port());
      std::vector<std::byte> whole(size);
      const request r_req{.target = "/obj.bin"};
      auto r = co_await c->send(r_req, whole);
      REQUIRE(r);
      CHECK(r->status == 200);
      CHECK(r->body_bytes == size);
      CHECK(test::matches_pattern(whole, 0));
      CHECK(c->reusable());
      // Ranges at awkward places, all on the same connection.
      struct span_case { std::uint64_t first, last; };
      for (auto rc : {span_case{0, 0}, span_case{1, 4096}, span_case{size - 1, size - 1},
                      span_case{7 * MiB - 3, 19 * MiB + 5}, span_case{size - 1000, size - 1}}) {
        CAPTURE(rc.first);
        std::vector<std::byte> part(rc.last - rc.first + 1);
        const request p_req{.target = "/obj.bin", .range = byte_range{rc.first, rc.last}};
        auto p = co_await c->send(p_req, part);
        REQUIRE(p);
        CHECK(p->status == 206);
        CHECK(p->body_bytes == part.size());
        REQUIRE(p->header("content-range"));
        CHECK(*p->header("content-range") ==
              "bytes " + std::to_string(rc.first) + "-" + std::to_string(rc.last) + "/" + std::to_string(size));
        CHECK(test::matches_pattern(part, rc.first));
        CHECK(c->reusable());
      }
      co_await c->close();
    }());
  }

  TEST_CASE("a body lands byte-exact in registered arena memory, and in the arena's fallback") {
    test::nginx_fixture nginx;
    const std::size_t size = 24 * MiB + 4097;
    nginx.write_file("arena.bin", size, 5);
    for (bool registered : {true, false}) {
      CAPTURE(registered);
      reactor_fixture f({.arena_bytes = 32 * MiB, .arena_register = registered});
      resolver names;
      f.run([&]() -> task<void> {
        auto buffer = f.r.arena()->allocate(size);
        REQUIRE(buffer);
        CHECK((f.r.arena()->index_of(buffer->bytes()) >= 0) == f.r.arena()->registered());
        auto c = co_await connect_h1(names, nginx.port());
        const request req{.target = "/arena.bin"};
        auto r = co_await c->send(req, buffer->bytes().first(size));
        if (!r) FAIL(r.error().describe());
        CHECK(r->body_bytes == size);
        CHECK(test::matches_pattern(buffer->bytes().first(size), 5));
      }());
    }
  }

  TEST_CASE("404 and 416 are statuses with their text kept aside, never written to the destination") {
    test::nginx_fixture nginx;
    nginx.write_file("small.bin", 100, 0);
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      auto c = co_await connect_h1(names, nginx.port());
      std::vector<std::byte> dest(64, std::byte{0x11});
      const request missing_req{.target = "/nope.bin"};
      auto missing = co_await c->send(missing_req, dest);
      REQUIRE(missing);
      CHECK(missing->status == 404);
      CHECK(missing->body_bytes == 0);
      CHECK(missing->error_body.find("404 Not Found") != std::string::npos);
      CHECK(dest[0] == std::byte{0x11});
      CHECK(c->reusable());
      const request past_req{.target = "/small.bin", .range = byte_range{100, 200}};
      auto past = co_await c->send(past_req, dest);
      REQUIRE(past);
      CHECK(past->status == 416);
      CHECK(dest[0] == std::byte{0x11});
    }());
  }

  TEST_CASE("a chunked body is reassembled byte-exact") {
    test::nginx_fixture nginx;
    const std::size_t size = 3 * MiB + 77;
    nginx.write_file("c.bin", size, 99);
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      auto c = co_await connect_h1(names, nginx.port());
      std::vector<std::byte> dest(size);
      const request r_req{.target = "/chunked/c.bin"};
      auto r = co_await c->send(r_req, dest);
      if (!r) FAIL(r.error().describe());
      CHECK(r->status == 200);
      REQUIRE(r->header("transfer-encoding"));
      CHECK(*r->header("transfer-encoding") == "chunked");
      CHECK(r->body_bytes == size);
      CHECK(test::matches_pattern(dest, 99));
      CHECK(c->reusable());
    }());
  }

  TEST_CASE("a body larger than the destination is an error that says so") {
    test::nginx_fixture nginx;
    nginx.write_file("big.bin", 1000, 0);
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      auto c = co_await connect_h1(names, nginx.port());
      std::vector<std::byte> dest(999);
      const request r_req{.target = "/big.bin"};
      auto r = co_await c->send(r_req, dest);
      REQUIRE_FALSE(r);
      CHECK(r.error().message.find("1000 bytes is larger than the destination (999 bytes)") != std::string::npos);
      CHECK_FALSE(c->reusable());
    }());
  }
}

TEST_SUITE("h1_connection against a hostile server") {
  TEST_CASE("a server that closes mid-body gives an error with the bytes that arrived") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    f.run([&]() -> task<void> {
      auto server = [&]() -> task<void> {
        test::unique_fd conn = co_await test::accept_and_read_request(listener.fd.get());
        REQUIRE(conn.get() >= 0);
        std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + std::string(70000, 'x');
        (void)co_await op::send(conn.get(), std::as_bytes(std::span(reply)));
      };
      auto client = [&]() -> task<void> {
        auto c = co_await connect_h1(names, ntohs(listener.addr.sin_port));
        std::vector<std::byte> dest(100000);
        const request r_req{.target = "/o"};
        auto r = co_await c->send(r_req, dest);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == error_kind::transport);
        CHECK(r.error().retryable);
        CHECK(r.error().offset == 70000);
        CHECK(r.error().message.find("after 70000 of 100000 bytes") != std::string::npos);
      };
      co_await when_all(server(), client());
    }());
  }

  TEST_CASE("a server that never answers hits the first-byte timeout") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    f.run([&]() -> task<void> {
      auto s = co_await tcp_stream::connect(names, "127.0.0.1", ntohs(listener.addr.sin_port));
      REQUIRE(s);
      h1_connection c(std::move(*s), "127.0.0.1", {.first_byte_timeout = 100ms});
      std::vector<std::byte> dest(10);
      auto start = steady_clock::now();
      const request r_req{.target = "/o"};
      auto r = co_await c.send(r_req, dest);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == error_kind::timeout);
      CHECK(steady_clock::now() - start >= 100ms);
    }());
  }

  TEST_CASE("a server that sends headers forever is cut off at the head limit") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    f.run([&]() -> task<void> {
      auto server = [&]() -> task<void> {
        auto fd = co_await op::accept(listener.fd.get());
        REQUIRE(fd);
        test::unique_fd conn(*fd);
        std::string start = "HTTP/1.1 200 OK\r\n";
        (void)co_await op::send(conn.get(), std::as_bytes(std::span(start)));
        std::string line = "X-Forever: " + std::string(1000, 'y') + "\r\n";
        for (int i = 0; i < 1000; ++i) {
          auto s = co_await op::send(conn.get(), std::as_bytes(std::span(line)));
          if (!s) break;  // the client hung up: good
        }
      };
      auto client = [&]() -> task<void> {
        auto c = co_await connect_h1(names, ntohs(listener.addr.sin_port));
        std::vector<std::byte> dest(10);
        const request r_req{.target = "/o"};
        auto r = co_await c->send(r_req, dest);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == error_kind::protocol);
        CHECK(r.error().message.find("response head larger than") != std::string::npos);
        co_await c->close();
      };
      co_await when_all(server(), client());
    }());
  }
}
