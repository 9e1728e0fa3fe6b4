#include <doctest/doctest.h>

#include <chrono>
#include <vector>

#include "runtime/timer.hpp"
#include "runtime/when_all.hpp"
#include "runtime/scheduling.hpp"
#include "test_support.hpp"

using namespace ringfetch;
using namespace std::chrono_literals;
using test::reactor_fixture;

TEST_SUITE("timer") {
  TEST_CASE("sleep_for waits at least its duration on the steady clock") {
    reactor_fixture f;
    auto start = steady_clock::now();
    auto r = f.run([]() -> task<io_result<void>> { co_return co_await sleep_for(20ms); }());
    CHECK(r);
    CHECK(steady_clock::now() - start >= 20ms);
  }

  TEST_CASE("sleep_until a past time returns at once") {
    reactor_fixture f;
    auto r = f.run([]() -> task<io_result<void>> {
      co_return co_await sleep_until(steady_clock::now() - 1h);
    }());
    CHECK(r);
  }

  TEST_CASE("timers fire in deadline order, not submission order") {
    reactor_fixture f;
    std::vector<int> order;
    auto sleeper = [&](int id, std::chrono::milliseconds d) -> task<void> {
      (void)co_await sleep_for(d);
      order.push_back(id);
    };
    f.run([&]() -> task<void> {
      co_await when_all(sleeper(3, 30ms), sleeper(1, 10ms), sleeper(2, 20ms));
    }());
    CHECK(order == std::vector<int>{1, 2, 3});
  }

  TEST_CASE("a sleeping timer can be cancelled") {
    reactor_fixture f;
    cancel_source cancel;
    auto start = steady_clock::now();
    auto r = f.run([&]() -> task<io_result<void>> {
      auto sleeper = [&]() -> task<io_result<void>> { co_return co_await sleep_for(1h, &cancel); };
      auto stopper = [&]() -> task<void> {
        co_await yield();
        cancel.request_cancel();
      };
      auto [s, _] = co_await when_all(sleeper(), stopper());
      co_return s;
    }());
    REQUIRE_FALSE(r);
    CHECK(r.error() == std::errc::operation_canceled);
    CHECK(steady_clock::now() - start < 1h);
  }
}
