#include "http/tls_stream.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <climits>

#include "http/openssl_errors.hpp"
#include "runtime/log.hpp"

namespace ringfetch::http {
namespace {

constexpr auto close_notify_timeout = std::chrono::milliseconds(250);

bool is_ip_literal(const std::string& host) {
  unsigned char addr[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), addr) == 1 || ::inet_pton(AF_INET6, host.c_str(), addr) == 1;
}

std::string without_brackets(std::string host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
  return host;
}

op_options with_default_deadline(op_options o, std::chrono::milliseconds timeout) {
  if (!o.deadline) o.deadline = steady_clock::now() + timeout;
  return o;
}

// BIO_nread0 / BIO_nwrite0 lengths are ints; never ask for more than fits.
int clamp_int(std::size_t n) { return static_cast<int>(std::min<std::size_t>(n, INT_MAX)); }

// Releases the send lock when the flush ends, however it ends.
struct permit {
  semaphore& sem;
  ~permit() { sem.release(); }
};

}  // namespace

tls_stream::tls_stream(std::unique_ptr<transport> below, tls_context& ctx)
    : below_(std::move(below)), ctx_(&ctx) {}

tls_stream::~tls_stream() {
  if (ssl_) SSL_free(ssl_);  // frees the pair's inner BIO
  if (network_) BIO_free(network_);
}

result<void> tls_stream::init(SSL* ssl) {
  ssl_ = ssl;
  BIO* inner = nullptr;
  // inner's buffer holds what SSL writes (sent by flush); network_'s holds what we receive.
  if (BIO_new_bio_pair(&inner, ctx_->buffers().send, &network_, ctx_->buffers().receive) != 1)
    return openssl_failure("BIO_new_bio_pair");
  SSL_set_bio(ssl_, inner, inner);
  return {};
}

task<result<std::unique_ptr<tls_stream>>> tls_stream::connect(std::unique_ptr<transport> below,
                                                              tls_context& ctx, std::string host,
                                                              op_options o) {
  if (ctx.role() != tls_context::side::client)
    co_return error{.kind = error_kind::invalid_argument,
                    .message = "tls_stream::connect needs a client tls_context"};
  ERR_clear_error();
  std::unique_ptr<tls_stream> s(new tls_stream(std::move(below), ctx));
  s->host_ = without_brackets(std::move(host));
  s->session_key_ = s->host_ + "@" + s->peer();
  SSL* ssl = SSL_new(ctx.native());
  if (!ssl) co_return openssl_failure("SSL_new");
  if (auto i = s->init(ssl); !i) co_return i.error();

  const bool ip = is_ip_literal(s->host_);
  // SNI carries names only (RFC 6066 forbids IP literals).
  if (!ip && SSL_set_tlsext_host_name(ssl, s->host_.c_str()) != 1)
    co_return openssl_failure("set SNI to " + s->host_);
  if (ctx.verify_peer()) {
    bool set = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), s->host_.c_str()) == 1
                  : SSL_set1_host(ssl, s->host_.c_str()) == 1;
    if (!set) co_return openssl_failure("set the name to verify to " + s->host_);
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  SSL_set_app_data(ssl, &s->session_key_);
  if (SSL_SESSION* cached = ctx.take_session(s->session_key_)) {
    SSL_set_session(ssl, cached);
    SSL_SESSION_free(cached);
  }
  SSL_set_connect_state(ssl);

  auto done = co_await s->handshake(with_default_deadline(o, ctx.handshake_timeout()));
  if (!done) {
    ctx.forget_session(s->session_key_);
    co_await s->close();
    co_return done.error();
  }
  co_return std::move(s);
}

task<result<std::unique_ptr<tls_stream>>> tls_stream::accept(std::unique_ptr<transport> below,
                                                             tls_context& ctx, op_options o) {
  if (ctx.role() != tls_context::side::server)
    co_return error{.kind = error_kind::invalid_argument,
                    .message = "tls_stream::accept needs a server tls_context"};
  ERR_clear_error();
  std::unique_ptr<tls_stream> s(new tls_stream(std::move(below), ctx));
  SSL* ssl = SSL_new(ctx.native());
  if (!ssl) co_return openssl_failure("SSL_new");
  if (auto i = s->init(ssl); !i) co_return i.error();
  SSL_set_accept_state(ssl);
  auto done = co_await s->handshake(with_default_deadline(o, ctx.handshake_timeout()));
  if (!done) {
    co_await s->close();
    co_return done.error();
  }
  co_return std::move(s);
}

task<result<void>> tls_stream::handshake(op_options o) {
  auto transport_failure = [&](std::error_code code) {
    return error::from_code(code, "TLS handshake with " + (host_.empty() ? peer() : host_ + " (" + peer() + ")"));
  };
  for (;;) {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r == 1) break;
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      // Whatever SSL wrote (ClientHello, key shares, ...) must reach the peer before we wait.
      if (auto f = co_await flush(o); !f) co_return transport_failure(f.error());
      if (e == SSL_ERROR_WANT_READ) {
        // At end of stream the BIO is shut: SSL then reports the truncation itself.
        if (auto more = co_await fill(o); !more) co_return transport_failure(more.error());
      }
      continue;
    }
    co_return handshake_failure(e);
  }
  // The client's Finished (and a TLS 1.3 server's tickets) are still in the BIO.
  if (auto f = co_await flush(o); !f) co_return transport_failure(f.error());
  const unsigned char* proto = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &proto, &len);
  alpn_.assign(reinterpret_cast<const char*>(proto), len);
  established_ = true;
  co_return result<void>{};
}

error tls_stream::handshake_failure(int ssl_error) {
  broken_ = std::make_error_code(std::errc::protocol_error);
  std::string who = host_.empty() ? peer() : host_ + " (" + peer() + ")";
  long verdict = SSL_get_verify_result(ssl_);
  std::string queued = drain_openssl_errors();
  std::string message;
  if (ctx_->role() == tls_context::side::client && ctx_->verify_peer() && verdict != X509_V_OK) {
    message = "certificate of " + who + " rejected: " + X509_verify_cert_error_string(verdict) +
              " (X509 error " + std::to_string(verdict) + ")";
  } else {
    message = "TLS handshake with " + who + " failed (SSL error " + std::to_string(ssl_error) + ")";
  }
  if (!queued.empty()) message += ": " + queued;
  last_error_ = message;
  return error{.kind = error_kind::tls, .message = std::move(message)};
}

std::error_code tls_stream::fail(int ssl_error) {
  unsigned long first = ERR_peek_error();
  std::string queued = drain_openssl_errors();
  // A peer that vanished without close_notify: perhaps a truncation, so the caller may retry.
  const bool truncated = ssl_error == SSL_ERROR_SYSCALL ||
                         (ERR_GET_LIB(first) == ERR_LIB_SSL &&
                          ERR_GET_REASON(first) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
  last_error_ = truncated ? "TLS peer " + peer() + " closed the connection without close_notify"
                          : "TLS failure with " + peer() + " (SSL error " + std::to_string(ssl_error) + ")";
  if (!queued.empty()) last_error_ += ": " + queued;
  log::debug(last_error_);
  broken_ = truncated ? std::make_error_code(std::errc::connection_reset)
                      : std::make_error_code(std::errc::protocol_error);
  return broken_;
}

bool tls_stream::output_pending() const noexcept { return BIO_ctrl_pending(network_) > 0; }

task<io_result<void>> tls_stream::flush(op_options o) {
  co_await send_lock_.acquire();
  permit held{send_lock_};
  while (output_pending()) {
    char* data = nullptr;
    int n = BIO_nread0(network_, &data);
    if (n <= 0) break;
    // Sent from the pair's buffer itself; SSL only appends behind it meanwhile.
    auto sent = co_await below_->write_all(
        std::as_bytes(std::span(data, static_cast<std::size_t>(n))), o);
    if (!sent) {
      // Some of these bytes may have gone out: resending them would corrupt the stream.
      broken_ = sent.error();
      co_return sent.error();
    }
    BIO_nread(network_, &data, n);
  }
  co_return io_result<void>{};
}

task<io_result<bool>> tls_stream::fill(op_options o) {
  char* space = nullptr;
  int room = BIO_nwrite0(network_, &space);
  // SSL wants more only after consuming what was staged, so there is always room.
  if (room <= 0) co_return std::make_error_code(std::errc::no_buffer_space);
  auto n = co_await below_->read_some(
      std::as_writable_bytes(std::span(space, static_cast<std::size_t>(room))), o);
  if (!n) co_return n.error();
  if (*n == 0) {
    BIO_shutdown_wr(network_);
    co_return false;
  }
  BIO_nwrite(network_, &space, clamp_int(*n));
  co_return true;
}

task<io_result<std::size_t>> tls_stream::read_some(std::span<std::byte> buffer, op_options o) {
  if (closed_) co_return std::make_error_code(std::errc::bad_file_descriptor);
  if (broken_) co_return broken_;
  std::size_t got = 0;
  while (got < buffer.size()) {
    ERR_clear_error();
    std::size_t n = 0;
    int r = SSL_read_ex(ssl_, buffer.data() + got, buffer.size() - got, &n);
    if (r == 1) {
      got += n;
      continue;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ) {
      if (got > 0) break;  // return what the staged ciphertext held; wait next time
      // Reading may have produced output (a TLS 1.3 KeyUpdate answer, alerts).
      if (output_pending())
        if (auto f = co_await flush(o); !f) co_return f.error();
      auto more = co_await fill(o);
      if (!more) co_return more.error();
      continue;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
      if (auto f = co_await flush(o); !f) co_return f.error();
      continue;
    }
    if (e == SSL_ERROR_ZERO_RETURN) break;  // close_notify: end of stream (0 if nothing came)
    std::error_code failure = fail(e);
    if (got > 0) break;  // deliver the plaintext first; the next call reports the failure
    co_return failure;
  }
  if (output_pending() && !broken_)
    if (auto f = co_await flush(o); !f) co_return f.error();
  co_return got;
}

task<io_result<void>> tls_stream::write_all(std::span<const std::byte> data, op_options o) {
  if (closed_) co_return std::make_error_code(std::errc::bad_file_descriptor);
  if (broken_) co_return broken_;
  while (!data.empty()) {
    ERR_clear_error();
    std::size_t n = 0;
    int r = SSL_write_ex(ssl_, data.data(), data.size(), &n);
    if (r == 1) {
      data = data.subspan(n);
      continue;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_WRITE) {
      // The send buffer is full: drain it, then SSL retries the same (pending) record.
      if (auto f = co_await flush(o); !f) co_return f.error();
      continue;
    }
    // WANT_READ would mean a renegotiation, which the context disables.
    co_return fail(e);
  }
  co_return co_await flush(o);
}

task<void> tls_stream::close() {
  if (closed_) co_return;
  closed_ = true;
  // close_notify only on a healthy stream (SSL_shutdown after a fatal error is forbidden) and
  // only if no write is mid-flight (its bytes and ours would interleave).
  if (established_ && !broken_ && send_lock_.available() > 0) {
    ERR_clear_error();
    if (SSL_shutdown(ssl_) >= 0) {
      op_options o = within(close_notify_timeout);
      (void)co_await flush(o);
    }
    ERR_clear_error();
  }
  co_await below_->close();
}

bool tls_stream::is_open() const noexcept { return !closed_ && below_->is_open(); }

bool tls_stream::session_reused() const noexcept { return ssl_ && SSL_session_reused(ssl_) == 1; }

std::string tls_stream::protocol_version() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

}  // namespace ringfetch::http
