#include <doctest/doctest.h>

#include <sys/mman.h>

#include <fcntl.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "runtime/ops.hpp"
#include "runtime/scheduling.hpp"
#include "runtime/when_all.hpp"
#include "test_support.hpp"

using namespace ringfetch;
using namespace std::chrono_literals;
using test::reactor_fixture;

namespace {

std::span<const std::byte> as_bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}
std::string as_string(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

}  // namespace

TEST_SUITE("ops") {
  TEST_CASE("send and recv move bytes over a socket pair; recv of 0 is end of stream") {
    reactor_fixture f;
    auto pair = test::socket_pair();
    [[maybe_unused]] auto& a = pair.first;
    [[maybe_unused]] auto& b = pair.second;
    auto t = [&]() -> task<std::string> {
      auto sent = co_await op::send(a.get(), as_bytes("hello ring"));
      REQUIRE(sent);
      CHECK(*sent == 10);
      std::array<std::byte, 64> buf{};
      auto got = co_await op::recv(b.get(), buf);
      REQUIRE(got);
      a.reset();
      auto eof = co_await op::recv(b.get(), buf);
      REQUIRE(eof);
      CHECK(*eof == 0);
      co_return as_string(std::span(buf).first(*got));
    };
    CHECK(f.run(t()) == "hello ring");
  }

  TEST_CASE("read and write at file offsets") {
    reactor_fixture f;
    auto file = test::temp_file();
    auto t = [&]() -> task<std::string> {
      auto w1 = co_await op::write(file.get(), as_bytes("world"), 6);
      auto w2 = co_await op::write(file.get(), as_bytes("hello "), 0);
      REQUIRE(w1);
      REQUIRE(w2);
      std::array<std::byte, 32> buf{};
      auto r = co_await op::read(file.get(), buf, 0);
      REQUIRE(r);
      co_return as_string(std::span(buf).first(*r));
    };
    CHECK(f.run(t()) == "hello world");
  }

  TEST_CASE("accept and connect on loopback TCP") {
    reactor_fixture f;
    test::tcp_listener listener;
    auto client = test::tcp_socket();
    auto t = [&]() -> task<std::string> {
      auto acc = [&]() -> task<io_result<int>> { co_return co_await op::accept(listener.fd.get()); };
      auto con = [&]() -> task<io_result<void>> {
        co_return co_await op::connect(client.get(), listener.sockaddr_ptr(), sizeof(sockaddr_in));
      };
      auto [accepted, connected] = co_await when_all(acc(), con());
      REQUIRE(accepted);
      REQUIRE(connected);
      test::unique_fd server(*accepted);
      (void)co_await op::send(client.get(), as_bytes("ping"));
      std::array<std::byte, 8> buf{};
      auto got = co_await op::recv(server.get(), buf);
      REQUIRE(got);
      co_return as_string(std::span(buf).first(*got));
    };
    CHECK(f.run(t()) == "ping");
  }

  TEST_CASE("connecting to a closed port is an error value, not an exception") {
    reactor_fixture f;
    sockaddr_in addr;
    {
      test::tcp_listener gone;  // take a free port, then release it
      addr = gone.addr;
    }
    auto s = test::tcp_socket();
    auto r = f.run([&]() -> task<io_result<void>> {
      co_return co_await op::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    }());
    REQUIRE_FALSE(r);
    CHECK(r.error() == std::errc::connection_refused);
  }

  TEST_CASE("send_zc sends from the caller's buffer and returns after the kernel let go") {
    reactor_fixture f;
    test::tcp_listener listener;
    auto client = test::tcp_socket();
    REQUIRE(::connect(client.get(), listener.sockaddr_ptr(), sizeof(sockaddr_in)) == 0);
    test::unique_fd server(::accept4(listener.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    std::vector<std::byte> data(4 << 20);
    test::fill_pattern(data, 0);
    std::vector<std::byte> got(data.size());
    std::thread reader([&] {
      for (std::size_t n = 0; n < got.size();) {
        ssize_t r = ::recv(server.get(), got.data() + n, got.size() - n, 0);
        if (r <= 0) return;
        n += static_cast<std::size_t>(r);
      }
    });
    std::size_t sent = 0;
    bool unsupported = false;
    f.run([&]() -> task<void> {
      while (sent < data.size()) {
        auto r = co_await op::send_zc(client.get(), std::span(data).subspan(sent));
        if (!r && (r.error() == std::errc::invalid_argument ||
                   r.error() == std::errc::operation_not_supported)) {
          unsupported = true;
          break;
        }
        REQUIRE(r);
        // The kernel has let go of these bytes: scribbling on them must not change what the
        // peer receives.
        std::fill_n(data.begin() + static_cast<std::ptrdiff_t>(sent), *r, std::byte{0});
        sent += *r;
      }
    }());
    if (unsupported) {
      ::shutdown(client.get(), SHUT_RDWR);
      reader.join();
      MESSAGE("send_zc unsupported by this kernel: skipped");
      return;
    }
    reader.join();
    CHECK(sent == got.size());
    CHECK(test::matches_pattern(got, 0));
  }

  TEST_CASE("a span longer than 4 GiB gives a short transfer, not a wrapped length") {
    reactor_fixture f;
    auto file = test::temp_file();
    std::vector<std::byte> data(1 << 20);
    test::fill_pattern(data, 0);
    REQUIRE(::pwrite(file.get(), data.data(), data.size(), 0) == static_cast<ssize_t>(data.size()));
    // Address space only: the kernel touches the first MiB of it.
    const std::size_t huge = (std::size_t{4} << 30) + 8192;
    void* p = ::mmap(nullptr, huge, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    REQUIRE(p != MAP_FAILED);
    std::span<std::byte> big(static_cast<std::byte*>(p), huge);
    auto t = [&]() -> task<std::size_t> {
      auto n = co_await op::read(file.get(), big, 0);
      REQUIRE(n);
      co_return *n;
    };
    // A wrapped length would have read 8192 bytes.
    CHECK(f.run(t()) == data.size());
    CHECK(test::matches_pattern(big.first(data.size()), 0));
    ::munmap(p, huge);
  }

  TEST_CASE("poll reports readiness") {
    reactor_fixture f;
    auto pair = test::socket_pair();
    [[maybe_unused]] auto& a = pair.first;
    [[maybe_unused]] auto& b = pair.second;
    auto t = [&]() -> task<unsigned> {
      REQUIRE(::write(a.get(), "x", 1) == 1);
      auto ev = co_await op::poll(b.get(), POLLIN);
      REQUIRE(ev);
      co_return *ev;
    };
    CHECK((f.run(t()) & POLLIN) != 0);
  }

  TEST_CASE("splice moves file bytes through a pipe without a user copy") {
    reactor_fixture f;
    auto src = test::temp_file();
    auto dst = test::temp_file();
    std::vector<std::byte> data(300'000);
    test::fill_pattern(data, 77);
    REQUIRE(::pwrite(src.get(), data.data(), data.size(), 0) == static_cast<ssize_t>(data.size()));
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    test::unique_fd pr(p[0]), pw(p[1]);
    auto moved = f.run([&]() -> task<std::size_t> {
      std::size_t total = 0;
      while (total < data.size()) {
        auto in = co_await op::splice(src.get(), static_cast<std::int64_t>(total), pw.get(), -1,
                                      std::min<std::size_t>(65536, data.size() - total));
        REQUIRE(in);
        REQUIRE(*in > 0);
        std::size_t left = *in;
        while (left > 0) {
          auto out = co_await op::splice(pr.get(), -1, dst.get(),
                                         static_cast<std::int64_t>(total), left);
          REQUIRE(out);
          total += *out;
          left -= *out;
        }
      }
      co_return total;
    }());
    CHECK(moved == data.size());
    std::vector<std::byte> back(data.size());
    REQUIRE(::pread(dst.get(), back.data(), back.size(), 0) == static_cast<ssize_t>(back.size()));
    CHECK(test::matches_pattern(back, 77));
  }

  TEST_CASE("close through the ring closes the descriptor") {
    reactor_fixture f;
    auto pair = test::socket_pair();
    [[maybe_unused]] auto& a = pair.first;
    [[maybe_unused]] auto& b = pair.second;
    int fd = a.fd;
    a.fd = -1;
    auto r = f.run([&]() -> task<io_result<void>> { co_return co_await op::close(fd); }());
    CHECK(r);
    CHECK(::fcntl(fd, F_GETFD) == -1);
  }
}

TEST_SUITE("deadlines") {
  TEST_CASE("a deadline fires on a recv that never completes") {
    reactor_fixture f;
    auto pair = test::socket_pair();
    [[maybe_unused]] auto& a = pair.first;
    [[maybe_unused]] auto& b = pair.second;
    std::array<std::byte, 16> buf{};
    auto start = steady_clock::now();
    auto r = f.run([&]() -> task<io_result<std::size_t>> {
      co_return co_await op::recv(b.get(), buf, within(50ms));
    }());
    auto elapsed = steady_clock::now() - start;
    REQUIRE_FALSE(r);
    CHECK(r.error() == std::errc::timed_out);
    CHECK(elapsed >= 50ms);
  }

  TEST_CASE("an operation that beats its deadline keeps its result") {
    reactor_fixture f;
    auto pair = test::socket_pair();
    [[maybe_unused]] auto& a = pair.first;
    [[maybe_unused]] auto& b = pair.second;
    REQUIRE(::write(a.get(), "abc", 3) == 3);
    std::array<std::byte, 16> buf{};
    auto r = f.run([&]() -> task<io_result<std::size_t>> {
      co_return co_await op::recv(b.get(), buf, within(10s));
    }());
    REQUIRE(r);
    CHECK(*r == 3);
  }

  TEST_CASE("a deadline already in the past times out an idle recv at once") {
    reactor_fixture f;
    auto pair = test::socket_pair();
    [[maybe_unused]] auto& a = pair.first;
    [[maybe_unused]] auto& b = pair.second;
    std::array<std::byte, 16> buf{};
    auto r = f.run([&]() -> task<io_result<std::size_t>> {
      co_return co_await op::recv(b.get(), buf, until(steady_clock::now() - 1s));
    }());
    REQUIRE_FALSE(r);
    CHECK(r.error() == std::errc::timed_out);
  }
}

TEST_SUITE("cancellation") {
  TEST_CASE("cancelling a recv leaves its buffer untouched and the data for the next reader") {
    reactor_fixture f;
    auto pair = test::socket_pair();
    [[maybe_unused]] auto& a = pair.first;
    [[maybe_unused]] auto& b = pair.second;
    std::vector<std::byte> victim(4096, std::byte{0xAA});
    cancel_source cancel;
    auto t = [&]() -> task<std::string> {
      auto reader = [&]() -> task<io_result<std::size_t>> {
        co_return co_await op::recv(b.get(), victim, {.cancel = &cancel});
      };
      auto canceller = [&]() -> task<std::size_t> {
        co_await yield();
        co_return cancel.request_cancel();
      };
      auto [r, n] = co_await when_all(reader(), canceller());
      CHECK(n == 1);
      REQUIRE_FALSE(r);
      CHECK(r.error() == std::errc::operation_canceled);
      // The op has completed: the kernel may no longer write into `victim`. Prove it.
      REQUIRE(::write(a.get(), "late data", 9) == 9);
      std::array<std::byte, 32> other{};
      auto got = co_await op::recv(b.get(), other, within(5s));
      REQUIRE(got);
      co_return as_string(std::span(other).first(*got));
    };
    CHECK(f.run(t()) == "late data");
    CHECK(std::all_of(victim.begin(), victim.end(), [](std::byte x) { return x == std::byte{0xAA}; }));
  }

  TEST_CASE("an op started after its source was cancelled fails at once without reaching the kernel") {
    reactor_fixture f;
    auto pair = test::socket_pair();
    [[maybe_unused]] auto& a = pair.first;
    [[maybe_unused]] auto& b = pair.second;
    cancel_source cancel;
    cancel.request_cancel();
    std::array<std::byte, 8> buf{};
    auto before = f.r.stats().sqes;
    auto r = f.run([&]() -> task<io_result<std::size_t>> {
      co_return co_await op::recv(b.get(), buf, {.cancel = &cancel});
    }());
    CHECK(r.error() == std::errc::operation_canceled);
    CHECK(f.r.stats().sqes == before);
  }

  TEST_CASE("cancel_fd cancels every operation waiting on a descriptor") {
    reactor_fixture f;
    auto pair = test::socket_pair();
    [[maybe_unused]] auto& a = pair.first;
    [[maybe_unused]] auto& b = pair.second;
    std::array<std::byte, 8> buf1{}, buf2{};
    auto t = [&]() -> task<int> {
      auto waiter = [&](std::span<std::byte> buf) -> task<io_result<std::size_t>> {
        co_return co_await op::recv(b.get(), buf);
      };
      auto killer = [&]() -> task<io_result<std::size_t>> {
        co_await yield();
        co_return co_await op::cancel_fd(b.get());
      };
      auto [r1, r2, k] = co_await when_all(waiter(buf1), waiter(buf2), killer());
      REQUIRE(k);
      CHECK(*k == 2);
      CHECK(r1.error() == std::errc::operation_canceled);
      CHECK(r2.error() == std::errc::operation_canceled);
      co_return 0;
    };
    CHECK(f.run(t()) == 0);
  }

  TEST_CASE("a cancel that arrives after completion keeps the real result") {
    reactor_fixture f;
    auto pair = test::socket_pair();
    [[maybe_unused]] auto& a = pair.first;
    [[maybe_unused]] auto& b = pair.second;
    REQUIRE(::write(a.get(), "ok", 2) == 2);
    cancel_source cancel;
    std::array<std::byte, 8> buf{};
    auto r = f.run([&]() -> task<io_result<std::size_t>> {
      auto res = co_await op::recv(b.get(), buf, {.cancel = &cancel});
      cancel.request_cancel();  // nothing left attached: a no-op
      co_return res;
    }());
    REQUIRE(r);
    CHECK(*r == 2);
  }
}
