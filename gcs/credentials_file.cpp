#include "gcs/credentials_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <simdjson.h>

#include <cerrno>
#include <optional>

#include "gcs/concat.hpp"

namespace ringfetch::gcs {
namespace {

namespace dom = simdjson::dom;

error auth_error(std::string_view source, std::string_view what, std::error_code code = {}) {
  return error{.kind = error_kind::auth, .message = concat("credentials file ", source, ": ", what), .code = code};
}

// Field values are never quoted in errors: any of them may be a secret.
result<std::optional<std::string>> string_field(dom::object object, std::string_view key, std::string_view source) {
  dom::element value;
  if (object.at_key(key).get(value) != simdjson::SUCCESS) return std::optional<std::string>{};
  std::string_view text;
  if (value.get_string().get(text) != simdjson::SUCCESS)
    return auth_error(source, concat("field '", key, "' is not a string"));
  return std::optional<std::string>{std::string(text)};
}

result<std::string> required_field(dom::object object, std::string_view key, std::string_view source) {
  auto text = string_field(object, key, source);
  if (!text) return std::move(text).error();
  if (!*text) return auth_error(source, concat("field '", key, "' is missing"));
  // An empty value is as unusable as a missing one, and would fail far from here.
  if ((*text)->empty()) return auth_error(source, concat("field '", key, "' is empty"));
  return std::move(**text);
}

result<void> optional_field(dom::object object, std::string_view key, std::string_view source, std::string& out) {
  auto text = string_field(object, key, source);
  if (!text) return std::move(text).error();
  if (*text && !(*text)->empty()) out = std::move(**text);
  return {};
}

result<credentials> service_account_from(dom::object object, std::string_view source) {
  service_account_key key;
  for (auto [name, out] : {std::pair{"client_email", &key.client_email}, std::pair{"private_key", &key.private_key}}) {
    auto text = required_field(object, name, source);
    if (!text) return std::move(text).error();
    *out = std::move(*text);
  }
  for (auto [name, out] : {std::pair{"private_key_id", &key.private_key_id}, std::pair{"token_uri", &key.token_uri},
                           std::pair{"project_id", &key.project_id}}) {
    if (auto done = optional_field(object, name, source, *out); !done) return std::move(done).error();
  }
  return credentials{std::move(key)};
}

result<credentials> authorized_user_from(dom::object object, std::string_view source) {
  authorized_user user;
  for (auto [name, out] : {std::pair{"client_id", &user.client_id}, std::pair{"client_secret", &user.client_secret},
                           std::pair{"refresh_token", &user.refresh_token}}) {
    auto text = required_field(object, name, source);
    if (!text) return std::move(text).error();
    *out = std::move(*text);
  }
  if (auto done = optional_field(object, "token_uri", source, user.token_uri); !done) return std::move(done).error();
  return credentials{std::move(user)};
}

// The type is not secret, but it is untrusted text: shown shortened and printable only.
std::string printable_prefix(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 40)) out += c >= 0x20 && c < 0x7f ? c : '?';
  if (text.size() > 40) out += "...";
  return out;
}

}  // namespace

result<credentials> parse_credentials(std::string_view json, std::string_view source) {
  dom::parser parser;
  dom::element root;
  // simdjson's messages are fixed texts: they never quote the input.
  if (auto err = parser.parse(json.data(), json.size()).get(root); err != simdjson::SUCCESS)
    return auth_error(source, concat("invalid JSON (", simdjson::error_message(err), ")"));
  dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) return auth_error(source, "not a JSON object");

  auto type = string_field(object, "type", source);
  if (!type) return std::move(type).error();
  if (!*type) return auth_error(source, "field 'type' is missing");
  if (**type == "service_account") return service_account_from(object, source);
  if (**type == "authorized_user") return authorized_user_from(object, source);
  return auth_error(source, concat("unsupported credentials type '", printable_prefix(**type),
                                   "' (expected 'service_account' or 'authorized_user')"));
}

result<credentials> load_credentials_file(const std::string& path) {
  auto failure = [&](std::string_view what, int errno_value) {
    std::error_code code(errno_value, std::system_category());
    return auth_error(path, concat(what, ": ", code.message()), code);
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return failure("cannot open", errno);
  struct fd_closer {
    int fd;
    ~fd_closer() { ::close(fd); }
  } closer{fd};

  // Read up to one byte past the limit rather than trusting st_size: pipes and /proc files
  // report 0, and a file may grow between stat and read.
  std::string text;
  text.resize(max_credentials_file_size + 1);
  std::size_t filled = 0;
  while (filled < text.size()) {
    ssize_t n = ::read(fd, text.data() + filled, text.size() - filled);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failure("cannot read", errno);
    if (n == 0) break;
    filled += static_cast<std::size_t>(n);
  }
  if (filled > max_credentials_file_size)
    return auth_error(path, concat("larger than ", std::to_string(max_credentials_file_size), " bytes"));
  text.resize(filled);
  return parse_credentials(text, path);
}

}  // namespace ringfetch::gcs
