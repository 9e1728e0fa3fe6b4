// A program outside the ringfetch tree, built against the installed headers and library only.
#include <runtime/ops.hpp>
#include <runtime/sync_wait.hpp>
#include <runtime/timer.hpp>

#include <chrono>
#include <cstdio>

int main() {
  using namespace std::chrono_literals;
  bool ok = ringfetch::sync_wait([]() -> ringfetch::task<bool> {
    auto n = co_await ringfetch::op::nop();
    auto s = co_await ringfetch::sleep_for(1ms);
    co_return n && s;
  }());
  std::puts(ok ? "consumer ok" : "consumer FAILED");
  return ok ? 0 : 1;
}
