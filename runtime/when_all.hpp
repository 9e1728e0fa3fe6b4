// when_all: run several tasks concurrently on the current reactor and wait for all of them.
//
// Every child starts at once (each runs until its first suspension), the awaiting coroutine
// resumes when the last one finishes, and results come back in the children's order. A child
// that throws does not stop the others: all run to completion, then the first exception (in
// child order) is rethrown. I/O errors are values, so they simply come back as results.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/task.hpp"

namespace ringfetch {
namespace detail {

struct when_all_counter {
  std::size_t remaining = 0;
  std::coroutine_handle<> parent;
};

// A child coroutine that reports to the counter when it finishes; its frame is owned (and
// destroyed) by the when_all call that made it.
class when_all_child {
 public:
  struct promise_type {
    when_all_counter* counter = nullptr;
    when_all_child get_return_object() noexcept {
      return when_all_child{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    struct final_awaiter {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        when_all_counter* c = h.promise().counter;
        return --c->remaining == 0 ? c->parent : std::noop_coroutine();
      }
      void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() const noexcept { std::terminate(); }  // children catch everything
  };

  explicit when_all_child(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  when_all_child(when_all_child&& o) noexcept : handle_(std::exchange(o.handle_, {})) {}
  when_all_child& operator=(when_all_child&&) = delete;
  ~when_all_child() {
    if (handle_) handle_.destroy();
  }
  void start(when_all_counter& c) {
    handle_.promise().counter = &c;
    handle_.resume();
  }

 private:
  std::coroutine_handle<promise_type> handle_;
};

template <class T>
when_all_child run_child(task<T>& t, std::optional<T>& out, std::exception_ptr& failure) {
  try {
    out.emplace(co_await std::move(t));
  } catch (...) {
    failure = std::current_exception();
  }
}

inline when_all_child run_child(task<void>& t, std::optional<std::monostate>& out,
                                std::exception_ptr& failure) {
  try {
    co_await std::move(t);
    out.emplace();
  } catch (...) {
    failure = std::current_exception();
  }
}

// Starts all children; suspends the parent unless they all finished synchronously.
struct start_children {
  std::vector<when_all_child>& children;
  when_all_counter& counter;
  bool await_ready() const noexcept { return children.empty(); }
  bool await_suspend(std::coroutine_handle<> parent) {
    counter.parent = parent;
    counter.remaining = children.size() + 1;  // +1: ours, so no child can resume us early
    for (auto& c : children) c.start(counter);
    return --counter.remaining != 0;
  }
  void await_resume() const noexcept {}
};

template <class T>
using stored_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

inline void rethrow_first(const std::vector<std::exception_ptr>& failures) {
  for (auto& f : failures)
    if (f) std::rethrow_exception(f);
}

}  // namespace detail

template <class T>
task<std::vector<detail::stored_t<T>>> when_all(std::vector<task<T>> tasks) {
  using S = detail::stored_t<T>;
  std::vector<std::optional<S>> results(tasks.size());
  std::vector<std::exception_ptr> failures(tasks.size());
  std::vector<detail::when_all_child> children;
  children.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    children.push_back(detail::run_child(tasks[i], results[i], failures[i]));
  }
  detail::when_all_counter counter;
  co_await detail::start_children{children, counter};
  detail::rethrow_first(failures);
  std::vector<S> out;
  out.reserve(results.size());
  for (auto& r : results) out.push_back(std::move(*r));
  co_return out;
}

template <class... Ts>
task<std::tuple<detail::stored_t<Ts>...>> when_all(task<Ts>... tasks) {
  std::tuple<task<Ts>...> owned{std::move(tasks)...};
  std::tuple<std::optional<detail::stored_t<Ts>>...> results;
  std::vector<std::exception_ptr> failures(sizeof...(Ts));
  std::vector<detail::when_all_child> children;
  children.reserve(sizeof...(Ts));
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (children.push_back(
         detail::run_child(std::get<I>(owned), std::get<I>(results), failures[I])),
     ...);
  }(std::index_sequence_for<Ts...>{});
  detail::when_all_counter counter;
  co_await detail::start_children{children, counter};
  detail::rethrow_first(failures);
  co_return std::apply(
      [](auto&... r) { return std::tuple<detail::stored_t<Ts>...>{std::move(*r)...}; }, results);
}

}  // namespace ringfetch
