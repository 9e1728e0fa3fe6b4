#include <doctest/doctest.h>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include "runtime/event.hpp"
#include "runtime/ops.hpp"
#include "runtime/runtime.hpp"
#include "runtime/scheduling.hpp"
#include "runtime/timer.hpp"
#include "test_support.hpp"

using namespace ringfetch;
using namespace std::chrono_literals;

TEST_SUITE("runtime") {
  TEST_CASE("a runtime starts one pinned reactor per CPU by default") {
    runtime rt;
    cpu_set_t set;
    REQUIRE(::sched_getaffinity(0, sizeof set, &set) == 0);
    CHECK(rt.size() == static_cast<unsigned>(CPU_COUNT(&set)));
    for (unsigned i = 0; i < rt.size(); ++i) MESSAGE("reactor " << i << " on cpu " << rt.cpu_of(i));
    CHECK(rt.stop() == 0);
  }

  TEST_CASE("block_on runs a task on a chosen reactor from a plain thread") {
    runtime rt({.reactors = 2});
    auto where = [](reactor* expected) -> task<bool> {
      (void)co_await op::nop();
      co_return reactor::current() == expected;
    };
    CHECK(rt.block_on(0, where(&rt.at(0))));
    CHECK(rt.block_on(1, where(&rt.at(1))));
    CHECK_THROWS_WITH(rt.block_on(1, []() -> task<void> {
      throw std::runtime_error("from reactor 1");
      co_return;
    }()), "from reactor 1");
  }

  TEST_CASE("messages move work between reactors without locks") {
    runtime rt({.reactors = 2});
    reactor& a = rt.at(0);
    reactor& b = rt.at(1);
    auto ping_pong = [&]() -> task<int> {
      int hops = 0;
      for (int i = 0; i < 20'000; ++i) {
        co_await resume_on(b);
        if (reactor::current() != &b) co_return -1;
        co_await resume_on(a);
        if (reactor::current() != &a) co_return -1;
        hops += 2;
      }
      co_return hops;
    };
    CHECK(rt.block_on(0, ping_pong()) == 40'000);
  }

  TEST_CASE("many threads post to one reactor concurrently and no message is lost") {
    runtime rt({.reactors = 1});
    std::atomic<int> ran{0};
    std::vector<std::thread> posters;
    for (int t = 0; t < 4; ++t) {
      posters.emplace_back([&] {
        for (int i = 0; i < 25'000; ++i) rt.post(0, [&] { ran.fetch_add(1, std::memory_order_relaxed); });
      });
    }
    for (auto& t : posters) t.join();
    // A final round trip through the same queue: everything posted before it has run.
    rt.block_on(0, []() -> task<void> { co_return; }());
    CHECK(ran.load() == 100'000);
  }

  TEST_CASE("stopping the runtime with work in flight cancels it and joins cleanly") {
    auto pair = test::socket_pair();
    [[maybe_unused]] auto& a = pair.first;
    [[maybe_unused]] auto& b = pair.second;
    std::atomic<int> cancelled{0};
    std::atomic<int> started{0};
    std::vector<std::byte> buffers(2 * 8 * 64);
    runtime rt({.reactors = 2});
    for (unsigned r = 0; r < 2; ++r) {
      for (int i = 0; i < 8; ++i) {
        std::span<std::byte> buf(buffers.data() + (r * 8 + i) * 64, 64);
        rt.spawn_on(r, [](int fd, std::span<std::byte> buf, std::atomic<int>* started,
                          std::atomic<int>* cancelled) -> task<void> {
          started->fetch_add(1);
          auto res = co_await op::recv(fd, buf);
          if (!res && res.error() == std::errc::operation_canceled) cancelled->fetch_add(1);
        }(b.get(), buf, &started, &cancelled));
      }
      rt.spawn_on(r, []() -> task<void> { (void)co_await sleep_for(1h); }());
      rt.spawn_on(r, [](std::atomic<int>* started) -> task<void> {
        started->fetch_add(1);
        event never;
        co_await never.wait();
      }(&started));
    }
    while (started.load() < 18) std::this_thread::yield();
    auto t0 = std::chrono::steady_clock::now();
    CHECK(rt.stop() == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    CHECK(cancelled.load() == 16);
    CHECK_THROWS_AS(rt.post(0, [] {}), std::logic_error);
  }

  TEST_CASE("exceptions from detached tasks on any reactor are counted at stop") {
    test::log_capture logs;
    runtime rt({.reactors = 2});
    rt.spawn_on(1, []() -> task<void> {
      throw std::runtime_error("lost? no");
      co_return;
    }());
    rt.block_on(1, []() -> task<void> { co_await yield(); }());
    CHECK(rt.stop() == 1);
    CHECK(rt.first_exception() != nullptr);
    CHECK(logs.count_containing("lost? no") == 1);
  }

  TEST_CASE("a spawned task that finishes on another reactor is handed back to its owner") {
    test::log_capture logs;
    runtime rt({.reactors = 2});
    std::atomic<int> finished{0};
    constexpr int tasks = 200;
    for (int i = 0; i < tasks; ++i) {
      rt.spawn_on(0, [](reactor* other, int i, std::atomic<int>* finished) -> task<void> {
        co_await resume_on(*other);
        finished->fetch_add(1);
        if (i % 50 == 0) throw std::runtime_error("failed far from home " + std::to_string(i));
      }(&rt.at(1), i, &finished));
    }
    while (finished.load() < tasks) std::this_thread::yield();
    // The owner's bookkeeping happens on the owner's thread: by the time a round trip through
    // reactor 0 returns, every hand-back posted before it has run.
    rt.block_on(0, []() -> task<void> { co_await yield(); }());
    // Only the block_on task itself is still detached on reactor 0.
    CHECK(rt.block_on(0, []() -> task<std::size_t> { co_return reactor::current()->detached_tasks(); }()) == 1);
    CHECK(rt.stop() == 4);
    CHECK(logs.count_containing("failed far from home") == 4);
  }

  TEST_CASE("stop destroys a task owned by one reactor and suspended on another") {
    runtime rt({.reactors = 2});
    std::atomic<int> parked{0};
    for (int i = 0; i < 20; ++i) {
      rt.spawn_on(i % 2, [](reactor* other, std::atomic<int>* parked) -> task<void> {
        co_await resume_on(*other);
        event never;  // on the other reactor, owned by a frame its owner will destroy
        parked->fetch_add(1);
        co_await never.wait();
      }(&rt.at(1 - i % 2), &parked));
    }
    while (parked.load() < 20) std::this_thread::yield();
    CHECK(rt.stop() == 0);
  }

  TEST_CASE("block_on fails instead of hanging when the runtime stops under it") {
    runtime rt({.reactors = 1});
    std::atomic<bool> started{false};
    std::atomic<bool> threw{false};
    std::thread caller([&] {
      try {
        rt.block_on(0, [](std::atomic<bool>* started) -> task<void> {
          started->store(true);
          event never;
          co_await never.wait();
        }(&started));
      } catch (const std::runtime_error& e) {
        threw = std::string(e.what()).find("runtime stopped") != std::string::npos;
      }
    });
    while (!started.load()) std::this_thread::yield();
    rt.stop();
    caller.join();
    CHECK(threw.load());
  }

  TEST_CASE("a post from a thread that owns an idle reactor still wakes its target") {
    runtime rt({.reactors = 1});
    reactor mine;  // this thread owns a reactor but is not running its loop
    std::atomic<bool> ran{false};
    rt.post(0, [&ran] {
      ran = true;
      ran.notify_one();
    });
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!ran.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    CHECK(ran.load());
    rt.stop();
  }

  TEST_CASE("a refused io_uring says why and how to fix it") {
    // A child installs a seccomp filter failing io_uring_setup with EPERM (as Docker's default
    // profile does) and reports whether the runtime's error names the cause.
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      sock_filter filter[] = {
          BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
          BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      };
      sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
      if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
          ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        ::_exit(3);
      try {
        runtime rt({.reactors = 2});
        ::_exit(4);
      } catch (const std::system_error& e) {
        std::string what = e.what();
        bool names_cause = what.find("seccomp") != std::string::npos &&
                           what.find("io_uring_disabled") != std::string::npos;
        ::_exit(names_cause ? 0 : 5);
      } catch (...) {
        ::_exit(6);
      }
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
}
