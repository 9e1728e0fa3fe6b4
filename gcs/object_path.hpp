// object_path: a `gs://bucket/object` URI parsed and validated once, and the JSON API request
// targets built from it.
//
// The object name after the bucket is taken verbatim (it is not percent-decoded): any byte
// sequence GCS accepts is a valid name, including spaces, '/', '#', '?', '%' and non-ASCII
// UTF-8. Targets percent-encode the name as one path segment ('/' → %2F) and every query value.
// All errors are error_kind::invalid_argument and say what is wrong with which part.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/error.hpp"

namespace ringfetch::gcs {

struct object_path {
  std::string bucket;
  std::string object;  // empty only when parsed with parse_prefix (a bucket or "directory")

  // "gs://bucket/object" (or "gs://bucket/" for an empty prefix): what parse_prefix accepts.
  std::string str() const;

  // An object: "gs://bucket/name". The name must be a valid object name (see
  // validate_object_name); "gs://bucket" and "gs://bucket/" are refused.
  static result<object_path> parse(std::string_view uri);
  // A listing prefix: "gs://bucket", "gs://bucket/", "gs://bucket/dir/" or "gs://bucket/a"; the
  // object part may be empty but is otherwise held to the object name rules.
  static result<object_path> parse_prefix(std::string_view uri);

  friend bool operator==(const object_path&, const object_path&) = default;
};

// GCS bucket naming rules: 3-63 characters of a-z 0-9 - _ . (up to 222 when dotted, each
// dot-separated part 1-63), starting and ending with a letter or digit, not an IPv4 address,
// not starting with "goog" and not containing "google".
result<void> validate_bucket_name(std::string_view bucket);
// GCS object naming rules: 1-1024 bytes of valid UTF-8, no carriage return or line feed, not
// "." or "..".
result<void> validate_object_name(std::string_view object);

// `/storage/v1/b/{bucket}/o/{object}[?generation=G][&fields=F]`: the object resource.
std::string metadata_target(const object_path& path, std::optional<std::int64_t> generation = {},
                            std::string_view fields = {});
// `/download/storage/v1/b/{bucket}/o/{object}?alt=media[&generation=G]`: the object's bytes
// (ask for a Range in the request headers).
std::string media_target(const object_path& path, std::optional<std::int64_t> generation = {});

struct list_request {
  std::string bucket{};
  std::string prefix{};                    // omitted when empty
  std::string delimiter{};                 // "/" to list one level; omitted when empty
  std::string page_token{};                // from the previous page; omitted when empty
  std::optional<std::uint32_t> max_results{};
  std::string fields{};                    // partial response selector; omitted when empty
};
// `/storage/v1/b/{bucket}/o?prefix=..&delimiter=..&pageToken=..&maxResults=..&fields=..`.
std::string list_target(const list_request& request);

}  // namespace ringfetch::gcs
