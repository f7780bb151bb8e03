// Tells whether the kernel's OOM killer struck a container: the OOM-kill
// counter of the container's memory cgroup, read when it is created and again
// when its init exits.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "cgroups/stats.h"

namespace crid::shim {

// The directory of `pid`'s memory cgroup ("" when there is none), from the
// text of /proc/<pid>/cgroup: the v1 memory hierarchy when it is mounted,
// otherwise the unified one.
std::string MemoryCgroupDir(const CgroupLayout& layout, absl::string_view proc_cgroup);

// The cgroup's OOM-kill count: `oom_kill` in memory.oom_control (v1, kernel
// 4.13 and later) or memory.events (v2). Nothing when it cannot be read.
std::optional<uint64_t> ReadOomKills(const std::string& memory_cgroup_dir);

}  // namespace crid::shim
