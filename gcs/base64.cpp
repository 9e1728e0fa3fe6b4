#include "gcs/base64.hpp"

#include <cstdint>

namespace ringfetch::gcs {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::string base64_encode(std::span<const std::byte> bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t v = std::to_integer<std::uint32_t>(bytes[i]) << 16 |
                      std::to_integer<std::uint32_t>(bytes[i + 1]) << 8 |
                      std::to_integer<std::uint32_t>(bytes[i + 2]);
    out += alphabet[v >> 18 & 63];
    out += alphabet[v >> 12 & 63];
    out += alphabet[v >> 6 & 63];
    out += alphabet[v & 63];
  }
  std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = std::to_integer<std::uint32_t>(bytes[i]) << 16;
    if (rest == 2) v |= std::to_integer<std::uint32_t>(bytes[i + 1]) << 8;
    out += alphabet[v >> 18 & 63];
    out += alphabet[v >> 12 & 63];
    out += rest == 2 ? alphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::vector<std::byte>> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') padding = text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1;
  std::vector<std::byte> out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    std::size_t digits = last ? 4 - padding : 4;
    std::uint32_t v = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      int s = j < digits ? sextet(text[i + j]) : 0;
      if (s < 0) return std::nullopt;
      v = v << 6 | static_cast<std::uint32_t>(s);
    }
    out.push_back(static_cast<std::byte>(v >> 16));
    if (digits >= 3) out.push_back(static_cast<std::byte>(v >> 8 & 0xFF));
    if (digits == 4) out.push_back(static_cast<std::byte>(v & 0xFF));
    // Bits the padding drops must be zero: otherwise two texts would decode to the same bytes.
    if (digits == 3 && (v & 0xFF) != 0) return std::nullopt;
    if (digits == 2 && (v & 0xFFFF) != 0) return std::nullopt;
  }
  return out;
}

}  // namespace ringfetch::gcs
