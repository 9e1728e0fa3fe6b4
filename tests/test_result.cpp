#include <doctest/doctest.h>

#include <cerrno>
#include <string>

#include "runtime/error.hpp"
#include "runtime/result.hpp"

using namespace ringfetch;

TEST_SUITE("result") {
  TEST_CASE("a result holds a value or an error, and reading the wrong one is a bug") {
    io_result<int> ok = 5;
    CHECK(ok.has_value());
    CHECK(*ok == 5);
    io_result<int> bad = errno_code(-ECONNRESET);
    CHECK_FALSE(bad);
    CHECK(bad.error() == std::errc::connection_reset);
    CHECK(bad.value_or(7) == 7);
    CHECK_THROWS_AS(bad.value(), bad_result_access);
    io_result<void> v;
    CHECK(v);
    io_result<void> vbad = errno_code(-EPIPE);
    CHECK_FALSE(vbad);
  }

  TEST_CASE("system errors are classified into kinds with a retry hint") {
    auto e = error::from_code(errno_code(-ECONNRESET), "recv");
    CHECK(e.kind == error_kind::transport);
    CHECK(e.retryable);
    CHECK(error::from_code(errno_code(-ETIMEDOUT), "x").kind == error_kind::timeout);
    CHECK(error::from_code(errno_code(-ECANCELED), "x").kind == error_kind::cancelled);
    CHECK_FALSE(error::from_code(errno_code(-ECANCELED), "x").retryable);
    CHECK(error::from_code(errno_code(-EMFILE), "x").kind == error_kind::resource);
  }

  TEST_CASE("an error describes itself with its kind, cause, URL and offset") {
    auto e = error::from_code(errno_code(-ECONNRESET), "recv");
    e.url = "https://example.test/o";
    e.offset = 1024;
    std::string d = e.describe();
    CHECK(d.find("transport: recv") == 0);
    CHECK(d.find("reset") != std::string::npos);
    CHECK(d.find("url https://example.test/o, offset 1024") != std::string::npos);
  }
}
