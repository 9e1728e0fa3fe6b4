// openssl_errors: OpenSSL's thread-local error queue turned into readable text (internal header).
//
// Every SSL call in ringfetch is preceded by ERR_clear_error() and every failure drains the queue
// with drain_openssl_errors(), so no stale error ever leaks into the next call's diagnosis.
#pragma once

#include <string>
#include <string_view>

#include "runtime/error.hpp"

namespace ringfetch::http {

// "error:0A000086:SSL routines::certificate verify failed; ...", or "" when the queue is empty.
// Empties the queue.
std::string drain_openssl_errors();

// A tls-kind error: "<what>: <drained queue>" (or just `what` when the queue was empty).
error openssl_failure(std::string_view what);

}  // namespace ringfetch::http
