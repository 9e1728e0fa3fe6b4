#include "runtime/error.hpp"

#include <cerrno>

namespace ringfetch {

std::string_view to_string(error_kind kind) noexcept {
  switch (kind) {
    case error_kind::transport: return "transport";
    case error_kind::tls: return "tls";
    case error_kind::http_status: return "http status";
    case error_kind::protocol: return "protocol";
    case error_kind::checksum: return "checksum";
    case error_kind::auth: return "auth";
    case error_kind::not_found: return "not found";
    case error_kind::precondition: return "precondition";
    case error_kind::cancelled: return "cancelled";
    case error_kind::timeout: return "timeout";
    case error_kind::invalid_argument: return "invalid argument";
    case error_kind::resource: return "resource";
    case error_kind::internal: return "internal";
  }
  return "unknown";
}

std::string error::describe() const {
  std::string out{to_string(kind)};
  out += ": ";
  out += message;
  if (code) {
    out += ": ";
    out += code.message();
  }
  if (!url.empty() || offset != no_offset) {
    out += " (";
    if (!url.empty()) out += "url " + url;
    if (!url.empty() && offset != no_offset) out += ", ";
    if (offset != no_offset) out += "offset " + std::to_string(offset);
    out += ")";
  }
  return out;
}

error error::from_code(std::error_code code, std::string_view what) {
  error e;
  e.message = std::string(what);
  e.code = code;
  if (code.category() != std::system_category() && code.category() != std::generic_category()) {
    e.kind = error_kind::internal;
    return e;
  }
  switch (code.value()) {
    case ETIMEDOUT:
    case ETIME:
      e.kind = error_kind::timeout;
      e.retryable = true;
      break;
    case ECANCELED:
      e.kind = error_kind::cancelled;
      break;
    case ECONNRESET:
    case ECONNREFUSED:
    case ECONNABORTED:
    case EPIPE:
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case ENETRESET:
    case EAGAIN:
      e.kind = error_kind::transport;
      e.retryable = true;
      break;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOBUFS:
      e.kind = error_kind::resource;
      break;
    case ENOENT:
      e.kind = error_kind::not_found;
      break;
    case EINVAL:
    case EBADF:
      e.kind = error_kind::invalid_argument;
      break;
    default:
      e.kind = error_kind::transport;
      break;
  }
  return e;
}

}  // namespace ringfetch
