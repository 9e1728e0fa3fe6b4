#include "http/h1_parser.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace ringfetch::http {
namespace {

h1_parser& self(llhttp_t* p) { return *static_cast<h1_parser*>(p->data); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

const llhttp_settings_t h1_parser::settings = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_status = &h1_parser::on_status;
  s.on_header_field = &h1_parser::on_header_field;
  s.on_header_value = &h1_parser::on_header_value;
  s.on_headers_complete = &h1_parser::on_headers_complete;
  s.on_body = &h1_parser::on_body;
  s.on_message_complete = &h1_parser::on_message_complete;
  return s;
}();

h1_parser::h1_parser(h1_limits limits) : limits_(limits) {
  llhttp_init(&parser_, HTTP_RESPONSE, &settings);
  parser_.data = this;
  begin(false);
}

void h1_parser::begin(bool head_request) {
  llhttp_reset(&parser_);
  head_request_ = head_request;
  phase_ = phase::head;
  clear_head();
  dest_ = {};
  body_bytes_ = 0;
  keep_alive_ = false;
  failure_.clear();
  fed_ = 0;
}

void h1_parser::clear_head() {
  framing_ = framing::none;
  status_ = 0;
  reason_.clear();
  headers_.clear();
  in_value_ = false;
  head_bytes_ = 0;
  content_length_.reset();
}

const std::string* h1_parser::header(std::string_view name) const noexcept {
  for (auto& h : headers_)
    if (h.name == name) return &h.value;
  return nullptr;
}

error h1_parser::protocol_error(std::string what) const {
  error e;
  e.kind = error_kind::protocol;
  e.message = "malformed HTTP/1.1 response: " + std::move(what);
  return e;
}

result<std::size_t> h1_parser::feed(std::span<const std::byte> data) {
  if (phase_ == phase::complete) return std::size_t{0};
  // Paused after the head: the caller has set the body's destination.
  if (llhttp_get_errno(&parser_) == HPE_PAUSED) llhttp_resume(&parser_);
  const char* begin = reinterpret_cast<const char*>(data.data());
  llhttp_errno_t rc = llhttp_execute(&parser_, begin, data.size());
  std::size_t consumed = data.size();
  if (rc == HPE_PAUSED) {
    consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - begin);
  } else if (rc != HPE_OK) {
    if (!failure_.empty()) return protocol_error(failure_);
    return protocol_error(std::string(llhttp_errno_name(rc)) + " (" +
                          llhttp_get_error_reason(&parser_) + ") at byte " +
                          std::to_string(fed_ + static_cast<std::size_t>(
                                                    llhttp_get_error_pos(&parser_) - begin)));
  }
  fed_ += consumed;
  return consumed;
}

result<void> h1_parser::finish() {
  if (phase_ == phase::complete) return {};
  if (phase_ == phase::body && framing_ == framing::until_close) {
    phase_ = phase::complete;
    keep_alive_ = false;
    return {};
  }
  error e;
  e.kind = error_kind::transport;
  e.retryable = true;
  if (phase_ == phase::head) {
    e.message = fed_ == 0 ? "connection closed before any response byte"
                          : "connection closed after " + std::to_string(fed_) +
                                " bytes of the response head";
  } else {
    e.message = "connection closed mid-body after " + std::to_string(body_bytes_) + " body bytes";
    if (content_length_) e.message += " of " + std::to_string(*content_length_);
  }
  return e;
}

int h1_parser::head_data(std::size_t n) {
  head_bytes_ += n;
  if (head_bytes_ > limits_.max_head_bytes) {
    failure_ = "response head larger than " + std::to_string(limits_.max_head_bytes) + " bytes";
    return -1;
  }
  return 0;
}

int h1_parser::on_status(llhttp_t* p, const char* at, std::size_t n) {
  h1_parser& h = self(p);
  if (h.head_data(n) != 0) return -1;
  h.reason_.append(at, n);
  return 0;
}

int h1_parser::on_header_field(llhttp_t* p, const char* at, std::size_t n) {
  h1_parser& h = self(p);
  if (h.head_data(n) != 0) return -1;
  if (h.headers_.empty() || h.in_value_) {
    if (h.headers_.size() >= h.limits_.max_headers) {
      h.failure_ = "more than " + std::to_string(h.limits_.max_headers) + " header fields";
      return -1;
    }
    h.headers_.emplace_back();
    h.in_value_ = false;
  }
  for (std::size_t i = 0; i < n; ++i)
    h.headers_.back().name += static_cast<char>(std::tolower(static_cast<unsigned char>(at[i])));
  return 0;
}

int h1_parser::on_header_value(llhttp_t* p, const char* at, std::size_t n) {
  h1_parser& h = self(p);
  if (h.head_data(n) != 0) return -1;
  h.in_value_ = true;
  h.headers_.back().value.append(at, n);
  return 0;
}

int h1_parser::on_headers_complete(llhttp_t* p) { return self(p).headers_complete(); }

int h1_parser::headers_complete() {
  status_ = llhttp_get_status_code(&parser_);
  for (auto& h : headers_) h.value = std::string(trim(h.value));
  if (status_ >= 100 && status_ < 200 && status_ != 101) return 1;  // interim: no body, skipped
  keep_alive_ = llhttp_should_keep_alive(&parser_) != 0;
  const bool no_body = head_request_ || status_ == 204 || status_ == 304;
  if (no_body) return 1;
  if (parser_.flags & F_CHUNKED) {
    framing_ = framing::chunked;
  } else if (parser_.flags & F_CONTENT_LENGTH) {
    content_length_ = parser_.content_length;
    framing_ = *content_length_ == 0 ? framing::none : framing::fixed;
  } else {
    framing_ = framing::until_close;
  }
  if (framing_ == framing::none) return 0;
  phase_ = phase::body;
  // Stop here, whatever the framing: the caller picks the body's destination once it knows the
  // status, and a fixed-length body can be received straight into it.
  return HPE_PAUSED;
}

int h1_parser::on_body(llhttp_t* p, const char* at, std::size_t n) { return self(p).body(at, n); }

int h1_parser::body(const char* at, std::size_t n) {
  if (body_bytes_ + n > dest_.size()) {
    failure_ = "response body larger than the destination (" + std::to_string(dest_.size()) +
               " bytes)";
    return -1;
  }
  std::memcpy(dest_.data() + body_bytes_, at, n);
  body_bytes_ += n;
  return 0;
}

int h1_parser::on_message_complete(llhttp_t* p) { return self(p).message_complete(); }

int h1_parser::message_complete() {
  if (status_ >= 100 && status_ < 200 && status_ != 101) {
    clear_head();  // the final response follows
    return 0;
  }
  phase_ = phase::complete;
  return HPE_PAUSED;  // never consume the next response's bytes
}

}  // namespace ringfetch::http
