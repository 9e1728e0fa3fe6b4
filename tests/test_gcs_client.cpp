#include <doctest/doctest.h>

#include <openssl/evp.h>

#include <array>

#include <filesystem>
#include <string>
#include <vector>

#include "gcs/client.hpp"
#include "gcs/crc32c.hpp"
#include "server_process.hpp"
#include "test_support.hpp"
#include "tools/fake_gcs/fake_gcs_server.hpp"

// Paths, options and requests are named locals, never temporaries inside a co_await expression
// (GCC 12 destroys those twice).

using namespace ringfetch;
using namespace ringfetch::gcs;
using namespace std::chrono_literals;
using test::reactor_fixture;

namespace {

constexpr std::size_t MiB = 1 << 20;

// A directory of buckets for the fake server, removed afterwards.
struct bucket_dir {
  bucket_dir() {
    char tmpl[] = "/tmp/ringfetch-gcs-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    root = tmpl;
    std::filesystem::create_directories(root + "/bkt");
  }
  ~bucket_dir() {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  void write(const std::string& object, std::size_t size, std::uint64_t seed) {
    const std::string path = root + "/bkt/" + object;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    test::write_pattern_file(path, size, seed);
  }
  std::string root;
};

// Runs `body` against a fake server on the same reactor, with a client pointed at it.
template <class Body>
void with_fake_gcs(bucket_dir& dir, Body body, std::string instructions = {}) {
  reactor_fixture f;
  auto server = tools::fake_gcs_server::listen({.root = dir.root});
  REQUIRE(server);
  (*server)->start();
  client_options o;
  o.endpoint = (*server)->endpoint();
  o.retry.initial_delay = 1ms;
  if (!instructions.empty()) o.extra_headers.push_back({"x-goog-emulator-instructions", instructions});
  auto c = client::make(o);
  REQUIRE(c);
  f.run([&]() -> task<void> {
    co_await body(**c, **server);
    co_await (*c)->close();
    co_await (*server)->stop();
  }());
}

object_path path_of(const std::string& object) {
  auto p = object_path::parse("gs://bkt/" + object);
  REQUIRE(p);
  return *p;
}

}  // namespace

TEST_SUITE("gcs client against the fake GCS server") {
  TEST_CASE("stat and a whole read agree, and the whole read is verified by crc32c") {
    bucket_dir dir;
    const std::size_t size = 5 * MiB + 17;
    dir.write("dir/a b#c?.bin", size, 4);
    with_fake_gcs(dir, [&](client& c, tools::fake_gcs_server&) -> task<void> {
      const object_path p = path_of("dir/a b#c?.bin");
      auto m = co_await c.stat(p);
      if (!m) FAIL(m.error().describe());
      CHECK(m->size == size);
      CHECK(m->name == "dir/a b#c?.bin");
      // The server's hashes are those of the bytes (computed here independently).
      std::vector<std::byte> expected(size);
      test::fill_pattern(expected, 4);
      CHECK(m->crc32c == crc32c::of(expected));
      std::array<std::byte, 16> md5{};
      unsigned int md5_size = 0;
      REQUIRE(EVP_Digest(expected.data(), expected.size(), reinterpret_cast<unsigned char*>(md5.data()),
                         &md5_size, EVP_md5(), nullptr) == 1);
      CHECK(m->md5 == md5);
      std::vector<std::byte> dest(size);
      auto r = co_await c.read(p, m->generation, 0, dest);
      if (!r) FAIL(r.error().describe());
      CHECK(r->bytes == size);
      CHECK(r->object_size == size);
      CHECK(r->generation == m->generation);
      CHECK(r->verified);
      CHECK(test::matches_pattern(dest, 4));
    });
  }

  TEST_CASE("ranges are clamped to the object and a range past the end is end of file") {
    bucket_dir dir;
    dir.write("o", 1000, 9);
    with_fake_gcs(dir, [&](client& c, tools::fake_gcs_server&) -> task<void> {
      const object_path p = path_of("o");
      std::vector<std::byte> dest(500);
      auto tail = co_await c.read(p, std::nullopt, 900, dest);
      if (!tail) FAIL(tail.error().describe());
      CHECK(tail->bytes == 100);
      CHECK(test::matches_pattern(std::span(dest).first(100), 909));
      auto past = co_await c.read(p, std::nullopt, 1000, dest);
      if (!past) FAIL(past.error().describe());
      CHECK(past->bytes == 0);
      CHECK(past->object_size == 1000);
    });
  }

  TEST_CASE("a stream broken every 256 KiB resumes each time from the byte where it stopped") {
    bucket_dir dir;
    const std::size_t size = 3 * MiB + 5;
    dir.write("o", size, 1);
    with_fake_gcs(dir, [&](client& c, tools::fake_gcs_server& server) -> task<void> {
      const object_path p = path_of("o");
      std::vector<std::byte> dest(size);
      auto r = co_await c.read(p, std::nullopt, 0, dest);
      if (!r) FAIL(r.error().describe());
      CHECK(r->bytes == size);
      CHECK(r->verified);
      CHECK(test::matches_pattern(dest, 1));
      // The first, unpinned attempt is dropped and a stat pins the generation; from then on each
      // response delivers 256 KiB before the reset, and none of it is fetched twice.
      CHECK(server.requests() == 2 + (size + 256 * 1024 - 1) / (256 * 1024));
      CHECK(c.stats().resumed_bytes == size - size % (256 * 1024));
    }, "return-broken-stream");
  }

  TEST_CASE("corrupted bytes fail the whole-object check instead of being returned") {
    bucket_dir dir;
    dir.write("o", MiB, 2);
    with_fake_gcs(dir, [&](client& c, tools::fake_gcs_server&) -> task<void> {
      const object_path p = path_of("o");
      std::vector<std::byte> dest(MiB);
      auto r = co_await c.read(p, std::nullopt, 0, dest);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == error_kind::checksum);
      CHECK(r.error().message.find("crc32c mismatch") != std::string::npos);
    }, "return-corrupted-data");
  }

  TEST_CASE("503 with Retry-After is retried after the wait the server asked for") {
    bucket_dir dir;
    dir.write("o", 1000, 3);
    with_fake_gcs(dir, [&](client& c, tools::fake_gcs_server& server) -> task<void> {
      const object_path p = path_of("o");
      std::vector<std::byte> dest(1000);
      server.fail_next_media_with_503();
      const auto start = std::chrono::steady_clock::now();
      auto r = co_await c.read(p, std::nullopt, 0, dest);
      if (!r) FAIL(r.error().describe());
      CHECK(c.stats().retries == 1);
      CHECK(std::chrono::steady_clock::now() - start >= 1s);  // Retry-After: 1
      CHECK(test::matches_pattern(dest, 3));
    });
  }

  TEST_CASE("a missing object is not_found, and a changed one says which generation the server has") {
    bucket_dir dir;
    dir.write("o", 100, 0);
    with_fake_gcs(dir, [&](client& c, tools::fake_gcs_server&) -> task<void> {
      std::vector<std::byte> dest(100);
      const object_path missing = path_of("nope");
      auto r = co_await c.read(missing, std::nullopt, 0, dest);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == error_kind::not_found);
      const object_path p = path_of("o");
      auto m = co_await c.stat(p);
      REQUIRE(m);
      const std::int64_t old_generation = m->generation - 1;
      auto changed = co_await c.read(p, old_generation, 0, dest);
      REQUIRE_FALSE(changed);
      CHECK(changed.error().kind == error_kind::precondition);
      CHECK(changed.error().message.find("generation " + std::to_string(old_generation) +
                                         " requested, server has " + std::to_string(m->generation)) !=
            std::string::npos);
    });
  }

  TEST_CASE("listing pages through a prefix") {
    bucket_dir dir;
    for (int i = 0; i < 25; ++i) dir.write("logs/" + std::to_string(100 + i), 10, 0);
    dir.write("other", 10, 0);
    with_fake_gcs(dir, [&](client& c, tools::fake_gcs_server&) -> task<void> {
      list_request req{.bucket = "bkt", .prefix = "logs/", .max_results = 10};
      std::vector<std::string> names;
      for (int page = 0; page < 10; ++page) {
        auto l = co_await c.list(req);
        if (!l) FAIL(l.error().describe());
        for (auto& item : l->items) names.push_back(item.name);
        if (l->next_page_token.empty()) break;
        req.page_token = l->next_page_token;
      }
      REQUIRE(names.size() == 25);
      CHECK(names.front() == "logs/100");
      CHECK(names.back() == "logs/124");
      const list_request everything{.bucket = "bkt", .prefix = "logs/", .max_results = 7};
      auto all = co_await c.list_all(everything);
      if (!all) FAIL(all.error().describe());
      CHECK(all->items.size() == 25);
      const list_request top{.bucket = "bkt", .delimiter = "/"};
      auto level = co_await c.list_all(top);
      if (!level) FAIL(level.error().describe());
      REQUIRE(level->items.size() == 1);
      CHECK(level->items[0].name == "other");
      CHECK(level->prefixes == std::vector<std::string>{"logs/"});
    });
  }
}
