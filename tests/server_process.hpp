// server_process: a loopback server the tests start as a child process (nginx, nghttpd, ...).
//
// The child dies with the test (PR_SET_PDEATHSIG), even when the test crashes, and its stdio goes
// to /dev/null so it never holds the test runner's output pipes open. The helpers wait until it
// accepts connections and write the patterned files it serves.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace ringfetch::test {

// Forks and execs `argv` (argv[0] is the program's path). Returns the child's pid.
inline pid_t spawn_quiet(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

// Waits up to 10 s until something accepts on 127.0.0.1:port. If the child `pid` exits first,
// sets it to -1 and throws, naming `what` (where to look for the reason).
inline void wait_until_listening(std::uint16_t port, pid_t& pid, const std::string& what) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pid = -1;
      throw std::runtime_error(what + " exited at start");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error(what + " did not start listening within 10 s");
}

// Writes `path` with patterned bytes starting at pattern offset `seed`.
inline void write_pattern_file(const std::string& path, std::size_t size, std::uint64_t seed) {
  std::ofstream out(path, std::ios::binary);
  std::vector<std::byte> chunk(1 << 20);
  for (std::size_t off = 0; off < size;) {
    std::size_t n = std::min(chunk.size(), size - off);
    fill_pattern(std::span(chunk).first(n), seed + off);
    out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(n));
    off += n;
  }
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace ringfetch::test
