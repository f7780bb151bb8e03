// What each runtime handler offers beyond the basics, as Status reports it in
// RuntimeHandlerFeatures: decided once at start from the kernel, the
// filesystem under crid's root and the OCI runtime's own feature list.
#pragma once

#include <map>
#include <string>

#include "oci/oci_runtime.h"

namespace crid::container {

struct HandlerFeatures {
  // Mount.recursive_read_only: the runtime applies `rro` (mount_setattr with
  // AT_RECURSIVE, Linux 5.12+).
  bool recursive_read_only_mounts = false;
  // userns_options mode POD: overlayfs over idmapped layers works where the
  // containers live (Linux 5.19+ and a filesystem that supports idmapping).
  bool user_namespaces = false;
};

// Whether this kernel has mount_setattr(2).
bool KernelHasMountSetattr();

// Probes every handler; `scratch_dir` (under crid's root, removed again) is
// where the idmapped overlay is tried. Each finding is logged.
std::map<std::string, HandlerFeatures> ProbeHandlerFeatures(
    const std::map<std::string, OciRuntimeConfig>& handlers, const std::string& scratch_dir);

}  // namespace crid::container
