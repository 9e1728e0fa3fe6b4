#include "http/h1_request_parser.hpp"

#include <cctype>
#include <cstring>
#include <strings.h>

namespace ringfetch::http {
namespace {

h1_request_parser& self(llhttp_t* p) { return *static_cast<h1_request_parser*>(p->data); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

const llhttp_settings_t h1_request_parser::settings = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_method = &h1_request_parser::on_method;
  s.on_url = &h1_request_parser::on_url;
  s.on_header_field = &h1_request_parser::on_header_field;
  s.on_header_value = &h1_request_parser::on_header_value;
  s.on_headers_complete = &h1_request_parser::on_headers_complete;
  s.on_body = &h1_request_parser::on_body;
  s.on_message_complete = &h1_request_parser::on_message_complete;
  return s;
}();

h1_request_parser::h1_request_parser(request_limits limits) : limits_(limits) {
  llhttp_init(&parser_, HTTP_REQUEST, &settings);
  parser_.data = this;
  begin();
}

void h1_request_parser::begin() {
  // A reset parser starts at a message boundary: the pause at the previous message's end left
  // nothing half-parsed behind.
  llhttp_reset(&parser_);
  phase_ = phase::head;
  method_.clear();
  target_.clear();
  headers_.clear();
  in_value_ = false;
  head_bytes_ = 0;
  major_ = minor_ = 1;
  keep_alive_ = false;
  expects_continue_ = false;
  body_.clear();
  failure_status_ = 0;
  failure_.clear();
  failed_.reset();
  fed_ = 0;
}

const std::string* h1_request_parser::header(std::string_view name) const noexcept {
  for (auto& h : headers_)
    if (h.name == name) return &h.value;
  return nullptr;
}

error h1_request_parser::protocol_error(int status, std::string what) const {
  error e;
  e.kind = error_kind::protocol;
  e.http_status = status;
  e.message = "malformed HTTP/1.1 request: " + std::move(what);
  return e;
}

result<std::size_t> h1_request_parser::feed(std::span<const std::byte> data) {
  if (failed_) return *failed_;
  if (phase_ == phase::complete || data.empty()) return std::size_t{0};
  const char* begin = reinterpret_cast<const char*>(data.data());
  llhttp_errno_t rc = llhttp_execute(&parser_, begin, data.size());
  std::size_t consumed = data.size();
  if (rc == HPE_PAUSED || rc == HPE_PAUSED_UPGRADE) {
    // Upgrade and CONNECT requests are served (or refused) as plain requests: what follows them
    // is left unparsed, like any next request.
    consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - begin);
  } else if (rc != HPE_OK) {
    const std::size_t at = fed_ + static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - begin);
    if (failure_status_ != 0) {
      failed_ = protocol_error(failure_status_, failure_);
    } else {
      failed_ = protocol_error(400, std::string(llhttp_errno_name(rc)) + " (" +
                                        llhttp_get_error_reason(&parser_) + ") at byte " +
                                        std::to_string(at));
    }
    return *failed_;
  }
  fed_ += consumed;
  return consumed;
}

result<void> h1_request_parser::finish() {
  if (phase_ == phase::complete || fed_ == 0) return {};
  error e;
  e.kind = error_kind::transport;
  e.message = phase_ == phase::head
                  ? "connection closed after " + std::to_string(fed_) + " bytes of a request head"
                  : "connection closed after " + std::to_string(body_.size()) +
                        " bytes of a request body";
  return e;
}

int h1_request_parser::refuse(int status, std::string why) {
  failure_status_ = status;
  failure_ = std::move(why);
  return -1;
}

int h1_request_parser::head_data(std::size_t n) {
  head_bytes_ += n;
  if (head_bytes_ > limits_.max_head_bytes)
    return refuse(431, "request head larger than " + std::to_string(limits_.max_head_bytes) +
                           " bytes");
  return 0;
}

int h1_request_parser::on_method(llhttp_t* p, const char* at, std::size_t n) {
  h1_request_parser& h = self(p);
  if (h.head_data(n) != 0) return -1;
  h.method_.append(at, n);
  return 0;
}

int h1_request_parser::on_url(llhttp_t* p, const char* at, std::size_t n) {
  h1_request_parser& h = self(p);
  if (h.head_data(n) != 0) return -1;
  h.target_.append(at, n);
  return 0;
}

int h1_request_parser::on_header_field(llhttp_t* p, const char* at, std::size_t n) {
  h1_request_parser& h = self(p);
  if (h.head_data(n) != 0) return -1;
  if (h.headers_.empty() || h.in_value_) {
    if (h.headers_.size() >= h.limits_.max_headers)
      return h.refuse(431, "more than " + std::to_string(h.limits_.max_headers) + " header fields");
    h.headers_.emplace_back();
    h.in_value_ = false;
  }
  for (std::size_t i = 0; i < n; ++i)
    h.headers_.back().name += static_cast<char>(std::tolower(static_cast<unsigned char>(at[i])));
  return 0;
}

int h1_request_parser::on_header_value(llhttp_t* p, const char* at, std::size_t n) {
  h1_request_parser& h = self(p);
  if (h.head_data(n) != 0) return -1;
  h.in_value_ = true;
  h.headers_.back().value.append(at, n);
  return 0;
}

int h1_request_parser::on_headers_complete(llhttp_t* p) { return self(p).headers_complete(); }

int h1_request_parser::headers_complete() {
  for (auto& h : headers_) h.value = std::string(trim(h.value));
  major_ = parser_.http_major;
  minor_ = parser_.http_minor;
  keep_alive_ = llhttp_should_keep_alive(&parser_) != 0;
  if (const std::string* expect = header("expect"))
    expects_continue_ = ::strcasecmp(expect->c_str(), "100-continue") == 0;
  if ((parser_.flags & F_CONTENT_LENGTH) && parser_.content_length > limits_.max_body_bytes)
    return refuse(413, "request body of " + std::to_string(parser_.content_length) +
                           " bytes, more than the limit of " +
                           std::to_string(limits_.max_body_bytes));
  phase_ = phase::body;
  return 0;
}

int h1_request_parser::on_body(llhttp_t* p, const char* at, std::size_t n) {
  return self(p).body(at, n);
}

int h1_request_parser::body(const char* at, std::size_t n) {
  // Chunked bodies announce no total: the limit is checked as they grow.
  if (body_.size() + n > limits_.max_body_bytes)
    return refuse(413, "request body larger than the limit of " +
                           std::to_string(limits_.max_body_bytes) + " bytes");
  const std::size_t old = body_.size();
  body_.resize(old + n);
  std::memcpy(body_.data() + old, at, n);
  return 0;
}

int h1_request_parser::on_message_complete(llhttp_t* p) {
  self(p).phase_ = phase::complete;
  return HPE_PAUSED;  // never consume the next request's bytes
}

}  // namespace ringfetch::http
