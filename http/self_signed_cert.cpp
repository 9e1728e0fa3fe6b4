#include "http/self_signed_cert.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>

#include "http/openssl_errors.hpp"
#include "http/openssl_ptr.hpp"

namespace ringfetch::http {
namespace {

std::string subject_alt_names(const self_signed_options& o) {
  std::string out;
  auto add = [&](std::string_view kind, const std::string& value) {
    if (!out.empty()) out += ',';
    out += kind;
    out += value;
  };
  for (auto& d : o.dns_names) add("DNS:", d);
  for (auto& ip : o.ip_addresses) add("IP:", ip);
  return out;
}

bool add_extension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  x509_extension_ptr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

result<void> write_file(const std::string& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return error::from_code({errno, std::system_category()}, "create " + path);
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      auto e = error::from_code({errno, std::system_category()}, "write " + path);
      ::close(fd);
      return e;
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return {};
}

}  // namespace

result<pem_identity> make_self_signed_certificate(const self_signed_options& o) {
  ERR_clear_error();
  evp_pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) return openssl_failure("generate an EC P-256 key");

  x509_ptr cert(X509_new());
  if (!cert) return openssl_failure("allocate a certificate");
  X509_set_version(cert.get(), X509_VERSION_3);
  // A random serial: clients that cached an earlier throwaway certificate must not confuse them.
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return openssl_failure("random serial number");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  bool ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr;
  BN_free(bn);
  if (!ok) return openssl_failure("set the serial number");

  X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(o.valid_from.count()));
  X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                  static_cast<long>((o.valid_from + o.valid_for).count()));
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(o.common_name.c_str()), -1,
                                 -1, 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1 || X509_set_pubkey(cert.get(), key.get()) != 1)
    return openssl_failure("fill in the certificate");

  // CA:TRUE so that the certificate can be its own trust anchor in a client's CA file.
  if (!add_extension(cert.get(), NID_basic_constraints, "critical,CA:TRUE") ||
      !add_extension(cert.get(), NID_key_usage, "critical,digitalSignature,keyCertSign") ||
      !add_extension(cert.get(), NID_ext_key_usage, "serverAuth") ||
      !add_extension(cert.get(), NID_subject_key_identifier, "hash"))
    return openssl_failure("add certificate extensions");
  if (std::string san = subject_alt_names(o);
      !san.empty() && !add_extension(cert.get(), NID_subject_alt_name, san))
    return openssl_failure("add subjectAltName " + san);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0)
    return openssl_failure("sign the certificate");

  bio_ptr cert_bio(BIO_new(BIO_s_mem()));
  bio_ptr key_bio(BIO_new(BIO_s_mem()));
  if (!cert_bio || !key_bio || PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return openssl_failure("encode the certificate and key as PEM");
  ERR_clear_error();
  return pem_identity{bio_text(cert_bio.get()), bio_text(key_bio.get())};
}

result<void> write_pem_files(const pem_identity& identity, const std::string& certificate_path,
                             const std::string& private_key_path) {
  if (auto c = write_file(certificate_path, identity.certificate_pem, 0644); !c) return c;
  return write_file(private_key_path, identity.private_key_pem, 0600);
}

}  // namespace ringfetch::http
