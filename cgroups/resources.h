// Resource limits of one cgroup and how they are written on cgroup v1 and v2.
// Units are the CRI's (v1-style cpu shares, quota/period in microseconds, bytes);
// the v2 conversions follow runc so a container gets the same limits from crid
// as from runc's own cgroup managers.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cgroups/stats.h"
#include "proto/cri_api.pb.h"

namespace crid {

// Zero means "leave as it is" for every field; -1 means "unlimited" where the
// comment says so.
struct CgroupResources {
  int64_t cpu_shares = 0;               // 2..262144 (v1 cpu.shares)
  int64_t cpu_quota_us = 0;             // -1: unlimited
  int64_t cpu_period_us = 0;            //
  int64_t memory_limit_bytes = 0;       // -1: unlimited
  int64_t memory_swap_limit_bytes = 0;  // memory + swap, as in CRI; -1: unlimited
  int64_t pids_limit = 0;               // -1: unlimited
  std::string cpuset_cpus;
  std::string cpuset_mems;
  std::map<std::string, uint64_t> hugepage_limits;  // page size ("2MB") -> bytes
  std::map<std::string, std::string> unified;       // v2 file -> value

  bool empty() const;
};

CgroupResources FromCriResources(const runtime::v1::LinuxContainerResources& cri);

// A pod cgroup's limits from kubelet's UpdatePodSandboxResources: the pod's
// resources (the sum of its containers') plus the pod overhead. Shares add;
// a CPU quota or memory limit adds the overhead's only when the pod has one
// (no limit stays no limit), the overhead's quota scaled to the pod's period.
// Everything else is the pod's.
CgroupResources WithPodOverhead(const CgroupResources& pod, const CgroupResources& overhead);

// runc's conversion of v1 cpu shares [2, 262144] to v2 cpu.weight [1, 10000];
// 0 stays 0 (unset).
uint64_t CpuSharesToWeight(int64_t shares);

// The cpu.max line for quota/period ("max 100000", "50000 100000"); "" when
// neither is set.
std::string CpuMaxValue(int64_t quota_us, int64_t period_us);

// The memory.swap.max value for the CRI's memory+swap total: total - memory,
// "max" for -1, "" to leave it (0). Totals below the memory limit, or a swap
// limit without a memory limit, are INVALID_ARGUMENT (naming the CRI field).
absl::StatusOr<std::string> SwapMaxV2(int64_t memory_swap_limit, int64_t memory_limit);

// Quota per second of wall time, rounded up to systemd's 10ms granularity, as
// runc passes CPUQuotaPerSecUSec: 0 when no quota is set, UINT64_MAX
// ("infinity") for -1.
uint64_t CpuQuotaPerSecUsec(int64_t quota_us, int64_t period_us);

// Writes `resources` into the cgroup `path` (a path such as /kubepods/pod1,
// the same below every hierarchy). On v1 the controller directories must
// exist; on v2 the directory must exist with the controllers enabled. The
// `unified` map is refused on v1 (INVALID_ARGUMENT).
absl::Status ApplyCgroupResources(const CgroupLayout& layout, const std::string& path,
                                  const CgroupResources& resources);

}  // namespace crid
