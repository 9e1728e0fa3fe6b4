// transport: a connected byte stream (plain TCP today, TLS next) as the HTTP layers see it.
//
// read_some fills the front of `buffer` (0 bytes: the peer closed); write_all sends every byte or
// fails. Both take op_options, so every network wait has a deadline and can be cancelled.
// Buffers are borrowed for the duration of the co_await only. Not thread-safe: a transport
// belongs to the reactor that created it.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "runtime/io_op.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace ringfetch::http {

class transport {
 public:
  virtual ~transport() = default;
  virtual task<io_result<std::size_t>> read_some(std::span<std::byte> buffer, op_options o = {}) = 0;
  virtual task<io_result<void>> write_all(std::span<const std::byte> data, op_options o = {}) = 0;
  // Cancels whatever is in flight on this transport and closes it. Idempotent.
  virtual task<void> close() = 0;
  virtual bool is_open() const noexcept = 0;
  // "h2", "http/1.1", or empty when nothing was negotiated (plain TCP).
  virtual std::string alpn() const { return {}; }
  // "127.0.0.1:8080": where this transport is connected, for error messages.
  virtual std::string peer() const = 0;
  // The socket underneath, or -1: lets a pool check an idle connection without reading from it.
  virtual int native_handle() const noexcept { return -1; }
};

}  // namespace ringfetch::http
