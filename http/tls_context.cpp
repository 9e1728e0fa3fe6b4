#include "http/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <utility>

#include "http/openssl_errors.hpp"
#include "http/openssl_ptr.hpp"

namespace ringfetch::http {
namespace {

result<std::vector<unsigned char>> alpn_wire(const std::vector<std::string>& protocols) {
  std::vector<unsigned char> wire;
  for (auto& p : protocols) {
    if (p.empty() || p.size() > 255)
      return error{.kind = error_kind::invalid_argument,
                   .message = "ALPN protocol name must be 1 to 255 bytes: '" + p + "'"};
    wire.push_back(static_cast<unsigned char>(p.size()));
    wire.insert(wire.end(), p.begin(), p.end());
  }
  return wire;
}

tls_context* context_of(SSL* ssl) {
  return static_cast<tls_context*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
}

// TLS 1.3 tickets come after the handshake, inside a later SSL_read: whenever one arrives it
// replaces the cached session for that stream's key. Returning 1 keeps OpenSSL's reference.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  const auto* key = static_cast<const std::string*>(SSL_get_app_data(ssl));
  tls_context* ctx = context_of(ssl);
  if (!key || !ctx) return 0;
  ctx->store_session(*key, session);
  return 1;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* offered,
                unsigned offered_len, void* arg) {
  auto* preferred = static_cast<std::vector<unsigned char>*>(arg);
  unsigned char* chosen = nullptr;
  // SSL_select_next_proto honours the order of its first list: ours.
  if (SSL_select_next_proto(&chosen, out_len, preferred->data(),
                            static_cast<unsigned>(preferred->size()), offered,
                            offered_len) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

result<ssl_ctx_ptr> new_ctx(const SSL_METHOD* method) {
  ERR_clear_error();
  ssl_ctx_ptr ctx(SSL_CTX_new(method));
  if (!ctx) return openssl_failure("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Partial writes let write_all flush the send buffer between records; renegotiation is a
  // TLS 1.2 feature no HTTP client of ours needs and a source of surprise reads inside writes.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION);
  // Read ahead: one BIO read takes every staged byte, not one record header at a time.
  SSL_CTX_set_read_ahead(ctx.get(), 1);
  return ctx;
}

}  // namespace

result<tls_context> tls_context::client(tls_client_options o) {
  auto made = new_ctx(TLS_client_method());
  if (!made) return made.error();
  ssl_ctx_ptr ctx = std::move(*made);
  SSL_CTX_set_verify(ctx.get(), o.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (o.use_system_ca && SSL_CTX_set_default_verify_paths(ctx.get()) != 1)
    return openssl_failure("load the system CA store");
  if (!o.ca_file.empty() && SSL_CTX_load_verify_locations(ctx.get(), o.ca_file.c_str(), nullptr) != 1)
    return openssl_failure("load CA file " + o.ca_file);
  if (!o.ca_pem.empty()) {
    bio_ptr bio(BIO_new_mem_buf(o.ca_pem.data(), static_cast<int>(o.ca_pem.size())));
    X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
    int added = 0;
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      added += X509_STORE_add_cert(store, cert);
      X509_free(cert);
    }
    ERR_clear_error();  // the loop ends on a "no start line" error at the end of the text
    if (added == 0)
      return error{.kind = error_kind::invalid_argument, .message = "ca_pem holds no certificate"};
  }
  auto wire = alpn_wire(o.alpn);
  if (!wire) return wire.error();
  // Unlike everything else in OpenSSL, 0 means success here.
  if (!wire->empty() &&
      SSL_CTX_set_alpn_protos(ctx.get(), wire->data(), static_cast<unsigned>(wire->size())) != 0)
    return openssl_failure("set the ALPN list");
  if (o.session_resumption) {
    // Sessions live in our own per-key cache, never in OpenSSL's internal one.
    SSL_CTX_set_session_cache_mode(ctx.get(),
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx.get(), on_new_session);
  } else {
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  }
  ERR_clear_error();  // loading the default CA paths may queue harmless errors
  tls_context out(ctx.release(), side::client);
  out.verify_peer_ = o.verify_peer;
  out.handshake_timeout_ = o.handshake_timeout;
  out.buffers_ = o.buffers;
  out.alpn_wire_ = std::move(*wire);
  out.attach();
  return out;
}

result<tls_context> tls_context::server(tls_server_options o) {
  auto made = new_ctx(TLS_server_method());
  if (!made) return made.error();
  ssl_ctx_ptr ctx = std::move(*made);
  if (!o.certificate_pem.empty()) {
    bio_ptr bio(BIO_new_mem_buf(o.certificate_pem.data(), static_cast<int>(o.certificate_pem.size())));
    x509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert || SSL_CTX_use_certificate(ctx.get(), cert.get()) != 1)
      return openssl_failure("use the server certificate (PEM text)");
    // The rest of the text, if any, is the chain.
    while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
      if (SSL_CTX_add0_chain_cert(ctx.get(), extra) != 1) {
        X509_free(extra);
        return openssl_failure("add a chain certificate");
      }
    ERR_clear_error();
  } else if (SSL_CTX_use_certificate_chain_file(ctx.get(), o.certificate_file.c_str()) != 1) {
    return openssl_failure("use the server certificate file '" + o.certificate_file + "'");
  }
  if (!o.private_key_pem.empty()) {
    bio_ptr bio(BIO_new_mem_buf(o.private_key_pem.data(), static_cast<int>(o.private_key_pem.size())));
    evp_pkey_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key || SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1)
      return openssl_failure("use the server private key (PEM text)");
  } else if (SSL_CTX_use_PrivateKey_file(ctx.get(), o.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return openssl_failure("use the server private key file '" + o.private_key_file + "'");
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return openssl_failure("the private key does not match the certificate");
  auto wire = alpn_wire(o.alpn);
  if (!wire) return wire.error();
  ERR_clear_error();
  tls_context out(ctx.release(), side::server);
  out.handshake_timeout_ = o.handshake_timeout;
  out.buffers_ = o.buffers;
  out.alpn_wire_ = std::move(*wire);
  out.attach();
  return out;
}

tls_context::tls_context(tls_context&& o) noexcept
    : ctx_(std::exchange(o.ctx_, nullptr)),
      side_(o.side_),
      verify_peer_(o.verify_peer_),
      handshake_timeout_(o.handshake_timeout_),
      buffers_(o.buffers_),
      alpn_wire_(std::move(o.alpn_wire_)),
      sessions_(std::move(o.sessions_)) {
  o.sessions_.clear();
  attach();
}

tls_context& tls_context::operator=(tls_context&& o) noexcept {
  if (this != &o) {
    free_sessions();
    if (ctx_) SSL_CTX_free(ctx_);
    ctx_ = std::exchange(o.ctx_, nullptr);
    side_ = o.side_;
    verify_peer_ = o.verify_peer_;
    handshake_timeout_ = o.handshake_timeout_;
    buffers_ = o.buffers_;
    alpn_wire_ = std::move(o.alpn_wire_);
    sessions_ = std::move(o.sessions_);
    o.sessions_.clear();
    attach();
  }
  return *this;
}

tls_context::~tls_context() {
  free_sessions();
  if (ctx_) SSL_CTX_free(ctx_);
}

void tls_context::attach() noexcept {
  if (!ctx_) return;
  SSL_CTX_set_app_data(ctx_, this);
  // The vector's buffer moved with it, but the callback argument is the vector itself.
  if (side_ == side::server && !alpn_wire_.empty())
    SSL_CTX_set_alpn_select_cb(ctx_, select_alpn, &alpn_wire_);
}

void tls_context::free_sessions() noexcept {
  for (auto& [key, session] : sessions_) SSL_SESSION_free(session);
  sessions_.clear();
}

SSL_SESSION* tls_context::take_session(const std::string& key) const {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return nullptr;
  SSL_SESSION_up_ref(it->second);
  return it->second;
}

void tls_context::store_session(const std::string& key, SSL_SESSION* session) {
  auto [it, inserted] = sessions_.try_emplace(key, session);
  if (!inserted) {
    SSL_SESSION_free(it->second);
    it->second = session;
  }
}

void tls_context::forget_session(const std::string& key) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  SSL_SESSION_free(it->second);
  sessions_.erase(it);
}

}  // namespace ringfetch::http
