// gcs::client: Google Cloud Storage objects through the JSON API, over http::client.
//
//   auto c = gcs::client::make({});                 // endpoint from STORAGE_EMULATOR_HOST or default
//   auto m = co_await (*c)->stat(path);             // object_metadata
//   auto r = co_await (*c)->read(path, m->generation, offset, dest);
//
// read() fetches [offset, offset + dest.size()) clamped to the object: a range starting at or
// past the end is end of file (0 bytes), not an error. The first response's x-goog-generation
// pins the object version for the rest of the read, so a read that resumes after a broken
// connection continues from the byte where it stopped and never mixes two versions. A read that
// covers the whole object is checked against the crc32c in x-goog-hash; a mismatch is an error,
// never silently returned bytes. Failures the retry policy deems transient (resets, timeouts,
// 408/429/5xx) are retried with backoff, honouring Retry-After; 404 with a pinned generation
// says the object changed. The bearer token is sent on every request and appears in no log line
// and no error message.
//
// Threading: reactor-local like http::client; close() before destruction.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "gcs/endpoint.hpp"
#include "gcs/metadata.hpp"
#include "gcs/object_path.hpp"
#include "gcs/retry_policy.hpp"
#include "http/client.hpp"
#include "runtime/error.hpp"
#include "runtime/task.hpp"

namespace ringfetch::gcs {

struct client_options {
  std::string endpoint{};      // explicit endpoint URL; empty: STORAGE_EMULATOR_HOST, else Google's
  std::string bearer_token{};  // sent when the endpoint is authenticated; never logged
  // Sent with every request (e.g. x-goog-emulator-instructions for a testbench); never logged.
  std::vector<http::header_field> extra_headers{};
  http::client_options http{};
  retry_options retry{};
  std::size_t max_json_bytes = 16u << 20;  // metadata and list pages larger than this are refused
};

struct read_result {
  std::uint64_t bytes = 0;        // written to the front of dest
  std::uint64_t object_size = 0;  // the whole object's size
  std::int64_t generation = 0;    // the version read
  bool verified = false;          // the bytes are the whole object and matched its crc32c
};

struct client_stats {
  std::uint64_t requests = 0;
  std::uint64_t retries = 0;
  std::uint64_t resumed_bytes = 0;  // bytes a resumed read did not fetch again
};

class client {
 public:
  static result<std::unique_ptr<client>> make(client_options options = {});

  task<result<object_metadata>> stat(const object_path& path);
  // `generation` pins the version from the start (0 or nullopt: the live one, pinned by the
  // first response). `cancel` (optional) ends the read and its backoff waits.
  task<result<read_result>> read(const object_path& path, std::optional<std::int64_t> generation,
                                 std::uint64_t offset, std::span<std::byte> dest,
                                 http::request_cancel* cancel = nullptr);
  // One page of a listing; follow next_page_token for the rest.
  task<result<list_page>> list(const list_request& request);
  // Every page of a listing: the objects, then the prefixes (with a delimiter), in order.
  task<result<list_page>> list_all(const list_request& request);

  task<void> close() { return http_.close(); }
  const client_stats& stats() const noexcept { return stats_; }
  const gcs::endpoint& endpoint() const noexcept { return endpoint_; }
  http::client& http() noexcept { return http_; }

 private:
  client(client_options options, gcs::endpoint e);
  std::vector<http::header_field> request_headers() const;
  // GET of a JSON document (metadata, list page) with retries; the body as text.
  task<result<std::string>> get_json(const std::string& target, const std::string& what);
  // Turns a non-2xx response into an error naming the object and what the server said.
  error status_error(const http::response& r, const std::string& what) const;
  task<bool> backoff(retry_state& retry, const error& e, const http::response* r,
                     http::request_cancel* cancel);

  client_options options_;
  gcs::endpoint endpoint_;
  http::client http_;
  client_stats stats_;
};

}  // namespace ringfetch::gcs
