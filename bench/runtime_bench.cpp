// Runtime micro benches: the cost of one trip through the ring, and loopback TCP receive
// through the runtime against a plain blocking read() loop in the same run.
//
//   build/release/bench/runtime_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/ops.hpp"
#include "runtime/reactor.hpp"
#include "runtime/runtime.hpp"
#include "runtime/scheduling.hpp"
#include "runtime/when_all.hpp"

using namespace ringfetch;

namespace {

task<int> ready_value() { co_return 1; }

void BM_task_await(benchmark::State& state) {
  reactor r;
  r.block_on([&]() -> task<void> {
    for (auto _ : state) benchmark::DoNotOptimize(co_await ready_value());
  }());
}
BENCHMARK(BM_task_await);

// One nop per iteration: submit, enter, reap, resume (the awaiter round trip).
void BM_nop_round_trip(benchmark::State& state) {
  reactor r;
  r.block_on([&]() -> task<void> {
    for (auto _ : state) benchmark::DoNotOptimize(co_await op::nop());
  }());
}
BENCHMARK(BM_nop_round_trip);

// `batch` nops in flight at once: what batching buys per operation.
void BM_nop_batched(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  reactor r;
  auto one = []() -> task<void> { (void)co_await op::nop(); };
  r.block_on([&]() -> task<void> {
    for (auto _ : state) {
      std::vector<task<void>> ts;
      ts.reserve(batch);
      for (std::size_t i = 0; i < batch; ++i) ts.push_back(one());
      co_await when_all(std::move(ts));
    }
  }());
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
}
BENCHMARK(BM_nop_batched)->Arg(16)->Arg(64)->Arg(256);

// A coroutine hopping between two reactors (message + eventfd wake-up each way).
void BM_cross_reactor_hop(benchmark::State& state) {
  runtime rt({.reactors = 2});
  reactor& a = rt.at(0);
  reactor& b = rt.at(1);
  rt.block_on(0, [&]() -> task<void> {
    for (auto _ : state) {
      co_await resume_on(b);
      co_await resume_on(a);
    }
  }());
}
BENCHMARK(BM_cross_reactor_hop)->UseRealTime();

// A sender thread streams bytes over loopback TCP; the benchmark receives a fixed amount.
struct loopback_stream {
  int receiver = -1;
  int sender = -1;
  std::atomic<bool> stop{false};
  std::thread pump;

  loopback_stream() {
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listener, 1) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::runtime_error("loopback listener");
    receiver = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(receiver, reinterpret_cast<sockaddr*>(&addr), len) != 0)
      throw std::runtime_error("loopback connect");
    sender = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(listener);
    pump = std::thread([this] {
      std::vector<char> chunk(256 * 1024, 'x');
      while (!stop.load(std::memory_order_relaxed)) {
        if (::send(sender, chunk.data(), chunk.size(), MSG_NOSIGNAL) <= 0) break;
      }
    });
  }
  ~loopback_stream() {
    stop = true;
    ::shutdown(receiver, SHUT_RDWR);
    pump.join();
    ::close(sender);
    ::close(receiver);
  }
};

constexpr std::size_t per_iteration = 64 << 20;
constexpr std::size_t receive_buffer = 256 << 10;

void BM_loopback_recv_runtime(benchmark::State& state) {
  loopback_stream s;
  std::vector<std::byte> buf(receive_buffer);
  reactor r;
  r.block_on([&]() -> task<void> {
    for (auto _ : state) {
      std::size_t got = 0;
      while (got < per_iteration) {
        auto n = co_await op::recv(s.receiver, buf);
        if (!n || *n == 0) {
          state.SkipWithError("recv failed");
          co_return;
        }
        got += *n;
      }
    }
  }());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(per_iteration));
}
BENCHMARK(BM_loopback_recv_runtime)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_loopback_recv_blocking_read(benchmark::State& state) {
  loopback_stream s;
  std::vector<std::byte> buf(receive_buffer);
  for (auto _ : state) {
    std::size_t got = 0;
    while (got < per_iteration) {
      ssize_t n = ::read(s.receiver, buf.data(), buf.size());
      if (n <= 0) {
        state.SkipWithError("read failed");
        return;
      }
      got += static_cast<std::size_t>(n);
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(per_iteration));
}
BENCHMARK(BM_loopback_recv_blocking_read)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
