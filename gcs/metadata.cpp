#include "gcs/metadata.hpp"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <limits>

#include "gcs/base64.hpp"
#include "gcs/concat.hpp"
#include "gcs/crc32c.hpp"
#include "gcs/timestamps.hpp"

namespace ringfetch::gcs {
namespace {

namespace dom = simdjson::dom;

error protocol(std::string_view context, std::string_view what) {
  error e;
  e.kind = error_kind::protocol;
  e.message = concat(context, ": ", what);
  return e;
}

// Parses into `parser`'s storage; the element is valid until the parser is reused.
result<dom::element> parse_document(dom::parser& parser, std::string_view json, std::string_view context) {
  dom::element root;
  if (auto err = parser.parse(json.data(), json.size()).get(root); err != simdjson::SUCCESS)
    return protocol(context, concat("invalid JSON (", simdjson::error_message(err), ")"));
  return root;
}

// The "field" lookups below return std::nullopt for a missing field and an error for a field of
// the wrong type, so each caller decides what "missing" means.
using maybe_string = std::optional<std::string_view>;

result<maybe_string> string_field(dom::object object, std::string_view key, std::string_view context) {
  dom::element value;
  if (object.at_key(key).get(value) != simdjson::SUCCESS) return maybe_string{};
  std::string_view text;
  if (value.get_string().get(text) != simdjson::SUCCESS)
    return protocol(context, concat("field '", key, "' is not a string"));
  return maybe_string{text};
}

// GCS sends 64-bit integers as JSON strings of decimal digits.
template <class Int>
result<std::optional<Int>> integer_field(dom::object object, std::string_view key, std::string_view context) {
  auto text = string_field(object, key, context);
  if (!text) return std::move(text).error();
  if (!*text) return std::optional<Int>{};
  std::string_view digits = **text;
  auto refuse = [&](std::string_view why) {
    return protocol(context, concat("field '", key, "' ", why, " ('", digits.substr(0, 40), "')"));
  };
  if (digits.empty()) return refuse("is empty");
  if (digits.front() == '-') return refuse("is negative");
  // from_chars would accept a leading '-' for signed types; only plain digits are valid here.
  for (char c : digits) {
    if (c < '0' || c > '9') return refuse("is not a decimal number");
  }
  Int value{};
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec == std::errc::result_out_of_range) return refuse("is out of range");
  if (ec != std::errc() || end != digits.data() + digits.size()) return refuse("is not a decimal number");
  return std::optional<Int>{value};
}

result<object_metadata> object_from(dom::element element, std::string_view context) {
  dom::object object;
  if (element.get_object().get(object) != simdjson::SUCCESS) return protocol(context, "not a JSON object");
  object_metadata m;

  auto name = string_field(object, "name", context);
  if (!name) return std::move(name).error();
  if (!*name) return protocol(context, "field 'name' is missing");
  m.name = std::string(**name);

  auto size = integer_field<std::uint64_t>(object, "size", context);
  if (!size) return std::move(size).error();
  if (!*size) return protocol(context, "field 'size' is missing");
  m.size = **size;

  auto generation = integer_field<std::int64_t>(object, "generation", context);
  if (!generation) return std::move(generation).error();
  if (!*generation) return protocol(context, "field 'generation' is missing");
  m.generation = **generation;

  auto metageneration = integer_field<std::int64_t>(object, "metageneration", context);
  if (!metageneration) return std::move(metageneration).error();
  m.metageneration = metageneration->value_or(0);

  const std::pair<std::string_view, std::string*> text_fields[] = {
      {"bucket", &m.bucket}, {"contentType", &m.content_type}, {"contentEncoding", &m.content_encoding},
      {"updated", &m.updated}};
  for (auto [key, out] : text_fields) {
    auto text = string_field(object, key, context);
    if (!text) return std::move(text).error();
    if (*text) *out = std::string(**text);
  }

  auto crc = string_field(object, "crc32c", context);
  if (!crc) return std::move(crc).error();
  if (*crc) {
    auto value = crc32c_from_base64(**crc);
    if (!value) return protocol(context, concat("field 'crc32c': ", value.error().message));
    m.crc32c = *value;
  }

  auto md5 = string_field(object, "md5Hash", context);
  if (!md5) return std::move(md5).error();
  if (*md5) {
    auto bytes = base64_decode(**md5);
    if (!bytes || bytes->size() != 16)
      return protocol(context, concat("field 'md5Hash' is not base64 of 16 bytes ('", md5->value().substr(0, 40), "')"));
    m.md5.emplace();
    std::copy(bytes->begin(), bytes->end(), m.md5->begin());
  }

  if (!m.updated.empty()) {
    m.updated_time = parse_rfc3339(m.updated);
    if (!m.updated_time)
      return protocol(context, concat("field 'updated' is not an RFC 3339 time ('", std::string_view(m.updated).substr(0, 40), "')"));
  }
  return m;
}

}  // namespace

result<object_metadata> parse_object_metadata(std::string_view json) {
  dom::parser parser;
  auto root = parse_document(parser, json, "object metadata");
  if (!root) return std::move(root).error();
  return object_from(*root, "object metadata");
}

result<list_page> parse_list_page(std::string_view json) {
  constexpr std::string_view context = "object list";
  dom::parser parser;
  auto root = parse_document(parser, json, context);
  if (!root) return std::move(root).error();
  dom::object object;
  if (root->get_object().get(object) != simdjson::SUCCESS) return protocol(context, "not a JSON object");
  list_page page;

  // "items" and "prefixes" are absent, not empty, when there is nothing to report.
  dom::element items;
  if (object.at_key("items").get(items) == simdjson::SUCCESS) {
    dom::array array;
    if (items.get_array().get(array) != simdjson::SUCCESS) return protocol(context, "field 'items' is not an array");
    std::size_t index = 0;
    for (dom::element item : array) {
      auto m = object_from(item, concat("object list: items[", std::to_string(index++), "]"));
      if (!m) return std::move(m).error();
      page.items.push_back(std::move(*m));
    }
  }
  dom::element prefixes;
  if (object.at_key("prefixes").get(prefixes) == simdjson::SUCCESS) {
    dom::array array;
    if (prefixes.get_array().get(array) != simdjson::SUCCESS)
      return protocol(context, "field 'prefixes' is not an array");
    for (dom::element prefix : array) {
      std::string_view text;
      if (prefix.get_string().get(text) != simdjson::SUCCESS)
        return protocol(context, "field 'prefixes' holds a non-string");
      page.prefixes.emplace_back(text);
    }
  }
  auto token = string_field(object, "nextPageToken", context);
  if (!token) return std::move(token).error();
  if (*token) page.next_page_token = std::string(**token);
  return page;
}

std::string api_error_body::describe() const {
  return reason.empty() ? message : concat(message, " (", reason, ")");
}

std::optional<api_error_body> parse_error_body(std::string_view json) {
  dom::parser parser;
  dom::element root;
  if (parser.parse(json.data(), json.size()).get(root) != simdjson::SUCCESS) return std::nullopt;
  dom::object error_object;
  if (root["error"].get_object().get(error_object) != simdjson::SUCCESS) return std::nullopt;
  api_error_body body;
  std::int64_t code = 0;
  if (error_object["code"].get_int64().get(code) == simdjson::SUCCESS && code >= 0 && code <= 999)
    body.code = static_cast<int>(code);
  std::string_view text;
  if (error_object["message"].get_string().get(text) == simdjson::SUCCESS) body.message = std::string(text);
  dom::array errors;
  if (error_object["errors"].get_array().get(errors) == simdjson::SUCCESS) {
    for (dom::element entry : errors) {
      if (entry["reason"].get_string().get(text) == simdjson::SUCCESS) body.reason = std::string(text);
      break;
    }
  }
  if (body.code == 0 && body.message.empty()) return std::nullopt;
  return body;
}

}  // namespace ringfetch::gcs
