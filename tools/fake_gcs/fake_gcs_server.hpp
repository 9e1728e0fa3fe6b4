// fake_gcs_server: the GCS JSON API served from a directory, for tests, demos and benches.
//
// <root>/<bucket>/<object name> is an object (object names may contain '/'). Served (with or
// without the /storage/v1 base, which clients configured by STORAGE_EMULATOR_HOST may omit):
//   GET /storage/v1/b/{bucket}/o/{object}               object resource (JSON)
//   GET /storage/v1/b/{bucket}/o/{object}?alt=media     media, also under /download/...; Range
//                                                       → 206, past the end → 416
//   GET /storage/v1/b/{bucket}/o?prefix=&delimiter=&pageToken=&maxResults=   list (JSON)
// Media responses carry x-goog-generation and x-goog-hash (crc32c and md5, computed once per
// file version and cached); `generation=N` that does not match answers 404. A generation is the file's
// modification time in nanoseconds, so rewriting a file changes it.
// Faults, as Google's storage testbench takes them, from the request header
// x-goog-emulator-instructions: return-broken-stream (reset after 256 KiB of body),
// return-corrupted-data (one byte of the body flipped), stall-at-256KiB (the body stops),
// return-503-after-256K (the connection is cut after 256 KiB; the next attempt gets 503 with
// Retry-After: 1) and return-503 (503 with Retry-After: 1).
//
// Reactor-local: start() and stop() on the reactor that serves it. Files are read with splice
// (http::response_writer::send_file), so serving is never the bottleneck of a loopback bench.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "http/h1_server.hpp"
#include "runtime/error.hpp"
#include "runtime/task.hpp"

namespace ringfetch::tools {

struct fake_gcs_options {
  std::string root;           // directory of buckets
  http::server_options http{};
};

class fake_gcs_server final : public http::request_handler {
 public:
  static result<std::unique_ptr<fake_gcs_server>> listen(fake_gcs_options options);

  std::uint16_t port() const noexcept { return server_->port(); }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port()); }
  void start() { server_->start(); }
  task<void> stop() { return server_->stop(); }
  std::uint64_t requests() const noexcept { return server_->stats().requests; }
  // The next media request is answered 503 with Retry-After: 1, whatever it carries.
  void fail_next_media_with_503() noexcept { fail_next_with_503_ = true; }

  task<void> handle(http::server_request& req, http::response_writer& w) override;

 private:
  explicit fake_gcs_server(fake_gcs_options options) : options_(std::move(options)) {}
  struct file_info {
    std::uint64_t size = 0;
    std::int64_t generation = 0;
    std::uint32_t crc32c = 0;
    std::string md5_base64;
  };
  result<file_info> info(const std::string& path);
  task<void> metadata(const std::string& bucket, const std::string& object, http::response_writer& w);
  task<void> media(http::server_request& req, const std::string& bucket, const std::string& object,
                   http::response_writer& w);
  task<void> list(const std::string& bucket, const std::map<std::string, std::string>& query,
                  http::response_writer& w);

  fake_gcs_options options_;
  std::unique_ptr<http::h1_server> server_;
  std::map<std::string, file_info> cache_;  // by path; valid while generation matches
  bool fail_next_with_503_ = false;
};

}  // namespace ringfetch::tools
