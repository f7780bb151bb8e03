// Reads resource usage of a cgroup from the kernel's files, on cgroup v1 (each
// controller its own hierarchy, possibly beside a v2 mount: "hybrid") and on the
// v2 unified hierarchy. Used for ContainerStats and PodSandboxStats.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crid {

// Where the hierarchies are mounted.
struct CgroupLayout {
  // True when the controllers live in the unified (v2) hierarchy.
  bool unified = false;
  std::string unified_mount;                       // v2 mount point ("" if none)
  std::map<std::string, std::string> controllers;  // v1: controller -> mount point
  // v1 hierarchies without controllers, by name ("name=systemd" -> mount
  // point). The cgroupfs driver places processes there too, as runc does.
  std::map<std::string, std::string> named;

  // Parses /proc/self/mountinfo text.
  static CgroupLayout FromMountinfo(absl::string_view mountinfo);
  // The layout of this host.
  static absl::StatusOr<CgroupLayout> Detect();
};

struct CgroupStats {
  uint64_t cpu_usage_ns = 0;
  uint64_t memory_usage_bytes = 0;
  // Usage minus inactive file cache: what kubelet evicts on.
  uint64_t memory_working_set_bytes = 0;
  uint64_t memory_rss_bytes = 0;
  // Page cache charged to the cgroup (v2 "file", v1 "total_cache").
  uint64_t memory_cache_bytes = 0;
  uint64_t memory_page_faults = 0;
  uint64_t memory_major_page_faults = 0;
  uint64_t memory_limit_bytes = 0;      // 0: unlimited
  uint64_t memory_available_bytes = 0;  // limit - working set; 0 when unlimited
  uint64_t oom_kills = 0;
  uint64_t pids_current = 0;
};

// Reads the stats of `path` (a cgroup path such as /kubepods/pod1/crid-abc, the
// same in every hierarchy). A controller that is not mounted leaves its fields 0;
// a cgroup that does not exist is NOT_FOUND.
absl::StatusOr<CgroupStats> ReadCgroupStats(const CgroupLayout& layout, const std::string& path);

}  // namespace crid
