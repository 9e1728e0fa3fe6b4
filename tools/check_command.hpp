#pragma once

#include <span>
#include <string_view>

namespace ringfetch::tools {

// `ringfetch check [options]`: returns the process exit status.
int check_command(std::span<const std::string_view> args);

}  // namespace ringfetch::tools
