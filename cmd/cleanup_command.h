// `crid cleanup`: removes what a crid that died (or was killed with its shims)
// left on the host for its root and state: containers still known to the OCI
// runtime, crid-shim and crid-pause processes, pod network attachments,
// mounts, namespace pins, crid's cgroups and shim sockets, and then the pods'
// and containers' records and files. Images stay. A crid started afterwards
// has no pods; kubelet creates its pods again.
#pragma once

#include "cgroups/driver.h"
#include "proto/config.pb.h"

namespace crid {

// Lists each leftover, then (unless --dry-run) removes it. Refused while a
// crid holds the root's lock. Returns the exit code: 1 when refused or when
// anything could not be removed.
int RunCleanupCommand(const config::Config& config, CgroupDriver driver);

}  // namespace crid
