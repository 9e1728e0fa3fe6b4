#include "tools/fake_gcs/fake_gcs_server.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <vector>

#include "gcs/base64.hpp"
#include "gcs/crc32c.hpp"
#include "gcs/decimal.hpp"
#include "http/url.hpp"

namespace ringfetch::tools {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t fault_after = 256 * 1024;

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);  // UTF-8 passes through
        }
    }
  }
  return out + "\"";
}

std::string rfc3339(std::int64_t ns) {
  std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>((ns / 1'000'000) % 1000));
  return buf;
}

std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    auto eq = pair.find('=');
    auto key = http::percent_decode(pair.substr(0, eq));
    auto value = http::percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (key && value) out[*key] = *value;
  }
  return out;
}

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s)); }

// A JSON error body as GCS sends it.
std::string error_json(int code, std::string_view message) {
  return "{\"error\":{\"code\":" + std::to_string(code) + ",\"message\":" + json_string(message) +
         ",\"errors\":[{\"message\":" + json_string(message) + "}]}}";
}

// `message` is a named string at every call: GCC 12 destroys a class temporary inside a
// co_await expression twice.
task<void> send_error(http::response_writer& w, int code, const std::string& message) {
  const std::string body = error_json(code, message);
  const std::vector<http::header_field> h{{"content-type", "application/json; charset=UTF-8"}};
  (void)co_await w.send(code, h, bytes_of(body));
}

struct byte_range_request {
  bool suffix = false;
  std::uint64_t first = 0;
  std::optional<std::uint64_t> last;
};

// "bytes=A-B", "bytes=A-", "bytes=-N"; nullopt when malformed (then the whole object is sent,
// as RFC 9110 allows for a Range a server does not understand).
std::optional<byte_range_request> parse_range(std::string_view v) {
  if (v.substr(0, 6) != "bytes=") return std::nullopt;
  v.remove_prefix(6);
  auto dash = v.find('-');
  if (dash == std::string_view::npos || v.find(',') != std::string_view::npos) return std::nullopt;
  const auto number = gcs::decimal;
  byte_range_request r;
  if (dash == 0) {
    auto n = number(v.substr(1));
    if (!n) return std::nullopt;
    r.suffix = true;
    r.first = *n;
    return r;
  }
  auto a = number(v.substr(0, dash));
  if (!a) return std::nullopt;
  r.first = *a;
  if (dash + 1 < v.size()) {
    auto b = number(v.substr(dash + 1));
    if (!b || *b < *a) return std::nullopt;
    r.last = *b;
  }
  return r;
}

}  // namespace

result<std::unique_ptr<fake_gcs_server>> fake_gcs_server::listen(fake_gcs_options options) {
  std::error_code ec;
  if (!fs::is_directory(options.root, ec)) {
    return error{.kind = error_kind::invalid_argument,
                 .message = "fake GCS server: '" + options.root + "' is not a directory"};
  }
  std::unique_ptr<fake_gcs_server> s(new fake_gcs_server(options));
  auto server = http::h1_server::listen(*s, s->options_.http);
  if (!server) return server.error();
  s->server_ = std::move(*server);
  return s;
}

result<fake_gcs_server::file_info> fake_gcs_server::info(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return error{.kind = error_kind::not_found, .message = "no such object"};
  }
  const std::int64_t generation =
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  auto& cached = cache_[path];
  if (cached.generation == generation && cached.size == static_cast<std::uint64_t>(st.st_size)) {
    return cached;
  }
  // Blocking reads on the reactor thread: a test and demo server, once per file version.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return error{.kind = error_kind::not_found, .message = "cannot open object"};
  gcs::crc32c crc;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md5(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!md5 || EVP_DigestInit_ex(md5.get(), EVP_md5(), nullptr) != 1) {
    ::close(fd);
    return error{.kind = error_kind::internal, .message = "MD5 is not available"};
  }
  std::vector<std::byte> chunk(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n <= 0) break;
    crc.update(std::span(chunk).first(static_cast<std::size_t>(n)));
    EVP_DigestUpdate(md5.get(), chunk.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  std::array<std::byte, 16> digest{};
  unsigned int digest_size = 0;
  EVP_DigestFinal_ex(md5.get(), reinterpret_cast<unsigned char*>(digest.data()), &digest_size);
  cached = {.size = static_cast<std::uint64_t>(st.st_size),
            .generation = generation,
            .crc32c = crc.value(),
            .md5_base64 = gcs::base64_encode(digest)};
  return cached;
}

task<void> fake_gcs_server::handle(http::server_request& req, http::response_writer& w) {
  if (req.method != "GET" && req.method != "HEAD") {
    const std::string message = "only GET and HEAD are served";
    co_await send_error(w, 405, message);
    co_return;
  }
  std::string_view target = req.target;
  std::string_view query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    query = target.substr(q + 1);
    target = target.substr(0, q);
  }
  const auto params = parse_query(query);
  bool download = false;
  if (target.substr(0, 9) == "/download") {
    download = true;
    target.remove_prefix(9);
  }
  // Clients given STORAGE_EMULATOR_HOST differ on whether it includes the API's base path (the
  // Node.js client sends /b/...): both are served.
  if (target.substr(0, 11) == "/storage/v1") target.remove_prefix(11);
  constexpr std::string_view api = "/b/";
  if (target.substr(0, api.size()) != api) {
    const std::string message = "not a JSON API path";
    co_await send_error(w, 404, message);
    co_return;
  }
  target.remove_prefix(api.size());
  const auto slash = target.find('/');
  auto bucket = http::percent_decode(target.substr(0, slash));
  if (!bucket || bucket->empty() || slash == std::string_view::npos ||
      target.substr(slash, 2) != "/o") {
    const std::string message = "not an object path";
    co_await send_error(w, 404, message);
    co_return;
  }
  std::string_view rest = target.substr(slash + 2);
  if (rest.empty()) {
    co_await list(*bucket, params, w);
    co_return;
  }
  auto object = http::percent_decode(rest.substr(1));
  if (rest[0] != '/' || !object || object->empty()) {
    const std::string message = "not an object path";
    co_await send_error(w, 404, message);
    co_return;
  }
  auto alt = params.find("alt");
  if (download || (alt != params.end() && alt->second == "media")) {
    co_await media(req, *bucket, *object, w);
  } else {
    co_await metadata(*bucket, *object, w);
  }
}

task<void> fake_gcs_server::metadata(const std::string& bucket, const std::string& object,
                                     http::response_writer& w) {
  auto f = info(options_.root + "/" + bucket + "/" + object);
  if (!f) {
    const std::string message = "No such object: " + bucket + "/" + object;
    co_await send_error(w, 404, message);
    co_return;
  }
  const std::string body =
      "{\"kind\":\"storage#object\",\"id\":" + json_string(bucket + "/" + object + "/" + std::to_string(f->generation)) +
      ",\"name\":" + json_string(object) + ",\"bucket\":" + json_string(bucket) +
      ",\"generation\":\"" + std::to_string(f->generation) + "\",\"metageneration\":\"1\"" +
      ",\"contentType\":\"application/octet-stream\",\"size\":\"" + std::to_string(f->size) +
      "\",\"crc32c\":\"" + gcs::crc32c_to_base64(f->crc32c) + "\",\"md5Hash\":\"" + f->md5_base64 +
      "\",\"updated\":\"" + rfc3339(f->generation) + "\"}";
  const std::vector<http::header_field> h{{"content-type", "application/json; charset=UTF-8"}};
  (void)co_await w.send(200, h, bytes_of(body));
}

task<void> fake_gcs_server::media(http::server_request& req, const std::string& bucket,
                                  const std::string& object, http::response_writer& w) {
  const std::string path = options_.root + "/" + bucket + "/" + object;
  auto f = info(path);
  if (!f) {
    const std::string message = "No such object: " + bucket + "/" + object;
    co_await send_error(w, 404, message);
    co_return;
  }
  const std::string* instructions = req.header("x-goog-emulator-instructions");
  const std::string fault = instructions ? *instructions : std::string();
  if (fault == "return-503" || std::exchange(fail_next_with_503_, false)) {
    const std::vector<http::header_field> h{{"retry-after", "1"}, {"content-type", "application/json"}};
    const std::string body = error_json(503, "Service Unavailable (injected)");
    (void)co_await w.send(503, h, bytes_of(body));
    co_return;
  }
  // The requested generation, if any, must be the current one.
  const std::size_t q = req.target.find('?');
  const auto params = parse_query(q == std::string::npos ? std::string_view() : std::string_view(req.target).substr(q + 1));
  if (auto g = params.find("generation"); g != params.end() && g->second != std::to_string(f->generation)) {
    const std::string message = "No such object: " + bucket + "/" + object + "#" + g->second;
    co_await send_error(w, 404, message);
    co_return;
  }
  std::vector<http::header_field> h{
      {"content-type", "application/octet-stream"},
      {"x-goog-generation", std::to_string(f->generation)},
      {"x-goog-metageneration", "1"},
      {"x-goog-hash", "crc32c=" + gcs::crc32c_to_base64(f->crc32c) + ",md5=" + f->md5_base64},
      {"x-goog-stored-content-length", std::to_string(f->size)},
      {"accept-ranges", "bytes"}};
  int status = 200;
  std::uint64_t first = 0;
  std::uint64_t length = f->size;
  if (const std::string* rv = req.header("range")) {
    if (auto r = parse_range(*rv)) {
      if (r->suffix) {
        length = std::min(r->first, f->size);
        first = f->size - length;
      } else if (r->first >= f->size) {
        h.push_back({"content-range", "bytes */" + std::to_string(f->size)});
        const std::string body = error_json(416, "The requested range cannot be satisfied.");
        (void)co_await w.send(416, h, bytes_of(body));
        co_return;
      } else {
        first = r->first;
        length = std::min(r->last.value_or(f->size - 1), f->size - 1) - first + 1;
      }
      status = 206;
      h.push_back({"content-range", "bytes " + std::to_string(first) + "-" +
                                        std::to_string(first + length - 1) + "/" + std::to_string(f->size)});
    }
  }
  if (fault == "return-broken-stream") w.inject({.what = http::fault::kind::reset, .after_body_bytes = fault_after});
  if (fault == "stall-at-256KiB") w.inject({.what = http::fault::kind::stall, .after_body_bytes = fault_after});
  if (fault == "return-503-after-256K") {
    w.inject({.what = http::fault::kind::reset, .after_body_bytes = fault_after});
    fail_next_with_503_ = true;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const std::string message = "No such object: " + bucket + "/" + object;
    co_await send_error(w, 404, message);
    co_return;
  }
  if (fault == "return-corrupted-data" && length > 0) {
    // Through memory: the body is the file's bytes with one of them flipped.
    std::vector<std::byte> body(length);
    ssize_t n = ::pread(fd, body.data(), length, static_cast<off_t>(first));
    ::close(fd);
    if (n != static_cast<ssize_t>(length)) co_return;  // no answer: the server sends 500
    body[length / 2] ^= std::byte{0x5a};
    (void)co_await w.send(status, h, body);
    co_return;
  }
  (void)co_await w.send_file(status, h, fd, first, length);
  ::close(fd);
}

task<void> fake_gcs_server::list(const std::string& bucket,
                                 const std::map<std::string, std::string>& query,
                                 http::response_writer& w) {
  const fs::path base = fs::path(options_.root) / bucket;
  std::error_code ec;
  if (!fs::is_directory(base, ec)) {
    const std::string message = "The specified bucket does not exist.";
    co_await send_error(w, 404, message);
    co_return;
  }
  auto get = [&](const char* k) {
    auto it = query.find(k);
    return it == query.end() ? std::string() : it->second;
  };
  const std::string prefix = get("prefix"), delimiter = get("delimiter"), token = get("pageToken");
  std::size_t max = 1000;
  if (auto m = get("maxResults"); !m.empty()) max = std::clamp<std::size_t>(std::strtoull(m.c_str(), nullptr, 10), 1, 1000);
  std::vector<std::string> names;
  for (auto it = fs::recursive_directory_iterator(base, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) names.push_back(fs::relative(it->path(), base).generic_string());
  }
  std::sort(names.begin(), names.end());
  std::string items, prefixes, last;
  std::vector<std::string> seen_prefixes;
  std::size_t count = 0;
  bool more = false;
  for (const auto& name : names) {
    if (name.compare(0, prefix.size(), prefix) != 0 || (!token.empty() && name <= token)) continue;
    if (!delimiter.empty()) {
      auto d = name.find(delimiter, prefix.size());
      if (d != std::string::npos) {
        std::string p = name.substr(0, d + delimiter.size());
        if (std::find(seen_prefixes.begin(), seen_prefixes.end(), p) == seen_prefixes.end()) {
          seen_prefixes.push_back(p);
          prefixes += (prefixes.empty() ? "" : ",") + json_string(p);
        }
        continue;
      }
    }
    if (count == max) {
      more = true;
      break;
    }
    auto f = info((base / name).string());
    if (!f) continue;
    items += std::string(items.empty() ? "" : ",") + "{\"kind\":\"storage#object\",\"name\":" + json_string(name) +
             ",\"bucket\":" + json_string(bucket) + ",\"generation\":\"" + std::to_string(f->generation) +
             "\",\"metageneration\":\"1\",\"size\":\"" + std::to_string(f->size) + "\",\"crc32c\":\"" +
             gcs::crc32c_to_base64(f->crc32c) + "\",\"updated\":\"" + rfc3339(f->generation) + "\"}";
    ++count;
    last = name;
  }
  std::string body = "{\"kind\":\"storage#objects\"";
  if (more) body += ",\"nextPageToken\":" + json_string(last);
  if (!prefixes.empty()) body += ",\"prefixes\":[" + prefixes + "]";
  body += ",\"items\":[" + items + "]}";
  const std::vector<http::header_field> h{{"content-type", "application/json; charset=UTF-8"}};
  (void)co_await w.send(200, h, bytes_of(body));
}

}  // namespace ringfetch::tools
