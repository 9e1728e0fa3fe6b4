// openssl_server_fixture: `openssl s_server -www` on 127.0.0.1 and a random port, a TLS server
// nobody here wrote. It answers "GET /" with an HTTP/1.0 status page (close-delimited, ended by
// close_notify) that says, among other things, whether the session was reused.
// Started in the constructor (waits for its "ACCEPT" line, no polling), killed in the destructor.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "http/self_signed_cert.hpp"
#include "test_support.hpp"

namespace ringfetch::test {

class openssl_server_fixture {
 public:
  // `extra_args`, e.g. {"-tls1_2"}, go after the fixed ones.
  openssl_server_fixture(const http::pem_identity& identity, std::vector<std::string> extra_args = {}) {
    char tmpl[] = "/tmp/ringfetch-s_server-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    auto written = http::write_pem_files(identity, dir_ + "/cert.pem", dir_ + "/key.pem");
    if (!written) throw std::runtime_error(written.error().describe());
    {
      tcp_listener probe;  // a free port, released for s_server to take
      port_ = ntohs(probe.addr.sin_port);
    }
    std::vector<std::string> args = {"openssl", "s_server", "-www",
                                     "-accept", "127.0.0.1:" + std::to_string(port_),
                                     "-cert", dir_ + "/cert.pem", "-key", dir_ + "/key.pem"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    output_ = unique_fd(out[0]);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int null_fd = ::open("/dev/null", O_RDWR);
      ::dup2(null_fd, 0);
      ::dup2(out[1], 1);  // "ACCEPT" says it listens; later lines are few and small
      ::dup2(null_fd, 2);
      ::execvp("openssl", argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    wait_until_listening();
  }

  ~openssl_server_fixture() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::uint16_t port() const { return port_; }

 private:
  void wait_until_listening() {
    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + std::chrono::seconds(10);
    std::string seen;
    while (seen.find("ACCEPT") == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
      pollfd p{.fd = output_.get(), .events = POLLIN, .revents = 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        throw std::runtime_error("openssl s_server did not start listening within 10 s");
      char buf[512];
      ssize_t n = ::read(output_.get(), buf, sizeof buf);
      if (n <= 0) throw std::runtime_error("openssl s_server exited at start: " + seen);
      seen.append(buf, static_cast<std::size_t>(n));
    }
  }

  std::string dir_;
  std::uint16_t port_ = 0;
  unique_fd output_;  // s_server's stdout, kept open so its writes never hit a closed pipe
  pid_t pid_ = -1;
};

}  // namespace ringfetch::test
