// tls_context: the shared TLS settings (an OpenSSL SSL_CTX) for many tls_streams.
//
// One per reactor (or per connection pool), client or server. Client contexts verify the peer by
// default against the system CA store plus an optional CA file or PEM, offer ALPN "h2" and
// "http/1.1", require TLS 1.2 or newer, and keep the last session per host and peer endpoint so
// the next connection resumes it (TLS 1.3 tickets arrive after the handshake: they are taken
// from OpenSSL's new-session callback whenever they come). Server contexts hold a certificate
// and key and choose the ALPN protocol by their own preference order.
//
// Threading: a context and its session cache belong to one reactor thread; every tls_stream made
// from it must run there too, and the context must outlive them all (and not move while any
// exists). Move-only.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/error.hpp"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_session_st SSL_SESSION;

namespace ringfetch::http {

struct tls_buffer_sizes {
  std::size_t receive = 256 * 1024;  // ciphertext staging: the largest single recv
  std::size_t send = 128 * 1024;     // ciphertext waiting to be sent
};

struct tls_client_options {
  bool verify_peer = true;          // false accepts any certificate: tests and explicit opt-out only
  bool use_system_ca = true;        // SSL_CTX_set_default_verify_paths
  std::string ca_file{};            // extra trust anchors (PEM file), added to the system store
  std::string ca_pem{};             // extra trust anchors (PEM text), added too
  // Offered in this order; empty: no ALPN. A caller that speaks only HTTP/1.1 must offer only
  // "http/1.1" (or check tls_stream::alpn()): servers pick h2 whenever it is offered.
  std::vector<std::string> alpn = {"h2", "http/1.1"};
  bool session_resumption = true;
  std::chrono::milliseconds handshake_timeout{10'000};  // when the caller gives no deadline
  tls_buffer_sizes buffers{};
};

struct tls_server_options {
  // The certificate chain and key, as PEM text (e.g. from make_self_signed_certificate) or as
  // files; the text wins when both are given.
  std::string certificate_pem{};
  std::string private_key_pem{};
  std::string certificate_file{};
  std::string private_key_file{};
  // Chosen by this order among what the client offers (h2 first when offered). A client that
  // offers none of them gets no ALPN answer, not an alert.
  std::vector<std::string> alpn = {"h2", "http/1.1"};
  std::chrono::milliseconds handshake_timeout{10'000};
  tls_buffer_sizes buffers{};
};

class tls_context {
 public:
  enum class side { client, server };

  static result<tls_context> client(tls_client_options options = {});
  static result<tls_context> server(tls_server_options options);

  tls_context(tls_context&&) noexcept;
  tls_context& operator=(tls_context&&) noexcept;
  ~tls_context();

  side role() const noexcept { return side_; }
  SSL_CTX* native() const noexcept { return ctx_; }
  bool verify_peer() const noexcept { return verify_peer_; }
  std::chrono::milliseconds handshake_timeout() const noexcept { return handshake_timeout_; }
  const tls_buffer_sizes& buffers() const noexcept { return buffers_; }

  // The client session cache, keyed by "host@peer". A client SSL made from this context carries
  // a pointer to its key string as its app data (SSL_set_app_data), valid while the SSL lives. take_session returns a new reference (the
  // caller frees it; SSL_set_session takes its own), or null.
  SSL_SESSION* take_session(const std::string& key) const;
  void store_session(const std::string& key, SSL_SESSION* session);  // adopts the reference
  void forget_session(const std::string& key);
  std::size_t cached_sessions() const noexcept { return sessions_.size(); }

 private:
  tls_context(SSL_CTX* ctx, side s) noexcept : ctx_(ctx), side_(s) {}
  void attach() noexcept;  // points the SSL_CTX's app data at this object (again, after a move)
  void free_sessions() noexcept;

  SSL_CTX* ctx_ = nullptr;
  side side_;
  bool verify_peer_ = true;
  std::chrono::milliseconds handshake_timeout_{10'000};
  tls_buffer_sizes buffers_{};
  std::vector<unsigned char> alpn_wire_;  // length-prefixed protocol list
  std::unordered_map<std::string, SSL_SESSION*> sessions_;
};

}  // namespace ringfetch::http
