#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/h1_request_parser.hpp"

using namespace ringfetch;
using namespace ringfetch::http;

namespace {

std::span<const std::byte> bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Feeds `wire` in pieces of at most `step` bytes until a request completes or fails; returns the
// bytes consumed, or the error.
result<std::size_t> parse(h1_request_parser& p, std::string_view wire, std::size_t step) {
  std::size_t at = 0;
  while (at < wire.size() && p.current() != h1_request_parser::phase::complete) {
    auto n = p.feed(bytes(wire.substr(at, std::min(step, wire.size() - at))));
    if (!n) return n.error();
    if (*n == 0) break;
    at += *n;
  }
  return at;
}

std::string body_text(h1_request_parser& p) {
  return {reinterpret_cast<const char*>(p.body().data()), p.body().size()};
}

// A small deterministic generator (xorshift64*): the same mutations on every run.
struct prng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : next() % n; }
};

}  // namespace

TEST_SUITE("h1_request_parser") {
  TEST_CASE("a GET is parsed whatever the read sizes, names lower case, values trimmed") {
    const std::string_view wire =
        "GET /download/storage/v1/b/b/o/x%2Fy?alt=media HTTP/1.1\r\nHost: h\r\n"
        "Range:  bytes=0-9 \r\nX-Mixed-Case: v\r\n\r\n";
    for (std::size_t step : {std::size_t{1}, std::size_t{3}, std::size_t{7}, wire.size()}) {
      CAPTURE(step);
      h1_request_parser p;
      auto n = parse(p, wire, step);
      REQUIRE(n);
      CHECK(*n == wire.size());
      REQUIRE(p.current() == h1_request_parser::phase::complete);
      CHECK(p.method() == "GET");
      CHECK(p.target() == "/download/storage/v1/b/b/o/x%2Fy?alt=media");
      REQUIRE(p.header("range"));
      CHECK(*p.header("range") == "bytes=0-9");
      REQUIRE(p.header("x-mixed-case"));
      CHECK(p.keep_alive());
      CHECK(p.body().empty());
    }
  }

  TEST_CASE("pipelined requests: the parser stops at the end of each one") {
    const std::string first = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
    const std::string second = "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    const std::string third = "HEAD /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    const std::string wire = first + second + third;
    h1_request_parser p;
    auto a = p.feed(bytes(wire));
    REQUIRE(a);
    CHECK(*a == first.size());
    CHECK(p.target() == "/a");
    CHECK(p.feed(bytes(wire).subspan(*a)).value() == 0);  // complete: takes nothing more
    p.begin();
    auto b = p.feed(bytes(wire).subspan(*a));
    REQUIRE(b);
    CHECK(*b == second.size());
    CHECK(p.method() == "POST");
    CHECK(body_text(p) == "hello");
    p.begin();
    auto c = p.feed(bytes(wire).subspan(*a + *b));
    REQUIRE(c);
    CHECK(*c == third.size());
    CHECK(p.method() == "HEAD");
    CHECK_FALSE(p.keep_alive());
  }

  TEST_CASE("a chunked request body is reassembled") {
    const std::string_view wire =
        "PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n";
    for (std::size_t step : {std::size_t{1}, std::size_t{5}, wire.size()}) {
      h1_request_parser p;
      auto n = parse(p, wire, step);
      REQUIRE(n);
      CHECK(*n == wire.size());
      CHECK(body_text(p) == "hello, world");
    }
  }

  TEST_CASE("HTTP/1.0 closes unless it asks for keep-alive; Expect: 100-continue is seen") {
    h1_request_parser p;
    REQUIRE(parse(p, "GET / HTTP/1.0\r\n\r\n", 64));
    CHECK_FALSE(p.keep_alive());
    CHECK(p.version_minor() == 0);
    p.begin();
    REQUIRE(parse(p, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 64));
    CHECK(p.keep_alive());
    p.begin();
    const std::string_view expect =
        "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    auto n = p.feed(bytes(expect));
    REQUIRE(n);
    CHECK(p.current() == h1_request_parser::phase::body);
    CHECK(p.expects_continue());
  }

  TEST_CASE("limits: head bytes, header count and body size give 431 and 413") {
    SUBCASE("head bytes") {
      h1_request_parser p({.max_head_bytes = 100});
      const std::string wire = "GET /" + std::string(200, 'a') + " HTTP/1.1\r\n\r\n";
      auto n = parse(p, wire, 16);
      REQUIRE_FALSE(n);
      CHECK(n.error().http_status == 431);
      CHECK(n.error().kind == error_kind::protocol);
    }
    SUBCASE("header count") {
      h1_request_parser p({.max_headers = 4});
      std::string wire = "GET / HTTP/1.1\r\n";
      for (int i = 0; i < 10; ++i) wire += "X-" + std::to_string(i) + ": v\r\n";
      wire += "\r\n";
      auto n = parse(p, wire, wire.size());
      REQUIRE_FALSE(n);
      CHECK(n.error().http_status == 431);
      CHECK(n.error().message.find("more than 4 header fields") != std::string::npos);
    }
    SUBCASE("declared body") {
      h1_request_parser p({.max_body_bytes = 10});
      auto n = parse(p, "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 64);
      REQUIRE_FALSE(n);
      CHECK(n.error().http_status == 413);
    }
    SUBCASE("chunked body growing past the limit") {
      h1_request_parser p({.max_body_bytes = 10});
      auto n = parse(p, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n", 64);
      REQUIRE_FALSE(n);
      CHECK(n.error().http_status == 413);
    }
  }

  TEST_CASE("garbage is a 400 protocol error that names the position, and the parser stays failed") {
    h1_request_parser p;
    auto n = p.feed(bytes("\x16\x03\x01\x02\x00 not http\r\n\r\n"));
    REQUIRE_FALSE(n);
    CHECK(n.error().http_status == 400);
    CHECK(n.error().message.find("at byte") != std::string::npos);
    CHECK_FALSE(p.feed(bytes("GET / HTTP/1.1\r\n\r\n")));
    p.begin();
    CHECK(p.feed(bytes("GET / HTTP/1.1\r\n\r\n")));
  }

  TEST_CASE("a connection closed mid-request is an error; closed between requests is not") {
    h1_request_parser p;
    CHECK(p.finish());
    REQUIRE(p.feed(bytes("GET / HT")));
    CHECK(p.current() == h1_request_parser::phase::head);
    auto f = p.finish();
    REQUIRE_FALSE(f);
    CHECK(f.error().message.find("8 bytes of a request head") != std::string::npos);
  }

  TEST_CASE("mutated and truncated requests never crash, hang or overrun the limits") {
    const std::vector<std::string> seeds = {
        "GET /a?b=c HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n",
        "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789",
        "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
    };
    const request_limits limits{.max_head_bytes = 256, .max_headers = 8, .max_body_bytes = 64};
    prng rng{0x5eed1234abcdull};
    std::size_t completed = 0, failed = 0;
    for (int round = 0; round < 20000; ++round) {
      std::string wire = seeds[rng.below(seeds.size())];
      const std::size_t mutations = rng.below(6);
      for (std::size_t m = 0; m < mutations; ++m) {
        const std::size_t at = rng.below(wire.size() + 1);
        switch (rng.below(5)) {
          case 0: if (at < wire.size()) wire[at] = static_cast<char>(rng.next()); break;
          case 1: wire.insert(at, 1, static_cast<char>(rng.next())); break;
          case 2: if (at < wire.size()) wire.erase(at, 1 + rng.below(8)); break;
          case 3: wire.resize(at); break;  // truncated
          case 4: wire.insert(at, std::string(rng.below(400), "a:\r\n 9-"[rng.below(7)])); break;
        }
      }
      h1_request_parser p(limits);
      // Random read sizes; a bounded loop: every feed either consumes bytes, completes or fails.
      std::size_t at = 0;
      bool done = false;
      for (int steps = 0; steps < 10000 && !done; ++steps) {
        if (at == wire.size()) {
          (void)p.finish();
          break;
        }
        const std::size_t step = 1 + rng.below(wire.size() - at);
        auto n = p.feed(bytes(std::string_view(wire).substr(at, step)));
        if (!n) {
          ++failed;
          CHECK(n.error().http_status >= 400);
          done = true;
        } else if (p.current() == h1_request_parser::phase::complete) {
          ++completed;
          CHECK(p.body().size() <= limits.max_body_bytes);
          CHECK(p.headers().size() <= limits.max_headers);
          done = true;
        } else {
          REQUIRE(*n == step);  // not complete: everything given was consumed
          at += *n;
        }
      }
    }
    // The mix exercises both outcomes.
    CHECK(completed > 1000);
    CHECK(failed > 1000);
  }
}
