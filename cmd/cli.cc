#include "cmd/cli.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <utility>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace crid {
namespace {

// Abseil's own flags (--flagfile, --fromenv, ...) are not crid's command line.
bool IsCridFlag(const absl::CommandLineFlag& flag) {
  return !flag.IsRetired() && !absl::StrContains(flag.Filename(), "absl/");
}

std::string Dashed(absl::string_view name) { return absl::StrReplaceAll(name, {{"_", "-"}}); }

std::string Underscored(absl::string_view name) { return absl::StrReplaceAll(name, {{"-", "_"}}); }

std::string DescribeFlag(const absl::CommandLineFlag& flag) {
  const bool is_bool = flag.IsOfType<bool>();
  std::string out =
      absl::StrCat("  --", Dashed(flag.Name()), is_bool ? "" : "=VALUE", "\n      ", flag.Help());
  // Help that states the effective default itself ("(default /run/crid)",
  // where the flag's own default is "" for "from the config") keeps it.
  if (absl::StrContains(flag.Help(), "(default ")) {
    absl::StrAppend(&out, "\n");
  } else if (is_bool || flag.IsOfType<int>() || flag.IsOfType<int64_t>() ||
             flag.IsOfType<double>()) {
    absl::StrAppend(&out, " (default ", flag.DefaultValue(), ")\n");
  } else {
    absl::StrAppend(&out, " (default \"", flag.DefaultValue(), "\")\n");
  }
  return out;
}

int UsageError(const std::string& message) {
  std::fprintf(stderr, "crid: %s (see crid --help)\n", message.c_str());
  return kExitUsage;
}

}  // namespace

CommandLineParser::CommandLineParser(std::string program_summary,
                                     std::vector<Subcommand> subcommands, std::string version)
    : program_summary_(std::move(program_summary)),
      subcommands_(std::move(subcommands)),
      version_(std::move(version)) {}

const Subcommand* CommandLineParser::Find(const std::string& name) const {
  for (const Subcommand& sub : subcommands_) {
    if (sub.name == name) {
      return &sub;
    }
  }
  return nullptr;
}

std::string CommandLineParser::OwnerOf(const std::string& flag_file) const {
  for (const Subcommand& sub : subcommands_) {
    if (!sub.flags_file.empty() && absl::EndsWith(flag_file, sub.flags_file)) {
      return sub.name;
    }
  }
  return "";
}

std::string CommandLineParser::Usage(const std::string& subcommand) const {
  // By owner ("" = global), each sorted by name.
  std::map<std::string, std::map<std::string, const absl::CommandLineFlag*>> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (IsCridFlag(*flag)) {
      flags[OwnerOf(flag->Filename())][std::string(name)] = flag;
    }
  }
  std::string out;
  const Subcommand* sub = Find(subcommand);
  if (sub == nullptr) {
    absl::StrAppend(&out, program_summary_, "\n\nUsage:\n");
    std::vector<std::pair<std::string, std::string>> lines = {
        {"crid [FLAGS]", "serve the CRI API on --listen"}};
    for (const Subcommand& s : subcommands_) {
      lines.emplace_back(
          absl::StrCat("crid [FLAGS] ", s.name, s.synopsis.empty() ? "" : " ", s.synopsis),
          s.summary);
    }
    size_t width = 0;
    for (const auto& [left, right] : lines) {
      width = std::max(width, left.size());
    }
    for (const auto& [left, right] : lines) {
      absl::StrAppend(&out, "  ", left, std::string(width - left.size() + 2, ' '), right, "\n");
    }
    absl::StrAppend(&out, "\n`crid SUBCOMMAND --help` describes a subcommand and its own flags.\n");
  } else {
    absl::StrAppend(&out, "Usage: crid [FLAGS] ", sub->name, sub->synopsis.empty() ? "" : " ",
                    sub->synopsis, "\n\n", sub->summary, "\n");
    if (!sub->details.empty()) {
      absl::StrAppend(&out, sub->details, "\n");
    }
    if (auto it = flags.find(sub->name); it != flags.end()) {
      absl::StrAppend(&out, "\nFlags of crid ", sub->name, ":\n");
      for (const auto& [name, flag] : it->second) {
        absl::StrAppend(&out, DescribeFlag(*flag));
      }
    }
  }
  absl::StrAppend(&out, sub == nullptr ? "\nFlags:\n" : "\nGlobal flags:\n");
  for (const auto& [name, flag] : flags[""]) {
    absl::StrAppend(&out, DescribeFlag(*flag));
  }
  absl::StrAppend(&out,
                  "  --help, -h\n      print this help and exit\n"
                  "  --version\n      print crid's version and exit\n");
  return out;
}

ParseOutcome CommandLineParser::Parse(const std::vector<std::string>& argv) const {
  ParseOutcome outcome;
  std::vector<std::string> positional;
  // Flag, value and the name as written, applied once the subcommand is known.
  struct Setting {
    absl::CommandLineFlag* flag;
    std::string value;
    std::string written;
  };
  std::vector<Setting> settings;
  bool help = false;
  bool version = false;
  bool only_positional = false;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (only_positional || arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    const size_t start = arg[1] == '-' ? 2 : 1;
    const size_t eq = arg.find('=');
    const std::string written = arg.substr(0, eq);
    const std::string name = Underscored(arg.substr(start, eq - start));
    const bool has_value = eq != std::string::npos;
    if (name == "help" || name == "h" || name == "helpfull") {
      help = true;
      continue;
    }
    if (name == "version") {
      version = true;
      continue;
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    bool negated = false;
    if ((flag == nullptr || !IsCridFlag(*flag)) && absl::StartsWith(name, "no")) {
      flag = absl::FindCommandLineFlag(name.substr(2));
      negated = flag != nullptr && flag->IsOfType<bool>() && !has_value;
      if (!negated) {
        flag = nullptr;
      }
    }
    if (flag == nullptr || !IsCridFlag(*flag)) {
      outcome.exit_code = UsageError(absl::StrCat("unknown flag ", written));
      return outcome;
    }
    std::string value;
    if (has_value) {
      value = arg.substr(eq + 1);
    } else if (flag->IsOfType<bool>()) {
      value = negated ? "false" : "true";
    } else if (i + 1 < argv.size()) {
      value = argv[++i];
    } else {
      outcome.exit_code = UsageError(absl::StrCat("flag ", written, " needs a value"));
      return outcome;
    }
    settings.push_back({flag, std::move(value), written});
  }

  CommandLine line;
  if (!positional.empty()) {
    if (Find(positional[0]) == nullptr) {
      outcome.exit_code = UsageError(absl::StrCat("unexpected argument \"", positional[0], "\""));
      return outcome;
    }
    line.subcommand = positional[0];
    line.args.assign(positional.begin() + 1, positional.end());
  }
  if (help) {
    std::fputs(Usage(line.subcommand).c_str(), stdout);
    return outcome;
  }
  if (version) {
    std::printf("crid %s\n", version_.c_str());
    return outcome;
  }
  for (const Setting& setting : settings) {
    const std::string owner = OwnerOf(setting.flag->Filename());
    if (!owner.empty() && owner != line.subcommand) {
      outcome.exit_code =
          UsageError(absl::StrCat("flag ", setting.written, " belongs to `crid ", owner, "`"));
      return outcome;
    }
    std::string error;
    if (!setting.flag->ParseFrom(setting.value, &error)) {
      outcome.exit_code = UsageError(absl::StrCat("flag ", setting.written, ": ", error));
      return outcome;
    }
  }
  outcome.line = std::move(line);
  return outcome;
}

}  // namespace crid
