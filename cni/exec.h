// Runs one CNI plugin binary the way the CNI spec says: CNI_* variables in the
// environment, the network configuration on stdin, the result (or a structured
// error) on stdout. Hung plugins are killed by PID after a deadline.
#pragma once

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

// Executes `binary` with `stdin_data`. On exit 0 returns stdout. Otherwise the
// error carries the plugin's own message ("msg" and "details" of the CNI error
// object, or its stderr), with code UNAVAILABLE for a timeout.
absl::StatusOr<std::string> ExecPlugin(const std::string& binary, const PluginInvocation& inv,
                                       const std::string& stdin_data, absl::Duration timeout);

}  // namespace crid::cni
