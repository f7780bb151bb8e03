// Directory-level operations on the cgroup trees (what the cgroupfs driver does,
// and what the systemd driver needs for controllers systemd leaves alone).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cgroups/stats.h"

namespace crid {

// An absolute cgroup path without "." or ".." components; "" or "/" is the root.
absl::Status ValidateCgroupPath(absl::string_view path);

// The mount points of the v1 hierarchies crid manages, each once (cpu and
// cpuacct may share one), named ones (name=systemd) included, in a stable order.
std::vector<std::string> V1Hierarchies(const CgroupLayout& layout);

// Writes `value` to an existing cgroup file; a missing file says which.
absl::Status WriteCgroupFile(const std::string& file, absl::string_view value);

// Creates the directory of `path` below `hierarchy` with its missing parents.
// Under a v1 cpuset hierarchy, empty cpuset.cpus/mems are filled from the
// parent (the kernel refuses tasks in a cpuset without CPUs). Appends the
// directories it made to `created`, outermost first.
absl::Status MakeCgroupDir(const std::string& hierarchy, const std::string& path, bool cpuset,
                           std::vector<std::string>* created);

// On v2: enables in every ancestor of `path` (from the root down) the
// controllers crid manages that the ancestor offers (cgroup.controllers).
absl::Status EnableV2Controllers(const std::string& unified_mount, const std::string& path);

// Moves `pid` into the cgroup directory `dir`.
absl::Status AddProcess(const std::string& dir, pid_t pid);

// The cgroups of a process from its /proc/<pid>/cgroup text: every v1
// controller ("cpu", "memory"; co-mounted ones each on its own) and named
// hierarchy ("name=systemd") to its path, and "" to the v2 path.
std::map<std::string, std::string> ParseProcessCgroups(absl::string_view text);
absl::StatusOr<std::map<std::string, std::string>> ProcessCgroups(pid_t pid);

// Removes a cgroup directory; missing is success, a busy one (tasks still
// leaving) is retried for a short while.
absl::Status RemoveCgroupDir(const std::string& dir);

}  // namespace crid
