// Parsing of the GCS JSON API responses the reader needs: the object resource, a page of a
// listing, and the error body of a failed request. Parsed with simdjson's DOM API.
//
// Inputs are untrusted bytes from the network: anything malformed or unexpected (not JSON, not
// an object, a field of the wrong type, a 64-bit integer that is not a decimal string, negative
// or overflowing, a hash that is not base64 of the right length) is an error of kind
// error_kind::protocol whose message names the field. Unknown fields are ignored. The functions
// are thread-safe (each call owns its parser) and never throw for bad input.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/error.hpp"

namespace ringfetch::gcs {

struct object_metadata {
  // Required: a resource without name, size or generation is refused (ask for at least
  // fields=name,size,generation in partial responses).
  std::string name;
  std::uint64_t size = 0;
  std::int64_t generation = 0;
  // Optional: absent fields keep these defaults.
  std::string bucket;
  std::int64_t metageneration = 0;
  std::optional<std::uint32_t> crc32c;
  std::optional<std::array<std::byte, 16>> md5;  // composite objects have none
  std::string content_type;
  std::string content_encoding;  // "gzip" means reads may be transcoded
  std::string updated;           // RFC 3339, exactly as sent
  std::optional<std::chrono::system_clock::time_point> updated_time;  // set when updated is
};

result<object_metadata> parse_object_metadata(std::string_view json);

struct list_page {
  std::vector<object_metadata> items;
  std::vector<std::string> prefixes;  // "directories" when listing with a delimiter
  std::string next_page_token;        // empty on the last page
};

result<list_page> parse_list_page(std::string_view json);

struct api_error_body {
  int code = 0;            // the HTTP status the body repeats
  std::string message;     // "No such object: bench/obj"
  std::string reason;      // first errors[].reason, e.g. "notFound"; may be empty
  // "No such object: bench/obj (notFound)", for error reports.
  std::string describe() const;
};

// std::nullopt when the body is not a GCS error document (an HTML page from a proxy, say):
// the caller then reports the status alone.
std::optional<api_error_body> parse_error_body(std::string_view json);

}  // namespace ringfetch::gcs
