#include "gcs/client.hpp"

#include <chrono>
#include <cstdlib>
#include <random>

#include "gcs/crc32c.hpp"
#include "gcs/headers.hpp"
#include "runtime/timer.hpp"

namespace ringfetch::gcs {
namespace {

std::uint64_t random_seed() {
  static thread_local std::mt19937_64 seeds{std::random_device{}()};
  return seeds();
}

std::string describe(const object_path& p) { return "gs://" + p.bucket + "/" + p.object; }

}  // namespace

result<std::unique_ptr<client>> client::make(client_options options) {
  auto e = endpoint_from_environment(options.endpoint);
  if (!e) return e.error();
  return std::unique_ptr<client>(new client(std::move(options), std::move(*e)));
}

client::client(client_options options, gcs::endpoint e)
    : options_(std::move(options)), endpoint_(std::move(e)), http_(options_.http) {}

std::vector<http::header_field> client::request_headers() const {
  std::vector<http::header_field> h = options_.extra_headers;
  if (endpoint_.authenticated && !options_.bearer_token.empty()) {
    h.push_back({.name = "Authorization", .value = "Bearer " + options_.bearer_token});
  }
  return h;
}

error client::status_error(const http::response& r, const std::string& what) const {
  std::string said;
  if (auto body = parse_error_body(r.error_body)) said = ": " + body->describe();
  error e{.kind = error_kind::http_status,
          .message = what + ": HTTP " + std::to_string(r.status) + said,
          .http_status = r.status};
  e.retryable = is_retryable(e);
  if (r.status == 404) e.kind = error_kind::not_found;
  if (r.status == 401 || r.status == 403) e.kind = error_kind::auth;
  return e;
}

// Sleeps before the next attempt if the policy allows one; false when the caller must give up.
task<bool> client::backoff(retry_state& retry, const error& e, const http::response* r,
                           http::request_cancel* cancel) {
  std::optional<std::chrono::seconds> retry_after;
  if (r) {
    if (const std::string* v = r->header("retry-after")) {
      if (auto parsed = parse_retry_after(*v, std::chrono::system_clock::now())) retry_after = *parsed;
    }
  }
  auto delay = retry.next_delay(e, retry_after);
  if (!delay || (cancel && cancel->requested())) co_return false;
  ++stats_.retries;
  auto slept = co_await sleep_for(*delay, cancel ? cancel->waits() : nullptr);
  co_return slept.has_value() || !(cancel && cancel->requested());
}

task<result<std::string>> client::get_json(const std::string& target, const std::string& what) {
  const http::url u = endpoint_.url_for(target);
  const std::vector<http::header_field> headers = request_headers();
  std::unique_ptr<std::byte[]> buffer = std::make_unique_for_overwrite<std::byte[]>(options_.max_json_bytes);
  const std::span<std::byte> dest(buffer.get(), options_.max_json_bytes);
  retry_state retry(options_.retry, random_seed());
  for (;;) {
    ++stats_.requests;
    auto r = co_await http_.get(u, headers, std::nullopt, dest);
    error failure;
    if (r && r->status == 200) {
      co_return std::string(reinterpret_cast<const char*>(dest.data()), r->body_bytes);
    }
    if (r) failure = status_error(*r, what);
    else failure = r.error();
    if (!co_await backoff(retry, failure, r ? &*r : nullptr, nullptr)) co_return failure;
  }
}

task<result<object_metadata>> client::stat(const object_path& path) {
  // Named: GCC 12 destroys a class temporary inside a co_await expression twice.
  const std::string target = metadata_target(path), what = "stat " + describe(path);
  auto body = co_await get_json(target, what);
  if (!body) co_return body.error();
  auto m = parse_object_metadata(*body);
  if (!m) {
    error e = m.error();
    e.message = "stat " + describe(path) + ": " + e.message;
    co_return e;
  }
  co_return *m;
}

task<result<list_page>> client::list(const list_request& request) {
  const std::string target = list_target(request), what = "list gs://" + request.bucket + "/" + request.prefix;
  auto body = co_await get_json(target, what);
  if (!body) co_return body.error();
  co_return parse_list_page(*body);
}

task<result<list_page>> client::list_all(const list_request& request) {
  list_page all;
  list_request next = request;
  for (;;) {
    auto page = co_await list(next);
    if (!page) co_return page.error();
    for (auto& item : page->items) all.items.push_back(std::move(item));
    for (auto& p : page->prefixes) all.prefixes.push_back(std::move(p));
    if (page->next_page_token.empty()) co_return all;
    if (page->next_page_token == next.page_token) {
      co_return error{.kind = error_kind::protocol,
                      .message = "list gs://" + request.bucket + "/" + request.prefix +
                                 ": the server returned the same page token twice"};
    }
    next.page_token = page->next_page_token;
  }
}

task<result<read_result>> client::read(const object_path& path, std::optional<std::int64_t> generation,
                                       std::uint64_t offset, std::span<std::byte> dest,
                                       http::request_cancel* cancel) {
  read_result out;
  if (dest.empty()) co_return out;
  std::optional<std::int64_t> pinned;
  if (generation && *generation > 0) pinned = generation;
  std::optional<std::uint32_t> whole_crc;  // the object's crc32c, from x-goog-hash
  const std::vector<http::header_field> headers = request_headers();
  retry_state retry(options_.retry, random_seed());
  std::uint64_t done = 0;
  while (done < dest.size()) {
    const http::url u = endpoint_.url_for(media_target(path, pinned));
    const std::uint64_t first = offset + done;
    const http::byte_range range{first, offset + dest.size() - 1};
    ++stats_.requests;
    auto r = co_await http_.get(u, headers, range, dest.subspan(done), cancel);
    error failure;
    if (r && (r->status == 206 || (r->status == 200 && first == 0))) {
      std::uint64_t size = 0;
      if (r->status == 206) {
        const std::string* cr = r->header("content-range");
        auto parsed = cr ? parse_content_range(*cr) : result<content_range>(error{
                                                          .kind = error_kind::protocol,
                                                          .message = "206 without Content-Range"});
        if (!parsed || !parsed->satisfiable || parsed->first != first || !parsed->complete_length) {
          co_return error{.kind = error_kind::protocol,
                          .message = "read " + describe(path) + ": unusable Content-Range" +
                                     (cr ? " '" + *cr + "'" : std::string())};
        }
        size = *parsed->complete_length;
      } else {
        size = r->body_bytes;
      }
      if (const std::string* g = r->header("x-goog-generation")) {
        auto gen = parse_goog_generation(*g);
        if (!gen) co_return gen.error();
        if (pinned && *gen != *pinned) {
          co_return error{.kind = error_kind::precondition,
                          .message = "read " + describe(path) + ": object changed: generation " +
                                     std::to_string(*pinned) + " requested, server sent " +
                                     std::to_string(*gen)};
        }
        pinned = *gen;
      }
      if (const std::string* h = r->header("x-goog-hash"); h && !whole_crc) {
        if (auto hashes = parse_goog_hash(*h); hashes && hashes->crc32c) whole_crc = hashes->crc32c;
      }
      out.object_size = size;
      done += r->body_bytes;
      if (offset + done >= size || r->body_bytes == 0) break;  // the object ends inside dest
      continue;
    }
    if (r && r->status == 416) {
      // At or past the end: end of file, with the size when the server says it.
      if (const std::string* cr = r->header("content-range")) {
        if (auto parsed = parse_content_range(*cr); parsed && parsed->complete_length) {
          out.object_size = *parsed->complete_length;
        }
      }
      break;
    }
    if (r && r->status == 404 && pinned) {
      // Say what happened to the version we were reading, if the object still exists.
      auto now = co_await stat(path);
      if (now && now->generation != *pinned) {
        co_return error{.kind = error_kind::precondition,
                        .message = "read " + describe(path) + ": object changed: generation " +
                                   std::to_string(*pinned) + " requested, server has " +
                                   std::to_string(now->generation),
                        .http_status = 404};
      }
    }
    if (r) {
      failure = status_error(*r, "read " + describe(path));
    } else {
      failure = r.error();
      // The broken response's headers are lost with it: learn the live generation now, so the
      // retries read one version and keep what each of them received. The bytes of this attempt
      // are dropped (they may belong to an older version).
      if (!pinned && is_retryable(failure)) {
        auto live = co_await stat(path);
        if (live) pinned = live->generation;
        failure.offset = error::no_offset;
      }
      // Bytes of a broken body stay valid when we know which version they belong to: resume
      // after them instead of fetching them again.
      if (pinned && failure.offset != error::no_offset && failure.offset > 0) {
        const std::uint64_t kept = std::min<std::uint64_t>(failure.offset, dest.size() - done);
        done += kept;
        stats_.resumed_bytes += kept;
        // Progress earns a fresh retry budget: a link that breaks every few MiB still finishes,
        // and it cannot loop, since every round moves forward.
        retry = retry_state(options_.retry, random_seed());
      }
    }
    if (!co_await backoff(retry, failure, r ? &*r : nullptr, cancel)) {
      failure.offset = offset + done;
      co_return failure;
    }
  }
  out.bytes = done;
  out.generation = pinned.value_or(0);
  if (offset == 0 && done == out.object_size && whole_crc) {
    const std::uint32_t got = crc32c::of(dest.first(done));
    if (got != *whole_crc) {
      co_return error{.kind = error_kind::checksum,
                      .message = "read " + describe(path) + ": crc32c mismatch: server says " +
                                 crc32c_to_base64(*whole_crc) + ", received bytes have " +
                                 crc32c_to_base64(got)};
    }
    out.verified = true;
  }
  co_return out;
}

}  // namespace ringfetch::gcs
