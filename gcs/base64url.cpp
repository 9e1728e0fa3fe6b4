#include "gcs/base64url.hpp"

#include "gcs/base64.hpp"

namespace ringfetch::gcs {

// Both directions go through the strict standard codec, translating the two characters that
// differ and the padding, so there is one base64 implementation to trust.
std::string base64url_encode(std::span<const std::byte> bytes) {
  std::string text = base64_encode(bytes);
  while (!text.empty() && text.back() == '=') text.pop_back();
  for (char& c : text) {
    if (c == '+') c = '-';
    else if (c == '/') c = '_';
  }
  return text;
}

std::string base64url_encode(std::string_view text) {
  return base64url_encode(std::as_bytes(std::span(text.data(), text.size())));
}

std::optional<std::vector<std::byte>> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string standard;
  standard.reserve(text.size() + 2);
  for (char c : text) {
    if (c == '+' || c == '/' || c == '=') return std::nullopt;
    standard += c == '-' ? '+' : c == '_' ? '/' : c;
  }
  standard.append((4 - standard.size() % 4) % 4, '=');
  return base64_decode(standard);
}

}  // namespace ringfetch::gcs
