#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gcs/base64.hpp"
#include "gcs/crc32c.hpp"

using namespace ringfetch;
using namespace ringfetch::gcs;

namespace {

std::vector<std::byte> random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

}  // namespace

TEST_SUITE("crc32c") {
  TEST_CASE("the RFC 3720 check vectors and 123456789 give their known CRC-32C") {
    std::array<std::byte, 32> zeros{}, ones{}, ascending{}, descending{};
    for (std::size_t i = 0; i < 32; ++i) {
      ones[i] = std::byte{0xFF};
      ascending[i] = static_cast<std::byte>(i);
      descending[i] = static_cast<std::byte>(31 - i);
    }
    CHECK(crc32c::of(zeros) == 0x8A9136AAu);
    CHECK(crc32c::of(ones) == 0x62A8AB43u);
    CHECK(crc32c::of(ascending) == 0x46DD794Eu);
    CHECK(crc32c::of(descending) == 0x113FDB5Cu);
    CHECK(crc32c::of("123456789") == 0xE3069283u);
    CHECK(crc32c::of("") == 0u);
    CHECK(crc32c().value() == 0u);
  }

  TEST_CASE("feeding bytes in random pieces gives the one-shot CRC") {
    std::mt19937_64 rng(20261123);
    for (int round = 0; round < 200; ++round) {
      auto data = random_bytes(rng, rng() % 5000);
      crc32c incremental;
      std::size_t at = 0;
      while (at < data.size()) {
        std::size_t piece = std::min<std::size_t>(data.size() - at, rng() % 300);
        incremental.update(std::span(data).subspan(at, piece));
        at += piece;
      }
      CHECK(incremental.value() == crc32c::of(data));
    }
  }

  TEST_CASE("combining the CRCs of two adjacent ranges gives the CRC of their concatenation") {
    std::mt19937_64 rng(7);
    for (int round = 0; round < 200; ++round) {
      auto data = random_bytes(rng, rng() % 4000);
      std::size_t split = data.empty() ? 0 : rng() % (data.size() + 1);
      auto a = std::span(data).first(split);
      auto b = std::span(data).subspan(split);
      CHECK(crc32c_combine(crc32c::of(a), crc32c::of(b), b.size()) == crc32c::of(data));
    }
    // "12345" + "6789" and a part of length zero.
    CHECK(crc32c_combine(crc32c::of("12345"), crc32c::of("6789"), 4) == 0xE3069283u);
    CHECK(crc32c_combine(crc32c::of("123456789"), crc32c::of(""), 0) == 0xE3069283u);
    CHECK(crc32c_combine(crc32c::of(""), crc32c::of("123456789"), 9) == 0xE3069283u);
  }

  TEST_CASE("many parts fetched out of order combine into the whole object's CRC") {
    std::mt19937_64 rng(99);
    auto data = random_bytes(rng, 100000);
    std::vector<std::size_t> cuts{0, data.size()};
    for (int i = 0; i < 20; ++i) cuts.push_back(rng() % data.size());
    std::sort(cuts.begin(), cuts.end());
    // Each part's CRC computed on its own, then joined left to right.
    std::uint32_t whole = 0;
    for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
      auto part = std::span(data).subspan(cuts[i], cuts[i + 1] - cuts[i]);
      whole = crc32c_combine(whole, crc32c::of(part), part.size());
    }
    CHECK(whole == crc32c::of(data));
  }

  TEST_CASE("ISA-L chains with the raw register, so the class matches a bitwise reference") {
    // A bitwise CRC-32C written from the definition, independent of ISA-L.
    auto reference = [](std::string_view s) {
      std::uint32_t crc = 0xFFFFFFFFu;
      for (unsigned char c : s) {
        crc ^= c;
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
      }
      return ~crc;
    };
    std::string text = "The quick brown fox jumps over the lazy dog";
    CHECK(crc32c().update(text.substr(0, 10)).update(text.substr(10)).value() == reference(text));
    CHECK(crc32c::of(text) == 0x22620404u);
  }

  TEST_CASE("crc32c travels as base64 of its big-endian bytes") {
    CHECK(crc32c_to_base64(0) == "AAAAAA==");
    CHECK(crc32c_to_base64(crc32c::of("")) == "AAAAAA==");
    CHECK(crc32c_to_base64(0xE3069283u) == "4waSgw==");
    CHECK(crc32c_to_base64(0xFFFFFFFFu) == "/////w==");
    for (std::uint32_t v : {0u, 1u, 0xE3069283u, 0x8A9136AAu, 0xFFFFFFFFu, 0x00FF00FFu}) {
      auto back = crc32c_from_base64(crc32c_to_base64(v));
      REQUIRE(back);
      CHECK(*back == v);
    }
  }

  TEST_CASE("base64 that is not exactly 4 canonical bytes is a protocol error naming it") {
    for (const char* bad : {"", "AAAA", "AAAAAA=", "AAAAAA", "AAAAAAA=", "AAAAAB==", "AA AAA==", "AAAA!A==",
                            "AAAAAAAA", "=AAAAAA=", "AAAAAA==AAAAAA=="}) {
      CAPTURE(bad);
      auto r = crc32c_from_base64(bad);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == error_kind::protocol);
      CHECK(r.error().message.find("crc32c") != std::string::npos);
    }
  }

  TEST_CASE("base64 round-trips every length and refuses non-canonical text") {
    std::mt19937_64 rng(3);
    for (std::size_t n = 0; n < 40; ++n) {
      auto data = random_bytes(rng, n);
      auto text = base64_encode(data);
      CHECK(text.size() == (n + 2) / 3 * 4);
      auto back = base64_decode(text);
      REQUIRE(back);
      CHECK(*back == data);
    }
    CHECK(base64_encode(bytes_of("foobar")) == "Zm9vYmFy");
    CHECK(base64_encode(bytes_of("fo")) == "Zm8=");
    CHECK_FALSE(base64_decode("Zm9=").has_value());  // trailing bits not zero
    CHECK_FALSE(base64_decode("Zm8").has_value());
    CHECK_FALSE(base64_decode("Z===").has_value());
    CHECK_FALSE(base64_decode("Zm=v").has_value());
  }
}
