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

#include "server_process.hpp"
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
    pid_ = spawn_quiet({"/usr/sbin/nghttpd", "--no-tls", "-a", "127.0.0.1", "-d", dir_, "-m", streams,
                        port});
    wait_until_listening(port_, pid_, "nghttpd (is nghttp2-server installed?)");
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
    write_pattern_file(dir_ + "/" + name, size, seed);
  }

 private:
  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace ringfetch::test
