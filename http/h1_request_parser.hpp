// h1_request_parser: the server side of HTTP/1.1 framing, on llhttp in HTTP_REQUEST mode.
//
// Parses one request at a time: method, target, headers (names lower-cased, values trimmed) and
// a body framed by Content-Length or chunked encoding, copied into an owned buffer. It pauses at
// the end of every request, so bytes of a pipelined next request are never consumed: feed()
// returns how many bytes it took and the caller keeps the rest for after begin().
// Everything is bounded (head bytes, header count, body bytes): a hostile client cannot make it
// allocate without bound. Errors are error_kind::protocol values whose http_status says what the
// server should answer (400 malformed, 413 body too large, 431 head too large).
// Not thread-safe; one parser per connection.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/h1_parser.hpp"
#include "runtime/error.hpp"

namespace ringfetch::http {

struct request_limits {
  std::size_t max_head_bytes = 64 * 1024;        // request line + header names and values
  std::size_t max_headers = 128;
  std::uint64_t max_body_bytes = 64 * 1024 * 1024;
};

class h1_request_parser {
 public:
  enum class phase { head, body, complete };

  explicit h1_request_parser(request_limits limits = {});
  h1_request_parser(const h1_request_parser&) = delete;
  h1_request_parser& operator=(const h1_request_parser&) = delete;

  // Forgets the last request and prepares for the next one on the same connection.
  void begin();

  // Parses from `data` and returns how many bytes it consumed; it stops after a complete request.
  // After an error the parser stays failed until begin().
  result<std::size_t> feed(std::span<const std::byte> data);
  // The peer closed its side: an error unless no byte of a request had arrived (a clean close
  // between requests) or the request is complete. idle() tells the two apart.
  result<void> finish();

  phase current() const noexcept { return phase_; }
  // No byte of the current request has been seen yet.
  bool idle() const noexcept { return fed_ == 0; }

  // Valid once the head is parsed (current() != head), until begin().
  const std::string& method() const noexcept { return method_; }
  const std::string& target() const noexcept { return target_; }
  const std::vector<header_field>& headers() const noexcept { return headers_; }
  const std::string* header(std::string_view lower_case_name) const noexcept;
  // "HTTP/1.1" → {1, 1}.
  int version_major() const noexcept { return major_; }
  int version_minor() const noexcept { return minor_; }
  // Whether the connection may carry another request after this one (HTTP/1.1 default, or
  // HTTP/1.0 with Connection: keep-alive).
  bool keep_alive() const noexcept { return keep_alive_; }
  // Expect: 100-continue was asked for.
  bool expects_continue() const noexcept { return expects_continue_; }
  // Valid when current() == complete, until begin(); the body's storage may be moved out.
  std::vector<std::byte>& body() noexcept { return body_; }

 private:
  static const llhttp_settings_t settings;
  static int on_method(llhttp_t*, const char*, std::size_t);
  static int on_url(llhttp_t*, const char*, std::size_t);
  static int on_header_field(llhttp_t*, const char*, std::size_t);
  static int on_header_value(llhttp_t*, const char*, std::size_t);
  static int on_headers_complete(llhttp_t*);
  static int on_body(llhttp_t*, const char*, std::size_t);
  static int on_message_complete(llhttp_t*);

  int head_data(std::size_t n);
  int headers_complete();
  int body(const char* at, std::size_t n);
  int refuse(int status, std::string why);
  error protocol_error(int status, std::string what) const;

  llhttp_t parser_{};
  request_limits limits_;
  phase phase_ = phase::head;
  std::string method_;
  std::string target_;
  std::vector<header_field> headers_;
  bool in_value_ = false;
  std::size_t head_bytes_ = 0;
  int major_ = 1;
  int minor_ = 1;
  bool keep_alive_ = false;
  bool expects_continue_ = false;
  std::vector<std::byte> body_;
  int failure_status_ = 0;  // set by a callback that refused the input
  std::string failure_;
  std::optional<error> failed_;
  std::uint64_t fed_ = 0;
};

}  // namespace ringfetch::http
