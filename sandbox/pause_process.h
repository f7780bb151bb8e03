// Starts and stops crid-pause, PID 1 of a pod's shared PID namespace. The base
// spawner starts it in a new PID namespace, joined to the pod's network, IPC
// and UTS namespaces; it runs in its own session and outlives crid restarts; it is
// identified by PID plus start time so a recycled PID is never signalled.
//
// Its command line names the pod and crid's state directory
// (`crid-pause --crid-pod=<id> --crid-state=<dir>`), so a crid-pause started
// by a crid that died before recording its PID is still found on the next
// start (FindPauseProcesses), and one belonging to another crid is left alone.
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

// Who a crid-pause belongs to: written into its argv before it exists.
struct PauseOwner {
  std::string state_dir;
  std::string pod_id;
};

// With `new_user_namespace` (and nothing to join) crid-pause starts in a new
// user namespace, which then owns its PID namespace; the caller writes the
// maps and pins it as the pod's.
absl::StatusOr<PauseProcess> StartPause(const std::string& binary,
                                        const std::vector<NamespacePath>& join,
                                        const PauseOwner& owner, bool new_user_namespace = false);

struct FoundPause {
  PauseProcess process;
  std::string pod_id;
};

// Every running crid-pause started for `state_dir`. A process counts only when
// all of these hold, so nothing else is ever taken for one: its argv is
// exactly crid-pause's with this state directory and a well-formed pod ID,
// its executable is named crid-pause, it is PID 1 of its own PID namespace,
// and it shares crid's mount namespace (a container's process cannot).
std::vector<FoundPause> FindPauseProcesses(const std::string& state_dir);

// Start time of `pid`, 0 when it does not exist.
uint64_t ProcessStartTime(pid_t pid);
bool PauseAlive(const PauseProcess& pause);

// SIGTERM, then SIGKILL after `grace`; waits until it is gone. OK when it is
// already gone.
absl::Status StopPause(const PauseProcess& pause);

}  // namespace crid::sandbox
