#include <doctest/doctest.h>

#include <string>

#include "http/url.hpp"

using namespace ringfetch;
using namespace ringfetch::http;

TEST_SUITE("url") {
  TEST_CASE("http and https URLs parse into host, port and request target") {
    auto u = url::parse("HTTPS://Storage.GoogleAPIs.com/storage/v1/b/bkt/o?prefix=a%2Fb#frag");
    REQUIRE(u);
    CHECK(u->scheme == "https");
    CHECK(u->tls());
    CHECK(u->host == "storage.googleapis.com");
    CHECK(u->port == 443);
    CHECK(u->target == "/storage/v1/b/bkt/o?prefix=a%2Fb");
    CHECK(u->authority() == "storage.googleapis.com");
    CHECK(u->str() == "https://storage.googleapis.com/storage/v1/b/bkt/o?prefix=a%2Fb");

    auto p = url::parse("http://127.0.0.1:4443");
    REQUIRE(p);
    CHECK(p->port == 4443);
    CHECK(p->target == "/");
    CHECK(p->authority() == "127.0.0.1:4443");

    auto q = url::parse("http://h?x=1");
    REQUIRE(q);
    CHECK(q->target == "/?x=1");
  }

  TEST_CASE("IPv6 literals keep their brackets only in the authority") {
    auto u = url::parse("http://[::1]:8080/o");
    REQUIRE(u);
    CHECK(u->ipv6_literal);
    CHECK(u->host == "::1");
    CHECK(u->port == 8080);
    CHECK(u->authority() == "[::1]:8080");
    auto d = url::parse("https://[2001:db8::7]/");
    REQUIRE(d);
    CHECK(d->authority() == "[2001:db8::7]");
  }

  TEST_CASE("bad URLs are refused with a message naming the problem") {
    struct bad_case {
      const char* text;
      const char* says;
    };
    for (auto c : {bad_case{"storage.googleapis.com/o", "expected scheme://host"},
                   bad_case{"ftp://h/o", "unsupported scheme 'ftp'"},
                   bad_case{"http://user:secret@h/o", "credentials in the URL"},
                   bad_case{"http://h:0/", "port out of range"},
                   bad_case{"http://h:70000/", "port out of range"},
                   bad_case{"http://h:/", "empty port"},
                   bad_case{"http://h:8x/", "bad port"},
                   bad_case{"http://[::1/", "unterminated IPv6"},
                   bad_case{"http://[zz::1]/", "bad IPv6 literal"},
                   bad_case{"http://h..x/", "bad host name"},
                   bad_case{"http:///path", "bad host name"},
                   bad_case{"http://h/a b", "space or control"},
                   bad_case{"http://h/a%zz", "malformed percent-escape"},
                   bad_case{"http://h/a%4", "malformed percent-escape"}}) {
      CAPTURE(c.text);
      auto u = url::parse(c.text);
      REQUIRE_FALSE(u);
      CHECK(u.error().kind == error_kind::invalid_argument);
      CHECK(u.error().message.find(c.says) != std::string::npos);
    }
  }

  TEST_CASE("a URL carrying credentials is refused without repeating them") {
    auto u = url::parse("http://user:s3cr3t@h/o");
    REQUIRE_FALSE(u);
    CHECK(u.error().message.find("s3cr3t") == std::string::npos);
    CHECK(u.error().message.find("user:") == std::string::npos);
    CHECK(u.error().message.find("http://***@h/o") != std::string::npos);
  }

  TEST_CASE("percent_encode leaves only unreserved characters and round-trips through decode") {
    CHECK(percent_encode("a/b c#?%") == "a%2Fb%20c%23%3F%25");
    CHECK(percent_encode("AZaz09-._~") == "AZaz09-._~");
    std::string unicode = "d\xC3\xA9j\xC3\xA0/vu \xF0\x9F\x90\x9F";
    CHECK(percent_encode(unicode) == "d%C3%A9j%C3%A0%2Fvu%20%F0%9F%90%9F");
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    auto back = percent_decode(percent_encode(all));
    REQUIRE(back);
    CHECK(*back == all);
  }

  TEST_CASE("percent_decode refuses malformed escapes") {
    CHECK_FALSE(percent_decode("%"));
    CHECK_FALSE(percent_decode("ab%2"));
    CHECK_FALSE(percent_decode("%G0"));
    auto d = percent_decode("%41%62");
    REQUIRE(d);
    CHECK(*d == "Ab");
  }
}
