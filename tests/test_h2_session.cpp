#include <doctest/doctest.h>

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "http/h2_session.hpp"
#include "http/tcp_stream.hpp"
#include "runtime/event.hpp"
#include "runtime/ops.hpp"
#include "runtime/scheduling.hpp"
#include "runtime/when_all.hpp"
#include "nghttpd_fixture.hpp"
#include "nginx_fixture.hpp"
#include "test_support.hpp"

using namespace ringfetch;
using namespace ringfetch::http;
using namespace std::chrono_literals;
using test::reactor_fixture;

// Requests are named locals, never braced temporaries inside `co_await s->send({...})`: GCC 12
// destroys such a temporary twice.

namespace {

constexpr std::size_t MiB = 1 << 20;

task<std::unique_ptr<h2_session>> connect_h2(resolver& names, std::uint16_t port,
                                             h2_options options = {}) {
  auto t = co_await tcp_stream::connect(names, "127.0.0.1", port);
  REQUIRE(t);
  auto s = co_await h2_session::start(std::move(*t), "127.0.0.1:" + std::to_string(port), options);
  if (!s) FAIL(s.error().describe());
  co_return std::move(*s);
}

// Built with append: GCC 12 warns falsely (-Wrestrict) on `"f" + std::to_string(i)`.
std::string numbered(std::string prefix, std::size_t i) {
  prefix.append(std::to_string(i));
  return prefix;
}

bool contains(const std::string& text, std::string_view needle) {
  return text.find(needle) != std::string::npos;
}

// One ranged (or whole) read into its own buffer; checks the bytes against the pattern.
struct part {
  std::uint64_t first = 0;
  std::uint64_t size = 0;
  std::vector<std::byte> dest{};
  std::optional<result<response>> outcome{};
};

task<void> read_part(h2_session& s, std::string target, part& p, bool ranged,
                     std::size_t& max_open) {
  p.dest.resize(p.size);
  request req{.target = std::move(target)};
  if (ranged) req.range = byte_range{p.first, p.first + p.size - 1};
  max_open = std::max(max_open, s.open_streams());
  auto r = co_await s.send(req, p.dest);
  max_open = std::max(max_open, s.open_streams());
  p.outcome.emplace(std::move(r));
}

// ---- a raw HTTP/2 peer for hostile-server tests -------------------------------------------------

std::vector<std::byte> frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
                             std::span<const std::byte> payload) {
  std::vector<std::byte> f(9 + payload.size());
  const std::size_t n = payload.size();
  f[0] = std::byte(n >> 16);
  f[1] = std::byte(n >> 8);
  f[2] = std::byte(n);
  f[3] = std::byte(type);
  f[4] = std::byte(flags);
  f[5] = std::byte((stream >> 24) & 0x7f);
  f[6] = std::byte(stream >> 16);
  f[7] = std::byte(stream >> 8);
  f[8] = std::byte(stream);
  if (n > 0) std::memcpy(f.data() + 9, payload.data(), n);
  return f;
}

std::vector<std::byte> bytes(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(std::byte(b));
  return out;
}

constexpr std::uint8_t DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PING = 6, GOAWAY = 7,
                       WINDOW_UPDATE = 8;
constexpr std::uint8_t END_STREAM = 1, END_HEADERS = 4, ACK = 1;

// HPACK by hand: ":status" from the static table, content-length as a literal without indexing.
std::vector<std::byte> response_headers(int status, std::optional<std::size_t> content_length) {
  std::vector<std::byte> block;
  block.push_back(std::byte(status == 200 ? 0x88 : status == 404 ? 0x8d : 0x88));
  if (content_length) {
    std::string v = std::to_string(*content_length);
    block.push_back(std::byte(0x0f));  // literal, indexed name 28 (content-length): 15 + 13
    block.push_back(std::byte(0x0d));
    block.push_back(std::byte(v.size()));
    for (char c : v) block.push_back(std::byte(c));
  }
  return block;
}

std::vector<std::byte> u32(std::uint32_t v) {
  return bytes({int(v >> 24), int((v >> 16) & 0xff), int((v >> 8) & 0xff), int(v & 0xff)});
}

std::vector<std::byte> concat(std::initializer_list<std::vector<std::byte>> parts) {
  std::vector<std::byte> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

struct client_frame {
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::uint32_t stream = 0;
  std::vector<std::byte> payload;
};

// Reads the client's preface and frames off an accepted socket.
struct raw_peer {
  test::unique_fd conn;
  std::vector<std::byte> in;
  std::size_t used = 0;
  bool preface_seen = false;

  task<bool> fill() {
    std::array<std::byte, 16384> buf{};
    auto n = co_await op::recv(conn.get(), buf, within(5s));
    if (!n || *n == 0) co_return false;
    in.insert(in.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
    co_return true;
  }
  // Next client frame, or nullopt when the client is gone.
  task<std::optional<client_frame>> next() {
    if (!preface_seen) {
      while (in.size() < 24)
        if (!co_await fill()) co_return std::nullopt;
      used = 24;
      preface_seen = true;
    }
    while (in.size() - used < 9)
      if (!co_await fill()) co_return std::nullopt;
    const auto* h = reinterpret_cast<const unsigned char*>(in.data() + used);
    const std::size_t len = (std::size_t(h[0]) << 16) | (std::size_t(h[1]) << 8) | h[2];
    while (in.size() - used < 9 + len)
      if (!co_await fill()) co_return std::nullopt;
    client_frame f;
    f.type = h[3];
    f.flags = h[4];
    f.stream = ((std::uint32_t(h[5]) & 0x7f) << 24) | (std::uint32_t(h[6]) << 16) |
               (std::uint32_t(h[7]) << 8) | h[8];
    f.payload.assign(in.begin() + static_cast<std::ptrdiff_t>(used + 9),
                     in.begin() + static_cast<std::ptrdiff_t>(used + 9 + len));
    used += 9 + len;
    co_return f;
  }
  // Skips frames until the HEADERS of `count` requests have arrived; returns their stream ids.
  task<std::vector<std::uint32_t>> requests(std::size_t count) {
    std::vector<std::uint32_t> ids;
    while (ids.size() < count) {
      auto f = co_await next();
      if (!f) break;
      if (f->type == HEADERS) ids.push_back(f->stream);
    }
    co_return ids;
  }
  task<bool> send(std::span<const std::byte> data) {
    auto s = co_await op::send(conn.get(), data, within(5s));
    co_return static_cast<bool>(s);
  }
};

task<raw_peer> accept_peer(test::tcp_listener& listener) {
  auto fd = co_await op::accept(listener.fd.get(), nullptr, within(5s));
  REQUIRE(fd);
  raw_peer p;
  p.conn = test::unique_fd(*fd);
  co_return p;
}

const std::vector<std::byte> server_settings = frame(SETTINGS, 0, 0, {});
const std::vector<std::byte> settings_ack = frame(SETTINGS, ACK, 0, {});

task<result<std::unique_ptr<h2_session>>> start_h2(resolver& names, const test::tcp_listener& l,
                                                   h2_options options = {}) {
  auto t = co_await tcp_stream::connect(names, "127.0.0.1", ntohs(l.addr.sin_port));
  REQUIRE(t);
  co_return co_await h2_session::start(std::move(*t), "127.0.0.1", options);
}

}  // namespace

TEST_SUITE("h2_session against nghttpd") {
  TEST_CASE("a whole object is byte-exact, and 404 bodies are kept aside on the same session") {
    test::nghttpd_fixture server;
    const std::size_t size = 48 * MiB + 12345;
    server.write_file("obj.bin", size, 7);
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      auto s = co_await connect_h2(names, server.port());
      std::vector<std::byte> whole(size);
      const request req{.target = "/obj.bin"};
      auto r = co_await s->send(req, whole);
      REQUIRE(r);
      CHECK(r->status == 200);
      CHECK(r->body_bytes == size);
      CHECK(test::matches_pattern(whole, 7));
      CHECK(s->reusable());

      std::vector<std::byte> dest(64, std::byte{0x11});
      const request missing_req{.target = "/nope.bin"};
      auto missing = co_await s->send(missing_req, dest);
      REQUIRE(missing);
      CHECK(missing->status == 404);
      CHECK(missing->body_bytes == 0);
      CHECK(contains(missing->error_body, "404"));
      CHECK(dest[0] == std::byte{0x11});
      CHECK(s->reusable());
      co_await s->close();
      CHECK_FALSE(s->reusable());
    }());
  }

  TEST_CASE("many concurrent streams respect the server's stream limit and all bytes are exact") {
    test::nghttpd_fixture server({.max_concurrent_streams = 8});
    constexpr std::size_t files = 128;
    for (std::size_t i = 0; i < files; ++i)
      server.write_file(numbered("f", i), 100'000 + i * 977, i * 31);
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      auto s = co_await connect_h2(names, server.port());
      CHECK(s->stream_limit() == 8);
      std::vector<part> parts(files);
      std::size_t max_open = 0;
      std::vector<task<void>> reads;
      for (std::size_t i = 0; i < files; ++i) {
        parts[i].size = 100'000 + i * 977;
        reads.push_back(read_part(*s, numbered("/f", i), parts[i], false, max_open));
      }
      co_await when_all(std::move(reads));
      CHECK(max_open <= 8);
      for (std::size_t i = 0; i < files; ++i) {
        CAPTURE(i);
        REQUIRE(parts[i].outcome->has_value());
        CHECK((*parts[i].outcome)->status == 200);
        CHECK((*parts[i].outcome)->body_bytes == parts[i].size);
        CHECK(test::matches_pattern(parts[i].dest, i * 31));
      }
      CHECK(s->open_streams() == 0);
      CHECK(s->available_streams() == 8);
      co_await s->close();
    }());
  }

  TEST_CASE("a body larger than its destination fails that stream only") {
    test::nghttpd_fixture server;
    server.write_file("big.bin", 1000, 0);
    server.write_file("ok.bin", 5 * MiB + 3, 5);
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      auto s = co_await connect_h2(names, server.port());
      std::vector<std::byte> small(999);
      std::vector<std::byte> ok(5 * MiB + 3);
      const request big_req{.target = "/big.bin"};
      const request ok_req{.target = "/ok.bin"};
      auto [big, fine] = co_await when_all(s->send(big_req, small), s->send(ok_req, ok));
      REQUIRE_FALSE(big);
      CHECK(big.error().kind == error_kind::invalid_argument);
      CHECK(contains(big.error().message, "larger than the destination (999 bytes)"));
      REQUIRE(fine);
      CHECK(test::matches_pattern(ok, 5));
      CHECK(s->reusable());
      auto again = co_await s->send(ok_req, ok);
      CHECK(again);
      co_await s->close();
    }());
  }

  TEST_CASE("a server killed mid-body fails every open stream, nothing hangs") {
    test::nghttpd_fixture server;
    server.write_file("a.bin", 256 * MiB, 0);
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      auto s = co_await connect_h2(names, server.port(), {.idle_timeout = 10'000ms});
      std::vector<part> parts(4);
      std::size_t max_open = 0;
      std::vector<task<void>> reads;
      for (auto& p : parts) {
        p.size = 256 * MiB;
        reads.push_back(read_part(*s, "/a.bin", p, false, max_open));
      }
      auto killer = [&]() -> task<void> {
        // Once the first MiB of some stream has landed, the server dies.
        const auto deadline = steady_clock::now() + 10s;
        auto landed = [&] {
          for (auto& p : parts)
            if (p.dest.size() > MiB && test::matches_pattern(std::span(p.dest).subspan(MiB - 64, 64), MiB - 64))
              return true;
          return false;
        };
        while (!landed() && steady_clock::now() < deadline) co_await yield();
        server.kill();
      };
      reads.push_back(killer());
      co_await when_all(std::move(reads));
      for (auto& p : parts) {
        REQUIRE(p.outcome);
        REQUIRE_FALSE(p.outcome->has_value());
        const error& e = p.outcome->error();
        CAPTURE(e.describe());
        CHECK((e.kind == error_kind::transport || e.kind == error_kind::protocol));
        CHECK(e.offset < 256 * MiB);
        CHECK(contains(e.message, "body bytes"));
      }
      CHECK_FALSE(s->reusable());
      std::vector<std::byte> dest(10);
      const request late_req{.target = "/a.bin"};
      auto late = co_await s->send(late_req, dest);
      CHECK_FALSE(late);
      co_await s->close();
    }());
  }
}

TEST_SUITE("h2_session against nginx h2c") {
  TEST_CASE("whole and ranged reads are byte-exact; 404 and 416 are statuses") {
    test::nginx_fixture nginx({.h2c = true});
    const std::size_t size = 48 * MiB + 12345;
    nginx.write_file("obj.bin", size, 3);
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      auto s = co_await connect_h2(names, nginx.port());
      std::vector<std::byte> whole(size);
      const request req{.target = "/obj.bin"};
      auto r = co_await s->send(req, whole);
      REQUIRE(r);
      CHECK(r->status == 200);
      CHECK(r->body_bytes == size);
      CHECK(test::matches_pattern(whole, 3));
      struct span_case { std::uint64_t first, last; };
      for (auto rc : {span_case{0, 0}, span_case{1, 4096}, span_case{size - 1, size - 1},
                      span_case{7 * MiB - 3, 19 * MiB + 5}, span_case{size - 1000, size - 1}}) {
        CAPTURE(rc.first);
        std::vector<std::byte> p(rc.last - rc.first + 1);
        const request p_req{.target = "/obj.bin", .range = byte_range{rc.first, rc.last}};
        auto got = co_await s->send(p_req, p);
        REQUIRE(got);
        CHECK(got->status == 206);
        CHECK(got->body_bytes == p.size());
        REQUIRE(got->header("content-range"));
        CHECK(*got->header("content-range") == "bytes " + std::to_string(rc.first) + "-" +
                                                   std::to_string(rc.last) + "/" + std::to_string(size));
        CHECK(test::matches_pattern(p, 3 + rc.first));
      }
      std::vector<std::byte> dest(64, std::byte{0x11});
      const request missing_req{.target = "/nope.bin"};
      auto missing = co_await s->send(missing_req, dest);
      REQUIRE(missing);
      CHECK(missing->status == 404);
      CHECK(contains(missing->error_body, "404 Not Found"));
      const request past_req{.target = "/obj.bin", .range = byte_range{size, size + 10}};
      auto past = co_await s->send(past_req, dest);
      REQUIRE(past);
      CHECK(past->status == 416);
      CHECK(dest[0] == std::byte{0x11});
      CHECK(s->reusable());
      co_await s->close();
    }());
  }

  TEST_CASE("192 concurrent ranges over one connection, 16 streams at a time, are byte-exact") {
    test::nginx_fixture nginx({.h2c = true, .h2_max_concurrent_streams = 16});
    const std::size_t size = 96 * MiB + 4321;
    nginx.write_file("obj.bin", size, 11);
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      auto s = co_await connect_h2(names, nginx.port());
      CHECK(s->stream_limit() == 16);
      constexpr std::size_t count = 192;
      const std::size_t step = size / count;
      std::vector<part> parts(count);
      std::size_t max_open = 0;
      std::vector<task<void>> reads;
      for (std::size_t i = 0; i < count; ++i) {
        parts[i].first = i * step;
        parts[i].size = i + 1 == count ? size - parts[i].first : step;
        reads.push_back(read_part(*s, "/obj.bin", parts[i], true, max_open));
      }
      co_await when_all(std::move(reads));
      CHECK(max_open <= 16);
      for (std::size_t i = 0; i < count; ++i) {
        CAPTURE(i);
        REQUIRE(parts[i].outcome->has_value());
        CHECK((*parts[i].outcome)->status == 206);
        CHECK(test::matches_pattern(parts[i].dest, 11 + parts[i].first));
      }
      co_await s->close();
    }());
  }
}

TEST_SUITE("h2_session against a hostile server") {
  TEST_CASE("an HTTP/1.1 answer to the preface is a clear protocol error from start()") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    f.run([&]() -> task<void> {
      auto server = [&]() -> task<void> {
        auto p = co_await accept_peer(listener);
        (void)co_await p.fill();
        std::string reply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        (void)co_await p.send(std::as_bytes(std::span(reply)));
      };
      auto client = [&]() -> task<void> {
        auto s = co_await start_h2(names, listener);
        REQUIRE_FALSE(s);
        CAPTURE(s.error().describe());
        CHECK(s.error().kind == error_kind::protocol);
      };
      co_await when_all(server(), client());
    }());
  }

  TEST_CASE("a server that closes at once, or stays silent, fails start() in time") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    f.run([&]() -> task<void> {
      auto closer = [&]() -> task<void> { auto p = co_await accept_peer(listener); };
      auto client = [&]() -> task<void> {
        auto s = co_await start_h2(names, listener);
        REQUIRE_FALSE(s);
        CAPTURE(s.error().describe());
        CHECK(s.error().kind == error_kind::transport);
        CHECK(s.error().retryable);
      };
      co_await when_all(closer(), client());

      auto silent = [&]() -> task<raw_peer> { co_return co_await accept_peer(listener); };
      auto slow_client = [&]() -> task<void> {
        auto s = co_await start_h2(names, listener, {.settings_timeout = 100ms});
        REQUIRE_FALSE(s);
        CHECK(s.error().kind == error_kind::timeout);
      };
      (void)co_await when_all(silent(), slow_client());
    }());
  }

  TEST_CASE("RST_STREAM names its code and fails that stream only; garbage frames fail the session") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    f.run([&]() -> task<void> {
      auto server = [&]() -> task<void> {
        auto p = co_await accept_peer(listener);
        (void)co_await p.send(server_settings);
        auto ids = co_await p.requests(2);
        REQUIRE(ids.size() == 2);
        auto reply = concat({settings_ack, frame(RST_STREAM, 0, ids[0], u32(0xb)),
                             frame(HEADERS, END_HEADERS, ids[1], response_headers(200, 5)),
                             frame(DATA, END_STREAM, ids[1], bytes({'h', 'e', 'l', 'l', 'o'}))});
        (void)co_await p.send(reply);
        auto third = co_await p.requests(1);
        REQUIRE(third.size() == 1);
        // A frame header claiming 16 MiB, far above our SETTINGS_MAX_FRAME_SIZE.
        auto garbage = bytes({0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 'x', 'y'});
        (void)co_await p.send(garbage);
        while (co_await p.next()) {}
      };
      auto client = [&]() -> task<void> {
        auto s = co_await start_h2(names, listener);
        REQUIRE(s);
        std::vector<std::byte> a(10), b(10), c(10);
        const request req{.target = "/x"};
        auto [ra, rb] = co_await when_all((*s)->send(req, a), (*s)->send(req, b));
        REQUIRE_FALSE(ra);
        CHECK(ra.error().kind == error_kind::protocol);
        CHECK(contains(ra.error().message, "ENHANCE_YOUR_CALM"));
        REQUIRE(rb);
        CHECK(rb->body_bytes == 5);
        CHECK(std::memcmp(b.data(), "hello", 5) == 0);
        CHECK((*s)->reusable());
        auto rc = co_await (*s)->send(req, c);
        REQUIRE_FALSE(rc);
        CAPTURE(rc.error().describe());
        CHECK(rc.error().kind == error_kind::protocol);
        CHECK_FALSE((*s)->reusable());
        co_await (*s)->close();
      };
      co_await when_all(server(), client());
    }());
  }

  TEST_CASE("a body shorter than its content-length is an error saying how many bytes came") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    f.run([&]() -> task<void> {
      auto server = [&]() -> task<void> {
        auto p = co_await accept_peer(listener);
        (void)co_await p.send(server_settings);
        auto ids = co_await p.requests(1);
        REQUIRE(ids.size() == 1);
        auto reply = concat({settings_ack, frame(HEADERS, END_HEADERS, ids[0], response_headers(200, 10)),
                             frame(DATA, END_STREAM, ids[0], bytes({1, 2, 3, 4, 5}))});
        (void)co_await p.send(reply);
        while (co_await p.next()) {}
      };
      auto client = [&]() -> task<void> {
        auto s = co_await start_h2(names, listener);
        REQUIRE(s);
        std::vector<std::byte> a(10);
        const request req{.target = "/x"};
        auto r = co_await (*s)->send(req, a);
        REQUIRE_FALSE(r);
        CAPTURE(r.error().describe());
        CHECK(contains(r.error().message, "after 5 of 10 body bytes"));
        CHECK(r.error().offset == 5);
        CHECK((*s)->reusable());
        co_await (*s)->close();
      };
      co_await when_all(server(), client());
    }());
  }

  TEST_CASE("GOAWAY fails the streams the server will not process as retryable, refuses new sends") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    f.run([&]() -> task<void> {
      auto server = [&]() -> task<void> {
        auto p = co_await accept_peer(listener);
        (void)co_await p.send(server_settings);
        auto ids = co_await p.requests(3);
        REQUIRE(ids.size() == 3);
        auto goaway = concat({u32(ids[0]), u32(0)});
        auto reply = concat({settings_ack, frame(GOAWAY, 0, 0, goaway),
                             frame(HEADERS, END_HEADERS, ids[0], response_headers(200, 3)),
                             frame(DATA, END_STREAM, ids[0], bytes({'a', 'b', 'c'}))});
        (void)co_await p.send(reply);
        while (co_await p.next()) {}
      };
      auto client = [&]() -> task<void> {
        auto s = co_await start_h2(names, listener);
        REQUIRE(s);
        std::vector<std::byte> a(10), b(10), c(10);
        const request req{.target = "/x"};
        auto [ra, rb, rc] =
            co_await when_all((*s)->send(req, a), (*s)->send(req, b), (*s)->send(req, c));
        REQUIRE(ra);
        CHECK(ra->body_bytes == 3);
        for (auto* r : {&rb, &rc}) {
          REQUIRE_FALSE(*r);
          CHECK(r->error().retryable);
          CHECK(contains(r->error().message, "going away"));
        }
        CHECK_FALSE((*s)->reusable());
        auto late = co_await (*s)->send(req, a);
        REQUIRE_FALSE(late);
        CHECK(late.error().retryable);
        CHECK(contains(late.error().message, "connection is going away"));
        co_await (*s)->close();
      };
      co_await when_all(server(), client());
    }());
  }

  TEST_CASE("PING is answered; a silent stream times out; a cancelled stream sends RST_STREAM and the session goes on") {
    reactor_fixture f;
    resolver names;
    test::tcp_listener listener;
    stream_cancel cancel;
    f.run([&]() -> task<void> {
      bool ping_acked = false;
      bool cancel_seen = false;
      auto server = [&]() -> task<void> {
        auto p = co_await accept_peer(listener);
        auto opening = concat({server_settings, frame(PING, 0, 0, bytes({1, 2, 3, 4, 5, 6, 7, 8}))});
        (void)co_await p.send(opening);
        (void)co_await p.send(settings_ack);
        while (auto fr = co_await p.next()) {
          if (fr->type == PING && (fr->flags & ACK)) ping_acked = fr->payload == bytes({1, 2, 3, 4, 5, 6, 7, 8});
          if (fr->type == RST_STREAM && fr->stream == 3 && fr->payload == u32(8)) cancel_seen = true;
          if (fr->type == HEADERS && fr->stream == 3) cancel.request_cancel();
          if (fr->type == HEADERS && fr->stream == 5) {
            auto reply = concat({frame(HEADERS, END_HEADERS, 5, response_headers(200, 2)),
                                 frame(DATA, END_STREAM, 5, bytes({'o', 'k'}))});
            (void)co_await p.send(reply);
          }
        }
      };
      auto client = [&]() -> task<void> {
        auto s = co_await start_h2(names, listener, {.first_byte_timeout = 100ms});
        REQUIRE(s);
        std::vector<std::byte> a(10);
        const request req{.target = "/x"};
        auto start = steady_clock::now();
        auto timed = co_await (*s)->send(req, a);
        REQUIRE_FALSE(timed);
        CHECK(timed.error().kind == error_kind::timeout);
        CHECK(steady_clock::now() - start >= 100ms);
        auto cancelled = co_await (*s)->send(req, a, &cancel);
        REQUIRE_FALSE(cancelled);
        CHECK(cancelled.error().kind == error_kind::cancelled);
        CHECK((*s)->reusable());
        auto after = co_await (*s)->send(req, a);  // the session goes on after a cancel
        REQUIRE(after);
        CHECK(after->body_bytes == 2);
        co_await (*s)->close();
      };
      co_await when_all(server(), client());
      CHECK(ping_acked);
      CHECK(cancel_seen);
    }());
  }
}

// ---- fuzz: mutated frame sequences over an in-memory transport ---------------------------------

namespace {

// Serves a scripted byte sequence: `opening` at once, `rest` (in the given chunks) only after the
// client has sent the HEADERS of stream `release_after`, then EOF.
class script_transport final : public transport {
 public:
  script_transport(std::vector<std::byte> opening, std::vector<std::vector<std::byte>> rest,
                   std::uint32_t release_after)
      : release_after_(release_after) {
    chunks_.push_back(std::move(opening));
    for (auto& c : rest) later_.push_back(std::move(c));
  }

  task<io_result<std::size_t>> read_some(std::span<std::byte> buffer, op_options) override {
    for (;;) {
      if (!open_) co_return errno_code(-ECANCELED);
      if (!chunks_.empty()) {
        auto& c = chunks_.front();
        const std::size_t n = std::min(buffer.size(), c.size() - at_);
        std::memcpy(buffer.data(), c.data() + at_, n);
        at_ += n;
        if (at_ == c.size()) {
          chunks_.pop_front();
          at_ = 0;
        }
        co_return n;
      }
      if (released_) co_return std::size_t{0};
      co_await changed_.wait();
      changed_.reset();
    }
  }
  task<io_result<void>> write_all(std::span<const std::byte> data, op_options) override {
    written_.insert(written_.end(), data.begin(), data.end());
    scan();
    co_return io_result<void>{};
  }
  task<void> close() override {
    open_ = false;
    changed_.set();
    co_return;
  }
  bool is_open() const noexcept override { return open_; }
  std::string peer() const override { return "script"; }

 private:
  void scan() {
    if (scanned_ == 0 && written_.size() >= 24) scanned_ = 24;
    while (scanned_ >= 24 && written_.size() - scanned_ >= 9) {
      const auto* h = reinterpret_cast<const unsigned char*>(written_.data() + scanned_);
      const std::size_t len = (std::size_t(h[0]) << 16) | (std::size_t(h[1]) << 8) | h[2];
      if (written_.size() - scanned_ < 9 + len) break;
      const std::uint32_t stream = ((std::uint32_t(h[5]) & 0x7f) << 24) |
                                   (std::uint32_t(h[6]) << 16) | (std::uint32_t(h[7]) << 8) | h[8];
      if (h[3] == HEADERS && stream == release_after_ && !released_) {
        released_ = true;
        for (auto& c : later_) chunks_.push_back(std::move(c));
        changed_.set();
      }
      scanned_ += 9 + len;
    }
  }

  std::deque<std::vector<std::byte>> chunks_;
  std::vector<std::vector<std::byte>> later_;
  std::size_t at_ = 0;
  std::vector<std::byte> written_;
  std::size_t scanned_ = 0;
  std::uint32_t release_after_;
  bool released_ = false;
  bool open_ = true;
  event changed_;
};

std::vector<std::byte> pattern_bytes(std::size_t n, std::uint64_t seed) {
  std::vector<std::byte> v(n);
  test::fill_pattern(v, seed);
  return v;
}

// The server's side of three requests (streams 1, 3, 5): 200 with length, 404, 200 without.
std::vector<std::byte> script_rest() {
  return concat({settings_ack,
                 frame(HEADERS, END_HEADERS, 1, response_headers(200, 100)),
                 frame(DATA, END_STREAM, 1, pattern_bytes(100, 0)),
                 frame(PING, 0, 0, bytes({9, 9, 9, 9, 9, 9, 9, 9})),
                 frame(HEADERS, END_HEADERS, 3, response_headers(404, std::nullopt)),
                 frame(DATA, END_STREAM, 3, bytes({'n', 'o'})),
                 frame(WINDOW_UPDATE, 0, 0, u32(1000)),
                 frame(HEADERS, END_HEADERS, 5, response_headers(200, std::nullopt)),
                 frame(DATA, 0, 5, pattern_bytes(30, 100)),
                 frame(DATA, END_STREAM, 5, pattern_bytes(34, 130)),
                 frame(GOAWAY, 0, 0, concat({u32(5), u32(0)}))});
}

void mutate(std::vector<std::byte>& b, std::mt19937_64& rng) {
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits && !b.empty(); ++i) {
    const std::size_t at = rng() % b.size();
    switch (rng() % 6) {
      case 0: b[at] ^= std::byte(1u << (rng() % 8)); break;               // flip a bit
      case 1: b[at] = std::byte(rng()); break;                            // replace a byte
      case 2: b.resize(at); break;                                        // truncate
      case 3: {                                                           // duplicate a slice
        const std::size_t n = std::min<std::size_t>(1 + rng() % 40, b.size() - at);
        std::vector<std::byte> slice(b.begin() + static_cast<std::ptrdiff_t>(at),
                                     b.begin() + static_cast<std::ptrdiff_t>(at + n));
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(rng() % b.size()), slice.begin(), slice.end());
        break;
      }
      case 4: b.erase(b.begin() + static_cast<std::ptrdiff_t>(at)); break;  // drop a byte
      case 5:                                                               // random bytes
        for (int k = 0; k < 9; ++k)
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), std::byte(rng()));
        break;
    }
  }
}

}  // namespace

TEST_SUITE("h2_session fuzz") {
  TEST_CASE("thousands of truncated and mutated frame sequences end in results or clear errors") {
    reactor_fixture f;
    std::mt19937_64 rng(20240611);
    constexpr int iterations = 3000;
    int successes = 0, failures = 0, start_failures = 0;
    f.run([&]() -> task<void> {
      for (int it = 0; it < iterations; ++it) {
        std::vector<std::byte> rest = script_rest();
        if (it > 0) mutate(rest, rng);
        // Delivered in random pieces, so frames straddle reads.
        std::vector<std::vector<std::byte>> pieces;
        for (std::size_t at = 0; at < rest.size();) {
          const std::size_t n = std::min<std::size_t>(rest.size() - at, 1 + rng() % 64);
          pieces.emplace_back(rest.begin() + static_cast<std::ptrdiff_t>(at),
                              rest.begin() + static_cast<std::ptrdiff_t>(at + n));
          at += n;
        }
        auto t = std::make_unique<script_transport>(server_settings, std::move(pieces), 5);
        h2_options o{.settings_timeout = 2s, .first_byte_timeout = 2s, .idle_timeout = 2s,
                     .receive_buffer = 4096};
        auto s = co_await h2_session::start(std::move(t), "fuzz", o);
        if (!s) {
          ++start_failures;
          CHECK(!s.error().message.empty());
          continue;
        }
        std::vector<std::byte> a(100), b(100), c(64);
        const request r1{.target = "/1"};
        const request r3{.target = "/3"};
        const request r5{.target = "/5"};
        auto [x, y, z] = co_await when_all((*s)->send(r1, a), (*s)->send(r3, b), (*s)->send(r5, c));
        for (auto* r : {&x, &y, &z}) {
          if (*r) {
            ++successes;
            CHECK((*r)->body_bytes <= 100);
          } else {
            ++failures;
            CHECK(!r->error().message.empty());
          }
        }
        if (it == 0) {  // the unmutated script must work, or the loop proves nothing
          CHECK(x);
          CHECK((x && x->status == 200 && test::matches_pattern(std::span(a).first(100), 0)));
          CHECK(y);
          CHECK((y && y->status == 404 && y->error_body == "no"));
          CHECK(z);
          CHECK((z && z->body_bytes == 64 && test::matches_pattern(c, 100)));
        }
        co_await (*s)->close();
      }
    }());
    MESSAGE("streams succeeded: ", successes, ", failed: ", failures,
            ", sessions refused at start: ", start_failures);
    CHECK(failures > 0);
  }
}

// ---- throughput (manual: --no-skip -tc='*throughput*') --------------------------------------------

TEST_SUITE("h2_session throughput") {
  TEST_CASE("1 GiB over h2c from nginx in 16 concurrent 64 MiB ranges" * doctest::skip()) {
    test::nginx_fixture nginx({.h2c = true});
    const std::size_t size = 1024 * MiB;
    // In memory (tmpfs) when the machine has one, so the disk is not what is measured.
    const bool shm = std::filesystem::is_directory("/dev/shm");
    const std::string shm_file = "/dev/shm/ringfetch-h2-throughput.bin";
    if (shm) {
      std::vector<std::byte> chunk(64 * MiB);
      std::ofstream out(shm_file, std::ios::binary);
      for (std::size_t off = 0; off < size; off += chunk.size()) {
        test::fill_pattern(chunk, off);
        out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(chunk.size()));
      }
      out.close();
      std::filesystem::create_symlink(shm_file, nginx.docroot() + "/1g.bin");
    } else {
      nginx.write_file("1g.bin", size, 0);
    }
    reactor_fixture f;
    resolver names;
    std::vector<std::byte> dest(size);
    for (int run = 0; run < 5; ++run) {
      f.run([&]() -> task<void> {
        auto s = co_await connect_h2(names, nginx.port());
        auto cpu_seconds = [] {
          rusage u{};
          ::getrusage(RUSAGE_SELF, &u);
          return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
                 double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
        };
        const double cpu_start = cpu_seconds();
        const auto start = steady_clock::now();
        std::vector<task<result<response>>> reads;
        std::vector<request> reqs(16);
        for (std::size_t i = 0; i < 16; ++i) {
          reqs[i].target = "/1g.bin";
          reqs[i].range = byte_range{i * 64 * MiB, (i + 1) * 64 * MiB - 1};
          reads.push_back(s->send(reqs[i], std::span(dest).subspan(i * 64 * MiB, 64 * MiB)));
        }
        auto results = co_await when_all(std::move(reads));
        const double secs = std::chrono::duration<double>(steady_clock::now() - start).count();
        for (auto& r : results) REQUIRE(r);
        const double cpu = cpu_seconds() - cpu_start;
        MESSAGE("run ", run, ": ", size / secs / 1e6, " MB/s, client CPU ", cpu / (size / 1e9),
                " s/GB");
        co_await s->close();
      }());
    }
    CHECK(test::matches_pattern(dest, 0));
    if (shm) std::filesystem::remove(shm_file);
  }
}
