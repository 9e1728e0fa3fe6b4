// decimal: strict parsing of unsigned decimal numbers from untrusted text.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ringfetch::gcs {

// Plain decimal digits only (no sign, no spaces); std::nullopt when empty, not digits or more
// than 64 bits.
inline std::optional<std::uint64_t> decimal(std::string_view s) noexcept {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  return v;
}

}  // namespace ringfetch::gcs
