#include "http/openssl_errors.hpp"

#include <openssl/err.h>

namespace ringfetch::http {

std::string drain_openssl_errors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out;
}

error openssl_failure(std::string_view what) {
  std::string message(what);
  if (std::string queued = drain_openssl_errors(); !queued.empty()) message += ": " + queued;
  return error{.kind = error_kind::tls, .message = std::move(message)};
}

}  // namespace ringfetch::http
