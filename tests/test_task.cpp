#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "runtime/sync_wait.hpp"
#include "runtime/task.hpp"
#include "runtime/when_all.hpp"
#include "runtime/scheduling.hpp"
#include "runtime/ops.hpp"
#include "test_support.hpp"

using namespace ringfetch;
using ringfetch::test::reactor_fixture;

namespace {

struct live_counter {
  int* live;
  explicit live_counter(int* l) : live(l) { ++*live; }
  ~live_counter() { --*live; }
};

task<int> answer() { co_return 42; }
task<int> add_one(task<int> t) { co_return (co_await std::move(t)) + 1; }
task<void> fails() {
  throw std::runtime_error("boom");
  co_return;
}
task<std::unique_ptr<std::string>> move_only() { co_return std::make_unique<std::string>("moved"); }
task<int> suspends_then(int v) {
  co_await yield();
  co_return v;
}

}  // namespace

TEST_SUITE("task") {
  TEST_CASE("a task does not run until awaited and destroying it unawaited frees its frame") {
    int live = 0;
    bool ran = false;
    {
      auto t = [](int* live, bool* ran) -> task<void> {
        live_counter c(live);
        *ran = true;
        co_return;
      }(&live, &ran);
      CHECK(t.valid());
      CHECK_FALSE(ran);
    }
    CHECK_FALSE(ran);
    CHECK(live == 0);
  }

  TEST_CASE("a task hands its value to the awaiter, through nested tasks") {
    reactor_fixture f;
    CHECK(f.run(add_one(add_one(answer()))) == 44);
  }

  TEST_CASE("a task that suspends resumes with its value") {
    reactor_fixture f;
    CHECK(f.run(suspends_then(7)) == 7);
  }

  TEST_CASE("an exception thrown in a task reaches its awaiter and frees the frame") {
    reactor_fixture f;
    CHECK_THROWS_WITH_AS(f.run(fails()), "boom", std::runtime_error);
  }

  TEST_CASE("move-only values pass through tasks") {
    reactor_fixture f;
    auto p = f.run(move_only());
    REQUIRE(p);
    CHECK(*p == "moved");
  }

  TEST_CASE("a million synchronously completing awaits do not grow the stack") {
    reactor_fixture f;
    auto loop = []() -> task<long> {
      long sum = 0;
      for (int i = 0; i < 1'000'000; ++i) sum += co_await answer();
      co_return sum;
    };
    CHECK(f.run(loop()) == 42'000'000L);
  }

  TEST_CASE("a deep chain of awaiting tasks unwinds without recursion") {
    reactor_fixture f;
    struct chain {
      static task<int> depth(int n) {
        if (n == 0) co_return 0;
        co_return 1 + co_await depth(n - 1);
      }
    };
    CHECK(f.run(chain::depth(20'000)) == 20'000);
  }

  TEST_CASE("moving a task transfers ownership; awaiting an empty task is a clear error") {
    reactor_fixture f;
    task<int> a = answer();
    task<int> b = std::move(a);
    CHECK_FALSE(a.valid());
    CHECK(f.run(std::move(b)) == 42);
    auto await_empty = []() -> task<int> {
      task<int> empty;
      co_return co_await std::move(empty);
    };
    CHECK_THROWS_AS(f.run(await_empty()), std::logic_error);
  }
}

TEST_SUITE("sync_wait") {
  TEST_CASE("sync_wait runs a task with I/O from a plain thread") {
    auto t = []() -> task<int> {
      auto r = co_await op::nop();
      co_return r ? 1 : 0;
    };
    CHECK(sync_wait(t()) == 1);
    int from_other_thread = 0;
    std::thread th([&] { from_other_thread = sync_wait(t()); });
    th.join();
    CHECK(from_other_thread == 1);
  }

  TEST_CASE("sync_wait on a reactor thread is refused instead of deadlocking") {
    reactor_fixture f;
    auto inner = []() -> task<bool> {
      try {
        sync_wait(answer());
      } catch (const std::logic_error&) {
        co_return true;
      }
      co_return false;
    };
    CHECK(f.run(inner()));
  }
}

TEST_SUITE("when_all") {
  TEST_CASE("when_all over a vector returns results in order") {
    reactor_fixture f;
    auto t = []() -> task<int> {
      std::vector<task<int>> ts;
      for (int i = 0; i < 100; ++i) ts.push_back(suspends_then(i));
      auto rs = co_await when_all(std::move(ts));
      int sum = 0;
      for (int i = 0; i < 100; ++i) {
        if (rs[i] != i) co_return -1;
        sum += rs[i];
      }
      co_return sum;
    };
    CHECK(f.run(t()) == 4950);
  }

  TEST_CASE("when_all over mixed types returns a tuple") {
    reactor_fixture f;
    auto t = []() -> task<std::string> {
      auto [a, b, c] = co_await when_all(answer(), suspends_then(5), move_only());
      co_return std::to_string(a) + "/" + std::to_string(b) + "/" + *c;
    };
    CHECK(f.run(t()) == "42/5/moved");
  }

  TEST_CASE("when_all of nothing completes at once") {
    reactor_fixture f;
    auto t = []() -> task<std::size_t> {
      auto rs = co_await when_all(std::vector<task<int>>{});
      co_return rs.size();
    };
    CHECK(f.run(t()) == 0);
  }

  TEST_CASE("when_all lets every child finish, then rethrows the first failure") {
    reactor_fixture f;
    int finished = 0;
    auto counted = [](int* n) -> task<void> {
      co_await yield();
      ++*n;
    };
    auto t = [&]() -> task<void> {
      std::vector<task<void>> ts;
      ts.push_back(counted(&finished));
      ts.push_back(fails());
      ts.push_back(counted(&finished));
      co_await when_all(std::move(ts));
    };
    CHECK_THROWS_WITH(f.run(t()), "boom");
    CHECK(finished == 2);
  }
}

TEST_SUITE("spawn") {
  TEST_CASE("a spawned task's exception is reported, never lost") {
    test::log_capture logs;
    reactor_fixture f;
    f.r.spawn(fails());
    f.run(suspends_then(0));
    f.run(suspends_then(0));
    CHECK(f.r.failures() == 1);
    CHECK(f.r.first_exception() != nullptr);
    CHECK(logs.count_containing("boom") == 1);
  }

  TEST_CASE("a spawned task returning an error result is reported") {
    test::log_capture logs;
    reactor_fixture f;
    f.r.spawn([]() -> task<io_result<int>> {
      co_return std::make_error_code(std::errc::connection_reset);
    }());
    f.run(suspends_then(0));
    f.run(suspends_then(0));
    CHECK(f.r.failures() == 1);
    CHECK(logs.count_containing("reset") == 1);
  }

  TEST_CASE("spawned tasks run concurrently and their frames are freed when they finish") {
    reactor_fixture f;
    int live = 0, done = 0;
    for (int i = 0; i < 1000; ++i) {
      f.r.spawn([](int* live, int* done) -> task<void> {
        live_counter c(live);
        (void)co_await op::nop();
        ++*done;
      }(&live, &done));
    }
    CHECK(f.r.detached_tasks() == 1000);
    while (done < 1000) f.run(suspends_then(0));
    CHECK(live == 0);
    CHECK(f.r.detached_tasks() == 0);
  }
}
