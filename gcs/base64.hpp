// Standard base64 (RFC 4648 §4: A-Z a-z 0-9 + /, '=' padding), as GCS uses it for the crc32c
// and md5Hash of objects. Strict: the decoder refuses missing padding, characters outside the
// alphabet, whitespace and non-zero trailing bits, so a corrupted hash never decodes to a value.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ringfetch::gcs {

std::string base64_encode(std::span<const std::byte> bytes);
// std::nullopt when `text` is not canonical padded base64.
std::optional<std::vector<std::byte>> base64_decode(std::string_view text);

}  // namespace ringfetch::gcs
