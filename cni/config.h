// CNI network configuration lists (.conflist) and single-plugin configs (.conf)
// as the CNI spec defines them, and the conf-dir rule shared with containerd
// and CRI-O: the lexically first valid file wins.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/json.h"

namespace crid::cni {

struct NetworkConfigList {
  std::string name;
  std::string cni_version;
  bool disable_check = false;
  // CNI 1.1's disableGC: crid sends no GC to this network's plugins.
  bool disable_gc = false;
  // A .conflist (plugins array) rather than a single-plugin .conf.
  bool is_list = false;
  // Each plugin's configuration object as written (type, capabilities, ...).
  std::vector<Json> plugins;
  // Where it came from and its exact text, kept with each attachment so DEL
  // runs against the config ADD used even after the conf dir changed.
  std::string source;
  std::string text;
};

// True when `version` (a cniVersion such as "1.1.0") is at least major.minor.patch.
// Parts that are missing count as 0; an unparsable version is never at least anything.
bool CniVersionAtLeast(absl::string_view version, int major, int minor, int patch);

// Parses a .conflist (`is_list`) or a single-plugin .conf, checking what the
// spec requires: name, cniVersion, and a type for each plugin.
absl::StatusOr<NetworkConfigList> ParseNetworkConfig(absl::string_view text, bool is_list,
                                                     const std::string& source);

// Loads the first valid .conflist/.conf/.json in `dir` (lexical order). NOT_FOUND
// when there is none; invalid files are skipped (logged).
absl::StatusOr<NetworkConfigList> LoadFirstNetworkConfig(const std::string& dir);

}  // namespace crid::cni
