// sync_wait: the blocking bridge for plain C++ code: run a task to completion on this thread.
//
// The calling thread gets a temporary reactor of its own for the duration of the call, so this
// works from any plain thread with no runtime at all. Calling it on a reactor thread would
// deadlock that reactor and throws std::logic_error instead. To run a task on one of a runtime's
// reactors (where its connection pools live), use runtime::block_on.
#pragma once

#include <stdexcept>
#include <utility>

#include "runtime/reactor.hpp"
#include "runtime/task.hpp"

namespace ringfetch {

template <class T>
T sync_wait(task<T> t, reactor_options options = {.sq_entries = 64}) {
  if (reactor::current() != nullptr) {
    throw std::logic_error("sync_wait called on a reactor thread: co_await the task instead");
  }
  reactor r(options);
  return r.block_on(std::move(t));
}

}  // namespace ringfetch
