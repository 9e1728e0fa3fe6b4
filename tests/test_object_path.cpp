#include <doctest/doctest.h>

#include <random>
#include <string>

#include "gcs/endpoint.hpp"
#include "gcs/object_path.hpp"
#include "http/url.hpp"

using namespace ringfetch;
using namespace ringfetch::gcs;

TEST_SUITE("object_path") {
  TEST_CASE("object names keep every character after the bucket, verbatim") {
    for (const char* name : {"obj", "a b/c#d?e%f", "日本語/ファイル", "dir/", "a//b", "%2F", "+&=;", "...", "a/../b"}) {
      CAPTURE(name);
      auto p = object_path::parse(std::string("gs://my-bucket/") + name);
      REQUIRE(p);
      CHECK(p->bucket == "my-bucket");
      CHECK(p->object == name);
      CHECK(p->str() == std::string("gs://my-bucket/") + name);
      auto again = object_path::parse(p->str());
      REQUIRE(again);
      CHECK(*again == *p);
    }
  }

  TEST_CASE("bad URIs and names are refused with a message naming the problem") {
    struct bad_case {
      std::string uri;
      const char* says;
    };
    for (const auto& c : {bad_case{"s3://bucket/o", "not a gs://bucket/object URI"},
                          bad_case{"bucket/o", "not a gs://bucket/object URI"},
                          bad_case{"GS://bucket/o", "not a gs://bucket/object URI"},
                          bad_case{"gs://bucket", "names a bucket, not an object"},
                          bad_case{"gs://bucket/", "names a bucket, not an object"},
                          bad_case{"gs:///o", "bad bucket name '': empty"},
                          bad_case{"gs://b/o", "shorter than 3 characters"},
                          bad_case{"gs://" + std::string(64, 'a') + "/o", "longer than 63 characters"},
                          bad_case{"gs://" + std::string(60, 'a') + "." + std::string(162, 'b') + "/o",
                                   "longer than 222 characters"},
                          bad_case{"gs://" + std::string(64, 'a') + ".b/o", "part is longer than 63"},
                          bad_case{"gs://My-Bucket/o", "only lowercase letters"},
                          bad_case{"gs://bu cket/o", "only lowercase letters"},
                          bad_case{"gs://-bucket/o", "start and end with a letter or digit"},
                          bad_case{"gs://bucket_/o", "start and end with a letter or digit"},
                          bad_case{"gs://a..b/o", "empty part between dots"},
                          bad_case{"gs://192.168.5.4/o", "looks like an IP address"},
                          bad_case{"gs://goog-bucket/o", "must not start with 'goog'"},
                          bad_case{"gs://my-google-bucket/o", "must not contain 'google'"},
                          bad_case{"gs://bucket/..", "'.' and '..' are not object names"},
                          bad_case{"gs://bucket/.", "'.' and '..' are not object names"},
                          bad_case{"gs://bucket/a\nb", "carriage return or line feed"},
                          bad_case{"gs://bucket/a\rb", "carriage return or line feed"},
                          bad_case{"gs://bucket/\xff", "not valid UTF-8"},
                          bad_case{"gs://bucket/\xc0\xaf", "not valid UTF-8"},          // overlong '/'
                          bad_case{"gs://bucket/\xed\xa0\x80", "not valid UTF-8"},      // a surrogate
                          bad_case{"gs://bucket/\xe6\x97", "not valid UTF-8"},          // truncated
                          bad_case{"gs://bucket/" + std::string(1025, 'x'), "longer than 1024 bytes"}}) {
      CAPTURE(c.uri);
      auto p = object_path::parse(c.uri);
      REQUIRE_FALSE(p);
      CHECK(p.error().kind == error_kind::invalid_argument);
      CHECK_MESSAGE(p.error().message.find(c.says) != std::string::npos, p.error().message);
    }
  }

  TEST_CASE("valid bucket names include dotted, underscored and 222-character ones") {
    for (std::string b : {std::string("abc"), std::string("a_b-c.d"), std::string(63, 'z'),
                          std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
                              std::string(30, 'd'),
                          std::string("1.2.3.4.5"), std::string("123")}) {
      CAPTURE(b);
      CHECK(validate_bucket_name(b));
    }
  }

  TEST_CASE("a prefix may be empty: a bucket, a bucket with a slash, or a directory") {
    auto bucket = object_path::parse_prefix("gs://bucket");
    REQUIRE(bucket);
    CHECK(bucket->object.empty());
    auto slash = object_path::parse_prefix("gs://bucket/");
    REQUIRE(slash);
    CHECK(slash->object.empty());
    auto dir = object_path::parse_prefix("gs://bucket/dir/");
    REQUIRE(dir);
    CHECK(dir->object == "dir/");
    CHECK_FALSE(object_path::parse_prefix("gs://bucket/.."));
    CHECK_FALSE(object_path::parse_prefix("gs://B/"));
  }

  TEST_CASE("metadata and media targets encode the object name as one path segment") {
    object_path p{"bucket", "a b/c#d?e%f"};
    CHECK(metadata_target(p) == "/storage/v1/b/bucket/o/a%20b%2Fc%23d%3Fe%25f");
    CHECK(metadata_target(p, 17, "size,generation,crc32c") ==
          "/storage/v1/b/bucket/o/a%20b%2Fc%23d%3Fe%25f?generation=17&fields=size%2Cgeneration%2Ccrc32c");
    CHECK(media_target(p, 1700000000000000) ==
          "/download/storage/v1/b/bucket/o/a%20b%2Fc%23d%3Fe%25f?alt=media&generation=1700000000000000");
    CHECK(media_target(p) == "/download/storage/v1/b/bucket/o/a%20b%2Fc%23d%3Fe%25f?alt=media");
    object_path unicode{"bucket", "日本語/ファイル"};
    auto target = metadata_target(unicode);
    CHECK(target == "/storage/v1/b/bucket/o/%E6%97%A5%E6%9C%AC%E8%AA%9E%2F%E3%83%95%E3%82%A1%E3%82%A4%E3%83%AB");
    // The encoded segment decodes back to the name.
    auto decoded = http::percent_decode(target.substr(std::string("/storage/v1/b/bucket/o/").size()));
    REQUIRE(decoded);
    CHECK(*decoded == unicode.object);
    // Every target is a valid request target for the URL parser.
    CHECK(http::url::parse("https://h" + media_target(p, 3)));
  }

  TEST_CASE("list targets encode every query value and omit empty ones") {
    list_request r;
    r.bucket = "bucket";
    CHECK(list_target(r) == "/storage/v1/b/bucket/o");
    r.prefix = "dir/a b&c=d";
    r.delimiter = "/";
    r.page_token = "CgR+/w==";
    r.max_results = 1000;
    r.fields = "items(name,size),nextPageToken,prefixes";
    CHECK(list_target(r) ==
          "/storage/v1/b/bucket/o?prefix=dir%2Fa%20b%26c%3Dd&delimiter=%2F&pageToken=CgR%2B%2Fw%3D%3D"
          "&maxResults=1000&fields=items%28name%2Csize%29%2CnextPageToken%2Cprefixes");
  }
}

TEST_SUITE("object_path") {
  TEST_CASE("random URIs never crash, and every accepted one round-trips through its targets") {
    std::mt19937_64 rng(5);
    const std::string_view alphabet = "gs:/ab-._.0#?%&=+ \t\n\x7f\xc3\xa9\xe6\x97\xa5\xff\x80";
    int accepted = 0;
    for (int round = 0; round < 20000; ++round) {
      std::string uri = round % 2 ? "gs://bucket/" : "gs://";
      std::size_t n = rng() % 24;
      for (std::size_t i = 0; i < n; ++i) uri += alphabet[rng() % alphabet.size()];
      auto p = object_path::parse_prefix(uri);
      if (!p) {
        CHECK(p.error().kind == error_kind::invalid_argument);
        continue;
      }
      ++accepted;
      CHECK(p->str() == (p->object.empty() && uri.back() != '/' ? uri + "/" : uri));
      auto target = metadata_target(*p);
      auto segment = target.substr(target.rfind('/') + 1);
      CHECK(segment.find_first_of("/?# ") == std::string::npos);
      auto decoded = http::percent_decode(segment);
      REQUIRE(decoded);
      CHECK(*decoded == p->object);
    }
    CHECK(accepted > 100);
  }
}

TEST_SUITE("endpoint") {
  TEST_CASE("without an option or emulator the endpoint is Google's, with auth") {
    auto e = resolve_endpoint("", std::nullopt);
    REQUIRE(e);
    CHECK(e->base.str() == "https://storage.googleapis.com/");
    CHECK(e->authenticated);
    CHECK_FALSE(e->emulator);
    CHECK(e->url_for("/storage/v1/b/b/o/x").str() == "https://storage.googleapis.com/storage/v1/b/b/o/x");
    auto empty_var = resolve_endpoint("", std::string_view(""));
    REQUIRE(empty_var);
    CHECK(empty_var->authenticated);
  }

  TEST_CASE("STORAGE_EMULATOR_HOST selects the emulator, without auth, with or without a scheme") {
    for (const char* value : {"127.0.0.1:4443", "http://127.0.0.1:4443", "http://127.0.0.1:4443/",
                              "http://127.0.0.1:4443/storage/v1", "127.0.0.1:4443/storage/v1/"}) {
      CAPTURE(value);
      auto e = resolve_endpoint("", std::string_view(value));
      REQUIRE(e);
      CHECK(e->emulator);
      CHECK_FALSE(e->authenticated);
      CHECK(e->url_for("/storage/v1/b/b/o").str() == "http://127.0.0.1:4443/storage/v1/b/b/o");
    }
    auto tls = resolve_endpoint("", std::string_view("https://[::1]:8443"));
    REQUIRE(tls);
    CHECK(tls->url_for("/x").str() == "https://[::1]:8443/x");
  }

  TEST_CASE("an explicit endpoint wins over the emulator variable and keeps its path prefix") {
    auto e = resolve_endpoint("https://proxy.example:9000/gcs/", std::string_view("127.0.0.1:4443"));
    REQUIRE(e);
    CHECK_FALSE(e->emulator);
    CHECK(e->authenticated);
    CHECK(e->url_for("/storage/v1/b/b/o").str() == "https://proxy.example:9000/gcs/storage/v1/b/b/o");
  }

  TEST_CASE("a bad endpoint names where it came from") {
    auto var = resolve_endpoint("", std::string_view("http://h:99999"));
    REQUIRE_FALSE(var);
    CHECK(var.error().message.find("STORAGE_EMULATOR_HOST") != std::string::npos);
    auto opt = resolve_endpoint("ftp://h", std::nullopt);
    REQUIRE_FALSE(opt);
    CHECK(opt.error().message.find("endpoint option") != std::string::npos);
    auto query = resolve_endpoint("http://h/?a=b", std::nullopt);
    REQUIRE_FALSE(query);
    CHECK(query.error().message.find("no query") != std::string::npos);
  }

  TEST_CASE("the environment variable is read when present") {
    ::setenv("STORAGE_EMULATOR_HOST", "localhost:9023", 1);
    auto e = endpoint_from_environment();
    ::unsetenv("STORAGE_EMULATOR_HOST");
    REQUIRE(e);
    CHECK(e->emulator);
    CHECK(e->base.authority() == "localhost:9023");
    auto d = endpoint_from_environment();
    REQUIRE(d);
    CHECK_FALSE(d->emulator);
  }
}
