#include "gcs/endpoint.hpp"

#include <cstdlib>

#include "gcs/concat.hpp"

namespace ringfetch::gcs {
namespace {

result<endpoint> parse_base(std::string_view text, std::string_view source) {
  std::string full(text);
  // Emulators are commonly given as host:port; a bare authority means plain http.
  if (full.find("://") == std::string::npos) full = concat("http://", text);
  auto base = http::url::parse(full);
  if (!base) {
    error e = std::move(base).error();
    e.message = concat(source, ": ", e.message);
    return e;
  }
  std::string& prefix = base->target;
  if (prefix.find('?') != std::string::npos) {
    error e;
    e.kind = error_kind::invalid_argument;
    e.message = concat(source, ": an endpoint takes no query ('", base->str(), "')");
    return e;
  }
  // The JSON API paths are appended later, so a "/storage/v1" suffix (Node.js client style)
  // and trailing slashes are dropped.
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (prefix.ends_with("/storage/v1")) prefix.resize(prefix.size() - std::string_view("/storage/v1").size());
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (prefix.empty()) prefix.push_back('/');
  endpoint out;
  out.base = std::move(*base);
  return out;
}

}  // namespace

http::url endpoint::url_for(std::string_view target) const {
  http::url u = base;
  u.target = (base.target == "/" ? std::string() : base.target) + std::string(target);
  return u;
}

result<endpoint> resolve_endpoint(std::string_view explicit_endpoint,
                                  std::optional<std::string_view> emulator_host) {
  if (!explicit_endpoint.empty()) return parse_base(explicit_endpoint, "endpoint option");
  if (emulator_host && !emulator_host->empty()) {
    auto e = parse_base(*emulator_host, emulator_host_variable);
    if (e) {
      e->authenticated = false;
      e->emulator = true;
    }
    return e;
  }
  return parse_base(default_endpoint, "default endpoint");
}

result<endpoint> endpoint_from_environment(std::string_view explicit_endpoint) {
  const char* value = std::getenv(std::string(emulator_host_variable).c_str());
  return resolve_endpoint(explicit_endpoint,
                          value ? std::optional<std::string_view>(value) : std::nullopt);
}

}  // namespace ringfetch::gcs
