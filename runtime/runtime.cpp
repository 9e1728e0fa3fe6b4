#include "runtime/runtime.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <barrier>
#include <latch>
#include <mutex>
#include <string>

#include "runtime/log.hpp"

namespace ringfetch {

struct start_sync {
  explicit start_sync(std::ptrdiff_t n) : started(n) {}
  std::latch started;
  std::mutex error_mutex;  // start-up only
};

// Shutdown runs in phases, each finished on every reactor before any starts the next, because a
// task owned by one reactor may be suspended on another (it moved there with resume_on):
//  1. drain_io: every reactor cancels and awaits its operations (and still runs messages);
//  2. one reactor at a time, destroy the detached tasks it owns, so no two threads tear down
//     frames that may share reactor-local objects; messages left in queues are dropped unrun;
//  3. no reactor is destroyed until all are done and stop() no longer touches them.
struct drain_sync {
  explicit drain_sync(std::ptrdiff_t n) : io_drained(n), destroyed(n + 1) {}
  std::barrier<> io_drained;
  std::latch destroyed;      // the reactors, plus stop() once it stopped touching them
  std::mutex phase2_mutex;   // shutdown only
};

namespace {

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  if (cpus.empty()) {
    unsigned n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned c = 0; c < n; ++c) cpus.push_back(static_cast<int>(c));
  }
  return cpus;
}

bool pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set) == 0;
}

}  // namespace

runtime::runtime(runtime_options options) {
  const std::vector<int> cpus = allowed_cpus();
  const unsigned n = options.reactors ? options.reactors : static_cast<unsigned>(cpus.size());
  reactors_.resize(n);
  cpus_.assign(n, -1);
  if (options.pin_threads) {
    for (unsigned i = 0; i < n; ++i) cpus_[i] = cpus[i % cpus.size()];
  }
  drain_ = std::make_unique<drain_sync>(n);
  start_sync sync(n);
  threads_.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    threads_.emplace_back([this, i, o = options.reactor, &sync] { thread_main(i, o, sync); });
  }
  sync.started.wait();
  if (start_error_) {
    stop();
    std::rethrow_exception(start_error_);
  }
}

runtime::~runtime() { stop(); }

void runtime::thread_main(unsigned i, reactor_options options, start_sync& sync) {
  if (cpus_[i] >= 0 && !pin_to(cpus_[i])) {
    log::debug("runtime: could not pin reactor " + std::to_string(i) + " to CPU " +
               std::to_string(cpus_[i]));
    cpus_[i] = -1;
  }
  try {
    reactors_[i] = std::make_unique<reactor>(options);
  } catch (...) {
    {
      std::lock_guard lock(sync.error_mutex);
      if (!start_error_) start_error_ = std::current_exception();
    }
    sync.started.count_down();
    drain_->io_drained.arrive_and_drop();
    drain_->destroyed.count_down();
    return;
  }
  reactor& r = *reactors_[i];
  sync.started.count_down();
  try {
    r.run_until_stopped();
    r.drain_io();
  } catch (const std::exception& e) {
    // A failing io_uring_enter is a bug or a dying kernel; stop this reactor loudly.
    log::error(std::string("reactor ") + std::to_string(i) + " stopped: " + e.what());
    try {
      r.drain_io();
    } catch (...) {
    }
  }
  drain_->io_drained.arrive_and_wait();
  {
    std::lock_guard lock(drain_->phase2_mutex);
    r.drop_messages();
    r.destroy_suspended();
    failures_ += r.failures();
    if (!first_exception_) first_exception_ = r.first_exception();
  }
  drain_->destroyed.arrive_and_wait();
  r.drop_messages();
  reactors_[i].reset();
}

std::size_t runtime::stop() {
  if (reactor::current() != nullptr) {
    for (auto& r : reactors_)
      if (r.get() == reactor::current())
        throw std::logic_error("runtime::stop called from one of its own reactors");
  }
  if (!stopped_.exchange(true, std::memory_order_seq_cst)) {
    // A post() that saw the runtime running may still be pushing into a reactor: let it finish.
    while (posting_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    for (auto& r : reactors_)
      if (r) r->request_stop();
    drain_->destroyed.count_down();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  return failures_.load();
}

}  // namespace ringfetch
