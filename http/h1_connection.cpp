#include "http/h1_connection.hpp"

#include <algorithm>
#include <cstring>

namespace ringfetch::http {
namespace {

constexpr std::size_t staging_size = 64 * 1024;
constexpr std::size_t max_error_body = 64 * 1024;

}  // namespace

h1_connection::h1_connection(std::unique_ptr<transport> t, std::string authority, h1_options options)
    : transport_(std::move(t)),
      authority_(std::move(authority)),
      options_(options),
      parser_(options.limits),
      staging_(staging_size) {}

std::string h1_connection::request_head(const request& req) const {
  std::string head;
  head.reserve(256);
  head += req.method;
  head += ' ';
  head += req.target;
  head += " HTTP/1.1\r\nHost: ";
  head += authority_;
  head += "\r\nUser-Agent: ringfetch/0.1\r\n";
  if (req.range) {
    head += "Range: bytes=";
    head += std::to_string(req.range->first);
    head += '-';
    head += std::to_string(req.range->last);
    head += "\r\n";
  }
  for (auto& h : req.headers) {
    head += h.name;
    head += ": ";
    head += h.value;
    head += "\r\n";
  }
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT") {
    head += "Content-Length: ";
    head += std::to_string(req.body.size());
    head += "\r\n";
  }
  head += "\r\n";
  head += req.body;  // one write for head and body
  return head;
}

error h1_connection::failure(error e, const request& req, std::uint64_t offset) const {
  e.url = authority_ + req.target;  // targets never carry credentials (they go in headers)
  e.offset = offset;
  return e;
}

task<result<std::size_t>> h1_connection::receive(std::span<std::byte> into,
                                                 std::chrono::milliseconds timeout,
                                                 const request& req) {
  const op_options o{.deadline = steady_clock::now() + timeout, .cancel = cancel_};
  auto n = co_await transport_->read_some(into, o);
  if (!n) {
    reusable_ = false;
    co_return failure(error::from_code(n.error(), "receive from " + transport_->peer()), req,
                      error::no_offset);
  }
  if (*n > 0) response_started_ = true;
  co_return *n;
}

task<result<response>> h1_connection::send(const request& req, std::span<std::byte> dest,
                                           cancel_source* cancel) {
  if (!reusable()) {
    co_return failure({.kind = error_kind::internal, .message = "connection is not reusable"}, req,
                      error::no_offset);
  }
  reusable_ = false;  // until this response is complete
  response_started_ = false;
  cancel_ = cancel;
  const std::string head = request_head(req);
  const op_options send_options{.deadline = steady_clock::now() + options_.idle_timeout,
                                .cancel = cancel};
  auto sent = co_await transport_->write_all(std::as_bytes(std::span(head)), send_options);
  if (!sent) {
    co_return failure(error::from_code(sent.error(), "send request to " + transport_->peer()),
                      req, error::no_offset);
  }

  parser_.begin(req.method == "HEAD");
  std::size_t have = 0;  // unparsed bytes at the front of staging_
  std::size_t parsed = 0;
  bool first = true;
  // 1. The head.
  while (parser_.current() == h1_parser::phase::head) {
    if (parsed == have) {
      parsed = have = 0;
      auto n = co_await receive(staging_, first ? options_.first_byte_timeout : options_.idle_timeout, req);
      if (!n) co_return n.error();
      if (*n == 0) co_return failure(parser_.finish().error(), req, 0);
      have = *n;
      first = false;
    }
    auto used = parser_.feed(std::span(staging_).subspan(parsed, have - parsed));
    if (!used) co_return failure(used.error(), req, 0);
    parsed += *used;
  }

  response out;
  out.status = parser_.status();
  out.headers = parser_.headers();
  const bool success = out.status >= 200 && out.status < 300;
  std::vector<std::byte> error_sink;
  if (!success) error_sink.resize(max_error_body);
  std::span<std::byte> sink = success ? dest : std::span<std::byte>(error_sink);

  // 2. A fixed-length body, straight into the sink.
  if (parser_.current() == h1_parser::phase::body &&
      parser_.body_framing() == h1_parser::framing::fixed) {
    const std::uint64_t length = *parser_.content_length();
    if (length > sink.size()) {
      co_return failure({.kind = success ? error_kind::invalid_argument : error_kind::http_status,
                         .message = "response body of " + std::to_string(length) +
                                    " bytes is larger than the destination (" +
                                    std::to_string(sink.size()) + " bytes)",
                         .http_status = out.status},
                        req, 0);
    }
    std::size_t got = std::min<std::size_t>(have - parsed, length);
    std::memcpy(sink.data(), staging_.data() + parsed, got);
    parsed += got;
    if (parsed != have) {
      co_return failure({.kind = error_kind::protocol,
                         .message = "server sent " + std::to_string(have - parsed) +
                                    " bytes past the end of the response"},
                        req, length);
    }
    while (got < length) {
      auto n = co_await receive(sink.subspan(got, length - got), options_.idle_timeout, req);
      if (!n) {
        error e = n.error();
        e.offset = got;
        co_return e;
      }
      if (*n == 0) {
        co_return failure({.kind = error_kind::transport,
                           .message = "connection closed mid-body after " + std::to_string(got) +
                                      " of " + std::to_string(length) + " bytes",
                           .retryable = true},
                          req, got);
      }
      got += *n;
    }
    out.body_bytes = got;
    reusable_ = parser_.keep_alive();
  } else {
    // 3. Chunked or close-delimited: through the parser, copied once into the sink.
    parser_.set_body_destination(sink);
    while (parser_.current() != h1_parser::phase::complete) {
      if (parsed == have) {
        parsed = have = 0;
        auto n = co_await receive(staging_, options_.idle_timeout, req);
        if (!n) co_return n.error();
        if (*n == 0) {
          if (auto f = parser_.finish(); !f) co_return failure(f.error(), req, parser_.body_bytes());
          break;
        }
        have = *n;
      }
      auto used = parser_.feed(std::span(staging_).subspan(parsed, have - parsed));
      if (!used) co_return failure(used.error(), req, parser_.body_bytes());
      parsed += *used;
    }
    out.body_bytes = parser_.body_bytes();
    reusable_ = parser_.keep_alive() && parsed == have;
  }
  if (!success) {
    out.error_body.assign(reinterpret_cast<const char*>(error_sink.data()), out.body_bytes);
    out.body_bytes = 0;
  }
  co_return out;
}

task<void> h1_connection::close() {
  reusable_ = false;
  co_await transport_->close();
}

}  // namespace ringfetch::http
