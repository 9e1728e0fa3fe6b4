// concat: joins string pieces with one allocation. Internal to the gcs layer (not installed).
// It also sidesteps GCC 12's false -Wrestrict on `"literal" + std::string` chains.
#pragma once

#include <string>
#include <string_view>

namespace ringfetch::gcs {

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::string out;
  out.reserve((std::string_view(parts).size() + ...));
  (out.append(std::string_view(parts)), ...);
  return out;
}

}  // namespace ringfetch::gcs
