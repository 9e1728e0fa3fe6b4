// A minimal, thread-safe log: one line per message to stderr (or to a sink a test installs).
//
// The threshold comes from RINGFETCH_LOG (error, warn, info, debug; default warn). Logging is for
// rare events (fallbacks, unhandled errors), never for the per-byte hot path.
#pragma once

#include <atomic>
#include <functional>
#include <string_view>

namespace ringfetch::log {

enum class level { error = 0, warn = 1, info = 2, debug = 3 };

bool enabled(level lvl) noexcept;
void write(level lvl, std::string_view message);

inline void error(std::string_view m) { write(level::error, m); }
inline void warn(std::string_view m) { write(level::warn, m); }
inline void info(std::string_view m) { write(level::info, m); }
inline void debug(std::string_view m) { write(level::debug, m); }

// Replaces the stderr writer (nullptr restores it). The sink may be called from any thread, but
// never concurrently with itself.
using sink = std::function<void(level, std::string_view)>;
void set_sink(sink s);

// Logs `message` the first time `flag` is seen unset, never again: "says so once".
inline void once(std::atomic<bool>& flag, level lvl, std::string_view message) {
  if (!flag.exchange(true, std::memory_order_relaxed)) write(lvl, message);
}

}  // namespace ringfetch::log
