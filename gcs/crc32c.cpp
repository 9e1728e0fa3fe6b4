#include "gcs/crc32c.hpp"

#include <isa-l/crc.h>

#include <algorithm>
#include <array>
#include <climits>

#include "gcs/base64.hpp"

namespace ringfetch::gcs {
namespace {

// ISA-L takes an int length: feed huge spans in pieces that fit.
constexpr std::size_t max_piece = std::size_t{1} << 30;

std::uint32_t advance(std::uint32_t state, const std::byte* data, std::size_t size) noexcept {
  while (size > 0) {
    std::size_t piece = std::min(size, max_piece);
    // ISA-L's prototype lacks const but never writes the buffer.
    auto* bytes = const_cast<unsigned char*>(reinterpret_cast<const unsigned char*>(data));
    state = crc32_iscsi(bytes, static_cast<int>(piece), state);
    data += piece;
    size -= piece;
  }
  return state;
}

// zlib's crc32_combine, for the reflected Castagnoli polynomial: appending len_b zero bits to A
// is a linear map over GF(2), applied by repeated squaring of the one-zero-bit operator.
using gf2_matrix = std::array<std::uint32_t, 32>;
constexpr std::uint32_t castagnoli_reflected = 0x82F63B78u;

std::uint32_t times(const gf2_matrix& m, std::uint32_t vec) noexcept {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; vec != 0; ++i, vec >>= 1) {
    if (vec & 1) sum ^= m[i];
  }
  return sum;
}

gf2_matrix square(const gf2_matrix& m) noexcept {
  gf2_matrix out{};
  for (std::size_t i = 0; i < 32; ++i) out[i] = times(m, m[i]);
  return out;
}

}  // namespace

crc32c& crc32c::update(std::span<const std::byte> bytes) noexcept {
  state_ = advance(state_, bytes.data(), bytes.size());
  return *this;
}

crc32c& crc32c::update(std::string_view bytes) noexcept {
  return update(std::as_bytes(std::span(bytes.data(), bytes.size())));
}

std::uint32_t crc32c::of(std::span<const std::byte> bytes) noexcept {
  return crc32c().update(bytes).value();
}

std::uint32_t crc32c::of(std::string_view bytes) noexcept { return crc32c().update(bytes).value(); }

std::uint32_t crc32c_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t len_b) noexcept {
  if (len_b == 0) return crc_a;
  gf2_matrix odd{};  // operator for one zero bit
  odd[0] = castagnoli_reflected;
  for (std::size_t i = 1; i < 32; ++i) odd[i] = std::uint32_t{1} << (i - 1);
  gf2_matrix even = square(odd);  // two zero bits
  odd = square(even);             // four zero bits
  // Each round squares the operator (one zero byte, then two, four, ...) and applies it where
  // len_b has a one bit.
  do {
    even = square(odd);
    if (len_b & 1) crc_a = times(even, crc_a);
    len_b >>= 1;
    if (len_b == 0) break;
    odd = square(even);
    if (len_b & 1) crc_a = times(odd, crc_a);
    len_b >>= 1;
  } while (len_b != 0);
  return crc_a ^ crc_b;
}

std::string crc32c_to_base64(std::uint32_t crc) {
  const std::array<std::byte, 4> big_endian{static_cast<std::byte>(crc >> 24), static_cast<std::byte>(crc >> 16),
                                            static_cast<std::byte>(crc >> 8), static_cast<std::byte>(crc)};
  return base64_encode(big_endian);
}

result<std::uint32_t> crc32c_from_base64(std::string_view text) {
  auto bytes = base64_decode(text);
  if (!bytes || bytes->size() != 4) {
    error e;
    e.kind = error_kind::protocol;
    e.message = "crc32c '" + std::string(text.substr(0, 64)) + "' is not base64 of 4 bytes";
    return e;
  }
  std::uint32_t crc = 0;
  for (std::byte b : *bytes) crc = crc << 8 | std::to_integer<std::uint32_t>(b);
  return crc;
}

}  // namespace ringfetch::gcs
