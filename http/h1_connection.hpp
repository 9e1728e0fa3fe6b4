// h1_connection: HTTP/1.1 requests over one transport, keep-alive, bodies straight into the
// caller's span.
//
// A 2xx body lands in `dest`: with a Content-Length, the bytes after the head are received
// directly into it (the transport reads into `dest` itself; only what arrived together with the
// head is copied); chunked and close-delimited bodies pass through the parser, copied once. A
// body larger than `dest` is an error; a body cut short is an error saying how many bytes came.
// Other statuses keep up to 64 KiB of their body as text for error messages, never in `dest`.
// One request at a time; the connection is reusable() after a complete keep-alive response.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "http/h1_parser.hpp"
#include "http/message.hpp"
#include "http/transport.hpp"
#include "runtime/error.hpp"
#include "runtime/task.hpp"

namespace ringfetch::http {

struct h1_options {
  std::chrono::milliseconds first_byte_timeout{30'000};  // request sent → first response byte
  std::chrono::milliseconds idle_timeout{30'000};        // longest silence inside a response
  h1_limits limits{};
};

class h1_connection {
 public:
  h1_connection(std::unique_ptr<transport> t, std::string authority, h1_options options = {});

  // Sends `req` and receives the response, its 2xx body into `dest`. `dest` must stay valid
  // until the co_await returns. Errors carry the URL-less target and the byte offset reached.
  // `cancel` (optional, must outlive the call) aborts the exchange: the send returns
  // error_kind::cancelled and the connection is no longer reusable.
  task<result<response>> send(const request& req, std::span<std::byte> dest,
                              cancel_source* cancel = nullptr);
  // Whether the last send() received any byte of a response: a request that failed before that
  // on a reused connection may be replayed elsewhere (the server closed it before reading).
  bool response_started() const noexcept { return response_started_; }

  bool reusable() const noexcept { return reusable_ && transport_->is_open(); }
  transport& stream() noexcept { return *transport_; }
  task<void> close();

 private:
  task<result<std::size_t>> receive(std::span<std::byte> into, std::chrono::milliseconds timeout,
                                     const request& req);
  std::string request_head(const request& req) const;
  error failure(error e, const request& req, std::uint64_t offset) const;

  std::unique_ptr<transport> transport_;
  std::string authority_;
  h1_options options_;
  h1_parser parser_;
  std::vector<std::byte> staging_;  // the head, and bodies that must pass through the parser
  bool reusable_ = true;
  bool response_started_ = false;
  cancel_source* cancel_ = nullptr;  // of the send() under way
};

}  // namespace ringfetch::http
