#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "runtime/event.hpp"
#include "runtime/ops.hpp"
#include "runtime/scheduling.hpp"
#include "runtime/timer.hpp"
#include "runtime/when_all.hpp"
#include "test_support.hpp"

using namespace ringfetch;
using namespace std::chrono_literals;
using test::reactor_fixture;

namespace {

task<bool> nop_ok() { co_return static_cast<bool>(co_await op::nop()); }

task<std::size_t> many_nops(std::size_t n) {
  std::vector<task<bool>> ts;
  ts.reserve(n);
  for (std::size_t i = 0; i < n; ++i) ts.push_back(nop_ok());
  auto rs = co_await when_all(std::move(ts));
  std::size_t ok = 0;
  for (bool b : rs) ok += b;
  co_return ok;
}

}  // namespace

TEST_SUITE("reactor") {
  TEST_CASE("the ring is set up with SINGLE_ISSUER and DEFER_TASKRUN where the kernel has them") {
    reactor_fixture f;
    std::string setup = f.r.describe_setup();
    MESSAGE("io_uring setup: " << setup);
    if (!(f.r.setup_flags() & IORING_SETUP_DEFER_TASKRUN)) {
      MESSAGE("kernel refused DEFER_TASKRUN: running without it (fallback path)");
    }
    CHECK(f.r.cq_entries() >= 8 * 256);
  }

  TEST_CASE("the reactor works with every setup-flag fallback") {
    for (auto flags : {std::pair{true, true}, {true, false}, {false, false}}) {
      const bool single = flags.first;
      const bool defer = flags.second;
      CAPTURE(single);
      CAPTURE(defer);
      reactor_fixture f({.sq_entries = 16, .single_issuer = single, .defer_taskrun = defer});
      const bool deferred = (f.r.setup_flags() & IORING_SETUP_DEFER_TASKRUN) != 0;
      CHECK((!deferred || defer));
      CHECK(f.run(many_nops(500)) == 500);
    }
  }

  TEST_CASE("ten thousand concurrent operations on one reactor all complete") {
    reactor_fixture f;
    auto sleeper = []() -> task<bool> { co_return static_cast<bool>(co_await sleep_for(5ms)); };
    auto t = [&]() -> task<std::size_t> {
      std::vector<task<bool>> ts;
      for (int i = 0; i < 10'000; ++i) ts.push_back(sleeper());
      auto rs = co_await when_all(std::move(ts));
      std::size_t ok = 0;
      for (bool b : rs) ok += b;
      co_return ok;
    };
    CHECK(f.run(t()) == 10'000);
    CHECK(f.r.in_flight() == 1);  // only the reactor's own wake-up read remains
  }

  TEST_CASE("a full submission queue is flushed, never a null SQE") {
    reactor_fixture f({.sq_entries = 8});
    CHECK(f.run(many_nops(5000)) == 5000);
    CHECK(f.r.stats().sq_full_flushes > 0);
  }

  TEST_CASE("a completion queue smaller than the burst loses no completion") {
    // 8 SQ entries, 16 CQ entries, 20000 nops in flight: the CQ overflows over and over.
    for (bool defer : {true, false}) {
      CAPTURE(defer);
      reactor_fixture f({.sq_entries = 8, .cq_entries = 16, .defer_taskrun = defer});
      CHECK(f.run(many_nops(20'000)) == 20'000);
      CHECK(f.r.stats().cqes >= 20'000);
    }
  }

  TEST_CASE("submissions are batched: far fewer io_uring_enter calls than operations") {
    reactor_fixture f;
    auto before = f.r.stats().enters;
    CHECK(f.run(many_nops(10'000)) == 10'000);
    auto enters = f.r.stats().enters - before;
    MESSAGE("10000 nops took " << enters << " io_uring_enter calls");
    CHECK(enters < 1000);
  }

  TEST_CASE("yield lets other ready coroutines run first") {
    reactor_fixture f;
    std::string trace;
    auto worker = [&](char c) -> task<void> {
      for (int i = 0; i < 3; ++i) {
        trace += c;
        co_await yield();
      }
    };
    f.run([&]() -> task<void> { co_await when_all(worker('a'), worker('b')); }());
    CHECK(trace == "ababab");
  }

  TEST_CASE("a second reactor on the same thread is refused") {
    reactor_fixture f;
    CHECK_THROWS_AS(reactor{}, std::logic_error);
  }

  TEST_CASE("a reactor that fails to start leaves its thread free for the next one") {
    // An arena larger than any address space: the constructor throws after the ring exists.
    CHECK_THROWS_AS(reactor({.arena_bytes = std::size_t{1} << 60}), std::bad_alloc);
    CHECK(reactor::current() == nullptr);
    reactor_fixture f;
    CHECK(f.run([]() -> task<int> { co_return 7; }()) == 7);
  }

  TEST_CASE("shutdown cancels in-flight operations and destroys tasks that can never resume") {
    auto pair = test::socket_pair();
    [[maybe_unused]] auto& a = pair.first;
    [[maybe_unused]] auto& b = pair.second;
    int live = 0;
    int cancelled_recvs = 0;
    std::vector<std::byte> buf(64);
    {
      reactor r;
      struct guard {
        int* n;
        ~guard() { --*n; }
      };
      for (int i = 0; i < 10; ++i) {
        ++live;
        r.spawn([](int fd, std::span<std::byte> buf, int* live, int* cancelled) -> task<void> {
          guard g{live};
          auto res = co_await op::recv(fd, buf);
          if (!res && res.error() == std::errc::operation_canceled) ++*cancelled;
          // Ops issued while stopping fail at once instead of reaching the kernel.
          auto again = co_await op::recv(fd, buf);
          if (!again && again.error() == std::errc::operation_canceled) ++*cancelled;
        }(b.get(), buf, &live, &cancelled_recvs));
      }
      ++live;
      r.spawn([](int* live) -> task<void> {
        guard g{live};
        (void)co_await sleep_for(1h);
      }(&live));
      event never;
      ++live;
      r.spawn([](event* ev, int* live) -> task<void> {
        guard g{live};
        co_await ev->wait();
      }(&never, &live));
      // Run one turn so everything is submitted, then stop.
      r.block_on([]() -> task<void> { co_await yield(); }());
      CHECK(r.in_flight() == 12);
      r.shutdown();
      CHECK(r.in_flight() == 0);
      CHECK(r.detached_tasks() == 0);
    }
    CHECK(live == 0);
    CHECK(cancelled_recvs == 20);
  }
}
