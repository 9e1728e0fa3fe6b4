// cli_args: the flags of one subcommand, with --help text and errors that name the bad flag.
#pragma once

#include <cstddef>
#include <cstdio>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ringfetch::tools {

class cli_args {
 public:
  cli_args(std::string command, std::string summary)
      : command_(std::move(command)), summary_(std::move(summary)) {}

  // A non-negative integer flag: `--name N` or `--name=N`.
  std::size_t& add_size(std::string name, std::string help, std::size_t fallback) {
    flags_.push_back({std::move(name), std::move(help), fallback});
    return flags_.back().value;
  }

  // Parses `args`. Returns an exit status when the program should stop now: 0 after --help,
  // 2 after a usage error (printed to stderr, naming the flag and what was wrong).
  std::optional<int> parse(std::span<const std::string_view> args) {
    for (std::size_t i = 0; i < args.size(); ++i) {
      std::string_view a = args[i];
      if (a == "--help" || a == "-h") {
        print_help();
        return 0;
      }
      std::string_view name = a, value;
      bool has_value = false;
      if (auto eq = a.find('='); eq != std::string_view::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
        has_value = true;
      }
      flag* f = find(name);
      if (!f) return usage_error("unknown option '" + std::string(a) + "'");
      if (!has_value) {
        if (i + 1 >= args.size()) return usage_error("option " + f->name + " needs a value");
        value = args[++i];
      }
      std::size_t v = 0;
      if (value.empty()) return usage_error("option " + f->name + " needs a value");
      for (char c : value) {
        if (c < '0' || c > '9' || v > (~std::size_t{0} - 9) / 10)
          return usage_error("option " + f->name + " expects a non-negative integer, got '" +
                             std::string(value) + "'");
        v = v * 10 + static_cast<std::size_t>(c - '0');
      }
      f->value = v;
    }
    return std::nullopt;
  }

 private:
  struct flag {
    std::string name;
    std::string help;
    std::size_t value;
  };

  flag* find(std::string_view name) {
    for (auto& f : flags_)
      if (f.name == name) return &f;
    return nullptr;
  }

  int usage_error(const std::string& what) {
    std::fprintf(stderr, "%s: %s\nRun '%s --help' for the options.\n", command_.c_str(),
                 what.c_str(), command_.c_str());
    return 2;
  }

  void print_help() const {
    std::printf("usage: %s [options]\n\n%s\n\noptions:\n", command_.c_str(), summary_.c_str());
    for (auto& f : flags_)
      std::printf("  %-16s %s (default %zu)\n", (f.name + " N").c_str(), f.help.c_str(), f.value);
    std::printf("  %-16s %s\n", "--help", "show this help");
  }

  std::string command_;
  std::string summary_;
  std::deque<flag> flags_;  // deque: references handed out by add_size stay valid
};

}  // namespace ringfetch::tools
