#include "http/url.hpp"

#include <arpa/inet.h>

#include <cctype>

namespace ringfetch::http {
namespace {

// The URL as it may appear in a message: any user-info (a password, say) replaced by "***".
std::string redacted(std::string_view text) {
  auto start = text.find("://");
  start = start == std::string_view::npos ? 0 : start + 3;
  auto end = text.find_first_of("/?#", start);
  auto at = text.substr(0, end).rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(text);
  return std::string(text.substr(0, start)) + "***" + std::string(text.substr(at));
}

error invalid(std::string_view text, std::string what) {
  error e;
  e.kind = error_kind::invalid_argument;
  e.message = "invalid URL '" + redacted(text) + "': " + std::move(what);
  return e;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool unreserved(unsigned char c) noexcept {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A registered name: letters, digits, '-', '.', and no empty label.
bool valid_host_name(std::string_view h) {
  if (h.empty() || h.size() > 253 || h.front() == '.' || h.back() == '-') return false;
  char prev = '.';
  for (char c : h) {
    auto u = static_cast<unsigned char>(c);
    if (c == '.' && prev == '.') return false;
    if (!std::isalnum(u) && c != '-' && c != '.' && c != '_') return false;
    prev = c;
  }
  return true;
}

}  // namespace

std::string url::authority() const {
  std::string out;
  if (ipv6_literal) out += '[';
  out += host;
  if (ipv6_literal) out += ']';
  if (!default_port()) {
    out += ':';
    out += std::to_string(port);
  }
  return out;
}

std::string url::str() const { return scheme + "://" + authority() + target; }

result<url> url::parse(std::string_view text) {
  url u;
  auto sep = text.find("://");
  if (sep == std::string_view::npos) return invalid(text, "expected scheme://host");
  u.scheme = lower(text.substr(0, sep));
  if (u.scheme != "http" && u.scheme != "https")
    return invalid(text, "unsupported scheme '" + u.scheme + "' (http and https only)");
  u.port = u.tls() ? 443 : 80;

  std::string_view rest = text.substr(sep + 3);
  for (char c : rest) {
    auto uc = static_cast<unsigned char>(c);
    if (uc <= 0x20 || uc == 0x7f)
      return invalid(text, "contains a space or control character (percent-encode it)");
  }
  if (auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  std::size_t auth_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, auth_end);
  std::string_view target = auth_end == std::string_view::npos ? "" : rest.substr(auth_end);
  if (authority.find('@') != std::string_view::npos)
    return invalid(text, "credentials in the URL (name:password@) are not supported: they go in headers");

  std::string_view host = authority, port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return invalid(text, "unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid(text, "unexpected text after IPv6 literal");
      port_text = after.substr(1);
    }
    in6_addr a6;
    if (::inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1)
      return invalid(text, "bad IPv6 literal '" + std::string(host) + "'");
    u.ipv6_literal = true;
  } else {
    auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return invalid(text, "empty port");
    }
    if (!valid_host_name(host)) return invalid(text, "bad host name '" + std::string(host) + "'");
  }
  if (!port_text.empty()) {
    unsigned long port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) return invalid(text, "bad port '" + std::string(port_text) + "'");
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port > 65535) return invalid(text, "port out of range");
    u.port = static_cast<std::uint16_t>(port);
  }
  u.host = lower(host);

  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i] == '%' &&
        (i + 2 >= target.size() || hex_value(target[i + 1]) < 0 || hex_value(target[i + 2]) < 0))
      return invalid(text, "malformed percent-escape in path or query");
  }
  u.target = target.empty() ? "/" : (target.front() == '?' ? "/" + std::string(target) : std::string(target));
  return u;
}

std::string percent_encode(std::string_view raw) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size() * 3);
  for (char c : raw) {
    auto u = static_cast<unsigned char>(c);
    if (unreserved(u)) {
      out += c;
    } else {
      out += '%';
      out += digits[u >> 4];
      out += digits[u & 15];
    }
  }
  return out;
}

result<std::string> percent_decode(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      out += encoded[i];
      continue;
    }
    const bool complete = i + 2 < encoded.size();
    int hi = complete ? hex_value(encoded[i + 1]) : -1;
    int lo = complete ? hex_value(encoded[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      error e;
      e.kind = error_kind::invalid_argument;
      e.message = "malformed percent-escape at byte " + std::to_string(i) + " of '" +
                  std::string(encoded) + "'";
      return e;
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace ringfetch::http
