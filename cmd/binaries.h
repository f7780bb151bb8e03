// Where crid finds the programs it runs: its companion binaries (crid-shim,
// crid-pause) and the OCI runtime of each runtime handler. The daemon and
// `crid check` share these so the check looks where the daemon will.
#pragma once

#include <map>
#include <string>

#include "proto/config.pb.h"

namespace crid {

// A binary that ships next to crid (bazel-bin/<build_dir>/ in a build tree),
// else in /usr/local/bin or /usr/bin; "" when none is found.
std::string FindCompanionBinary(const std::string& name, const std::string& build_dir);

struct HandlerBinary {
  std::string binary;  // the OCI runtime (runc, crun, ...)
  std::string root;    // its --root; "" for <state>/runtime/<handler>
  // Named in the config file, rather than one of the built-in handlers.
  bool configured = false;
};

// The runtime handlers by name: the built-in runc and crun, then the config's,
// which add more or replace them.
std::map<std::string, HandlerBinary> RuntimeHandlerBinaries(const config::Config& config);

}  // namespace crid
