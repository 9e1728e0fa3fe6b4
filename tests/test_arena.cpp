#include <doctest/doctest.h>

#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "runtime/ops.hpp"
#include "runtime/registered_arena.hpp"
#include "runtime/scheduling.hpp"
#include "test_support.hpp"

using namespace ringfetch;
using test::reactor_fixture;

namespace {

constexpr std::size_t MiB = std::size_t{1} << 20;

// Writes a patterned file, reads it back with read_fixed into arena buffers, writes those with
// write_fixed to a second file, and checks both directions byte for byte.
void round_trip_through_arena(reactor_fixture& f) {
  registered_arena& arena = *f.r.arena();
  auto src = test::temp_file();
  auto dst = test::temp_file();
  const std::size_t size = 6 * MiB + 12345;  // odd size: the last read is short
  std::vector<std::byte> data(size);
  test::fill_pattern(data, 5);
  REQUIRE(::pwrite(src.get(), data.data(), size, 0) == static_cast<ssize_t>(size));

  auto buf = arena.allocate(4 * MiB);
  REQUIRE(buf);
  CHECK(buf->size() == 4 * MiB);
  CHECK((buf->index() >= 0) == arena.registered());
  f.run([&]() -> task<void> {
    for (std::uint64_t off = 0; off < size;) {
      auto n = co_await op::read_fixed(src.get(), buf->fixed(), off);
      REQUIRE(n);
      REQUIRE(*n > 0);
      CHECK(test::matches_pattern(buf->bytes().first(*n), 5 + off));
      auto w = co_await op::write_fixed(dst.get(), buf->fixed().subspan(0, *n), off);
      REQUIRE(w);
      CHECK(*w == *n);
      off += *n;
    }
  }());
  std::vector<std::byte> back(size);
  REQUIRE(::pread(dst.get(), back.data(), size, 0) == static_cast<ssize_t>(size));
  CHECK(test::matches_pattern(back, 5));
}

// Drops CAP_IPC_LOCK from this process (its effective set), so RLIMIT_MEMLOCK applies to it.
bool drop_ipc_lock() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0) return false;
  data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
  return ::syscall(SYS_capset, &hdr, data) == 0;
}

}  // namespace

TEST_SUITE("registered_arena") {
  TEST_CASE("read_fixed and write_fixed through registered arena blocks are byte exact") {
    reactor_fixture f({.arena_bytes = 16 * MiB});
    REQUIRE(f.r.arena());
    if (!f.r.arena()->registered()) MESSAGE("not registered here: " << f.r.arena()->fallback_reason());
    round_trip_through_arena(f);
  }

  TEST_CASE("the forced fallback keeps the same API with plain memory, and says so once") {
    test::log_capture logs;
    reactor_fixture f({.arena_bytes = 16 * MiB, .arena_register = false});
    registered_arena& arena = *f.r.arena();
    CHECK_FALSE(arena.registered());
    CHECK(arena.fallback_reason() == "registration disabled by configuration");
    round_trip_through_arena(f);
    {
      registered_arena second(f.r, {.bytes = MiB, .try_register = false});
      CHECK_FALSE(second.registered());
    }
    // "Once" is per process: an earlier test case may already have said it.
    CHECK(logs.count_containing("registered arena") <= 1);
  }

  TEST_CASE("an 8 MiB memlock limit without CAP_IPC_LOCK degrades to plain memory") {
    // In a child process: the capability drop and the rlimit must not leak into other tests.
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      rlimit rl{8 * MiB, 8 * MiB};
      if (!drop_ipc_lock() || ::setrlimit(RLIMIT_MEMLOCK, &rl) != 0) ::_exit(3);
      try {
        reactor r({.arena_bytes = 64 * MiB});
        registered_arena& a = *r.arena();
        if (a.registered()) ::_exit(4);
        if (a.fallback_reason().find("RLIMIT_MEMLOCK") == std::string::npos) ::_exit(5);
        auto buf = a.allocate(MiB);
        if (!buf || buf->index() != -1) ::_exit(6);
        auto file = test::temp_file();
        std::vector<std::byte> data(MiB);
        test::fill_pattern(data, 9);
        if (::pwrite(file.get(), data.data(), MiB, 0) != static_cast<ssize_t>(MiB)) ::_exit(7);
        auto n = r.block_on([&]() -> task<io_result<std::size_t>> {
          co_return co_await op::read_fixed(file.get(), buf->fixed(), 0);
        }());
        if (!n || *n != MiB || !test::matches_pattern(buf->bytes().first(MiB), 9)) ::_exit(8);
      } catch (...) {
        ::_exit(9);
      }
      ::_exit(0);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }

  TEST_CASE("blocks are handed out, exhausted and returned") {
    reactor_fixture f({.arena_bytes = 8 * MiB});
    registered_arena& a = *f.r.arena();
    CHECK(a.capacity() == 8 * MiB);
    std::vector<arena_buffer> held;
    for (int i = 0; i < 8; ++i) {
      auto b = a.allocate(1);  // rounds up to one block
      REQUIRE(b);
      CHECK(b->size() == MiB);
      held.push_back(std::move(*b));
    }
    CHECK(a.free_bytes() == 0);
    CHECK_FALSE(a.allocate(1));
    held.erase(held.begin() + 2);
    held.erase(held.begin() + 4);
    CHECK(a.free_bytes() == 2 * MiB);
    CHECK_FALSE(a.allocate(2 * MiB));  // free, but not contiguous
    held.erase(held.begin() + 2);      // frees the neighbour of the first hole
    auto two = a.allocate(2 * MiB);
    REQUIRE(two);
    CHECK(two->size() == 2 * MiB);
    held.clear();
    two->release();
    CHECK(a.free_bytes() == 8 * MiB);
  }

  TEST_CASE("index_of finds registered memory and rejects foreign spans") {
    reactor_fixture f({.arena_bytes = 4 * MiB});
    registered_arena& a = *f.r.arena();
    auto b = a.allocate(2 * MiB);
    REQUIRE(b);
    int expected = a.registered() ? 0 : -1;
    CHECK(a.index_of(b->bytes().subspan(100, 1000)) == expected);
    std::vector<std::byte> foreign(100);
    CHECK(a.index_of(foreign) == -1);
  }

  TEST_CASE("a buffer released on another thread goes back to its arena by message") {
    reactor_fixture f({.arena_bytes = 2 * MiB});
    registered_arena& a = *f.r.arena();
    auto b = a.allocate(MiB);
    REQUIRE(b);
    std::thread([buf = std::move(*b)]() mutable { buf.release(); }).join();
    CHECK(a.free_bytes() == MiB);  // not yet: the message has not run
    f.run([]() -> task<void> { co_await yield(); }());
    CHECK(a.free_bytes() == 2 * MiB);
  }
}
