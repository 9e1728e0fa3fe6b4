// h1_parser: the HTTP/1.1 response head and body framing, on llhttp.
//
// It stops in two places so the client can move bytes with the fewest copies:
//  - right after the head of a final response with a body (phase::body), so the client can pick
//    the destination knowing the status; a body of known length (framing::fixed) it may then
//    receive straight into its destination and call begin() for the next response, without
//    feeding the body through the parser;
//  - at the end of every message, so bytes of a following response are never consumed.
// Chunked and close-delimited bodies are fed through: their bytes are copied once into the span
// given to set_body_destination(); a body larger than that span is an error, never a silent
// truncation. Interim 1xx responses (except 101) are skipped. The head is bounded (bytes and
// header count): a hostile server cannot make us allocate without bound.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/error.hpp"

namespace ringfetch::http {

struct header_field {
  std::string name;  // lower case
  std::string value; // surrounding whitespace trimmed
};

struct h1_limits {
  std::size_t max_head_bytes = 64 * 1024;
  std::size_t max_headers = 128;
};

class h1_parser {
 public:
  enum class phase { head, body, complete };
  enum class framing { none, fixed, chunked, until_close };

  explicit h1_parser(h1_limits limits = {});
  h1_parser(const h1_parser&) = delete;
  h1_parser& operator=(const h1_parser&) = delete;

  // Prepares for the next response on the connection. A response to HEAD never has a body.
  void begin(bool head_request);
  // Where body bytes fed through the parser are copied (chunked / close-delimited bodies).
  void set_body_destination(std::span<std::byte> dest) noexcept { dest_ = dest; }

  // Parses from `data`; returns how many bytes it consumed (it stops at the points above).
  // Errors are error_kind::protocol and say what was malformed.
  result<std::size_t> feed(std::span<const std::byte> data);
  // The peer closed the connection: completes a close-delimited body, otherwise says what is
  // missing ("connection closed after 12 bytes of the response head").
  result<void> finish();

  phase current() const noexcept { return phase_; }
  framing body_framing() const noexcept { return framing_; }
  int status() const noexcept { return status_; }
  const std::string& reason() const noexcept { return reason_; }
  const std::vector<header_field>& headers() const noexcept { return headers_; }
  const std::string* header(std::string_view lower_case_name) const noexcept;
  // Content-Length of a fixed-length body.
  std::optional<std::uint64_t> content_length() const noexcept { return content_length_; }
  // Bytes of body copied into the destination so far (fed-through bodies only).
  std::uint64_t body_bytes() const noexcept { return body_bytes_; }
  // Whether the connection may carry another request once this response is complete.
  bool keep_alive() const noexcept { return keep_alive_; }

 private:
  static const llhttp_settings_t settings;
  static int on_status(llhttp_t*, const char*, std::size_t);
  static int on_header_field(llhttp_t*, const char*, std::size_t);
  static int on_header_value(llhttp_t*, const char*, std::size_t);
  static int on_headers_complete(llhttp_t*);
  static int on_body(llhttp_t*, const char*, std::size_t);
  static int on_message_complete(llhttp_t*);

  int head_data(std::size_t n);
  int headers_complete();
  int body(const char* at, std::size_t n);
  int message_complete();
  void clear_head();
  error protocol_error(std::string what) const;

  llhttp_t parser_{};
  h1_limits limits_;
  bool head_request_ = false;
  phase phase_ = phase::head;
  framing framing_ = framing::none;
  int status_ = 0;
  std::string reason_;
  std::vector<header_field> headers_;
  bool in_value_ = false;
  std::size_t head_bytes_ = 0;
  std::optional<std::uint64_t> content_length_;
  std::span<std::byte> dest_;
  std::uint64_t body_bytes_ = 0;
  bool keep_alive_ = false;
  std::string failure_;  // set by a callback that refused the input
  std::uint64_t fed_ = 0;
};

}  // namespace ringfetch::http
