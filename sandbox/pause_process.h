// Starts and stops crid-pause, PID 1 of a pod's shared PID namespace. It is
// created with clone(CLONE_NEWPID) after joining the pod's network, IPC and UTS
// namespaces, runs in its own session, and outlives crid restarts; it is
// identified by PID plus start time so a recycled PID is never signalled.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "netns/namespace.h"

namespace crid::sandbox {

struct PauseProcess {
  pid_t pid = 0;
  uint64_t start_time = 0;  // field 22 of /proc/PID/stat
};

absl::StatusOr<PauseProcess> StartPause(const std::string& binary,
                                        const std::vector<NamespacePath>& join);

// Start time of `pid`, 0 when it does not exist.
uint64_t ProcessStartTime(pid_t pid);
bool PauseAlive(const PauseProcess& pause);

// SIGTERM, then SIGKILL after `grace`; waits until it is gone. OK when it is
// already gone.
absl::Status StopPause(const PauseProcess& pause);

}  // namespace crid::sandbox
