// crid's command line: its subcommands, a parser that sets the Abseil flags
// defined anywhere in the binary, and the --help text built from those flags.
//
// Flags are written with dashes (--log-level), as kubelet's are; underscores
// are accepted too. A flag defined in a subcommand's source file (see
// Subcommand::flags_file) belongs to that subcommand; every other crid flag is
// global and works with every subcommand.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace crid {

struct Subcommand {
  std::string name;      // "check"
  std::string synopsis;  // what follows the name: "[--dry-run]"
  std::string summary;   // one line for crid --help
  std::string details;   // more lines for crid NAME --help; may be empty
  // The source file (as Bazel names it: "cmd/cleanup_command.cc") whose
  // ABSL_FLAGs are this subcommand's own; empty for none.
  std::string flags_file;
};

struct CommandLine {
  std::string subcommand;         // "" serves CRI
  std::vector<std::string> args;  // positional arguments after the subcommand
};

struct ParseOutcome {
  // Set when crid should go on and run `line`; otherwise exit with exit_code
  // (0 after --help or --version, 2 after a usage error, already reported).
  std::optional<CommandLine> line;
  int exit_code = 0;
};

// Exit code of a usage error (unknown flag, bad value, unknown subcommand).
inline constexpr int kExitUsage = 2;

class CommandLineParser {
 public:
  CommandLineParser(std::string program_summary, std::vector<Subcommand> subcommands,
                    std::string version);

  // Parses argv (argv[0] is the program), sets the flags it names, and handles
  // --help, -h and --version (output on stdout) and usage errors (one line
  // naming the culprit on stderr).
  ParseOutcome Parse(const std::vector<std::string>& argv) const;

  // The --help text: of crid itself when `subcommand` is "", else of it.
  std::string Usage(const std::string& subcommand) const;

 private:
  const Subcommand* Find(const std::string& name) const;
  // The subcommand a flag belongs to: "" for a global flag.
  std::string OwnerOf(const std::string& flag_file) const;

  std::string program_summary_;
  std::vector<Subcommand> subcommands_;
  std::string version_;
};

}  // namespace crid
