#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "http/h1_connection.hpp"
#include "http/self_signed_cert.hpp"
#include "http/tcp_stream.hpp"
#include "http/tls_context.hpp"
#include "http/tls_stream.hpp"
#include "runtime/ops.hpp"
#include "runtime/when_all.hpp"
#include "nginx_fixture.hpp"
#include "openssl_server_fixture.hpp"
#include "test_support.hpp"

using namespace ringfetch;
using namespace ringfetch::http;
using namespace std::chrono_literals;
using test::reactor_fixture;

// Requests and transports are named locals, never temporaries built inside a co_await
// expression: GCC 12 destroys such a temporary twice.

namespace {

constexpr std::size_t MiB = 1 << 20;

tls_context client_context(tls_client_options o) {
  auto c = tls_context::client(std::move(o));
  REQUIRE_MESSAGE(c, (c ? "" : c.error().describe()));
  return std::move(*c);
}

tls_context server_context(const pem_identity& id, std::vector<std::string> alpn = {"h2", "http/1.1"}) {
  tls_server_options o{.certificate_pem = id.certificate_pem, .private_key_pem = id.private_key_pem,
                       .alpn = std::move(alpn)};
  auto c = tls_context::server(std::move(o));
  REQUIRE_MESSAGE(c, (c ? "" : c.error().describe()));
  return std::move(*c);
}

pem_identity identity(self_signed_options o = {}) {
  auto id = make_self_signed_certificate(o);
  REQUIRE_MESSAGE(id, (id ? "" : id.error().describe()));
  return std::move(*id);
}

task<result<std::unique_ptr<tls_stream>>> connect_tls(resolver& names, std::uint16_t port,
                                                      tls_context& ctx, std::string host = "127.0.0.1",
                                                      op_options o = {}) {
  auto tcp = co_await tcp_stream::connect(names, "127.0.0.1", port);
  REQUIRE(tcp);
  std::unique_ptr<transport> below = std::move(*tcp);
  co_return co_await tls_stream::connect(std::move(below), ctx, std::move(host), o);
}

// Accepts one TCP connection on `listener` and runs the server handshake over it.
task<std::unique_ptr<tls_stream>> accept_tls(test::tcp_listener& listener, tls_context& ctx,
                                             int* raw_fd = nullptr) {
  auto fd = co_await op::accept(listener.fd.get());
  REQUIRE(fd);
  if (raw_fd) *raw_fd = *fd;
  std::unique_ptr<transport> below = std::make_unique<tcp_stream>(*fd, "client");
  op_options o = within(5s);
  auto s = co_await tls_stream::accept(std::move(below), ctx, o);
  REQUIRE_MESSAGE(s, (s ? "" : s.error().describe()));
  co_return std::move(*s);
}

// User + system CPU seconds of this process so far (nginx runs in its own processes).
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto secs = [](timeval t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

std::uint16_t port_of(const test::tcp_listener& l) { return ntohs(l.addr.sin_port); }

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_SUITE("tls_stream against nginx") {
  TEST_CASE("whole and ranged reads through h1_connection are byte-exact over TLS 1.3") {
    test::nginx_fixture nginx({.tls = true});
    const std::size_t size = 48 * MiB + 12345;
    nginx.write_file("obj.bin", size, 7);
    reactor_fixture f;
    resolver names;
    auto ctx = client_context({.ca_pem = nginx.certificate_pem(), .alpn = {"http/1.1"}});
    f.run([&]() -> task<void> {
      auto s = co_await connect_tls(names, nginx.port(), ctx);
      REQUIRE_MESSAGE(s, (s ? "" : s.error().describe()));
      CHECK((*s)->alpn() == "http/1.1");
      CHECK((*s)->protocol_version() == "TLSv1.3");
      h1_connection c(std::move(*s), "127.0.0.1:" + std::to_string(nginx.port()));
      std::vector<std::byte> whole(size);
      const request whole_req{.target = "/obj.bin"};
      auto r = co_await c.send(whole_req, whole);
      REQUIRE_MESSAGE(r, (r ? "" : r.error().describe()));
      CHECK(r->status == 200);
      CHECK(r->body_bytes == size);
      CHECK(test::matches_pattern(whole, 7));
      struct range_case { std::uint64_t first, last; };
      for (auto rc : {range_case{0, 0}, range_case{1, 16384}, range_case{16383, 16385},
                      range_case{size - 1, size - 1}, range_case{5 * MiB - 3, 21 * MiB + 5}}) {
        CAPTURE(rc.first);
        std::vector<std::byte> part(rc.last - rc.first + 1);
        const request part_req{.target = "/obj.bin", .range = byte_range{rc.first, rc.last}};
        auto p = co_await c.send(part_req, part);
        REQUIRE_MESSAGE(p, (p ? "" : p.error().describe()));
        CHECK(p->status == 206);
        CHECK(p->body_bytes == part.size());
        CHECK(test::matches_pattern(part, 7 + rc.first));
        CHECK(c.reusable());
      }
      co_await c.close();
    }());
  }

  TEST_CASE("ALPN: h2 when the server speaks it and it is offered, http/1.1 when only that is offered") {
    test::nginx_fixture nginx({.tls = true, .http2 = true});
    reactor_fixture f;
    resolver names;
    auto both = client_context({.ca_pem = nginx.certificate_pem()});
    auto h1_only = client_context({.ca_pem = nginx.certificate_pem(), .alpn = {"http/1.1"}});
    f.run([&]() -> task<void> {
      auto a = co_await connect_tls(names, nginx.port(), both);
      REQUIRE_MESSAGE(a, (a ? "" : a.error().describe()));
      CHECK((*a)->alpn() == "h2");
      co_await (*a)->close();
      auto b = co_await connect_tls(names, nginx.port(), h1_only);
      REQUIRE_MESSAGE(b, (b ? "" : b.error().describe()));
      CHECK((*b)->alpn() == "http/1.1");
      co_await (*b)->close();
    }());
  }

  TEST_CASE("a certificate outside the trusted CAs is rejected, naming the host and the reason") {
    test::nginx_fixture nginx({.tls = true});
    reactor_fixture f;
    resolver names;
    auto system_only = client_context({});
    auto other_ca = client_context({.use_system_ca = false, .ca_pem = identity().certificate_pem});
    f.run([&]() -> task<void> {
      for (tls_context* ctx : {&system_only, &other_ca}) {
        auto s = co_await connect_tls(names, nginx.port(), *ctx);
        REQUIRE_FALSE(s);
        CHECK(s.error().kind == error_kind::tls);
        INFO(s.error().describe());
        CHECK(contains(s.error().message, "certificate of 127.0.0.1"));
        CHECK(contains(s.error().message, "self-signed certificate"));
      }
    }());
  }

  TEST_CASE("a certificate for another name or address is rejected") {
    test::nginx_fixture nginx({.tls = true});
    reactor_fixture f;
    resolver names;
    auto ctx = client_context({.ca_pem = nginx.certificate_pem()});
    f.run([&]() -> task<void> {
      auto name = co_await connect_tls(names, nginx.port(), ctx, "storage.example.com");
      REQUIRE_FALSE(name);
      CHECK(name.error().kind == error_kind::tls);
      CHECK(contains(name.error().message, "certificate of storage.example.com"));
      CHECK(contains(name.error().message, "hostname mismatch"));
      auto address = co_await connect_tls(names, nginx.port(), ctx, "127.0.0.2");
      REQUIRE_FALSE(address);
      CHECK(contains(address.error().message, "IP address mismatch"));
      // The names the certificate does carry pass: "localhost" (SNI) and the IPv6 literal form.
      auto good = co_await connect_tls(names, nginx.port(), ctx, "localhost");
      REQUIRE_MESSAGE(good, (good ? "" : good.error().describe()));
      co_await (*good)->close();
    }());
  }

  TEST_CASE("with verification explicitly off, an untrusted certificate is accepted") {
    test::nginx_fixture nginx({.tls = true});
    nginx.write_file("small.bin", 1000, 3);
    reactor_fixture f;
    resolver names;
    auto ctx = client_context({.verify_peer = false, .alpn = {"http/1.1"}});
    f.run([&]() -> task<void> {
      auto s = co_await connect_tls(names, nginx.port(), ctx, "not-the-name.example");
      REQUIRE_MESSAGE(s, (s ? "" : s.error().describe()));
      h1_connection c(std::move(*s), "127.0.0.1");
      std::vector<std::byte> dest(1000);
      const request req{.target = "/small.bin"};
      auto r = co_await c.send(req, dest);
      REQUIRE(r);
      CHECK(test::matches_pattern(dest, 3));
      co_await c.close();
    }());
  }

  TEST_CASE("the second connection resumes the first one's session") {
    test::nginx_fixture nginx({.tls = true});
    nginx.write_file("small.bin", 100, 0);
    reactor_fixture f;
    resolver names;
    bool resumption = true;
    SUBCASE("on") { resumption = true; }
    SUBCASE("off") { resumption = false; }
    auto ctx = client_context({.ca_pem = nginx.certificate_pem(), .alpn = {"http/1.1"},
                               .session_resumption = resumption});
    f.run([&]() -> task<void> {
      for (int round = 0; round < 3; ++round) {
        CAPTURE(round);
        auto s = co_await connect_tls(names, nginx.port(), ctx);
        REQUIRE_MESSAGE(s, (s ? "" : s.error().describe()));
        CHECK((*s)->session_reused() == (resumption && round > 0));
        // TLS 1.3 tickets arrive after the handshake: a request makes the client read them.
        h1_connection c(std::move(*s), "127.0.0.1");
        std::vector<std::byte> dest(100);
        const request req{.target = "/small.bin"};
        auto r = co_await c.send(req, dest);
        REQUIRE(r);
        CHECK(r->status == 200);
        co_await c.close();
      }
      CHECK(ctx.cached_sessions() == (resumption ? 1u : 0u));
    }());
  }

  TEST_CASE("a 1 GiB body over TLS arrives byte-exact (throughput printed)") {
    const char* env = std::getenv("RINGFETCH_TLS_BIG_MIB");
    const std::size_t size = (env ? std::strtoull(env, nullptr, 10) : 1024) * MiB + 1;
    test::nginx_fixture nginx({.tls = true});
    nginx.write_file("big.bin", size, 11);
    reactor_fixture f;
    resolver names;
    auto ctx = client_context({.ca_pem = nginx.certificate_pem(), .alpn = {"http/1.1"}});
    std::vector<std::byte> dest(size);
    f.run([&]() -> task<void> {
      auto s = co_await connect_tls(names, nginx.port(), ctx);
      REQUIRE(s);
      h1_connection c(std::move(*s), "127.0.0.1");
      const request req{.target = "/big.bin"};
      auto start = steady_clock::now();
      const double cpu_start = cpu_seconds();
      auto r = co_await c.send(req, dest);
      const double cpu = cpu_seconds() - cpu_start;
      std::chrono::duration<double> took = steady_clock::now() - start;
      REQUIRE_MESSAGE(r, (r ? "" : r.error().describe()));
      CHECK(r->body_bytes == size);
      MESSAGE("TLS 1.3 read of " << size / MiB << " MiB through h1_connection: "
              << static_cast<double>(size) / 1e6 / took.count() << " MB/s, client CPU "
              << cpu / (static_cast<double>(size) / 1e9) << " s/GB");
      co_await c.close();
    }());
    CHECK(test::matches_pattern(dest, 11));
  }
}

TEST_SUITE("tls_stream against openssl s_server") {
  TEST_CASE("TLS 1.2: a close-delimited page ends at close_notify, and the second session is resumed") {
    const auto id = identity();
    test::openssl_server_fixture server(id, {"-tls1_2"});
    reactor_fixture f;
    resolver names;
    auto ctx = client_context({.ca_pem = id.certificate_pem, .alpn = {"http/1.1"}});
    f.run([&]() -> task<void> {
      for (int round = 0; round < 2; ++round) {
        CAPTURE(round);
        op_options o = within(5s);
        auto s = co_await connect_tls(names, server.port(), ctx, "localhost", o);
        REQUIRE_MESSAGE(s, (s ? "" : s.error().describe()));
        CHECK((*s)->protocol_version() == "TLSv1.2");
        CHECK((*s)->session_reused() == (round == 1));
        // Raw HTTP/1.0 on the stream itself: the page is close-delimited, so the only end is
        // the server's close_notify, which read_some reports as 0.
        tls_stream& t = **s;
        const std::string get = "GET / HTTP/1.0\r\n\r\n";
        auto w = co_await t.write_all(std::as_bytes(std::span(get)), o);
        REQUIRE(w);
        std::vector<std::byte> page(256 * 1024);
        std::size_t got = 0;
        for (;;) {
          auto n = co_await t.read_some(std::span(page).subspan(got), o);
          REQUIRE_MESSAGE(n, (n ? "" : t.last_error()));
          if (*n == 0) break;
          got += *n;
        }
        std::string text(reinterpret_cast<const char*>(page.data()), got);
        CHECK(text.starts_with("HTTP/1.0 200 ok\r\n"));
        CHECK(contains(text, "</BODY></HTML>"));
        CHECK(contains(text, round == 1 ? "Reused, TLSv1.2" : "New, TLSv1.2"));
        CHECK(t.last_error().empty());
        co_await t.close();
      }
    }());
  }
}

TEST_SUITE("tls_stream against our own and hostile servers") {
  TEST_CASE("our server and our client: ALPN by server preference, overlapping echo, close_notify is EOF") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    const auto id = identity();
    std::vector<std::string> server_alpn = {"h2", "http/1.1"};
    std::vector<std::string> client_alpn = {"http/1.1", "h2"};
    std::string expected = "h2";
    SUBCASE("h2 preferred by the server") {}
    SUBCASE("server without h2") {
      server_alpn = {"http/1.1"};
      expected = "http/1.1";
    }
    SUBCASE("no common protocol: no ALPN, still connected") {
      server_alpn = {"h2"};
      client_alpn = {"http/1.1"};
      expected = "";
    }
    auto server_ctx = server_context(id, server_alpn);
    auto client_ctx = client_context({.ca_pem = id.certificate_pem, .alpn = client_alpn});
    const std::size_t size = 8 * MiB + 3;
    f.run([&]() -> task<void> {
      auto server = [&]() -> task<void> {
        auto s = co_await accept_tls(listener, server_ctx);
        CHECK(s->alpn() == expected);
        std::vector<std::byte> buf(100'000);
        std::size_t echoed = 0;
        while (echoed < size) {
          op_options o = within(5s);
          auto n = co_await s->read_some(buf, o);
          REQUIRE(n);
          REQUIRE(*n > 0);
          auto w = co_await s->write_all(std::span(buf).first(*n), o);
          REQUIRE(w);
          echoed += *n;
        }
        co_await s->close();
      };
      auto client = [&]() -> task<void> {
        auto s = co_await connect_tls(names, port_of(listener), client_ctx);
        REQUIRE_MESSAGE(s, (s ? "" : s.error().describe()));
        tls_stream& t = **s;
        CHECK(t.alpn() == expected);
        std::vector<std::byte> out(size), back(size);
        test::fill_pattern(out, 5);
        // Write and read at once on one stream, as HTTP/2 will.
        auto writer = [&]() -> task<void> {
          op_options o = within(5s);
          auto w = co_await t.write_all(out, o);
          CHECK(w);
        };
        auto reader = [&]() -> task<void> {
          std::size_t got = 0;
          while (got < size) {
            op_options o = within(5s);
            auto n = co_await t.read_some(std::span(back).subspan(got), o);
            REQUIRE(n);
            REQUIRE(*n > 0);
            got += *n;
          }
          std::array<std::byte, 16> tail{};
          op_options o = within(5s);
          auto eof = co_await t.read_some(tail, o);
          REQUIRE(eof);
          CHECK(*eof == 0);  // the server's close_notify
        };
        co_await when_all(writer(), reader());
        CHECK(test::matches_pattern(back, 5));
        co_await t.close();
        co_await t.close();  // idempotent
        CHECK_FALSE(t.is_open());
      };
      co_await when_all(server(), client());
    }());
  }

  TEST_CASE("a read from a silent peer ends at its deadline or when cancelled, and the stream lives on") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    const auto id = identity();
    auto server_ctx = server_context(id);
    auto client_ctx = client_context({.ca_pem = id.certificate_pem});
    f.run([&]() -> task<void> {
      std::unique_ptr<tls_stream> server_side;
      auto server = [&]() -> task<void> { server_side = co_await accept_tls(listener, server_ctx); };
      std::unique_ptr<tls_stream> client_side;
      auto client = [&]() -> task<void> {
        auto s = co_await connect_tls(names, port_of(listener), client_ctx);
        REQUIRE_MESSAGE(s, (s ? "" : s.error().describe()));
        client_side = std::move(*s);
      };
      co_await when_all(server(), client());
      std::array<std::byte, 64> buf{};
      // 1. A deadline.
      auto start = steady_clock::now();
      op_options short_wait = within(100ms);
      auto timed_out = co_await client_side->read_some(buf, short_wait);
      REQUIRE_FALSE(timed_out);
      CHECK(timed_out.error() == std::errc::timed_out);
      CHECK(steady_clock::now() - start >= 100ms);
      // 2. An explicit cancel while the read waits.
      cancel_source cancel;
      auto reader = [&]() -> task<void> {
        op_options o{.deadline = steady_clock::now() + 5s, .cancel = &cancel};
        auto n = co_await client_side->read_some(buf, o);
        REQUIRE_FALSE(n);
        CHECK(n.error() == std::errc::operation_canceled);
      };
      auto canceller = [&]() -> task<void> {
        CHECK(cancel.request_cancel() == 1);
        co_return;
      };
      co_await when_all(reader(), canceller());
      // 3. Neither broke the stream: the next bytes still arrive intact.
      const std::string hello = "still here";
      op_options o = within(5s);
      auto w = co_await server_side->write_all(std::as_bytes(std::span(hello)), o);
      REQUIRE(w);
      auto n = co_await client_side->read_some(buf, o);
      REQUIRE(n);
      CHECK(std::string(reinterpret_cast<const char*>(buf.data()), *n) == hello);
      CHECK(client_side->last_error().empty());
      co_await client_side->close();
      co_await server_side->close();
    }());
  }

  TEST_CASE("an expired certificate is rejected") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    const auto expired = identity({.valid_from = -48h, .valid_for = 24h});
    auto server_ctx = server_context(expired);
    auto client_ctx = client_context({.ca_pem = expired.certificate_pem});
    f.run([&]() -> task<void> {
      auto server = [&]() -> task<void> {
        auto fd = co_await op::accept(listener.fd.get());
        REQUIRE(fd);
        std::unique_ptr<transport> below = std::make_unique<tcp_stream>(*fd, "client");
        op_options o = within(5s);
        auto s = co_await tls_stream::accept(std::move(below), server_ctx, o);
        CHECK_FALSE(s);  // the client aborts with an alert
      };
      auto client = [&]() -> task<void> {
        auto s = co_await connect_tls(names, port_of(listener), client_ctx);
        REQUIRE_FALSE(s);
        CHECK(s.error().kind == error_kind::tls);
        CHECK(contains(s.error().message, "certificate has expired"));
      };
      co_await when_all(server(), client());
    }());
  }

  TEST_CASE("a server that accepts TCP and never speaks hits the handshake deadline") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;  // the kernel completes the TCP handshake; nobody answers
    auto ctx = client_context({});
    f.run([&]() -> task<void> {
      auto start = steady_clock::now();
      auto s = co_await connect_tls(names, port_of(listener), ctx, "127.0.0.1", within(150ms));
      auto took = steady_clock::now() - start;
      REQUIRE_FALSE(s);
      CHECK(s.error().kind == error_kind::timeout);
      CHECK(contains(s.error().message, "TLS handshake with 127.0.0.1"));
      CHECK(took >= 150ms);
      CHECK(took < 5s);
    }());
  }

  TEST_CASE("the context's handshake timeout applies when the caller gives no deadline") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    auto ctx = client_context({.handshake_timeout = 100ms});
    f.run([&]() -> task<void> {
      auto s = co_await connect_tls(names, port_of(listener), ctx);
      REQUIRE_FALSE(s);
      CHECK(s.error().kind == error_kind::timeout);
    }());
  }

  TEST_CASE("a server that stops mid-body gives an error, with or without close_notify") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    const auto id = identity();
    auto server_ctx = server_context(id);
    auto client_ctx = client_context({.ca_pem = id.certificate_pem, .alpn = {"http/1.1"}});
    bool polite = false;
    SUBCASE("close_notify, then EOF") { polite = true; }
    SUBCASE("TCP EOF without close_notify (truncation)") { polite = false; }
    f.run([&]() -> task<void> {
      auto server = [&]() -> task<void> {
        int raw_fd = -1;
        auto s = co_await accept_tls(listener, server_ctx, &raw_fd);
        std::array<std::byte, 4096> req{};
        op_options o = within(5s);
        auto n = co_await s->read_some(req, o);
        REQUIRE(n);
        std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + std::string(70000, 'x');
        auto w = co_await s->write_all(std::as_bytes(std::span(reply)), o);
        REQUIRE(w);
        if (polite) co_await s->close();
        else ::shutdown(raw_fd, SHUT_RDWR);  // the socket goes away under TLS's feet
      };
      auto client = [&]() -> task<void> {
        auto s = co_await connect_tls(names, port_of(listener), client_ctx);
        REQUIRE_MESSAGE(s, (s ? "" : s.error().describe()));
        tls_stream* tls = s->get();
        h1_connection c(std::move(*s), "127.0.0.1");
        std::vector<std::byte> dest(100000);
        const request req{.target = "/o"};
        auto r = co_await c.send(req, dest);
        REQUIRE_FALSE(r);
        INFO(r.error().describe());
        CHECK(r.error().kind == error_kind::transport);
        CHECK(r.error().retryable);
        if (polite) {
          CHECK(contains(r.error().message, "after 70000 of 100000 bytes"));
          CHECK(tls->last_error().empty());
        } else {
          CHECK(r.error().offset == 70000);
          CHECK(contains(tls->last_error(), "without close_notify"));
          CHECK(contains(tls->last_error(), "unexpected eof while reading"));
        }
        co_await c.close();
      };
      co_await when_all(server(), client());
    }());
  }

  TEST_CASE("a plaintext HTTP server is a clear TLS error, not a hang") {
    test::nginx_fixture nginx;  // plain HTTP
    reactor_fixture f;
    resolver names;
    auto ctx = client_context({});
    f.run([&]() -> task<void> {
      auto s = co_await connect_tls(names, nginx.port(), ctx, "127.0.0.1", within(5s));
      REQUIRE_FALSE(s);
      INFO(s.error().describe());
      CHECK(s.error().kind == error_kind::tls);
      CHECK(contains(s.error().message, "TLS handshake with 127.0.0.1"));
    }());
  }

  TEST_CASE("a context refuses the wrong side and bad settings") {
    auto missing = tls_context::server({.certificate_file = "/nonexistent/cert.pem",
                                        .private_key_file = "/nonexistent/key.pem"});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind == error_kind::tls);
    CHECK(contains(missing.error().message, "/nonexistent/cert.pem"));
    auto bad_alpn = tls_context::client({.alpn = {""}});
    REQUIRE_FALSE(bad_alpn);
    CHECK(bad_alpn.error().kind == error_kind::invalid_argument);
    auto bad_ca = tls_context::client({.ca_file = "/nonexistent/ca.pem"});
    REQUIRE_FALSE(bad_ca);
    CHECK(contains(bad_ca.error().message, "/nonexistent/ca.pem"));

    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    auto server_ctx = server_context(identity());
    f.run([&]() -> task<void> {
      auto s = co_await connect_tls(names, port_of(listener), server_ctx);
      REQUIRE_FALSE(s);
      CHECK(s.error().kind == error_kind::invalid_argument);
    }());
  }
}

TEST_SUITE("self_signed_cert") {
  TEST_CASE("a made certificate carries the requested names and loads as a server identity") {
    auto id = identity({.dns_names = {"localhost", "fake-gcs.test"}, .ip_addresses = {"127.0.0.1"}});
    CHECK(contains(id.certificate_pem, "-----BEGIN CERTIFICATE-----"));
    CHECK(contains(id.private_key_pem, "-----BEGIN PRIVATE KEY-----"));
    CHECK(tls_context::server({.certificate_pem = id.certificate_pem,
                               .private_key_pem = id.private_key_pem}).has_value());
    // A key from another certificate does not match.
    auto other = identity();
    auto mismatched = tls_context::server({.certificate_pem = id.certificate_pem,
                                           .private_key_pem = other.private_key_pem});
    REQUIRE_FALSE(mismatched);
    INFO(mismatched.error().message);
    CHECK(contains(mismatched.error().message, "values mismatch"));
    auto bad_ip = make_self_signed_certificate({.ip_addresses = {"not-an-ip"}});
    CHECK_FALSE(bad_ip);
  }
}
