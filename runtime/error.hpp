// ringfetch::error: the one typed error of the public API, and result<T> built on it.
//
// An error says what kind of thing went wrong (so callers can branch without parsing text),
// whether retrying may help, where it happened (URL, byte offset) and a readable message.
// Messages never contain credentials: layers that build them pass URLs without tokens.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

#include "runtime/result.hpp"

namespace ringfetch {

enum class error_kind {
  transport,        // socket-level failure: refused, reset, unreachable, EOF mid-message
  tls,              // handshake or certificate failure
  http_status,      // the server answered with a status we cannot use
  protocol,         // malformed or unexpected bytes from the peer
  checksum,         // data does not match its crc32c / md5
  auth,             // credentials missing, rejected or unusable
  not_found,        // object, bucket or file does not exist
  precondition,     // generation changed, range not satisfiable, ...
  cancelled,        // the operation was cancelled by its owner
  timeout,          // a deadline passed
  invalid_argument, // the caller asked for something impossible
  resource,         // out of memory, file descriptors or registered buffers
  internal,         // a bug in ringfetch
};

std::string_view to_string(error_kind kind) noexcept;

struct error {
  static constexpr std::uint64_t no_offset = std::numeric_limits<std::uint64_t>::max();

  error_kind kind = error_kind::internal;
  std::string message{};
  std::error_code code{};       // the underlying system error, when there is one
  bool retryable = false;
  int http_status = 0;          // non-zero for http_status errors
  std::string url{};            // without credentials
  std::uint64_t offset = no_offset;
  // The server certainly did not act on the request (HTTP/2 GOAWAY above it, REFUSED_STREAM, never
  // sent): it may be sent again, whatever its method.
  bool not_processed = false;

  // "timeout: recv: Connection timed out (url https://h/o, offset 1048576)"
  std::string describe() const;

  // Classifies a system error: ETIMEDOUT → timeout, ECANCELED → cancelled, resets → retryable
  // transport, EMFILE/ENOMEM → resource.
  static error from_code(std::error_code code, std::string_view what);
};

template <class T>
using result = basic_result<T, error>;

}  // namespace ringfetch
