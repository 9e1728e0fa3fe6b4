// base64url (RFC 4648 §5: '-' and '_' instead of '+' and '/') without '=' padding, as JWTs
// (RFC 7515 §2) spell their header, claims and signature.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ringfetch::gcs {

std::string base64url_encode(std::span<const std::byte> bytes);
std::string base64url_encode(std::string_view text);
// std::nullopt for padding, '+' or '/', any other character outside the alphabet, an impossible
// length or non-zero trailing bits: a JWT part has exactly one spelling.
std::optional<std::vector<std::byte>> base64url_decode(std::string_view text);

}  // namespace ringfetch::gcs
