#include <doctest/doctest.h>

#include <arpa/inet.h>

#include <optional>
#include <string>
#include <vector>

#include "http/resolver.hpp"
#include "runtime/when_all.hpp"
#include "test_support.hpp"

using namespace ringfetch;
using namespace ringfetch::http;
using test::reactor_fixture;

TEST_SUITE("resolver") {
  TEST_CASE("IP literals resolve at once, without a lookup") {
    reactor_fixture f;
    resolver r;
    auto v4 = f.run(r.resolve("127.0.0.1", 8080));
    REQUIRE(v4);
    REQUIRE(v4->size() == 1);
    CHECK((*v4)[0].str() == "127.0.0.1:8080");
    auto v6 = f.run(r.resolve("::1", 443));
    REQUIRE(v6);
    CHECK((*v6)[0].str() == "[::1]:443");
    CHECK(r.lookups() == 0);
  }

  TEST_CASE("a name is looked up off the reactor thread, then served from the cache") {
    reactor_fixture f;
    resolver r;
    auto a = f.run(r.resolve("localhost", 80));
    REQUIRE(a);
    REQUIRE_FALSE(a->empty());
    bool loopback = false;
    for (auto& e : *a) loopback |= e.str() == "127.0.0.1:80" || e.str() == "[::1]:80";
    CHECK(loopback);
    auto b = f.run(r.resolve("localhost", 9000));  // same host, other port: cached
    REQUIRE(b);
    CHECK((*b)[0].str().ends_with(":9000"));
    CHECK(r.lookups() == 1);
  }

  TEST_CASE("concurrent lookups of one name share a single helper") {
    reactor_fixture f;
    resolver r;
    auto rs = f.run([&]() -> task<std::vector<result<std::vector<endpoint>>>> {
      std::vector<task<result<std::vector<endpoint>>>> ts;
      for (int i = 0; i < 20; ++i) ts.push_back(r.resolve("localhost", 80));
      co_return co_await when_all(std::move(ts));
    }());
    for (auto& x : rs) CHECK(x);
    CHECK(r.lookups() == 1);
  }

  TEST_CASE("a name that does not exist is a not-found error naming the host, cached briefly") {
    reactor_fixture f;
    resolver r;
    auto a = f.run(r.resolve("no-such-host.invalid", 80));
    REQUIRE_FALSE(a);
    CHECK(a.error().message.find("no-such-host.invalid") != std::string::npos);
    if (a.error().kind != error_kind::not_found)
      MESSAGE("resolver answered " << a.error().describe() << " (no DNS here?)");
    auto b = f.run(r.resolve("no-such-host.invalid", 80));
    REQUIRE_FALSE(b);
    CHECK(r.lookups() == 1);
  }

  TEST_CASE("a lookup in flight at shutdown is cancelled, not waited for") {
    // The helper may still be running when the reactor goes: it owns what it writes to.
    resolver r;
    std::optional<error_kind> outcome;
    {
      reactor_fixture f;
      f.r.spawn([](resolver* r, std::optional<error_kind>* outcome) -> task<void> {
        auto a = co_await r->resolve("localhost", 1);
        *outcome = a ? error_kind::internal : a.error().kind;
      }(&r, &outcome));
    }
    REQUIRE(outcome);
    CHECK(*outcome == error_kind::cancelled);
    CHECK(r.lookups() == 1);
  }
}
