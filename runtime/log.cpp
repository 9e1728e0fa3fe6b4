#include "runtime/log.hpp"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace ringfetch::log {
namespace {

level threshold_from_env() {
  const char* env = std::getenv("RINGFETCH_LOG");
  if (!env) return level::warn;
  std::string_view v{env};
  if (v == "error") return level::error;
  if (v == "info") return level::info;
  if (v == "debug") return level::debug;
  return level::warn;
}

const level threshold = threshold_from_env();

// Rare events only, so a mutex is fine here and keeps lines from interleaving.
std::mutex& sink_mutex() {
  static std::mutex m;
  return m;
}
sink& current_sink() {
  static sink s;
  return s;
}

std::string_view name(level lvl) {
  switch (lvl) {
    case level::error: return "error";
    case level::warn: return "warning";
    case level::info: return "info";
    case level::debug: return "debug";
  }
  return "?";
}

}  // namespace

bool enabled(level lvl) noexcept { return lvl <= threshold; }

void write(level lvl, std::string_view message) {
  if (!enabled(lvl)) return;
  std::lock_guard lock(sink_mutex());
  if (auto& s = current_sink()) {
    s(lvl, message);
    return;
  }
  std::string line = "ringfetch: ";
  line += name(lvl);
  line += ": ";
  line += message;
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void set_sink(sink s) {
  std::lock_guard lock(sink_mutex());
  current_sink() = std::move(s);
}

}  // namespace ringfetch::log
