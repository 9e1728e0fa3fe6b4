// The `ringfetch` command: one binary, one subcommand per job.
#include <cstdio>
#include <string_view>
#include <vector>

#include "tools/check_command.hpp"
#include "tools/serve_command.hpp"

namespace {

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: ringfetch <command> [options]\n\n"
               "commands:\n"
               "  check     self-check of the io_uring runtime on this machine, with measurements\n"
               "  serve     the fake GCS server: the JSON API from a directory or generated objects\n"
               "\n"
               "Run 'ringfetch <command> --help' for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) {
    print_usage(stderr);
    return 2;
  }
  std::string_view command = args.front();
  std::span<const std::string_view> rest(args.data() + 1, args.size() - 1);
  if (command == "--help" || command == "-h" || command == "help") {
    print_usage(stdout);
    return 0;
  }
  if (command == "--version") {
    std::printf("ringfetch %s\n", RINGFETCH_VERSION);
    return 0;
  }
  if (command == "check") return ringfetch::tools::check_command(rest);
  if (command == "serve") return ringfetch::tools::serve_command(rest);
  std::fprintf(stderr, "ringfetch: unknown command '%.*s'\n", static_cast<int>(command.size()),
               command.data());
  print_usage(stderr);
  return 2;
}
