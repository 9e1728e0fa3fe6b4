// tls_stream: TLS over any transport (usually a tcp_stream), OpenSSL driven over a BIO pair.
//
// The SSL object never touches a socket. Ciphertext from the transport is received straight into
// the BIO pair's staging buffer (tls_buffer_sizes::receive, 256 KiB by default, so one recv takes
// many records) and SSL_read decrypts into the caller's span: there is no plaintext buffer of
// ours in between. Outgoing ciphertext is sent from the pair's other buffer. Every wait is one of
// the transport's awaits, so each has the caller's deadline and cancel source.
//
// End of stream: read_some returns 0 only after the peer's close_notify. A peer that closes the
// TCP connection without close_notify makes read_some fail with ECONNRESET (a retryable
// transport error: the stream may have been truncated), even after a complete HTTP response;
// framed protocols (Content-Length, chunked, HTTP/2) know where their messages end and never
// need to read that far. A corrupt record or a fatal alert fails with EPROTO. Either failure is
// final: the stream is broken from then on, and last_error() says what OpenSSL reported. A send
// that fails (deadline, reset) breaks it too: part of a record may have gone out. A receive that
// times out or is cancelled does not: nothing was consumed, the next read_some carries on.
//
// Ownership and threading: owns the transport below; borrows the tls_context, which must
// outlive it. Belongs to the reactor thread of its context. At most one read_some and one
// write_all may be in flight at a time (they may overlap each other, as HTTP/2 needs).
#pragma once

#include <memory>
#include <string>

#include "http/tls_context.hpp"
#include "http/transport.hpp"
#include "runtime/error.hpp"
#include "runtime/semaphore.hpp"

typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace ringfetch::http {

class tls_stream final : public transport {
 public:
  // Client handshake over the connected transport `below`. `host` is sent as SNI (unless it is
  // an IP literal) and is what the certificate must match (a DNS name, or an IP address for IP
  // literals; "[::1]" brackets are accepted). `o` covers the whole handshake: without a deadline
  // the context's handshake_timeout applies. A rejected certificate is a tls error naming the
  // host and X509_verify_cert_error_string. Resumes the context's cached session for this host
  // and peer when there is one.
  static task<result<std::unique_ptr<tls_stream>>> connect(std::unique_ptr<transport> below,
                                                          tls_context& ctx, std::string host,
                                                          op_options o = {});
  // Server handshake over an accepted transport, with a server context.
  static task<result<std::unique_ptr<tls_stream>>> accept(std::unique_ptr<transport> below,
                                                         tls_context& ctx, op_options o = {});
  ~tls_stream() override;

  // Fills the front of `buffer` with as much plaintext as the staged ciphertext holds (at least
  // one byte, waiting for the transport only when nothing is staged).
  task<io_result<std::size_t>> read_some(std::span<std::byte> buffer, op_options o = {}) override;
  task<io_result<void>> write_all(std::span<const std::byte> data, op_options o = {}) override;
  // Best effort close_notify (skipped if a write is in flight; 250 ms at most), then closes the
  // transport below, which cancels whatever still waits on it. Idempotent.
  task<void> close() override;
  bool is_open() const noexcept override;
  std::string alpn() const override { return alpn_; }
  std::string peer() const override { return below_->peer(); }
  int native_handle() const noexcept override { return below_->native_handle(); }

  bool session_reused() const noexcept;
  std::string protocol_version() const;  // "TLSv1.3"
  // OpenSSL's description of the failure that broke the stream, or "".
  const std::string& last_error() const noexcept { return last_error_; }

 private:
  tls_stream(std::unique_ptr<transport> below, tls_context& ctx);
  result<void> init(SSL* ssl);
  task<result<void>> handshake(op_options o);
  error handshake_failure(int ssl_error);
  // Sends every byte of ciphertext waiting in the BIO pair. One flusher at a time.
  task<io_result<void>> flush(op_options o);
  // Receives more ciphertext into the BIO pair; false when the transport reached end of stream.
  task<io_result<bool>> fill(op_options o);
  bool output_pending() const noexcept;
  std::error_code fail(int ssl_error);

  std::unique_ptr<transport> below_;
  tls_context* ctx_;
  SSL* ssl_ = nullptr;       // owns the pair's inner BIO
  BIO* network_ = nullptr;   // the pair's outer BIO: our side
  std::string host_;
  std::string session_key_;  // "host@peer"; the SSL's app data points here
  std::string alpn_;
  std::string last_error_;
  std::error_code broken_{};  // set once a fatal error happened
  semaphore send_lock_{1};
  bool closed_ = false;
  bool established_ = false;
};

}  // namespace ringfetch::http
