// nginx_fixture: a real nginx on 127.0.0.1 and a random port, serving a scratch directory.
// Started in the constructor (waits until it accepts), stopped and cleaned up in the destructor.
// With nginx_options::tls it serves HTTPS with a fresh self-signed certificate (for localhost,
// 127.0.0.1 and ::1) that clients trust through certificate_pem(); http2 adds "h2" to its ALPN.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>

#include "http/self_signed_cert.hpp"
#include "server_process.hpp"
#include "test_support.hpp"

namespace ringfetch::test {

struct nginx_options {
  bool tls = false;
  bool http2 = false;  // with tls: ALPN offers "h2" too
  // Without tls: serve HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1 on the port.
  bool h2c = false;
  unsigned h2_max_concurrent_streams = 128;
  // Requests per connection before nginx closes it (HTTP/2: with GOAWAY).
  unsigned keepalive_requests = 100000;
};

class nginx_fixture {
 public:
  explicit nginx_fixture(nginx_options options = {}) : options_(options) {
    char tmpl[] = "/tmp/ringfetch-nginx-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);  // workers run unprivileged
    std::filesystem::create_directories(dir_ + "/www");
    ::chmod((dir_ + "/www").c_str(), 0755);
    {
      tcp_listener probe;  // a free port, released for nginx to take
      port_ = ntohs(probe.addr.sin_port);
    }
    std::string tls_lines;
    if (options_.tls) {
      auto identity = http::make_self_signed_certificate();
      if (!identity) throw std::runtime_error(identity.error().describe());
      certificate_pem_ = identity->certificate_pem;
      auto written = http::write_pem_files(*identity, dir_ + "/cert.pem", dir_ + "/key.pem");
      if (!written) throw std::runtime_error(written.error().describe());
      tls_lines = "    ssl_certificate " + dir_ + "/cert.pem;\n    ssl_certificate_key " + dir_ +
                  "/key.pem;\n    ssl_protocols TLSv1.2 TLSv1.3;\n";
    }
    const std::string listen_flags =
        std::string(options_.tls ? " ssl" : "") +
        ((options_.tls && options_.http2) || (!options_.tls && options_.h2c) ? " http2" : "");
    std::ofstream conf(dir_ + "/nginx.conf");
    conf << "worker_processes 1;\n"
         << "error_log " << dir_ << "/error.log;\n"
         << "pid " << dir_ << "/nginx.pid;\n"
         << "events { worker_connections 512; }\n"
         << "http {\n"
         << "  access_log off;\n"
         << "  client_body_temp_path " << dir_ << "/tmp-body;\n"
         << "  proxy_temp_path " << dir_ << "/tmp-proxy;\n"
         << "  fastcgi_temp_path " << dir_ << "/tmp-fastcgi;\n"
         << "  uwsgi_temp_path " << dir_ << "/tmp-uwsgi;\n"
         << "  scgi_temp_path " << dir_ << "/tmp-scgi;\n"
         << "  sendfile on;\n"
         << "  keepalive_requests " << options.keepalive_requests << ";\n"
         << "  server {\n"
         << "    listen 127.0.0.1:" << port_ << listen_flags << ";\n"
         << tls_lines
         << ((options.h2c || options.http2)
                 ? "    http2_max_concurrent_streams " +
                       std::to_string(options.h2_max_concurrent_streams) +
                       ";\n    http2_chunk_size 256k;\n"
                 : std::string())
         << "    root " << dir_ << "/www;\n"
         // sub_filter makes the length unknown: nginx then answers with a chunked body.
         << "    location /chunked/ { alias " << dir_ << "/www/; sub_filter_once off;"
         << " sub_filter 'zzzz' 'zzzz'; sub_filter_types *; }\n"
         << "  }\n"
         << "}\n";
    conf.close();
    pid_ = spawn_quiet({"/usr/sbin/nginx", "-p", dir_, "-c", dir_ + "/nginx.conf", "-g",
                        "daemon off;"});
    wait_until_listening(port_, pid_, "nginx (see " + dir_ + "/error.log)");
  }

  ~nginx_fixture() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::uint16_t port() const { return port_; }
  std::string base_url() const {
    return (options_.tls ? "https" : "http") + std::string("://127.0.0.1:") + std::to_string(port_);
  }
  // The PEM of the self-signed certificate served with nginx_options::tls (a CA for clients).
  const std::string& certificate_pem() const { return certificate_pem_; }
  // The served directory (files may be symlinks, e.g. into /dev/shm).
  std::string docroot() const { return dir_ + "/www"; }

  // Writes www/<name> with patterned bytes starting at pattern offset `seed`.
  void write_file(const std::string& name, std::size_t size, std::uint64_t seed) {
    write_pattern_file(dir_ + "/www/" + name, size, seed);
  }

 private:
  nginx_options options_;
  std::string certificate_pem_;
  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace ringfetch::test
