// The request and response of one HTTP exchange, shared by h1_connection and h2_session so both
// protocols take the same request and fill the same response.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/h1_parser.hpp"

namespace ringfetch::http {

struct byte_range {
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive, as in "Range: bytes=first-last"
};

struct request {
  std::string method = "GET";
  std::string target = "/";              // path and query, percent-encoded
  std::vector<header_field> headers{};   // extra headers (never logged)
  std::optional<byte_range> range{};
  // Sent with Content-Length (HTTP/1.1; h2_session refuses a body). Never logged: it may carry
  // credentials (an OAuth token exchange, say).
  std::string body{};
};

struct response {
  int status = 0;
  std::vector<header_field> headers;
  std::uint64_t body_bytes = 0;  // bytes written into dest (2xx only)
  std::string error_body;        // first 64 KiB of a non-2xx body

  const std::string* header(std::string_view lower_case_name) const noexcept {
    for (auto& h : headers)
      if (h.name == lower_case_name) return &h.value;
    return nullptr;
  }
};

}  // namespace ringfetch::http
