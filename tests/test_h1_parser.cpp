#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "http/h1_parser.hpp"

using namespace ringfetch;
using namespace ringfetch::http;

namespace {

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

// Feeds `wire` in pieces of `step` bytes, as a client would, until the parser pauses or the
// input ends.
// Returns total consumed, or the error.
result<std::size_t> feed_all(h1_parser& p, std::string_view wire, std::size_t step) {
  std::size_t off = 0;
  while (off < wire.size()) {
    std::size_t n = std::min(step, wire.size() - off);
    auto r = p.feed(bytes(wire.substr(off, n)));
    if (!r) return r.error();
    off += *r;
    // Paused: at the end of a message, or after a head. After a fixed-length head the client
    // takes over; after any other head it feeds on (here without setting a destination first,
    // as if it had set it at begin()).
    const bool fixed_body = p.current() == h1_parser::phase::body &&
                            p.body_framing() == h1_parser::framing::fixed;
    if (p.current() == h1_parser::phase::complete || fixed_body) break;
    if (*r < n && p.current() != h1_parser::phase::body) break;
  }
  return off;
}

}  // namespace

TEST_SUITE("h1_parser") {
  TEST_CASE("a fixed-length response stops after the head so the body can bypass the parser") {
    for (std::size_t step : {1u, 7u, 4096u}) {
      CAPTURE(step);
      h1_parser p;
      std::string head = "HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\n"
                         "Content-Range: bytes 10-14/100\r\nX-Goog-Generation:  17 \r\n\r\n";
      std::string wire = head + "hello";
      auto n = feed_all(p, wire, step);
      REQUIRE(n);
      CHECK(*n == head.size());
      CHECK(p.current() == h1_parser::phase::body);
      CHECK(p.body_framing() == h1_parser::framing::fixed);
      CHECK(p.status() == 206);
      CHECK(p.reason() == "Partial Content");
      CHECK(p.content_length() == std::optional<std::uint64_t>(5));
      REQUIRE(p.header("x-goog-generation"));
      CHECK(*p.header("x-goog-generation") == "17");
      CHECK(p.keep_alive());
    }
  }

  TEST_CASE("a fixed-length body may also be fed through, and nothing past it is consumed") {
    h1_parser p;
    std::vector<std::byte> dest(5);
    p.set_body_destination(dest);
    std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n";
    auto n1 = p.feed(bytes(wire));
    REQUIRE(n1);
    auto n2 = p.feed(bytes(wire).subspan(*n1));
    REQUIRE(n2);
    CHECK(p.current() == h1_parser::phase::complete);
    CHECK(*n1 + *n2 == wire.size() - std::strlen("HTTP/1.1 200 OK\r\n"));
    CHECK(std::memcmp(dest.data(), "hello", 5) == 0);
  }

  TEST_CASE("a chunked body is reassembled into the destination, whatever the read sizes") {
    std::string wire =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
    for (std::size_t step : {1u, 3u, 1000u}) {
      CAPTURE(step);
      h1_parser p;
      std::vector<std::byte> dest(64);
      p.set_body_destination(dest);
      auto n = feed_all(p, wire, step);
      REQUIRE(n);
      CHECK(*n == wire.size());
      CHECK(p.current() == h1_parser::phase::complete);
      CHECK(p.body_framing() == h1_parser::framing::chunked);
      CHECK(p.body_bytes() == 16);
      CHECK(std::string(reinterpret_cast<char*>(dest.data()), 16) == "hello 0123456789");
    }
  }

  TEST_CASE("a body larger than the destination is an error, not a truncation") {
    h1_parser p;
    std::vector<std::byte> dest(4);
    p.set_body_destination(dest);
    auto n = feed_all(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 100);
    REQUIRE_FALSE(n);
    CHECK(n.error().kind == error_kind::protocol);
    CHECK(n.error().message.find("larger than the destination (4 bytes)") != std::string::npos);
  }

  TEST_CASE("interim 1xx responses are skipped; 204, 304 and HEAD responses have no body") {
    {
      h1_parser p;
      auto n = feed_all(p, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 1);
      REQUIRE(n);
      CHECK(p.status() == 204);
      CHECK(p.current() == h1_parser::phase::complete);
    }
    {
      h1_parser p;
      auto n = feed_all(p, "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", 64);
      REQUIRE(n);
      CHECK(p.current() == h1_parser::phase::complete);
    }
    {
      h1_parser p;
      p.begin(/*head_request=*/true);
      auto n = feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 123456\r\n\r\n", 64);
      REQUIRE(n);
      CHECK(p.current() == h1_parser::phase::complete);
      CHECK(p.status() == 200);
    }
  }

  TEST_CASE("a close-delimited body ends at EOF; keep-alive is off") {
    h1_parser p;
    std::vector<std::byte> dest(16);
    p.set_body_destination(dest);
    auto n = feed_all(p, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc", 64);
    REQUIRE(n);
    CHECK(p.body_framing() == h1_parser::framing::until_close);
    CHECK(p.body_bytes() == 3);
    CHECK(p.finish());
    CHECK(p.current() == h1_parser::phase::complete);
    CHECK_FALSE(p.keep_alive());
  }

  TEST_CASE("EOF in the head or mid-body says how far the response got") {
    h1_parser p;
    REQUIRE(feed_all(p, "HTTP/1.1 200 OK\r\nContent-", 64));
    auto f = p.finish();
    REQUIRE_FALSE(f);
    CHECK(f.error().message == "connection closed after 25 bytes of the response head");
    h1_parser q;
    CHECK(q.finish().error().message == "connection closed before any response byte");
  }

  TEST_CASE("oversized heads and too many headers are cut off with a clear error") {
    h1_parser p({.max_head_bytes = 1024, .max_headers = 128});
    std::string wire = "HTTP/1.1 200 OK\r\n";
    for (int i = 0; i < 100; ++i) {
      wire += "X-Pad-";
      wire += std::to_string(i);
      wire += ": " + std::string(40, 'x') + "\r\n";
    }
    auto n = feed_all(p, wire, 4096);
    REQUIRE_FALSE(n);
    CHECK(n.error().message.find("response head larger than 1024 bytes") != std::string::npos);

    h1_parser q({.max_head_bytes = 1 << 20, .max_headers = 8});
    std::string many = "HTTP/1.1 200 OK\r\n";
    for (int i = 0; i < 9; ++i) {
      many += 'A';
      many += std::to_string(i);
      many += ": b\r\n";
    }
    auto m = feed_all(q, many, 4096);
    REQUIRE_FALSE(m);
    CHECK(m.error().message.find("more than 8 header fields") != std::string::npos);
  }

  TEST_CASE("malformed responses are protocol errors naming the problem") {
    for (const char* bad : {"HTTP/9.9 200 OK\r\n\r\n", "HTTZ/1.1 200 OK\r\n\r\n",
                            "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n"}) {
      CAPTURE(bad);
      h1_parser p;
      std::vector<std::byte> dest(16);
      p.set_body_destination(dest);
      auto n = feed_all(p, bad, 4096);
      REQUIRE_FALSE(n);
      CHECK(n.error().kind == error_kind::protocol);
      CHECK(n.error().message.rfind("malformed HTTP/1.1 response: ", 0) == 0);
    }
  }

  TEST_CASE("random and truncated garbage never crashes or hangs the parser") {
    std::mt19937_64 rng(12345);
    const std::string valid =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n4\r\nwiki\r\n0\r\n\r\n";
    std::size_t errors = 0, completes = 0;
    for (int iter = 0; iter < 20'000; ++iter) {
      std::string wire = valid;
      int mutations = 1 + static_cast<int>(rng() % 4);
      for (int m = 0; m < mutations; ++m) {
        std::size_t at = rng() % wire.size();
        switch (rng() % 3) {
          case 0: wire[at] = static_cast<char>(rng()); break;
          case 1: wire.erase(at, 1 + rng() % 8); break;
          case 2: wire.insert(at, std::string(1 + rng() % 8, static_cast<char>(rng()))); break;
        }
        if (wire.empty()) wire.push_back('H');
      }
      wire.resize(rng() % (wire.size() + 1));  // and truncate anywhere
      h1_parser p({.max_head_bytes = 4096, .max_headers = 16});
      std::vector<std::byte> dest(64);
      p.set_body_destination(dest);
      auto n = feed_all(p, wire, 1 + rng() % 16);
      if (!n) {
        ++errors;
        continue;
      }
      if (p.current() == h1_parser::phase::complete) ++completes;
      else if (!p.finish()) ++errors;
      CHECK(p.body_bytes() <= dest.size());
    }
    MESSAGE(errors << " inputs refused, " << completes << " completed");
    CHECK(errors > 0);
  }
}
