// CRC-32C (Castagnoli), the checksum GCS keeps for every object, and its base64 wire form.
//
// Computed with ISA-L's crc32_iscsi (hardware CRC32 instructions where the CPU has them).
// crc32c_combine joins the CRCs of two adjacent byte ranges without reading the bytes again, so
// parts fetched concurrently and out of order can still be checked against the whole object's
// crc32c. All functions are pure and thread-safe; a crc32c object is a plain value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "runtime/error.hpp"

namespace ringfetch::gcs {

// Incremental CRC-32C: feeding a byte sequence in any number of pieces gives the same value() as
// feeding it at once. A default-constructed object is the CRC of no bytes (0).
class crc32c {
 public:
  crc32c() = default;

  crc32c& update(std::span<const std::byte> bytes) noexcept;
  crc32c& update(std::string_view bytes) noexcept;
  // The CRC-32C of everything fed so far (init 0xFFFFFFFF and final xor already applied).
  std::uint32_t value() const noexcept { return ~state_; }

  static std::uint32_t of(std::span<const std::byte> bytes) noexcept;
  static std::uint32_t of(std::string_view bytes) noexcept;

 private:
  std::uint32_t state_ = 0xFFFFFFFFu;  // the raw (not inverted) register, as ISA-L chains it
};

// The CRC-32C of A followed by B, given crc(A), crc(B) and B's length. O(log len_b).
std::uint32_t crc32c_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t len_b) noexcept;

// The GCS wire form: base64 (standard alphabet, padded) of the 4 bytes in big-endian order,
// e.g. 0 → "AAAAAA==". Used by the JSON `crc32c` field and `x-goog-hash: crc32c=...`.
std::string crc32c_to_base64(std::uint32_t crc);
// Errors are error_kind::protocol naming the bad text (wrong length, bad characters, padding).
result<std::uint32_t> crc32c_from_base64(std::string_view text);

}  // namespace ringfetch::gcs
