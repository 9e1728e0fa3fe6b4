// tcp_stream: a plain TCP transport tuned for bulk receive (TCP_NODELAY, large socket buffers).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "http/resolver.hpp"
#include "http/transport.hpp"
#include "runtime/error.hpp"

namespace ringfetch::http {

struct tcp_options {
  std::chrono::milliseconds connect_timeout{10'000};  // all addresses together
  int receive_buffer = 4 << 20;                       // SO_RCVBUF; 0 leaves the kernel default
  int send_buffer = 1 << 20;                          // SO_SNDBUF; 0 leaves the kernel default
};

class tcp_stream final : public transport {
 public:
  // Tries each resolved address in turn until one connects or the timeout passes. The error
  // names the host, the port and what happened at the last address tried.
  static task<result<std::unique_ptr<tcp_stream>>> connect(resolver& names, std::string host,
                                                           std::uint16_t port,
                                                           tcp_options options = {});
  // Adopts an already connected socket (the server side, tests).
  tcp_stream(int fd, std::string peer) noexcept : fd_(fd), peer_(std::move(peer)) {}
  ~tcp_stream() override;

  task<io_result<std::size_t>> read_some(std::span<std::byte> buffer, op_options o = {}) override;
  task<io_result<void>> write_all(std::span<const std::byte> data, op_options o = {}) override;
  task<void> close() override;
  bool is_open() const noexcept override { return fd_ >= 0; }
  std::string peer() const override { return peer_; }
  int native_handle() const noexcept override { return fd_; }
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
  std::string peer_;
};

}  // namespace ringfetch::http
