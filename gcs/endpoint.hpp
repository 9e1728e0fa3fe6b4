// endpoint: where JSON API requests go, and whether they carry credentials.
//
// Resolution order: an explicit endpoint from the caller wins; otherwise STORAGE_EMULATOR_HOST
// (with or without a scheme — "127.0.0.1:4443" means http — and with or without the
// "/storage/v1" suffix the Node.js client expects) selects an emulator, which gets no auth;
// otherwise https://storage.googleapis.com. Errors are error_kind::invalid_argument naming the
// source of the bad value (the option or the environment variable).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "http/url.hpp"
#include "runtime/error.hpp"

namespace ringfetch::gcs {

inline constexpr std::string_view default_endpoint = "https://storage.googleapis.com";
inline constexpr std::string_view emulator_host_variable = "STORAGE_EMULATOR_HOST";

struct endpoint {
  http::url base;            // scheme, host and port; base.target is the path prefix ("/" usually)
  bool authenticated = true; // false for an emulator: send no Authorization header
  bool emulator = false;

  // The URL of a request target from object_path.hpp ("/storage/v1/b/...").
  http::url url_for(std::string_view target) const;
};

// Pure: the caller passes the option and the variable's value (std::nullopt when unset).
result<endpoint> resolve_endpoint(std::string_view explicit_endpoint,
                                  std::optional<std::string_view> emulator_host);
// Reads STORAGE_EMULATOR_HOST from the environment (getenv: not thread-safe against setenv).
result<endpoint> endpoint_from_environment(std::string_view explicit_endpoint = {});

}  // namespace ringfetch::gcs
