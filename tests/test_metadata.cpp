#include <doctest/doctest.h>

#include <chrono>
#include <random>
#include <string>

#include "gcs/metadata.hpp"
#include "gcs/timestamps.hpp"

using namespace ringfetch;
using namespace ringfetch::gcs;

namespace {

const std::string full_object = R"({
  "kind": "storage#object", "id": "bench/obj/1700000000000000", "name": "dir/obj", "bucket": "bench",
  "generation": "1700000000000000", "metageneration": "3", "contentType": "application/octet-stream",
  "contentEncoding": "gzip", "storageClass": "STANDARD", "size": "1073741824",
  "md5Hash": "1B2M2Y8AsgTpgAmY7PhCfg==", "crc32c": "4waSgw==", "etag": "CICA",
  "timeCreated": "2026-11-22T10:00:00.000Z", "updated": "2026-11-22T10:00:00.250Z",
  "metadata": {"k": "v"}, "unknownFutureField": [1, {"x": null}]
})";

std::string with(std::string json, const std::string& from, const std::string& to) {
  auto at = json.find(from);
  REQUIRE(at != std::string::npos);
  return json.replace(at, from.size(), to);
}

void check_protocol_error(const std::string& json, const std::string& says) {
  CAPTURE(json);
  auto m = parse_object_metadata(json);
  REQUIRE_FALSE(m);
  CHECK(m.error().kind == error_kind::protocol);
  CHECK_MESSAGE(m.error().message.find(says) != std::string::npos, m.error().message);
}

}  // namespace

TEST_SUITE("metadata") {
  TEST_CASE("a full object resource parses into every field, ignoring unknown ones") {
    auto m = parse_object_metadata(full_object);
    REQUIRE(m);
    CHECK(m->name == "dir/obj");
    CHECK(m->bucket == "bench");
    CHECK(m->size == 1073741824u);
    CHECK(m->generation == 1700000000000000);
    CHECK(m->metageneration == 3);
    REQUIRE(m->crc32c);
    CHECK(*m->crc32c == 0xE3069283u);
    REQUIRE(m->md5);
    CHECK((*m->md5)[0] == std::byte{0xD4});  // md5 of no bytes: d41d8cd98f00b204e9800998ecf8427e
    CHECK((*m->md5)[15] == std::byte{0x7E});
    CHECK(m->content_type == "application/octet-stream");
    CHECK(m->content_encoding == "gzip");
    CHECK(m->updated == "2026-11-22T10:00:00.250Z");
    REQUIRE(m->updated_time);
    using namespace std::chrono;
    CHECK(*m->updated_time == sys_days(year(2026) / 11 / 22) + hours(10) + milliseconds(250));
  }

  TEST_CASE("a minimal resource needs only name, size and generation") {
    auto m = parse_object_metadata(R"({"name":"o","size":"0","generation":"1"})");
    REQUIRE(m);
    CHECK(m->size == 0u);
    CHECK_FALSE(m->crc32c);
    CHECK_FALSE(m->md5);  // composite objects have no md5Hash
    CHECK_FALSE(m->updated_time);
    auto max = parse_object_metadata(
        R"({"name":"o","size":"18446744073709551615","generation":"9223372036854775807"})");
    REQUIRE(max);
    CHECK(max->size == 18446744073709551615u);
    CHECK(max->generation == 9223372036854775807);
  }

  TEST_CASE("malformed resources are protocol errors naming the field") {
    check_protocol_error("", "invalid JSON");
    check_protocol_error(full_object.substr(0, full_object.size() / 2), "invalid JSON");
    check_protocol_error("[1,2]", "not a JSON object");
    check_protocol_error("\"name\"", "not a JSON object");
    check_protocol_error("null", "not a JSON object");
    check_protocol_error(with(full_object, R"("name": "dir/obj",)", ""), "field 'name' is missing");
    check_protocol_error(with(full_object, R"("name": "dir/obj")", R"("name": 7)"), "field 'name' is not a string");
    check_protocol_error(with(full_object, R"("size": "1073741824",)", ""), "field 'size' is missing");
    check_protocol_error(with(full_object, R"("1073741824")", "1073741824"), "field 'size' is not a string");
    check_protocol_error(with(full_object, R"("1073741824")", R"("-1")"), "field 'size' is negative");
    check_protocol_error(with(full_object, R"("1073741824")", R"("")"), "field 'size' is empty");
    check_protocol_error(with(full_object, R"("1073741824")", R"("1e9")"), "field 'size' is not a decimal number");
    check_protocol_error(with(full_object, R"("1073741824")", R"(" 12")"), "field 'size' is not a decimal number");
    check_protocol_error(with(full_object, R"("1073741824")", R"("+12")"), "field 'size' is not a decimal number");
    check_protocol_error(with(full_object, R"("1073741824")", R"("18446744073709551616")"), "field 'size' is out of range");
    check_protocol_error(with(full_object, R"("1700000000000000")", R"("9223372036854775808")"),
                         "field 'generation' is out of range");
    check_protocol_error(with(full_object, R"("1700000000000000")", R"("-5")"), "field 'generation' is negative");
    check_protocol_error(with(full_object, R"("metageneration": "3")", R"("metageneration": true)"),
                         "field 'metageneration' is not a string");
    check_protocol_error(with(full_object, R"("4waSgw==")", R"("4waSgw")"), "field 'crc32c'");
    check_protocol_error(with(full_object, R"("4waSgw==")", R"("AAAAAAAA")"), "field 'crc32c'");
    check_protocol_error(with(full_object, R"("1B2M2Y8AsgTpgAmY7PhCfg==")", R"("4waSgw==")"), "field 'md5Hash'");
    check_protocol_error(with(full_object, R"("bucket": "bench")", R"("bucket": {})"), "field 'bucket' is not a string");
    check_protocol_error(with(full_object, R"("2026-11-22T10:00:00.250Z")", R"("yesterday")"), "field 'updated'");
  }

  TEST_CASE("RFC 3339 times parse with fractions and offsets and refuse nonsense") {
    using namespace std::chrono;
    auto base = sys_days(year(2026) / 11 / 22) + hours(10);
    CHECK(parse_rfc3339("2026-11-22T10:00:00Z") == base);
    CHECK(parse_rfc3339("2026-11-22t10:00:00z") == base);
    CHECK(parse_rfc3339("2026-11-22T11:30:00+01:30") == base);
    CHECK(parse_rfc3339("2026-11-22T09:00:00-01:00") == base);
    CHECK(parse_rfc3339("2026-11-22T10:00:00.123456789Z") == base + nanoseconds(123456789));
    CHECK(parse_rfc3339("1970-01-01T00:00:00Z") == system_clock::time_point{});
    for (const char* bad : {"", "2026-11-22", "2026-11-22T10:00:00", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                            "2026-11-22T24:00:00Z", "2026-11-22T10:60:00Z", "2026-11-22T10:00:60Z",
                            "2026-11-22T10:00:00.Z", "2026-11-22T10:00:00+1:00", "2026-11-22T10:00:00Zjunk",
                            "2026-11-22 10:00:00Z", "2O26-11-22T10:00:00Z", "2026-11-22T10:00:00+24:00"}) {
      CAPTURE(bad);
      CHECK_FALSE(parse_rfc3339(bad).has_value());
    }
  }

  TEST_CASE("a list page gives items, prefixes and the next page token") {
    auto page = parse_list_page(R"({"kind":"storage#objects","prefixes":["a/","b/"],
        "items":[{"name":"x","size":"1","generation":"2"},{"name":"y","size":"3","generation":"4","crc32c":"AAAAAA=="}],
        "nextPageToken":"CgF5"})");
    REQUIRE(page);
    REQUIRE(page->items.size() == 2);
    CHECK(page->items[1].name == "y");
    CHECK(page->items[1].crc32c == 0u);
    CHECK(page->prefixes == std::vector<std::string>{"a/", "b/"});
    CHECK(page->next_page_token == "CgF5");

    auto last = parse_list_page(R"({"kind":"storage#objects"})");
    REQUIRE(last);
    CHECK(last->items.empty());
    CHECK(last->prefixes.empty());
    CHECK(last->next_page_token.empty());
  }

  TEST_CASE("a malformed list page names the item and field at fault") {
    struct bad_case {
      const char* json;
      const char* says;
    };
    for (auto c : {bad_case{"[]", "not a JSON object"}, bad_case{R"({"items":{}})", "'items' is not an array"},
                   bad_case{R"({"items":[{"name":"x","size":"1","generation":"2"},{"name":"y","size":"-3","generation":"4"}]})",
                            "items[1]: field 'size' is negative"},
                   bad_case{R"({"items":[7]})", "items[0]: not a JSON object"},
                   bad_case{R"({"prefixes":"a/"})", "'prefixes' is not an array"},
                   bad_case{R"({"prefixes":["a/",1]})", "'prefixes' holds a non-string"},
                   bad_case{R"({"nextPageToken":5})", "'nextPageToken' is not a string"},
                   bad_case{R"({"items":[)", "invalid JSON"}}) {
      CAPTURE(c.json);
      auto page = parse_list_page(c.json);
      REQUIRE_FALSE(page);
      CHECK(page.error().kind == error_kind::protocol);
      CHECK_MESSAGE(page.error().message.find(c.says) != std::string::npos, page.error().message);
    }
  }

  TEST_CASE("a GCS error body gives its code, message and reason; anything else gives nothing") {
    auto body = parse_error_body(
        R"({"error":{"code":404,"message":"No such object: bench/obj","errors":[{"message":"x","domain":"global","reason":"notFound"}]}})");
    REQUIRE(body);
    CHECK(body->code == 404);
    CHECK(body->message == "No such object: bench/obj");
    CHECK(body->reason == "notFound");
    CHECK(body->describe() == "No such object: bench/obj (notFound)");
    auto plain = parse_error_body(R"({"error":{"code":503,"message":"Backend Error"}})");
    REQUIRE(plain);
    CHECK(plain->describe() == "Backend Error");
    for (const char* other : {"", "<html>502 Bad Gateway</html>", "{}", R"({"error":"x"})", R"({"error":{}})",
                              R"({"error":{"code":"404"}})", "[1]"}) {
      CAPTURE(other);
      CHECK_FALSE(parse_error_body(other).has_value());
    }
  }

  TEST_CASE("random mutations of a valid resource never crash and fail only as protocol errors") {
    std::mt19937_64 rng(1234);
    int accepted = 0;
    for (int round = 0; round < 3000; ++round) {
      std::string json = full_object;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        std::size_t at = rng() % json.size();
        switch (rng() % 3) {
          case 0: json[at] = static_cast<char>(rng()); break;
          case 1: json.erase(at, 1 + rng() % 8); break;
          default: json.resize(at); break;
        }
        if (json.empty()) break;
      }
      auto m = parse_object_metadata(json);
      if (m) ++accepted;
      else CHECK(m.error().kind == error_kind::protocol);
      (void)parse_list_page(json);
      (void)parse_error_body(json);
    }
    CHECK(accepted < 3000);
  }
}
