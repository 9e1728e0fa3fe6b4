// basic_result<T, E>: a value or an error, never both (StatusOr / std::expected style).
//
// The project uses two spellings of it: `io_result<T>` (errors are kernel `std::error_code`s,
// returned by every awaiter in ops.hpp) and `result<T>` (errors are typed `ringfetch::error`s,
// returned by the public API; see error.hpp). End of stream is a value (e.g. 0 bytes), never an
// error. Reading the value of an error result is a bug and throws `bad_result_access`.
#pragma once

#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace ringfetch {

class bad_result_access : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

template <class T, class E>
class [[nodiscard]] basic_result {
 public:
  using value_type = T;
  using error_type = E;

  template <class U = T>
    requires std::is_constructible_v<T, U&&> && (!std::is_same_v<std::remove_cvref_t<U>, E>) &&
             (!std::is_same_v<std::remove_cvref_t<U>, basic_result>)
  basic_result(U&& value) : state_(std::in_place_index<0>, std::forward<U>(value)) {}
  basic_result(E error) : state_(std::in_place_index<1>, std::move(error)) {}

  bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { check(); return std::get<0>(state_); }
  const T& value() const& { check(); return std::get<0>(state_); }
  T&& value() && { check(); return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? std::get<0>(state_) : static_cast<T>(std::forward<U>(fallback));
  }

  // Precondition: !has_value().
  const E& error() const& { return std::get<1>(state_); }
  E&& error() && { return std::get<1>(std::move(state_)); }

 private:
  void check() const {
    if (!has_value()) throw bad_result_access("value() called on a result holding an error");
  }
  std::variant<T, E> state_;
};

template <class E>
class [[nodiscard]] basic_result<void, E> {
 public:
  using value_type = void;
  using error_type = E;

  basic_result() = default;
  basic_result(E error) : error_(std::move(error)), failed_(true) {}

  bool has_value() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return has_value(); }
  void value() const {
    if (failed_) throw bad_result_access("value() called on a result holding an error");
  }
  const E& error() const& { return error_; }
  E&& error() && { return std::move(error_); }

 private:
  E error_{};
  bool failed_ = false;
};

template <class T>
using io_result = basic_result<T, std::error_code>;

// Maps a raw io_uring completion result (negative errno on failure) to an error code.
inline std::error_code errno_code(int negative_errno) noexcept {
  return {-negative_errno, std::system_category()};
}

template <class R>
inline constexpr bool is_basic_result_v = false;
template <class T, class E>
inline constexpr bool is_basic_result_v<basic_result<T, E>> = true;

}  // namespace ringfetch
