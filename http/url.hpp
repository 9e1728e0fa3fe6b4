// url: an absolute http:// or https:// URL, parsed and validated once, with the
// percent-encoding helpers the GCS layer reuses for object names.
//
// Only what a client needs: scheme, host (IPv6 literals without their brackets), port (the
// scheme's default when absent), and the request target (path + query, exactly as given, which
// must already be percent-encoded). Fragments are dropped (never sent). User-info
// (user:password@) is refused: credentials travel in headers, never in URLs that get logged.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/error.hpp"

namespace ringfetch::http {

struct url {
  std::string scheme;       // "http" or "https", lower case
  std::string host;         // lower case; an IPv6 literal without brackets
  std::uint16_t port = 0;   // explicit, or 80 / 443
  std::string target = "/"; // path and query, percent-encoded, starting with '/'
  bool ipv6_literal = false;

  bool tls() const noexcept { return scheme == "https"; }
  bool default_port() const noexcept { return port == (tls() ? 443 : 80); }
  // For the Host header and pool keys: "host", "host:8080", "[::1]:8443".
  std::string authority() const;
  // "https://host:8443/path?q": the URL as it will be requested (no fragment).
  std::string str() const;

  // Errors are error_kind::invalid_argument and name what is wrong.
  static result<url> parse(std::string_view text);
};

// Encodes every byte except RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~), so the result
// is safe as a single path segment or query value: a GCS object name "a/b c#?" becomes
// "a%2Fb%20c%23%3F".
std::string percent_encode(std::string_view raw);

// Decodes %XX escapes; a malformed escape is an error (never passed through silently).
result<std::string> percent_decode(std::string_view encoded);

}  // namespace ringfetch::http
