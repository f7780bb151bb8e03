// Reads resource usage of a cgroup from the kernel's files, on cgroup v1 (each
// controller its own hierarchy, possibly beside a v2 mount: "hybrid") and on the
// v2 unified hierarchy. Used for ContainerStats and PodSandboxStats.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

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

  // CPU time split by mode (v2 cpu.stat; v1 cpuacct.stat, in clock ticks).
  uint64_t cpu_user_ns = 0;
  uint64_t cpu_system_ns = 0;
  // CFS bandwidth control: periods elapsed and throttled, time throttled.
  uint64_t cpu_cfs_periods = 0;
  uint64_t cpu_cfs_throttled_periods = 0;
  uint64_t cpu_cfs_throttled_ns = 0;
  // The cgroup's CPU settings, as cAdvisor's container spec reads them.
  uint64_t cpu_period_us = 0;
  uint64_t cpu_quota_us = 0;  // 0: no quota
  uint64_t cpu_shares = 0;    // v2: cpu.weight converted back to shares
  // Times usage hit the limit (v1 memory.failcnt; v2 has no such counter: 0).
  uint64_t memory_failcnt = 0;
  // v1 memory.kmem.usage_in_bytes; 0 on v2, which does not account it apart.
  uint64_t memory_kernel_bytes = 0;
  uint64_t memory_mapped_file_bytes = 0;
  // Peak usage (v1 max_usage_in_bytes, v2 memory.peak; 0 where the kernel has none).
  uint64_t memory_max_usage_bytes = 0;
  // Swap in use; 0 when swap is not accounted.
  uint64_t memory_swap_bytes = 0;
  // v1: memory+swap limit (memsw); v2: memory.swap.max. 0: unlimited or not accounted.
  uint64_t memory_swap_limit_bytes = 0;
  uint64_t pids_max = 0;  // 0: unlimited

  // Block I/O done by the cgroup's tasks, per device.
  struct DeviceIo {
    uint32_t major = 0;
    uint32_t minor = 0;
    uint64_t read_bytes = 0;
    uint64_t write_bytes = 0;
    uint64_t reads = 0;
    uint64_t writes = 0;
  };
  std::vector<DeviceIo> io;
};

// What the processes of a cgroup hold, counted from /proc.
struct CgroupProcessStats {
  uint64_t processes = 0;
  uint64_t file_descriptors = 0;
  uint64_t sockets = 0;
};

// How much ReadCgroupStats reads.
enum class CgroupStatsDetail {
  // What the CRI stats RPCs return, which kubelet polls for every container:
  // CPU usage, memory usage, limit and memory.stat, and the process count.
  // Five files per cgroup; the other fields stay 0.
  kUsage,
  // Every field (the metrics RPCs: CPU modes and throttling, the CPU and
  // memory settings, failcnt, kernel and swap memory, OOM kills, pids.max,
  // block I/O).
  kFull,
};

// Reads the stats of `path` (a cgroup path such as /kubepods/pod1/crid-abc, the
// same in every hierarchy). A controller that is not mounted leaves its fields 0;
// a cgroup that does not exist is NOT_FOUND.
absl::StatusOr<CgroupStats> ReadCgroupStats(const CgroupLayout& layout, const std::string& path,
                                            CgroupStatsDetail detail = CgroupStatsDetail::kFull);

// Counts the processes in the cgroup at `path` (its cgroup.procs) and the file
// descriptors and sockets they have open (`proc_root`/PID/fd), as cAdvisor
// does. Processes that exit meanwhile are skipped. Walks every fd: for the
// metrics RPC, not for the stats RPCs kubelet calls every few seconds.
absl::StatusOr<CgroupProcessStats> ReadCgroupProcessStats(const CgroupLayout& layout,
                                                          const std::string& path,
                                                          const std::string& proc_root = "/proc");

}  // namespace crid
