#include "gcs/object_path.hpp"

#include "gcs/concat.hpp"
#include "http/url.hpp"

namespace ringfetch::gcs {
namespace {

constexpr std::string_view scheme = "gs://";

error invalid(std::string what) {
  error e;
  e.kind = error_kind::invalid_argument;
  e.message = std::move(what);
  return e;
}

bool lower_alnum(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool ipv4_dotted(std::string_view s) noexcept {
  int parts = 0;
  std::size_t at = 0;
  while (at <= s.size()) {
    std::size_t end = s.find('.', at);
    if (end == std::string_view::npos) end = s.size();
    std::string_view part = s.substr(at, end - at);
    if (part.empty() || part.size() > 3) return false;
    for (char c : part) {
      if (c < '0' || c > '9') return false;
    }
    ++parts;
    at = end + 1;
  }
  return parts == 4;
}

// Length of the UTF-8 sequence starting at s[i], or 0 when it is malformed (overlong forms,
// surrogates and code points past U+10FFFF included), as GCS refuses such names.
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t n;
  char32_t cp;
  if ((lead & 0xE0) == 0xC0) { n = 2; cp = lead & 0x1F; }
  else if ((lead & 0xF0) == 0xE0) { n = 3; cp = lead & 0x0F; }
  else if ((lead & 0xF8) == 0xF0) { n = 4; cp = lead & 0x07; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (byte(i + k) & 0x3F);
  }
  constexpr char32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < smallest[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// Splits "gs://bucket[/object]" and validates the bucket; the object is checked by the caller.
result<object_path> split(std::string_view uri) {
  if (uri.substr(0, scheme.size()) != scheme)
    return invalid(concat("'", uri.substr(0, 200), "' is not a gs://bucket/object URI"));
  std::string_view rest = uri.substr(scheme.size());
  std::size_t slash = rest.find('/');
  object_path path;
  path.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) path.object = std::string(rest.substr(slash + 1));
  if (auto ok = validate_bucket_name(path.bucket); !ok) return std::move(ok).error();
  return path;
}

void append_query(std::string& target, std::string_view name, std::string_view value) {
  target += target.find('?') == std::string::npos ? '?' : '&';
  target += name;
  target += '=';
  target += http::percent_encode(value);
}

std::string object_base(std::string_view prefix, const object_path& path) {
  return concat(prefix, "/storage/v1/b/", http::percent_encode(path.bucket), "/o/",
                http::percent_encode(path.object));
}

}  // namespace

std::string object_path::str() const { return concat(scheme, bucket, "/", object); }

result<object_path> object_path::parse(std::string_view uri) {
  auto path = split(uri);
  if (!path) return path;
  if (path->object.empty())
    return invalid(concat("'", uri.substr(0, 200), "' names a bucket, not an object"));
  if (auto ok = validate_object_name(path->object); !ok) return std::move(ok).error();
  return path;
}

result<object_path> object_path::parse_prefix(std::string_view uri) {
  auto path = split(uri);
  if (!path || path->object.empty()) return path;
  if (auto ok = validate_object_name(path->object); !ok) return std::move(ok).error();
  return path;
}

result<void> validate_bucket_name(std::string_view bucket) {
  auto bad = [&](std::string_view why) {
    return invalid(concat("bad bucket name '", bucket.substr(0, 230), "': ", why));
  };
  if (bucket.empty()) return bad("empty");
  bool dotted = bucket.find('.') != std::string_view::npos;
  if (bucket.size() < 3) return bad("shorter than 3 characters");
  if (bucket.size() > (dotted ? 222u : 63u))
    return bad(dotted ? "longer than 222 characters" : "longer than 63 characters");
  for (char c : bucket) {
    if (!lower_alnum(c) && c != '-' && c != '_' && c != '.')
      return bad("only lowercase letters, digits, '-', '_' and '.' are allowed");
  }
  if (!lower_alnum(bucket.front()) || !lower_alnum(bucket.back()))
    return bad("must start and end with a letter or digit");
  std::size_t at = 0;
  while (at <= bucket.size()) {
    std::size_t end = bucket.find('.', at);
    if (end == std::string_view::npos) end = bucket.size();
    if (end == at) return bad("empty part between dots");
    if (end - at > 63) return bad("a dot-separated part is longer than 63 characters");
    at = end + 1;
  }
  if (ipv4_dotted(bucket)) return bad("looks like an IP address");
  if (bucket.starts_with("goog")) return bad("must not start with 'goog'");
  if (bucket.find("google") != std::string_view::npos) return bad("must not contain 'google'");
  return {};
}

result<void> validate_object_name(std::string_view object) {
  auto bad = [&](std::string_view why) {
    return invalid(concat("bad object name '", object.substr(0, 200), "': ", why));
  };
  if (object.empty()) return bad("empty");
  if (object.size() > 1024) return bad("longer than 1024 bytes");
  if (object == "." || object == "..") return bad("'.' and '..' are not object names");
  for (std::size_t i = 0; i < object.size();) {
    if (object[i] == '\r' || object[i] == '\n') return bad("contains a carriage return or line feed");
    std::size_t n = utf8_sequence(object, i);
    if (n == 0) return bad("not valid UTF-8");
    i += n;
  }
  return {};
}

std::string metadata_target(const object_path& path, std::optional<std::int64_t> generation,
                            std::string_view fields) {
  std::string target = object_base("", path);
  if (generation) append_query(target, "generation", std::to_string(*generation));
  if (!fields.empty()) append_query(target, "fields", fields);
  return target;
}

std::string media_target(const object_path& path, std::optional<std::int64_t> generation) {
  std::string target = concat(object_base("/download", path), "?alt=media");
  if (generation) append_query(target, "generation", std::to_string(*generation));
  return target;
}

std::string list_target(const list_request& request) {
  std::string target = concat("/storage/v1/b/", http::percent_encode(request.bucket), "/o");
  if (!request.prefix.empty()) append_query(target, "prefix", request.prefix);
  if (!request.delimiter.empty()) append_query(target, "delimiter", request.delimiter);
  if (!request.page_token.empty()) append_query(target, "pageToken", request.page_token);
  if (request.max_results) append_query(target, "maxResults", std::to_string(*request.max_results));
  if (!request.fields.empty()) append_query(target, "fields", request.fields);
  return target;
}

}  // namespace ringfetch::gcs
