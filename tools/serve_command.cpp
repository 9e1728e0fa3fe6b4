#include "tools/serve_command.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "gcs/decimal.hpp"
#include "runtime/ops.hpp"
#include "runtime/reactor.hpp"
#include "tools/fake_gcs/fake_gcs_server.hpp"

namespace ringfetch::tools {
namespace {

namespace fs = std::filesystem;

constexpr const char* usage_text =
    "usage: ringfetch serve [--root DIR] [--generate BUCKET/OBJECT:SIZE]... [--address A] [--port N]\n"
    "\n"
    "Serves the GCS JSON API (metadata, media with ranges, listing) on plain HTTP/1.1, from DIR\n"
    "(DIR/<bucket>/<object name>) or from generated objects, until SIGINT or SIGTERM. Point a client\n"
    "at it with STORAGE_EMULATOR_HOST=http://ADDRESS:PORT. Faults are asked for per request with\n"
    "the header x-goog-emulator-instructions (return-broken-stream, return-corrupted-data,\n"
    "stall-at-256KiB, return-503-after-256K, return-503).\n"
    "\n"
    "options:\n"
    "  --root DIR           directory of buckets (default: a temporary one, removed at exit)\n"
    "  --generate B/O:SIZE  create object O in bucket B with SIZE deterministic bytes\n"
    "                       (SIZE in bytes, or with K, M or G: 1024-based); repeatable\n"
    "  --address A          numeric address to listen on (default 127.0.0.1)\n"
    "  --port N             port (default 0: the kernel picks one, printed at start)\n";

int usage_error(const std::string& what) {
  std::fprintf(stderr, "ringfetch serve: %s\nRun 'ringfetch serve --help' for the options.\n", what.c_str());
  return 2;
}

std::optional<std::uint64_t> parse_size(std::string_view s) {
  std::uint64_t scale = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'K': case 'k': scale = 1ull << 10; s.remove_suffix(1); break;
      case 'M': case 'm': scale = 1ull << 20; s.remove_suffix(1); break;
      case 'G': case 'g': scale = 1ull << 30; s.remove_suffix(1); break;
      default: break;
    }
  }
  auto n = gcs::decimal(s);
  if (!n || *n > (std::uint64_t{1} << 50) / scale) return std::nullopt;  // 1 PiB is plenty
  return *n * scale;
}

// Deterministic content: xorshift64* seeded by the object's name, so a client can check bytes
// against another run of the same command.
void generate(const fs::path& file, const std::string& name, std::uint64_t size) {
  fs::create_directories(file.parent_path());
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  for (unsigned char c : name) x = (x ^ c) * 0x100000001B3ull;
  std::ofstream out(file, std::ios::binary);
  std::vector<std::uint64_t> chunk(1 << 17);
  for (std::uint64_t left = size; left > 0;) {
    for (auto& w : chunk) {
      x ^= x >> 12;
      x ^= x << 25;
      x ^= x >> 27;
      w = x * 0x2545F4914F6CDD1Dull;
    }
    const std::uint64_t n = std::min<std::uint64_t>(left, chunk.size() * sizeof(std::uint64_t));
    out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(n));
    left -= n;
  }
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

task<int> serve(fake_gcs_server& server, int signal_fd) {
  server.start();
  signalfd_siginfo info{};
  auto got = co_await op::read(signal_fd, std::as_writable_bytes(std::span(&info, 1)));
  std::fprintf(stderr, "ringfetch serve: %s, stopping after %llu requests\n",
               got ? strsignal(static_cast<int>(info.ssi_signo)) : "signal wait failed",
               static_cast<unsigned long long>(server.requests()));
  co_await server.stop();
  co_return got ? 0 : 1;
}

}  // namespace

int serve_command(std::span<const std::string_view> args) {
  std::string root, address = "127.0.0.1";
  std::uint16_t port = 0;
  std::vector<std::pair<std::string, std::uint64_t>> generated;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(usage_text, stdout);
      return 0;
    }
    if (a != "--root" && a != "--generate" && a != "--address" && a != "--port") {
      return usage_error("unknown option '" + std::string(a) + "'");
    }
    if (i + 1 >= args.size()) return usage_error("option " + std::string(a) + " needs a value");
    const std::string value(args[++i]);
    if (a == "--root") {
      root = value;
    } else if (a == "--address") {
      address = value;
    } else if (a == "--port") {
      auto n = parse_size(value);
      if (!n || *n > 65535 || value.find_first_not_of("0123456789") != std::string::npos) {
        return usage_error("--port expects a number from 0 to 65535, got '" + value + "'");
      }
      port = static_cast<std::uint16_t>(*n);
    } else {
      const auto colon = value.rfind(':');
      const auto slash = value.find('/');
      auto size = colon == std::string::npos ? std::nullopt : parse_size(std::string_view(value).substr(colon + 1));
      if (!size || slash == std::string::npos || slash == 0 || slash + 1 >= colon) {
        return usage_error("--generate expects BUCKET/OBJECT:SIZE (e.g. data/big.bin:1G), got '" + value + "'");
      }
      generated.emplace_back(value.substr(0, colon), *size);
    }
  }
  std::optional<fs::path> temporary;
  if (root.empty()) {
    const std::string base = fs::is_directory("/dev/shm") ? "/dev/shm" : fs::temp_directory_path().string();
    std::string tmpl = base + "/ringfetch-serve-XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      std::fprintf(stderr, "ringfetch serve: cannot create a directory under %s\n", base.c_str());
      return 1;
    }
    root = tmpl;
    temporary = root;
  }
  struct cleanup {
    std::optional<fs::path>& dir;
    ~cleanup() {
      std::error_code ec;
      if (dir) fs::remove_all(*dir, ec);
    }
  } remove_temporary{temporary};
  try {
    for (auto& [name, size] : generated) generate(fs::path(root) / name, name, size);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ringfetch serve: %s\n", e.what());
    return 1;
  }
  // Signals arrive through a signalfd read on the ring, so stopping is an ordinary completion.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  const int signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC);
  if (signal_fd < 0) {
    std::perror("ringfetch serve: signalfd");
    return 1;
  }
  fake_gcs_options options{.root = root};
  options.http.address = address;
  options.http.port = port;
  auto server = fake_gcs_server::listen(options);
  if (!server) {
    std::fprintf(stderr, "ringfetch serve: %s\n", server.error().describe().c_str());
    ::close(signal_fd);
    return 1;
  }
  std::printf("ringfetch serve: gs:// buckets from %s at http://%s:%u\n", root.c_str(), address.c_str(),
              static_cast<unsigned>((*server)->port()));
  std::printf("export STORAGE_EMULATOR_HOST=http://%s:%u\n", address.c_str(),
              static_cast<unsigned>((*server)->port()));
  std::fflush(stdout);
  reactor r;
  const int status = r.block_on(serve(**server, signal_fd));
  ::close(signal_fd);
  return status;
}

}  // namespace ringfetch::tools
