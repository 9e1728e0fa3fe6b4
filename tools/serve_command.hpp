// `ringfetch serve`: the fake GCS server on the command line (see tools/fake_gcs).
#pragma once

#include <span>
#include <string_view>

namespace ringfetch::tools {

// Serves until SIGINT or SIGTERM. Exit status: 0 after a signal, 1 when it cannot serve, 2 for a
// usage error (named on stderr).
int serve_command(std::span<const std::string_view> args);

}  // namespace ringfetch::tools
