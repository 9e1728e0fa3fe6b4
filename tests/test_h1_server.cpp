#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "http/h1_connection.hpp"
#include "http/h1_server.hpp"
#include "http/self_signed_cert.hpp"
#include "http/tcp_stream.hpp"
#include "http/tls_stream.hpp"
#include "runtime/event.hpp"
#include "runtime/ops.hpp"
#include "runtime/timer.hpp"
#include "runtime/when_all.hpp"
#include "nginx_fixture.hpp"
#include "test_support.hpp"

using namespace ringfetch;
using namespace ringfetch::http;
using namespace std::chrono_literals;
using test::reactor_fixture;

// Requests, headers and spans are named locals, never braced temporaries inside a co_await
// (GCC 12 destroys such temporaries twice).

namespace {

constexpr std::size_t MiB = 1 << 20;

std::span<const std::byte> bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// "bytes=A-B" → [A, B] clamped to size; nullopt for anything else.
std::optional<byte_range> parse_range(const std::string* h, std::uint64_t size) {
  if (!h) return std::nullopt;
  unsigned long long a = 0, b = 0;
  if (std::sscanf(h->c_str(), "bytes=%llu-%llu", &a, &b) != 2 || a > b || a >= size)
    return std::nullopt;
  return byte_range{a, std::min<std::uint64_t>(b, size - 1)};
}

std::uint64_t query_number(const std::string& target, std::string_view key) {
  auto at = target.find(key);
  if (at == std::string::npos) return 0;
  return std::stoull(target.substr(at + key.size()));
}

// Routes: /hello (memory), /echo (the request body back), /file (the test file, ranges honoured), /chunked, faults on /file with
// ?reset= / ?truncate= / ?stall=, everything else 404.
struct test_handler final : request_handler {
  int file_fd = -1;
  std::uint64_t file_size = 0;
  std::size_t handled = 0;

  task<void> handle(server_request& req, response_writer& w) override {
    ++handled;
    const std::string path = req.target.substr(0, req.target.find('?'));
    if (path == "/hello") {
      const std::vector<header_field> h{{"Content-Type", "text/plain"}};
      const std::string_view text = "hello, world\n";
      auto r = co_await w.send(200, h, bytes(text));
      (void)r;
    } else if (path == "/file" && file_fd >= 0) {
      if (auto n = query_number(req.target, "reset=")) w.inject({fault::kind::reset, n});
      if (auto n = query_number(req.target, "truncate=")) w.inject({fault::kind::truncate, n});
      if (auto n = query_number(req.target, "stall=")) w.inject({fault::kind::stall, n});
      std::vector<header_field> h;
      if (auto range = parse_range(req.header("range"), file_size)) {
        h.push_back({"Content-Range", "bytes " + std::to_string(range->first) + "-" +
                                          std::to_string(range->last) + "/" +
                                          std::to_string(file_size)});
        auto r = co_await w.send_file(206, h, file_fd, range->first, range->last - range->first + 1);
        (void)r;
      } else {
        auto r = co_await w.send_file(200, h, file_fd, 0, file_size);
        (void)r;
      }
    } else if (path == "/chunked") {
      const std::vector<header_field> none;
      auto a = co_await w.begin_chunked(200, none);
      for (int i = 0; a && i < 3; ++i) {
        const std::string piece = "piece " + std::to_string(i) + ";";
        a = co_await w.write_chunk(bytes(piece));
      }
      if (a) a = co_await w.end_chunked();
    } else if (path == "/echo") {
      const std::vector<header_field> none;
      auto r = co_await w.send(200, none, req.body);
      (void)r;
    } else if (path == "/silent") {
      co_return;  // the server answers 500
    } else {
      const std::vector<header_field> none;
      const std::string_view text = "no such thing\n";
      auto r = co_await w.send(404, none, bytes(text));
      (void)r;
    }
  }
};

// A test file of `size` pattern bytes (offset 0 = pattern 0).
test::unique_fd pattern_file(std::size_t size) {
  test::unique_fd f = test::temp_file();
  std::vector<std::byte> block(8 * MiB);
  for (std::size_t at = 0; at < size; at += block.size()) {
    const std::size_t n = std::min(block.size(), size - at);
    test::fill_pattern(std::span(block).first(n), at);
    REQUIRE(::pwrite(f.get(), block.data(), n, static_cast<off_t>(at)) == static_cast<ssize_t>(n));
  }
  return f;
}

task<std::unique_ptr<h1_connection>> connect_to(resolver& names, std::uint16_t port,
                                                h1_options o = {}) {
  auto s = co_await tcp_stream::connect(names, "127.0.0.1", port);
  REQUIRE(s);
  co_return std::make_unique<h1_connection>(std::move(*s), "127.0.0.1:" + std::to_string(port), o);
}

// Runs a shell command on a thread of its own while the reactor keeps serving; returns its stdout.
// The command must bound its own run time (curl --max-time).
task<std::string> run_command(std::string command) {
  reactor* here = reactor::current();
  event done;
  std::string out;
  std::thread runner([&] {
    if (FILE* p = ::popen(command.c_str(), "r")) {
      char buf[4096];
      std::size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
      ::pclose(p);
    }
    here->post([&] { done.set(); });
  });
  co_await done.wait();
  runner.join();
  co_return out;
}

// Raw socket helpers for what our client will not send.
task<std::string> exchange_raw(std::uint16_t port, std::string wire, bool half_close = false) {
  test::unique_fd s = test::tcp_socket();
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  auto c = co_await op::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a, within(5s));
  REQUIRE(c);
  auto sent = co_await op::send(s.get(), bytes(wire), within(5s));
  REQUIRE(sent);
  if (half_close) ::shutdown(s.get(), SHUT_WR);
  std::string got;
  std::vector<std::byte> buf(64 * 1024);
  for (;;) {
    auto n = co_await op::recv(s.get(), buf, within(5s));
    REQUIRE(n);  // a timeout here means the server kept the connection open
    if (*n == 0) break;
    got.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  co_return got;
}

struct server_fixture {
  explicit server_fixture(server_options o = {}, std::size_t file_size = 0) {
    if (file_size > 0) {
      file = pattern_file(file_size);
      handler.file_fd = file.get();
      handler.file_size = file_size;
    }
    auto s = h1_server::listen(handler, o);
    REQUIRE(s);
    server = std::move(*s);
    server->start();
  }
  test_handler handler;
  test::unique_fd file;
  std::unique_ptr<h1_server> server;
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(server->port()) + std::string(path);
  }
};

}  // namespace

TEST_SUITE("h1_server") {
  TEST_CASE("our client: memory bodies, 404, HEAD and a chunked body over one kept-alive connection") {
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      server_fixture s;
      CHECK(s.server->port() != 0);
      auto c = co_await connect_to(names, s.server->port());
      std::vector<std::byte> dest(1024);
      const request hello{.target = "/hello"};
      auto r = co_await c->send(hello, dest);
      REQUIRE(r);
      CHECK(r->status == 200);
      CHECK(std::string_view(reinterpret_cast<char*>(dest.data()), r->body_bytes) == "hello, world\n");
      CHECK(c->reusable());
      const request missing{.target = "/nope"};
      auto m = co_await c->send(missing, dest);
      REQUIRE(m);
      CHECK(m->status == 404);
      CHECK(m->error_body == "no such thing\n");
      const request head{.method = "HEAD", .target = "/hello"};
      auto h = co_await c->send(head, dest);
      REQUIRE(h);
      CHECK(h->status == 200);
      CHECK(h->body_bytes == 0);
      REQUIRE(h->header("content-length"));
      CHECK(*h->header("content-length") == "13");
      const request chunked{.target = "/chunked"};
      auto k = co_await c->send(chunked, dest);
      REQUIRE(k);
      CHECK(std::string_view(reinterpret_cast<char*>(dest.data()), k->body_bytes) ==
            "piece 0;piece 1;piece 2;");
      const request silent{.target = "/silent"};
      auto e = co_await c->send(silent, dest);
      REQUIRE(e);
      CHECK(e->status == 500);
      CHECK(s.server->stats().accepted == 1);  // all of it on one connection
      CHECK(s.server->stats().requests == 5);
      co_await c->close();
      co_await s.server->stop();
    }());
  }

  TEST_CASE("request bodies reach the handler whole, one after another on a kept-alive connection") {
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      server_fixture s;
      auto c = co_await connect_to(names, s.server->port());
      std::vector<std::byte> dest(1 << 20);
      for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{70'000}, std::size_t{300'001}}) {
        CAPTURE(size);
        request post{.method = "POST", .target = "/echo"};
        post.body.resize(size);
        for (std::size_t i = 0; i < size; ++i) post.body[i] = static_cast<char>('a' + i % 26);
        auto r = co_await c->send(post, dest);
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(std::string_view(reinterpret_cast<char*>(dest.data()), r->body_bytes) == post.body);
        CHECK(c->reusable());
      }
      CHECK(s.server->stats().accepted == 1);
      co_await c->close();
      co_await s.server->stop();
    }());
  }

  TEST_CASE("ranged file sends of odd sizes are byte-exact, with our client and with curl") {
    const std::size_t size = 20 * MiB + 7;
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      server_fixture s({}, size);
      auto c = co_await connect_to(names, s.server->port());
      std::vector<std::byte> whole(size);
      const request all{.target = "/file"};
      auto r = co_await c->send(all, whole);
      REQUIRE(r);
      CHECK(r->status == 200);
      CHECK(r->body_bytes == size);
      CHECK(test::matches_pattern(whole, 0));
      struct span_case { std::uint64_t first, last; };
      for (auto rc : {span_case{0, 0}, span_case{1, 4096}, span_case{size - 1, size - 1},
                      span_case{3 * MiB - 3, 17 * MiB + 5}, span_case{size - 1000, size + 50}}) {
        CAPTURE(rc.first);
        const std::uint64_t last = std::min<std::uint64_t>(rc.last, size - 1);
        std::vector<std::byte> part(last - rc.first + 1);
        const request p_req{.target = "/file", .range = byte_range{rc.first, rc.last}};
        auto p = co_await c->send(p_req, part);
        REQUIRE(p);
        CHECK(p->status == 206);
        CHECK(p->body_bytes == part.size());
        CHECK(test::matches_pattern(part, rc.first));
        CHECK(c->reusable());
      }
      CHECK(s.server->stats().accepted == 1);
      co_await c->close();

      // curl: the whole file into a scratch file, compared byte for byte; then two ranges on one
      // kept-alive connection (curl reports how many connections it opened).
      char path[] = "/tmp/ringfetch-h1-server-XXXXXX";
      test::unique_fd out(::mkstemp(path));
      const std::string whole_cmd = "curl -s --max-time 60 -o " + std::string(path) +
                                    " -w '%{http_code} %{size_download}' " + s.url("/file");
      const std::string got = co_await run_command(whole_cmd);
      CHECK(got == "200 " + std::to_string(size));
      std::vector<std::byte> back(size);
      CHECK(::pread(out.get(), back.data(), size, 0) == static_cast<ssize_t>(size));
      CHECK(test::matches_pattern(back, 0));
      ::unlink(path);
      const std::string report = " -s --max-time 60 -o /dev/null -w '%{http_code} %{size_download} %{num_connects}\\n' ";
      const std::string ranges_cmd = "curl -r 5-1048581" + report + s.url("/file") +
                                     " --next -r 7-7" + report + s.url("/file");
      const std::string ranges = co_await run_command(ranges_cmd);
      CHECK(ranges == "206 1048577 1\n206 1 0\n");  // the second transfer reused the connection
      const std::string head_cmd = "curl -s --max-time 60 -I " + s.url("/file");
      const std::string head = co_await run_command(head_cmd);
      CHECK(head.find("HTTP/1.1 200 OK") == 0);
      CHECK(head.find("Content-Length: " + std::to_string(size)) != std::string::npos);
      co_await s.server->stop();
    }());
  }

  TEST_CASE("a client sending garbage gets 400 and the connection is closed") {
    reactor_fixture f;
    f.run([&]() -> task<void> {
      server_fixture s;
      const std::string garbage = "\x16\x03\x01 definitely not HTTP\r\n\r\n";
      const std::string got = co_await exchange_raw(s.server->port(), garbage);
      CHECK(got.find("HTTP/1.1 400 Bad Request\r\n") == 0);
      CHECK(got.find("Connection: close") != std::string::npos);
      const std::string huge = "GET /" + std::string(100'000, 'x') + " HTTP/1.1\r\n\r\n";
      const std::string too_big = co_await exchange_raw(s.server->port(), huge);
      CHECK(too_big.find("HTTP/1.1 431 ") == 0);
      // Garbage followed by more bytes the server never reads: the 400 must still arrive intact.
      const std::string noisy = "BLAH\x01\r\n" + std::string(300'000, 'z');
      const std::string answered = co_await exchange_raw(s.server->port(), noisy, true);
      CHECK(answered.find("HTTP/1.1 400 Bad Request\r\n") == 0);
      CHECK(s.server->stats().bad_requests == 3);
      co_await s.server->stop();
    }());
  }

  TEST_CASE("pipelined requests are answered in order, and Connection: close is honoured") {
    reactor_fixture f;
    f.run([&]() -> task<void> {
      server_fixture s;
      const std::string wire =
          "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
      const std::string got = co_await exchange_raw(s.server->port(), wire);
      const auto first = got.find("HTTP/1.1 200");
      const auto second = got.find("HTTP/1.1 404");
      const auto third = got.rfind("HTTP/1.1 200");
      CHECK(first == 0);
      CHECK(second != std::string::npos);
      CHECK(third > second);
      CHECK(s.server->stats().requests == 3);
      // Expect: 100-continue gets its interim answer once the head is in and the body is not.
      test::unique_fd raw = test::tcp_socket();
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(s.server->port());
      auto connected = co_await op::connect(raw.get(), reinterpret_cast<sockaddr*>(&a), sizeof a, within(5s));
      REQUIRE(connected);
      const std::string head =
          "POST /hello HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n"
          "Connection: close\r\n\r\n";
      auto sent_head = co_await op::send(raw.get(), bytes(head), within(5s));
      REQUIRE(sent_head);
      const std::string_view interim = "HTTP/1.1 100 Continue\r\n\r\n";
      std::vector<std::byte> buf(interim.size());
      auto interim_got = co_await op::recv(raw.get(), buf, within(5s), MSG_WAITALL);
      REQUIRE(interim_got);
      CHECK(std::string_view(reinterpret_cast<const char*>(buf.data()), *interim_got) == interim);
      auto sent_body = co_await op::send(raw.get(), bytes("body"), within(5s));
      REQUIRE(sent_body);
      std::vector<std::byte> rest(4096);
      auto final_answer = co_await op::recv(raw.get(), rest, within(5s));
      REQUIRE(final_answer);
      CHECK(std::string_view(reinterpret_cast<const char*>(rest.data()), *final_answer)
                .starts_with("HTTP/1.1 200 OK\r\n"));
      co_await s.server->stop();
    }());
  }

  TEST_CASE("faults: reset and truncate after N body bytes reach our client with that byte count") {
    const std::size_t size = 8 * MiB + 3;
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      server_fixture s({}, size);
      for (std::string kind : {"reset", "truncate"}) {
        CAPTURE(kind);
        const std::uint64_t n = 3 * MiB + 11;
        auto c = co_await connect_to(names, s.server->port());
        std::vector<std::byte> dest(size);
        const request req{.target = "/file?" + kind + "=" + std::to_string(n)};
        auto r = co_await c->send(req, dest);
        REQUIRE_FALSE(r);
        CHECK(r.error().offset == n);
        CHECK(test::matches_pattern(std::span(dest).first(n), 0));
        if (kind == "reset") CHECK(r.error().code == std::errc::connection_reset);
        else CHECK(r.error().message.find("closed mid-body after " + std::to_string(n)) != std::string::npos);
        co_await c->close();
      }
      co_await s.server->stop();
    }());
  }

  TEST_CASE("a stall fault leaves the client waiting until its own timeout") {
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      server_fixture s({}, 4 * MiB);
      auto c = co_await connect_to(names, s.server->port(), {.idle_timeout = 300ms});
      std::vector<std::byte> dest(4 * MiB);
      const request req{.target = "/file?stall=1000"};
      auto r = co_await c->send(req, dest);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == error_kind::timeout);
      CHECK(r.error().offset == 1000);
      co_await c->close();
      co_await s.server->stop();
    }());
  }

  TEST_CASE("a request not finished within the request timeout gets 408") {
    reactor_fixture f;
    f.run([&]() -> task<void> {
      server_fixture s({.request_timeout = 200ms});
      const std::string partial = "GET /hello HTTP/1.1\r\nHost: x\r\n";  // no blank line
      const std::string got = co_await exchange_raw(s.server->port(), partial);
      CHECK(got.find("HTTP/1.1 408 Request Timeout\r\n") == 0);
      co_await s.server->stop();
    }());
  }

  TEST_CASE("ranges past 4 GiB of a sparse 5 GiB file are byte-exact") {
    const std::uint64_t size = (std::uint64_t{5} << 30) + 7;
    const std::uint64_t four_gib = std::uint64_t{4} << 30;
    test::unique_fd file = test::temp_file();
    REQUIRE(::ftruncate(file.get(), static_cast<off_t>(size)) == 0);
    // Pattern bytes only where the ranges read: around 4 GiB and at the very end.
    for (std::uint64_t at : {four_gib - MiB, size - 2 * MiB}) {
      std::vector<std::byte> block(2 * MiB);
      test::fill_pattern(block, at);
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), size - at));
      REQUIRE(::pwrite(file.get(), block.data(), n, static_cast<off_t>(at)) == static_cast<ssize_t>(n));
    }
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      server_fixture s;
      s.handler.file_fd = file.get();
      s.handler.file_size = size;
      auto c = co_await connect_to(names, s.server->port());
      struct span_case { std::uint64_t first, last; };
      for (auto rc : {span_case{four_gib - MiB + 3, four_gib + MiB - 5},
                      span_case{four_gib, four_gib}, span_case{size - MiB - 1, size - 1}}) {
        CAPTURE(rc.first);
        std::vector<std::byte> part(rc.last - rc.first + 1);
        const request p_req{.target = "/file", .range = byte_range{rc.first, rc.last}};
        auto p = co_await c->send(p_req, part);
        REQUIRE(p);
        CHECK(p->status == 206);
        CHECK(p->body_bytes == part.size());
        CHECK(test::matches_pattern(part, rc.first));
      }
      co_await c->close();
      co_await s.server->stop();
    }());
  }

  TEST_CASE("HTTPS: ALPN http/1.1, memory and file bodies byte-exact, with our client and curl") {
    auto identity = make_self_signed_certificate();
    REQUIRE(identity);
    auto server_tls = tls_context::server({.certificate_pem = identity->certificate_pem,
                                           .private_key_pem = identity->private_key_pem,
                                           .alpn = {"http/1.1"}});
    REQUIRE(server_tls);
    auto client_tls = tls_context::client({.ca_pem = identity->certificate_pem, .alpn = {"http/1.1"}});
    REQUIRE(client_tls);
    const std::size_t size = 6 * MiB + 5;
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      server_fixture s({.tls = &*server_tls}, size);
      auto tcp = co_await tcp_stream::connect(names, "127.0.0.1", s.server->port());
      REQUIRE(tcp);
      std::unique_ptr<transport> below = std::move(*tcp);
      const std::string host = "127.0.0.1";
      auto tls = co_await tls_stream::connect(std::move(below), *client_tls, host);
      REQUIRE(tls);
      CHECK((*tls)->alpn() == "http/1.1");
      h1_connection c(std::move(*tls), "127.0.0.1:" + std::to_string(s.server->port()));
      std::vector<std::byte> dest(size);
      const request hello{.target = "/hello"};
      auto r = co_await c.send(hello, dest);
      REQUIRE(r);
      CHECK(std::string_view(reinterpret_cast<char*>(dest.data()), r->body_bytes) == "hello, world\n");
      const request all{.target = "/file"};
      auto w = co_await c.send(all, dest);
      REQUIRE(w);
      CHECK(w->body_bytes == size);
      CHECK(test::matches_pattern(dest, 0));
      const request part{.target = "/file", .range = byte_range{MiB + 1, 3 * MiB + 2}};
      auto p = co_await c.send(part, dest);
      REQUIRE(p);
      CHECK(p->status == 206);
      CHECK(test::matches_pattern(std::span(dest).first(p->body_bytes), MiB + 1));
      co_await c.close();
      char pem[] = "/tmp/ringfetch-h1-server-ca-XXXXXX";
      test::unique_fd pem_fd(::mkstemp(pem));
      REQUIRE(::write(pem_fd.get(), identity->certificate_pem.data(), identity->certificate_pem.size()) ==
              static_cast<ssize_t>(identity->certificate_pem.size()));
      const std::string cmd = "curl -s --max-time 60 --cacert " + std::string(pem) +
                              " -o /dev/null -w '%{http_code} %{size_download} %{http_version}' https://127.0.0.1:" +
                              std::to_string(s.server->port()) + "/file";
      const std::string got = co_await run_command(cmd);
      CHECK(got == "200 " + std::to_string(size) + " 1.1");
      ::unlink(pem);
      co_await s.server->stop();
    }());
  }

  TEST_CASE("an idle kept-alive connection is closed after the idle timeout") {
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      server_fixture s({.idle_timeout = 200ms});
      auto c = co_await connect_to(names, s.server->port());
      std::vector<std::byte> dest(64);
      const request hello{.target = "/hello"};
      auto r = co_await c->send(hello, dest);
      REQUIRE(r);
      // The server must close within a few idle timeouts; the read's deadline says how long.
      const auto started = steady_clock::now();
      std::vector<std::byte> buf(64);
      const op_options o = within(5s);
      auto n = co_await c->stream().read_some(buf, o);
      REQUIRE(n);
      CHECK(*n == 0);
      CHECK(steady_clock::now() - started < 3s);
      CHECK(s.server->stats().open_connections == 0);
      co_await c->close();
      co_await s.server->stop();
    }());
  }

  TEST_CASE("stop() with idle, mid-request and stalled connections returns promptly and cleanly") {
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      server_fixture s({}, 4 * MiB);
      std::vector<std::unique_ptr<h1_connection>> idle;
      for (int i = 0; i < 3; ++i) idle.push_back(co_await connect_to(names, s.server->port()));
      std::vector<std::byte> dest(4 * MiB);
      const request hello{.target = "/hello"};
      auto warm = co_await idle[0]->send(hello, dest);
      REQUIRE(warm);
      // One client stuck in a stalled response while the server stops.
      auto stalled = co_await connect_to(names, s.server->port());
      auto stalled_read = [&]() -> task<bool> {
        const request req{.target = "/file?stall=100"};
        auto r = co_await stalled->send(req, dest);
        co_return !r;
      };
      auto stopper = [&]() -> task<std::chrono::nanoseconds> {
        // Let the stalled request reach its handler: wait (bounded) until the server saw it.
        for (int i = 0; i < 1000 && s.server->stats().requests < 2; ++i) {
          auto y = co_await sleep_for(1ms);
          (void)y;
        }
        const auto t0 = steady_clock::now();
        co_await s.server->stop();
        co_return steady_clock::now() - t0;
      };
      auto [failed, took] = co_await when_all(stalled_read(), stopper());
      CHECK(failed);
      CHECK(took < 2s);
      CHECK(s.server->stats().open_connections == 0);
      // Every kept-alive client sees the close.
      for (auto& c : idle) {
        std::vector<std::byte> buf(16);
        const op_options o = within(5s);
        auto n = co_await c->stream().read_some(buf, o);
        CHECK((!n || *n == 0));
        co_await c->close();
      }
      co_await stalled->close();
      // A stopped server refuses new connections.
      test::unique_fd probe = test::tcp_socket();
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(s.server->port());
      auto refused = co_await op::connect(probe.get(), reinterpret_cast<sockaddr*>(&a), sizeof a, within(5s));
      CHECK_FALSE(refused);
    }());
    CHECK(f.r.detached_tasks() == 0);
  }

  TEST_CASE("at most max_connections are served at once; the next waits for a free slot") {
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      server_fixture s({.max_connections = 1});
      auto first = co_await connect_to(names, s.server->port());
      std::vector<std::byte> dest(64);
      const request hello{.target = "/hello"};
      auto first_answer = co_await first->send(hello, dest);
      REQUIRE(first_answer);
      auto second = co_await connect_to(names, s.server->port());  // completes in the backlog
      auto later = [&]() -> task<bool> {
        auto r = co_await second->send(hello, dest);
        co_return r && r->status == 200;
      };
      auto release = [&]() -> task<void> {
        auto y = co_await sleep_for(50ms);
        (void)y;
        CHECK(s.server->stats().accepted == 1);
        co_await first->close();
      };
      auto [served, done] = co_await when_all(later(), release());
      (void)done;
      CHECK(served);
      CHECK(s.server->stats().accepted == 2);
      co_await second->close();
      co_await s.server->stop();
    }());
  }
}

// Manual measurement (release build): ./test_h1_server --no-skip -tc='manual*'
// Serves 1 GiB from /dev/shm with this server and with nginx, alternating, to curl -o /dev/null
// and to h1_connection (into one warm 1 GiB buffer); prints medians in MB/s.
TEST_SUITE("h1_server throughput") {
  TEST_CASE("manual: 1 GiB from /dev/shm, this server against nginx" * doctest::skip()) {
    const std::size_t size = std::size_t{1} << 30;
    const std::string shm = "/dev/shm/ringfetch-h1-server-bench.bin";
    {
      test::unique_fd w(::open(shm.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
      REQUIRE(w.get() >= 0);
      struct stat st{};
      ::fstat(w.get(), &st);
      if (static_cast<std::size_t>(st.st_size) != size) {
        std::vector<std::byte> block(8 * MiB);
        for (std::size_t at = 0; at < size; at += block.size()) {
          test::fill_pattern(block, at);
          REQUIRE(::pwrite(w.get(), block.data(), block.size(), static_cast<off_t>(at)) ==
                  static_cast<ssize_t>(block.size()));
        }
      }
    }
    test::nginx_fixture nginx;
    REQUIRE(::symlink(shm.c_str(), (nginx.docroot() + "/file").c_str()) == 0);
    test::unique_fd file(::open(shm.c_str(), O_RDONLY | O_CLOEXEC));
    reactor_fixture f;
    resolver names;
    f.run([&]() -> task<void> {
      // Three of ours (splice pipes of 256 KiB, 1 MiB, 4 MiB) and nginx, alternating.
      const int pipes[3] = {256 << 10, 1 << 20, 4 << 20};
      std::vector<std::unique_ptr<server_fixture>> ours;
      for (int p : pipes) {
        ours.push_back(std::make_unique<server_fixture>(server_options{.splice_pipe_bytes = p}));
        ours.back()->handler.file_fd = file.get();
        ours.back()->handler.file_size = size;
      }
      const std::uint16_t ports[4] = {ours[0]->server->port(), ours[1]->server->port(),
                                      ours[2]->server->port(), nginx.port()};
      const std::string names_of[4] = {"ringfetch (pipe 256 KiB)", "ringfetch (pipe 1 MiB)",
                                       "ringfetch (pipe 4 MiB)", "nginx (sendfile)"};
      std::vector<double> curl_mbs[4], ours_mbs[4];
      std::vector<std::byte> dest(size);
      std::memset(dest.data(), 1, dest.size());
      for (int run = 0; run < 5; ++run) {
        for (int which = 0; which < 4; ++which) {
          const std::string url = "http://127.0.0.1:" + std::to_string(ports[which]) + "/file";
          const std::string cmd = "curl -s --max-time 120 -o /dev/null -w '%{speed_download}' " + url;
          const std::string speed = co_await run_command(cmd);
          curl_mbs[which].push_back(std::stod(speed) / 1e6);
          auto c = co_await connect_to(names, ports[which]);
          const request all{.target = "/file"};
          const auto t0 = steady_clock::now();
          auto r = co_await c->send(all, dest);
          const std::chrono::duration<double> took = steady_clock::now() - t0;
          REQUIRE(r);
          REQUIRE(r->body_bytes == size);
          ours_mbs[which].push_back(static_cast<double>(size) / took.count() / 1e6);
          co_await c->close();
        }
      }
      CHECK(test::matches_pattern(std::span(dest).first(64 * MiB), 0));
      auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
      };
      for (int which = 0; which < 4; ++which) {
        MESSAGE(names_of[which] << ": curl -o /dev/null median " << median(curl_mbs[which])
                                << " MB/s, h1_connection into 1 GiB median "
                                << median(ours_mbs[which]) << " MB/s");
      }
      for (auto& o : ours) co_await o->server->stop();
    }());
  }
}
