#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "runtime/channel.hpp"
#include "runtime/event.hpp"
#include "runtime/scheduling.hpp"
#include "runtime/semaphore.hpp"
#include "runtime/timer.hpp"
#include "runtime/when_all.hpp"
#include "test_support.hpp"

using namespace ringfetch;
using namespace std::chrono_literals;
using test::reactor_fixture;

TEST_SUITE("event") {
  TEST_CASE("waiters suspend until the event is set, later waits pass at once") {
    reactor_fixture f;
    event ev;
    int woke = 0;
    auto waiter = [&]() -> task<void> {
      co_await ev.wait();
      ++woke;
    };
    auto setter = [&]() -> task<void> {
      co_await yield();
      CHECK(woke == 0);
      ev.set();
    };
    f.run([&]() -> task<void> { co_await when_all(waiter(), waiter(), setter()); }());
    CHECK(woke == 2);
    f.run(waiter());
    CHECK(woke == 3);
    ev.reset();
    CHECK_FALSE(ev.is_set());
  }
}

TEST_SUITE("semaphore") {
  TEST_CASE("a semaphore bounds concurrency and hands permits over in FIFO order") {
    reactor_fixture f;
    semaphore sem(2);
    int inside = 0, max_inside = 0;
    std::vector<int> order;
    auto worker = [&](int id) -> task<void> {
      co_await sem.acquire();
      order.push_back(id);
      ++inside;
      max_inside = std::max(max_inside, inside);
      (void)co_await sleep_for(1ms);
      --inside;
      sem.release();
    };
    f.run([&]() -> task<void> {
      std::vector<task<void>> ts;
      for (int i = 0; i < 8; ++i) ts.push_back(worker(i));
      co_await when_all(std::move(ts));
    }());
    CHECK(max_inside == 2);
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
    CHECK(sem.available() == 2);
  }

  TEST_CASE("try_acquire never takes a permit promised to a waiter") {
    reactor_fixture f;
    semaphore sem(0);
    bool got = false;
    auto waiter = [&]() -> task<void> {
      co_await sem.acquire();
      got = true;
    };
    auto thief = [&]() -> task<void> {
      co_await yield();
      sem.release();
      CHECK_FALSE(sem.try_acquire());
    };
    f.run([&]() -> task<void> { co_await when_all(waiter(), thief()); }());
    CHECK(got);
  }
}

TEST_SUITE("waiters destroyed while waiting") {
  TEST_CASE("a waiter whose frame is destroyed leaves the semaphore and event intact") {
    reactor_fixture f;
    semaphore sem(0);
    event ev;
    int resumed = 0;
    {
      auto on_sem = [](semaphore& s, int& resumed) -> task<void> {
        co_await s.acquire();
        ++resumed;
      }(sem, resumed);
      auto on_event = [](event& e, int& resumed) -> task<void> {
        co_await e.wait();
        ++resumed;
      }(ev, resumed);
      f.r.schedule(on_sem.handle());
      f.r.schedule(on_event.handle());
      f.run([]() -> task<void> { co_await yield(); }());
      CHECK_FALSE(on_sem.done());
      CHECK_FALSE(on_event.done());
    }  // both frames destroyed while suspended
    sem.release();
    ev.set();
    f.run([]() -> task<void> { co_await yield(); }());
    CHECK(resumed == 0);
    CHECK(sem.available() == 1);  // the permit was not handed to a dead waiter
  }
}

TEST_SUITE("channel") {
  TEST_CASE("a bounded channel carries values in order with backpressure") {
    reactor_fixture f;
    channel<int> ch(4);
    std::size_t max_size = 0;
    auto producer = [&]() -> task<void> {
      for (int i = 0; i < 1000; ++i) {
        CHECK(co_await ch.send(i));
        max_size = std::max(max_size, ch.size());
      }
      ch.close();
    };
    auto consumer = [&]() -> task<std::vector<int>> {
      std::vector<int> got;
      while (auto v = co_await ch.recv()) {
        got.push_back(*v);
        if (got.size() % 7 == 0) co_await yield();
      }
      co_return got;
    };
    auto [_, got] = f.run([&]() -> task<std::tuple<std::monostate, std::vector<int>>> {
      co_return co_await when_all(producer(), consumer());
    }());
    REQUIRE(got.size() == 1000);
    for (int i = 0; i < 1000; ++i) CHECK(got[i] == i);
    CHECK(max_size <= 4);
  }

  TEST_CASE("closing a channel wakes blocked senders and receivers") {
    reactor_fixture f;
    channel<std::string> full(1);
    channel<std::string> empty(1);
    CHECK(f.run([&]() -> task<bool> { co_return co_await full.send("first"); }()));
    auto blocked_send = [&]() -> task<bool> { co_return co_await full.send("second"); };
    auto blocked_recv = [&]() -> task<std::optional<std::string>> { co_return co_await empty.recv(); };
    auto closer = [&]() -> task<void> {
      co_await yield();
      full.close();
      empty.close();
    };
    auto [sent, received, _] =
        f.run([&]() -> task<std::tuple<bool, std::optional<std::string>, std::monostate>> {
          co_return co_await when_all(blocked_send(), blocked_recv(), closer());
        }());
    CHECK_FALSE(sent);
    CHECK_FALSE(received);
    // What was queued before close is still delivered, then end of stream.
    CHECK(full.try_recv() == std::optional<std::string>("first"));
    CHECK_FALSE(full.try_recv());
    CHECK_FALSE(f.run([&]() -> task<bool> { co_return co_await full.send("late"); }()));
  }

  TEST_CASE("a value handed to a waiting receiver cannot be stolen by try_recv") {
    reactor_fixture f;
    channel<int> ch(1);
    auto receiver = [&]() -> task<std::optional<int>> { co_return co_await ch.recv(); };
    auto sender = [&]() -> task<void> {
      co_await yield();
      int v = 7;
      CHECK(ch.try_send(v));
      CHECK_FALSE(ch.try_recv());  // it went straight to the waiting receiver
    };
    auto [got, _] = f.run([&]() -> task<std::tuple<std::optional<int>, std::monostate>> {
      co_return co_await when_all(receiver(), sender());
    }());
    CHECK(got == std::optional<int>(7));
  }
}
