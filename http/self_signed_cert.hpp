// self_signed_cert: a throwaway certificate and private key, made in memory with OpenSSL.
//
// For the fake GCS server (`ringfetch serve` makes one at start) and for tests. The certificate is
// its own issuer (a CA: clients trust it by putting certificate_pem in their CA file), carries
// subjectAltName entries for the given DNS names and IP addresses, and an EC P-256 key.
// Pure functions: thread-safe, nothing global is touched.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "runtime/error.hpp"

namespace ringfetch::http {

struct self_signed_options {
  std::string common_name = "ringfetch self-signed";
  std::vector<std::string> dns_names = {"localhost"};
  std::vector<std::string> ip_addresses = {"127.0.0.1", "::1"};
  // Validity window relative to now. A negative `valid_from` with `valid_for` shorter than it
  // makes an already expired certificate (tests).
  std::chrono::seconds valid_from{-3600};
  std::chrono::seconds valid_for{std::chrono::hours(24 * 30)};
};

struct pem_identity {
  std::string certificate_pem;
  std::string private_key_pem;  // unencrypted PKCS#8
};

// Fails only if OpenSSL does (out of memory, an IP address that does not parse).
result<pem_identity> make_self_signed_certificate(const self_signed_options& options = {});

// Writes both PEM strings to files (the key with mode 0600), e.g. for nginx or openssl s_server.
result<void> write_pem_files(const pem_identity& identity, const std::string& certificate_path,
                             const std::string& private_key_path);

}  // namespace ringfetch::http
