// Runs one CNI plugin binary the way the CNI spec says: CNI_* variables in the
// environment, the network configuration on stdin, the result (or a structured
// error) on stdout. A plugin runs in its own process group, which is killed
// whole when the plugin (or anything it started that holds its output) outlives
// the deadline, and its output is capped.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace crid::cni {

struct PluginInvocation {
  std::string command;                                    // ADD, DEL, CHECK, STATUS, VERSION
  std::string container_id;                               // CNI_CONTAINERID
  std::string netns;                                      // CNI_NETNS
  std::string ifname;                                     // CNI_IFNAME
  std::vector<std::pair<std::string, std::string>> args;  // CNI_ARGS, K=V;K=V
  std::vector<std::string> bin_dirs;                      // CNI_PATH and lookup
};

// Finds `type` in `bin_dirs` (first executable file wins).
absl::StatusOr<std::string> FindPlugin(const std::string& type,
                                       const std::vector<std::string>& bin_dirs);

// Most a plugin may write to stdout; more is refused (the plugin is killed).
inline constexpr size_t kMaxPluginOutputBytes = size_t{1} << 20;
// CNI's "try again later" error code.
inline constexpr int kCniErrorTryAgainLater = 11;

// Executes `binary` with `stdin_data`, with default signal dispositions, an
// empty signal mask and only descriptors 0-2. On exit 0 returns stdout.
// Otherwise the error carries the plugin's own message ("msg" and "details" of
// the CNI error object, or its stderr) and its CNI error code, with status code
// UNAVAILABLE for code 11 (try again later), DEADLINE_EXCEEDED for a timeout and
// RESOURCE_EXHAUSTED for output over kMaxPluginOutputBytes. A binary that
// cannot be executed is an error naming it and the errno (NOT_FOUND when it
// is missing).
absl::StatusOr<std::string> ExecPlugin(const std::string& binary, const PluginInvocation& inv,
                                       const std::string& stdin_data, absl::Duration timeout);

}  // namespace crid::cni
