// http_fetch: reads one URL with ringfetch's HTTP client as fast as it can and prints one JSON
// line (bytes, seconds, GB/s, CPU seconds per GB). bench/compare-http runs it beside curl,
// aria2c and iperf3 against the same nginx.
//
//   http_fetch URL [--proto auto|http1|h2] [--connections N] [--part-mib M] [--ca FILE]
//                  [--sink buffer|reuse] [--size BYTES] [--rcvbuf-kib K]
//
// The object is fetched as consecutive ranges of --part-mib MiB, --connections of them in flight
// (HTTP/1.1: that many connections; HTTP/2: that many streams on one session). --sink buffer
// lands the whole object in one buffer (cold memory, what a reader of a whole object pays);
// --sink reuse lands each part in one of --connections part buffers reused over and over (warm
// memory, what `curl -o /dev/null` pays). --size skips the HEAD-like first request.
#include <netdb.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "http/client.hpp"
#include "runtime/reactor.hpp"
#include "runtime/when_all.hpp"

using namespace ringfetch;
using namespace ringfetch::http;

namespace {

struct settings {
  std::string url;
  protocol proto = protocol::automatic;
  std::size_t connections = 1;
  std::size_t part_bytes = 16u << 20;
  std::string ca_file;
  bool reuse = false;
  std::uint64_t size = 0;
  std::optional<int> receive_buffer;  // SO_RCVBUF bytes; 0: the kernel's autotuning
  bool baseline = false;              // a minimal blocking client instead of ringfetch
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "http_fetch: %s\nusage: http_fetch URL [--proto auto|http1|h2] "
               "[--connections N] [--part-mib M] [--ca FILE] [--sink buffer|reuse] [--size BYTES]\n",
               why.c_str());
  std::exit(2);
}

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("option " + a + " needs a value");
      return argv[++i];
    };
    auto number = [&]() -> std::size_t {
      std::string v = value();
      char* end = nullptr;
      unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n == 0) usage("option " + a + " expects a positive integer, got '" + v + "'");
      return n;
    };
    if (a == "--proto") {
      std::string p = value();
      if (p == "auto") s.proto = protocol::automatic;
      else if (p == "http1") s.proto = protocol::http1;
      else if (p == "h2") s.proto = protocol::h2;
      else usage("--proto expects auto, http1 or h2, got '" + p + "'");
    } else if (a == "--connections") {
      s.connections = number();
    } else if (a == "--part-mib") {
      s.part_bytes = number() << 20;
    } else if (a == "--ca") {
      s.ca_file = value();
    } else if (a == "--sink") {
      std::string k = value();
      if (k != "buffer" && k != "reuse") usage("--sink expects buffer or reuse, got '" + k + "'");
      s.reuse = k == "reuse";
    } else if (a == "--rcvbuf-kib") {
      std::string v = value();
      s.receive_buffer = std::stoi(v) * 1024;
    } else if (a == "--baseline") {
      s.baseline = true;
    } else if (a == "--size") {
      s.size = number();
    } else if (!a.empty() && a[0] == '-') {
      usage("unknown option '" + a + "'");
    } else if (s.url.empty()) {
      s.url = a;
    } else {
      usage("more than one URL given");
    }
  }
  if (s.url.empty()) usage("no URL given");
  return s;
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// The object's size from a one-byte range (Content-Range: bytes 0-0/SIZE).
task<result<std::uint64_t>> object_size(client& c, const url& u) {
  std::byte one[1];
  auto r = co_await c.get(u, {}, byte_range{0, 0}, one);
  if (!r) co_return r.error();
  const std::string* range = r->header("content-range");
  if (r->status != 206 || !range || range->find('/') == std::string::npos) {
    co_return error{.kind = error_kind::protocol,
                    .message = "the server did not answer a range request with 206 and Content-Range"};
  }
  co_return std::stoull(range->substr(range->find('/') + 1));
}

// One worker: takes the next part until none is left.
task<result<std::uint64_t>> worker(client& c, const url& u, std::uint64_t size, std::uint64_t part,
                                   std::uint64_t& next, std::span<std::byte> whole,
                                   std::span<std::byte> own) {
  std::uint64_t fetched = 0;
  while (next < size) {
    const std::uint64_t first = next;
    const std::uint64_t n = std::min(part, size - first);
    next += n;
    std::span<std::byte> dest = whole.empty() ? own.first(n) : whole.subspan(first, n);
    auto r = co_await c.get(u, {}, byte_range{first, first + n - 1}, dest);
    if (!r) co_return r.error();
    if (r->status != 206 || r->body_bytes != n) {
      co_return error{.kind = error_kind::protocol,
                      .message = "part at " + std::to_string(first) + ": status " +
                                 std::to_string(r->status) + ", " + std::to_string(r->body_bytes) +
                                 " bytes"};
    }
    fetched += n;
  }
  co_return fetched;
}

// The ceiling for landing bytes in memory: one blocking socket, plain HTTP/1.1 range requests,
// recv() straight into the same destinations ringfetch uses, no parsing beyond finding the end of
// the head. Compared with it, ringfetch's own cost shows; compared with curl -o /dev/null (which
// keeps nothing), the cost of storing the bytes shows too.
int run_baseline(const settings& s, const url& u) {
  if (u.tls() || s.size == 0 || s.connections != 1) usage("--baseline needs an http:// URL, --size and one connection");
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (::getaddrinfo(u.host.c_str(), std::to_string(u.port).c_str(), &hints, &res) != 0) usage("cannot resolve " + u.host);
  int fd = ::socket(res->ai_family, SOCK_STREAM, 0);
  if (::connect(fd, res->ai_addr, res->ai_addrlen) != 0) usage("cannot connect to " + u.authority());
  ::freeaddrinfo(res);
  std::vector<std::byte> whole, part;
  if (s.reuse) part.resize(s.part_bytes);
  else whole.resize(s.size);
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  char head[8192];
  for (std::uint64_t first = 0; first < s.size; first += s.part_bytes) {
    const std::uint64_t n = std::min<std::uint64_t>(s.part_bytes, s.size - first);
    std::string req = "GET " + u.target + " HTTP/1.1\r\nHost: " + u.authority() +
                      "\r\nRange: bytes=" + std::to_string(first) + "-" + std::to_string(first + n - 1) + "\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) usage("send failed");
    std::byte* dest = s.reuse ? part.data() : whole.data() + first;
    // Read until the blank line ends the head; whatever followed it is body.
    std::size_t have = 0, body = 0;
    for (;;) {
      ssize_t r = ::recv(fd, head + have, sizeof head - have, 0);
      if (r <= 0) usage("connection closed in the head");
      have += static_cast<std::size_t>(r);
      std::string_view h(head, have);
      if (auto end = h.find("\r\n\r\n"); end != std::string_view::npos) {
        body = have - (end + 4);
        std::memcpy(dest, head + end + 4, body);
        break;
      }
    }
    while (body < n) {
      ssize_t r = ::recv(fd, dest + body, n - body, 0);
      if (r <= 0) usage("connection closed mid-body");
      body += static_cast<std::size_t>(r);
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double gb = static_cast<double>(s.size) / 1e9;
  std::printf("{\"bytes\": %llu, \"seconds\": %.4f, \"gbps\": %.3f, \"cpu_s_per_gb\": %.3f, \"baseline\": true}\n",
              static_cast<unsigned long long>(s.size), seconds, gb / seconds, (cpu_seconds() - cpu0) / gb);
  ::close(fd);
  return 0;
}

task<int> run(const settings& s) {
  auto parsed = url::parse(s.url);
  if (!parsed) {
    std::fprintf(stderr, "http_fetch: %s\n", parsed.error().describe().c_str());
    co_return 2;
  }
  const url u = *parsed;
  if (s.baseline) co_return run_baseline(s, u);
  client_options o;
  o.proto = s.proto;
  o.max_connections = s.connections;
  o.tls.ca_file = s.ca_file;
  if (s.receive_buffer) o.tcp.receive_buffer = *s.receive_buffer;
  client c(o);
  std::uint64_t size = s.size;
  if (size == 0) {
    auto found = co_await object_size(c, u);
    if (!found) {
      std::fprintf(stderr, "http_fetch: %s\n", found.error().describe().c_str());
      co_await c.close();
      co_return 1;
    }
    size = *found;
  }
  std::vector<std::byte> whole;
  std::vector<std::vector<std::byte>> own(s.connections);
  if (s.reuse) {
    for (auto& b : own) b.resize(s.part_bytes);
  } else {
    whole.resize(size);
  }
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t next = 0;
  std::vector<task<result<std::uint64_t>>> workers;
  for (std::size_t i = 0; i < s.connections; ++i) {
    workers.push_back(worker(c, u, size, s.part_bytes, next, whole, own[i]));
  }
  auto all = when_all(std::move(workers));
  auto done = co_await std::move(all);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  co_await c.close();
  std::uint64_t fetched = 0;
  for (auto& d : done) {
    if (!d) {
      std::fprintf(stderr, "http_fetch: %s\n", d.error().describe().c_str());
      co_return 1;
    }
    fetched += *d;
  }
  const double gb = static_cast<double>(fetched) / 1e9;
  std::printf("{\"bytes\": %llu, \"seconds\": %.4f, \"gbps\": %.3f, \"cpu_s_per_gb\": %.3f, "
              "\"connections\": %zu, \"opened\": %llu, \"h2_sessions\": %llu}\n",
              static_cast<unsigned long long>(fetched), seconds, gb / seconds, cpu / gb,
              s.connections, static_cast<unsigned long long>(c.stats().connections_opened),
              static_cast<unsigned long long>(c.stats().h2_sessions_opened));
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const settings s = parse(argc, argv);
  reactor r;
  return r.block_on(run(s));
}
