#include <doctest/doctest.h>

#include <sys/mman.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <chrono>
#include <string>
#include <vector>

#include "http/client.hpp"
#include "runtime/event.hpp"
#include "runtime/ops.hpp"
#include "runtime/scheduling.hpp"
#include "runtime/when_all.hpp"
#include "nginx_fixture.hpp"
#include "test_support.hpp"

// Requests and URLs are named locals, never braced temporaries inside a co_await expression:
// GCC 12 destroys such a temporary twice.

using namespace ringfetch;
using namespace ringfetch::http;
using namespace std::chrono_literals;
using test::reactor_fixture;

namespace {

constexpr std::size_t MiB = 1 << 20;

url must_parse(const std::string& text) {
  auto u = url::parse(text);
  REQUIRE(u);
  return *u;
}

task<void> read_range(client& c, const url& u, byte_range range, std::span<std::byte> dest) {
  auto r = co_await c.get(u, {}, range, dest);
  if (!r) FAIL(r.error().describe());
  CHECK(r->status == 206);
  CHECK(r->body_bytes == dest.size());
}

// Reads `parts` consecutive ranges of `u` concurrently into one buffer and checks every byte.
task<void> read_in_parts(client& c, const url& u, std::size_t size, std::size_t parts,
                         std::uint64_t seed) {
  std::vector<std::byte> whole(size);
  std::vector<task<void>> gets;
  const std::size_t part = (size + parts - 1) / parts;
  for (std::size_t first = 0; first < size; first += part) {
    const std::size_t n = std::min(part, size - first);
    gets.push_back(read_range(c, u, byte_range{first, first + n - 1},
                              std::span(whole).subspan(first, n)));
  }
  auto all = when_all(std::move(gets));
  co_await std::move(all);
  CHECK(test::matches_pattern(whole, seed));
}

}  // namespace

TEST_SUITE("client") {
  TEST_CASE("HTTP/1.1: concurrent ranges share a bounded pool of kept-alive connections") {
    test::nginx_fixture nginx;
    const std::size_t size = 40 * MiB + 999;
    nginx.write_file("o.bin", size, 3);
    reactor_fixture f;
    client c({.max_connections = 4});
    const url u = must_parse(nginx.base_url() + "/o.bin");
    f.run([&]() -> task<void> {
      co_await read_in_parts(c, u, size, 64, 3);
      co_await read_in_parts(c, u, size, 7, 3);
      CHECK(c.open_connections(u) <= 4);
      CHECK(c.stats().connections_opened <= 4);
      CHECK(c.stats().connections_reused >= 64 + 7 - 4);
      co_await c.close();
      CHECK(c.open_connections(u) == 0);
    }());
  }

  TEST_CASE("HTTPS with ALPN h2: every range rides one HTTP/2 session") {
    test::nginx_fixture nginx({.tls = true, .http2 = true});
    const std::size_t size = 33 * MiB + 7;
    nginx.write_file("o.bin", size, 11);
    reactor_fixture f;
    client_options o;
    o.tls.ca_pem = nginx.certificate_pem();
    client c(o);
    const url u = must_parse(nginx.base_url() + "/o.bin");
    f.run([&]() -> task<void> {
      co_await read_in_parts(c, u, size, 100, 11);
      CHECK(c.stats().h2_sessions_opened == 1);
      CHECK(c.stats().connections_opened == 1);
      CHECK(c.open_connections(u) == 1);
      co_await c.close();
    }());
  }

  TEST_CASE("HTTPS restricted to HTTP/1.1 negotiates it and pools TLS connections") {
    test::nginx_fixture nginx({.tls = true, .http2 = true});
    const std::size_t size = 9 * MiB + 1;
    nginx.write_file("o.bin", size, 2);
    reactor_fixture f;
    client_options o;
    o.proto = protocol::http1;
    o.max_connections = 3;
    o.tls.ca_pem = nginx.certificate_pem();
    client c(o);
    const url u = must_parse(nginx.base_url() + "/o.bin");
    f.run([&]() -> task<void> {
      co_await read_in_parts(c, u, size, 12, 2);
      CHECK(c.stats().h2_sessions_opened == 0);
      CHECK(c.stats().connections_opened <= 3);
      co_await c.close();
    }());
  }

  TEST_CASE("an object over 4 GiB: a whole read and ranges past 4 GiB are byte-exact") {
    // The object lives in tmpfs when there is one (nginx follows the symlink), so the test
    // measures the client, not a disk.
    const std::uint64_t size = (std::uint64_t{4} << 30) + 4099;
    const std::string shm = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    const std::string path = shm + "/ringfetch-test-4g-" + std::to_string(::getpid()) + ".bin";
    struct remove_after {
      std::string path;
      ~remove_after() { std::filesystem::remove(path); }
    } cleanup{path};
    {
      std::ofstream out(path, std::ios::binary);
      std::vector<std::byte> chunk(8 * MiB);
      for (std::uint64_t off = 0; off < size;) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), size - off));
        test::fill_pattern(std::span(chunk).first(n), off);
        out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(n));
        off += n;
      }
      REQUIRE(out.good());
    }
    for (bool h2c : {false, true}) {
      CAPTURE(h2c);
      test::nginx_fixture nginx({.h2c = h2c});
      std::filesystem::create_symlink(path, nginx.docroot() + "/big.bin");
      reactor_fixture f;
      client_options o;
      o.proto = h2c ? protocol::h2 : protocol::http1;
      client c(o);
      const url u = must_parse(nginx.base_url() + "/big.bin");
      f.run([&]() -> task<void> {
        if (!h2c) {
          // Address space only until the body lands: 4 GiB of it, read in one request.
          void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
          REQUIRE(p != MAP_FAILED);
          std::span<std::byte> whole(static_cast<std::byte*>(p), size);
          auto r = co_await c.get(u, {}, std::nullopt, whole);
          const bool exact = r && r->body_bytes == size && test::matches_pattern(whole, 0);
          ::munmap(p, size);
          if (!r) FAIL(r.error().describe());
          CHECK(exact);
        }
        // Ranges whose offsets need more than 32 bits, and the last byte.
        struct span_case { std::uint64_t first, last; };
        for (auto rc : {span_case{(std::uint64_t{1} << 31) - 5, (std::uint64_t{1} << 31) + 5},
                        span_case{(std::uint64_t{1} << 32) - 3 * MiB, (std::uint64_t{1} << 32) + 4000},
                        span_case{size - 1, size - 1}}) {
          CAPTURE(rc.first);
          std::vector<std::byte> part(rc.last - rc.first + 1);
          auto r = co_await c.get(u, {}, byte_range{rc.first, rc.last}, part);
          if (!r) FAIL(r.error().describe());
          CHECK(r->status == 206);
          CHECK(r->body_bytes == part.size());
          std::size_t bad = 0;
          while (bad < part.size() && part[bad] == test::pattern_byte(rc.first + bad)) ++bad;
          CHECK_MESSAGE(bad == part.size(), "first wrong byte at +" << bad);
        }
        co_await c.close();
      }());
    }
  }

  TEST_CASE("HTTP/2 GOAWAY mid-transfer: running streams finish, the rest move to a new session") {
    // nginx ends an HTTP/2 connection with GOAWAY after keepalive_requests streams.
    test::nginx_fixture nginx({.h2c = true, .h2_max_concurrent_streams = 16, .keepalive_requests = 40});
    const std::size_t size = 12 * MiB + 3;
    nginx.write_file("o.bin", size, 21);
    reactor_fixture f;
    client_options o;
    o.proto = protocol::h2;
    client c(o);
    const url u = must_parse(nginx.base_url() + "/o.bin");
    f.run([&]() -> task<void> {
      co_await read_in_parts(c, u, size, 95, 21);
      CHECK(c.stats().h2_sessions_opened >= 3);  // 95 streams, 40 per connection
      co_await c.close();
      CHECK(c.open_connections(u) == 0);
    }());
  }

  TEST_CASE("more HTTP/2 sessions open only while the others are saturated, up to the limit") {
    test::nginx_fixture nginx({.h2c = true, .h2_max_concurrent_streams = 4});
    const std::size_t size = 16 * MiB + 5;
    nginx.write_file("o.bin", size, 8);
    reactor_fixture f;
    client_options o;
    o.proto = protocol::h2;
    o.max_h2_sessions = 3;
    client c(o);
    const url u = must_parse(nginx.base_url() + "/o.bin");
    f.run([&]() -> task<void> {
      co_await read_in_parts(c, u, size, 64, 8);
      CHECK(c.stats().h2_sessions_opened >= 2);
      CHECK(c.stats().h2_sessions_opened <= 3);
      co_await c.close();
    }());
  }

  TEST_CASE("a request body over HTTP/2 is refused with a clear error, not dropped") {
    test::nginx_fixture nginx({.h2c = true});
    nginx.write_file("o.bin", 10, 0);
    reactor_fixture f;
    client_options o;
    o.proto = protocol::h2;
    client c(o);
    const url u = must_parse(nginx.base_url() + "/o.bin");
    f.run([&]() -> task<void> {
      request post{.method = "POST"};
      post.body = "grant_type=x";
      std::vector<std::byte> dest(10);
      auto r = co_await c.send(u, post, dest);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == error_kind::invalid_argument);
      CHECK(r.error().message.find("HTTP/1.1 only") != std::string::npos);
      co_await c.close();
    }());
  }

  TEST_CASE("requests waiting on a failed first connection share its error instead of retrying") {
    reactor_fixture f;
    std::uint16_t closed_port = 0;
    {
      test::tcp_listener gone;  // a port nobody listens on once this closes
      closed_port = ntohs(gone.addr.sin_port);
    }
    client c;
    const url u = must_parse("https://127.0.0.1:" + std::to_string(closed_port) + "/o");
    f.run([&]() -> task<void> {
      std::vector<std::vector<std::byte>> dests(20, std::vector<std::byte>(10));
      std::vector<task<result<response>>> gets;
      for (auto& d : dests) gets.push_back(c.get(u, {}, std::nullopt, d));
      auto all = when_all(std::move(gets));
      auto results = co_await std::move(all);
      for (auto& r : results) {
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find(std::to_string(closed_port)) != std::string::npos);
      }
      CHECK(c.stats().connect_failures == 1);
      co_await c.close();
    }());
  }

  TEST_CASE("an untrusted certificate fails every request with a TLS error") {
    test::nginx_fixture nginx({.tls = true});
    nginx.write_file("o.bin", 10, 0);
    reactor_fixture f;
    client c;  // the system CA store only: the self-signed certificate is not trusted
    const url u = must_parse(nginx.base_url() + "/o.bin");
    f.run([&]() -> task<void> {
      std::vector<std::byte> dest(10);
      auto r = co_await c.get(u, {}, std::nullopt, dest);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == error_kind::tls);
      co_await c.close();
    }());
  }

  TEST_CASE("a kept-alive connection the server closed is noticed before reuse") {
    reactor_fixture f;
    test::tcp_listener listener;
    client c;
    const url u = must_parse("http://127.0.0.1:" + std::to_string(ntohs(listener.addr.sin_port)) + "/x");
    f.run([&]() -> task<void> {
      event closed;
      auto server = [&]() -> task<void> {
        for (int i = 0; i < 2; ++i) {
          {
            test::unique_fd conn = co_await test::accept_and_read_request(listener.fd.get());
            REQUIRE(conn.get() >= 0);
            std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
            (void)co_await op::send(conn.get(), std::as_bytes(std::span(reply)));
          }  // closed, although the response promised keep-alive
          closed.set();
        }
      };
      auto requests = [&]() -> task<void> {
        std::vector<std::byte> dest(5);
        auto first = co_await c.get(u, {}, std::nullopt, dest);
        REQUIRE(first);
        co_await closed.wait();
        auto second = co_await c.get(u, {}, std::nullopt, dest);
        if (!second) FAIL(second.error().describe());
        CHECK(second->body_bytes == 5);
        CHECK(c.stats().connections_opened == 2);
        CHECK(c.stats().connections_reused + c.stats().stale_retries <= 1);
        co_await c.close();
      };
      co_await when_all(server(), requests());
    }());
  }

  TEST_CASE("a request the server dropped unanswered on a reused connection is replayed once") {
    reactor_fixture f;
    test::tcp_listener listener;
    client c;
    const url u = must_parse("http://127.0.0.1:" + std::to_string(ntohs(listener.addr.sin_port)) + "/x");
    f.run([&]() -> task<void> {
      auto server = [&]() -> task<void> {
        const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        std::array<std::byte, 4096> req{};
        {
          auto fd = co_await op::accept(listener.fd.get());
          REQUIRE(fd);
          test::unique_fd conn(*fd);
          (void)co_await op::recv(conn.get(), req);
          (void)co_await op::send(conn.get(), std::as_bytes(std::span(reply)));
          (void)co_await op::recv(conn.get(), req);  // the second request: dropped unanswered
        }
        auto fd = co_await op::accept(listener.fd.get());
        REQUIRE(fd);
        test::unique_fd conn(*fd);
        (void)co_await op::recv(conn.get(), req);
        (void)co_await op::send(conn.get(), std::as_bytes(std::span(reply)));
      };
      auto requests = [&]() -> task<void> {
        std::vector<std::byte> dest(5);
        auto first = co_await c.get(u, {}, std::nullopt, dest);
        REQUIRE(first);
        auto second = co_await c.get(u, {}, std::nullopt, dest);
        if (!second) FAIL(second.error().describe());
        CHECK(c.stats().stale_retries == 1);
        CHECK(c.stats().connections_opened == 2);
        co_await c.close();
      };
      co_await when_all(server(), requests());
    }());
  }

  TEST_CASE("a request queued for a connection slot leaves the queue at once when cancelled") {
    reactor_fixture f;
    test::tcp_listener listener;
    client c({.max_connections = 1});
    const url u = must_parse("http://127.0.0.1:" + std::to_string(ntohs(listener.addr.sin_port)) + "/x");
    f.run([&]() -> task<void> {
      event body_started;
      event release_body;
      request_cancel cancel;
      bool queued_returned = false;
      bool first_done_before_queued = false;
      auto server = [&]() -> task<void> {
        test::unique_fd conn = co_await test::accept_and_read_request(listener.fd.get());
        REQUIRE(conn.get() >= 0);
        std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234";
        (void)co_await op::send(conn.get(), std::as_bytes(std::span(head)));
        body_started.set();
        co_await release_body.wait();
        std::string rest = "56789";
        (void)co_await op::send(conn.get(), std::as_bytes(std::span(rest)));
      };
      auto first = [&]() -> task<void> {
        std::vector<std::byte> dest(10);
        auto r = co_await c.get(u, {}, std::nullopt, dest);
        if (!r) FAIL(r.error().describe());
        first_done_before_queued = !queued_returned;
      };
      auto queued = [&]() -> task<void> {
        co_await body_started.wait();  // the only slot is taken now
        std::vector<std::byte> dest(10);
        auto r = co_await c.get(u, {}, std::nullopt, dest, &cancel);
        queued_returned = true;
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == error_kind::cancelled);
        release_body.set();
      };
      auto canceller = [&]() -> task<void> {
        co_await body_started.wait();
        co_await yield();  // let `queued` reach the slot queue
        cancel.request();
      };
      co_await when_all(server(), first(), queued(), canceller());
      CHECK_FALSE(first_done_before_queued);
      co_await c.close();
    }());
  }

  TEST_CASE("a cancelled request returns at once and its connection is not reused") {
    reactor_fixture f;
    test::tcp_listener listener;
    client c;
    const url u = must_parse("http://127.0.0.1:" + std::to_string(ntohs(listener.addr.sin_port)) + "/x");
    f.run([&]() -> task<void> {
      event body_started;
      event finished;
      request_cancel cancel;
      auto server = [&]() -> task<void> {
        test::unique_fd conn = co_await test::accept_and_read_request(listener.fd.get());
        REQUIRE(conn.get() >= 0);
        std::string partial = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + std::string(10, 'z');
        (void)co_await op::send(conn.get(), std::as_bytes(std::span(partial)));
        body_started.set();
        co_await finished.wait();  // and never sends the rest
      };
      auto request = [&]() -> task<void> {
        std::vector<std::byte> dest(1000);
        auto r = co_await c.get(u, {}, std::nullopt, dest, &cancel);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == error_kind::cancelled);
        CHECK(c.open_connections(u) == 0);
        finished.set();
      };
      auto canceller = [&]() -> task<void> {
        co_await body_started.wait();
        cancel.request();
      };
      co_await when_all(server(), request(), canceller());
      co_await c.close();
    }());
  }
}
