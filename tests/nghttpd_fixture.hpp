// nghttpd_fixture: nghttp2's own server (h2c with prior knowledge) on 127.0.0.1 and a random
// port, serving a scratch directory. Started in the constructor (waits until it accepts), killed
// and cleaned up in the destructor; kill() stops it early (a server dying mid-response).
// nghttpd ignores Range headers: ranged reads are tested against nginx.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace ringfetch::test {

struct nghttpd_options {
  unsigned max_concurrent_streams = 100;
};

class nghttpd_fixture {
 public:
  explicit nghttpd_fixture(nghttpd_options o = {}) {
    char tmpl[] = "/tmp/ringfetch-nghttpd-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    {
      tcp_listener probe;  // a free port, released for nghttpd to take
      port_ = ntohs(probe.addr.sin_port);
    }
    const std::string streams = std::to_string(o.max_concurrent_streams);
    const std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      // nghttpd must not outlive a crashed test, nor hold the test runner's output pipes open.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int null_fd = ::open("/dev/null", O_RDWR);
      ::dup2(null_fd, 0);
      ::dup2(null_fd, 1);
      ::dup2(null_fd, 2);
      ::execl("/usr/sbin/nghttpd", "nghttpd", "--no-tls", "-a", "127.0.0.1", "-d", dir_.c_str(),
              "-m", streams.c_str(), port.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    wait_until_listening();
  }

  ~nghttpd_fixture() {
    kill();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // SIGKILL: open connections see the socket closed mid-whatever.
  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  std::uint16_t port() const { return port_; }

  // Writes <docroot>/<name> with patterned bytes starting at pattern offset `seed`.
  void write_file(const std::string& name, std::size_t size, std::uint64_t seed) {
    std::ofstream out(dir_ + "/" + name, std::ios::binary);
    std::vector<std::byte> chunk(1 << 20);
    for (std::size_t off = 0; off < size;) {
      std::size_t n = std::min(chunk.size(), size - off);
      fill_pattern(std::span(chunk).first(n), seed + off);
      out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(n));
      off += n;
    }
  }

 private:
  void wait_until_listening() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(port_);
      if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("nghttpd exited at start (is nghttp2-server installed?)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error("nghttpd did not start listening within 10 s");
  }

  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace ringfetch::test
