#include "cgroups/resources.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/errors.h"
#include "base/fs.h"
#include "cgroups/tree.h"

namespace crid {

namespace {

constexpr int64_t kDefaultPeriodUs = 100000;

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string LimitValue(int64_t value, const char* unlimited) {
  return value < 0 ? std::string(unlimited) : absl::StrCat(value);
}

absl::StatusOr<std::string> ControllerDir(const CgroupLayout& layout, const char* controller,
                                          const std::string& path) {
  auto it = layout.controllers.find(controller);
  if (it == layout.controllers.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the cgroup v1 controller \"", controller, "\" is not mounted"));
  }
  std::string dir = it->second + path;
  if (!FileExists(dir)) {
    return absl::NotFoundError(absl::StrCat("cgroup ", dir, " does not exist"));
  }
  return dir;
}

absl::Status ApplyV1Memory(const std::string& dir, const CgroupResources& r) {
  std::string limit_file = dir + "/memory.limit_in_bytes";
  std::string swap_file = dir + "/memory.memsw.limit_in_bytes";
  if (r.memory_swap_limit_bytes == 0) {
    return r.memory_limit_bytes == 0
               ? absl::OkStatus()
               : WriteCgroupFile(limit_file, LimitValue(r.memory_limit_bytes, "-1"));
  }
  if (!FileExists(swap_file)) {
    return absl::FailedPreconditionError(
        "memory_swap_limit_in_bytes: this kernel does not account swap "
        "(no memory.memsw.limit_in_bytes)");
  }
  if (r.memory_limit_bytes > 0 && r.memory_swap_limit_bytes > 0 &&
      r.memory_swap_limit_bytes < r.memory_limit_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory_swap_limit_in_bytes (", r.memory_swap_limit_bytes,
                     ") must not be below memory_limit_in_bytes (", r.memory_limit_bytes, ")"));
  }
  // memsw must never be below the memory limit, so the order depends on the
  // direction of the change.
  bool raising = r.memory_limit_bytes < 0;
  if (r.memory_limit_bytes > 0) {
    CRID_ASSIGN_OR_RETURN(std::string current, ReadFile(limit_file));
    uint64_t now = 0;
    raising = !absl::SimpleAtoi(absl::StripAsciiWhitespace(current), &now) ||
              static_cast<uint64_t>(r.memory_limit_bytes) > now;
  }
  std::string swap = LimitValue(r.memory_swap_limit_bytes, "-1");
  if (raising) {
    CRID_RETURN_IF_ERROR(WriteCgroupFile(swap_file, swap));
  }
  if (r.memory_limit_bytes != 0) {
    CRID_RETURN_IF_ERROR(WriteCgroupFile(limit_file, LimitValue(r.memory_limit_bytes, "-1")));
  }
  if (!raising) {
    CRID_RETURN_IF_ERROR(WriteCgroupFile(swap_file, swap));
  }
  return absl::OkStatus();
}

absl::Status ApplyV1(const CgroupLayout& layout, const std::string& path,
                     const CgroupResources& r) {
  if (!r.unified.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("linux.resources.unified: cgroup v2 settings (\"", r.unified.begin()->first,
                     "\") cannot be applied on this host's cgroup v1 hierarchies"));
  }
  if (r.cpu_shares != 0 || r.cpu_quota_us != 0 || r.cpu_period_us != 0) {
    CRID_ASSIGN_OR_RETURN(std::string dir, ControllerDir(layout, "cpu", path));
    if (r.cpu_shares != 0) {
      CRID_RETURN_IF_ERROR(WriteCgroupFile(dir + "/cpu.shares", absl::StrCat(r.cpu_shares)));
    }
    if (r.cpu_period_us != 0) {
      absl::Status st = WriteCgroupFile(dir + "/cpu.cfs_period_us", absl::StrCat(r.cpu_period_us));
      // A shorter period can conflict with the current quota (EINVAL): set
      // the quota first, then the period again.
      if (!st.ok() && r.cpu_quota_us != 0) {
        CRID_RETURN_IF_ERROR(
            WriteCgroupFile(dir + "/cpu.cfs_quota_us", LimitValue(r.cpu_quota_us, "-1")));
        st = WriteCgroupFile(dir + "/cpu.cfs_period_us", absl::StrCat(r.cpu_period_us));
      }
      CRID_RETURN_IF_ERROR(st);
    }
    if (r.cpu_quota_us != 0) {
      CRID_RETURN_IF_ERROR(
          WriteCgroupFile(dir + "/cpu.cfs_quota_us", LimitValue(r.cpu_quota_us, "-1")));
    }
  }
  if (!r.cpuset_cpus.empty() || !r.cpuset_mems.empty()) {
    CRID_ASSIGN_OR_RETURN(std::string dir, ControllerDir(layout, "cpuset", path));
    if (!r.cpuset_cpus.empty()) {
      CRID_RETURN_IF_ERROR(WriteCgroupFile(dir + "/cpuset.cpus", r.cpuset_cpus));
    }
    if (!r.cpuset_mems.empty()) {
      CRID_RETURN_IF_ERROR(WriteCgroupFile(dir + "/cpuset.mems", r.cpuset_mems));
    }
  }
  if (r.memory_limit_bytes != 0 || r.memory_swap_limit_bytes != 0) {
    CRID_ASSIGN_OR_RETURN(std::string dir, ControllerDir(layout, "memory", path));
    CRID_RETURN_IF_ERROR(ApplyV1Memory(dir, r));
  }
  if (r.pids_limit != 0) {
    CRID_ASSIGN_OR_RETURN(std::string dir, ControllerDir(layout, "pids", path));
    CRID_RETURN_IF_ERROR(WriteCgroupFile(dir + "/pids.max", LimitValue(r.pids_limit, "max")));
  }
  if (!r.hugepage_limits.empty()) {
    if (layout.controllers.count("hugetlb") == 0) {
      // kubelet lists every page size (limit 0 for the unrequested ones); only
      // a real limit needs the controller.
      for (const auto& [size, limit] : r.hugepage_limits) {
        if (limit != 0) {
          return absl::FailedPreconditionError(
              absl::StrCat("hugepage_limits: a ", size,
                           " limit needs the hugetlb controller, which is not mounted on v1"));
        }
      }
    } else {
      CRID_ASSIGN_OR_RETURN(std::string dir, ControllerDir(layout, "hugetlb", path));
      for (const auto& [size, limit] : r.hugepage_limits) {
        CRID_RETURN_IF_ERROR(WriteCgroupFile(
            absl::StrCat(dir, "/hugetlb.", size, ".limit_in_bytes"), absl::StrCat(limit)));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateUnified(const std::map<std::string, std::string>& unified) {
  for (const auto& [key, value] : unified) {
    if (key.empty() || absl::StrContains(key, "/") || key[0] == '.' ||
        !absl::StrContains(key, ".")) {
      return absl::InvalidArgumentError(
          absl::StrCat("linux.resources.unified: \"", key, "\" is not a cgroup file name"));
    }
    if (absl::StartsWith(key, "cgroup.")) {
      // The tree's own structure belongs to the runtime, not to the pod spec.
      return absl::InvalidArgumentError(
          absl::StrCat("linux.resources.unified: \"", key, "\" cannot be set"));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyV2(const std::string& dir, const CgroupResources& r) {
  CRID_RETURN_IF_ERROR(ValidateUnified(r.unified));
  CRID_ASSIGN_OR_RETURN(std::string swap,
                        SwapMaxV2(r.memory_swap_limit_bytes, r.memory_limit_bytes));
  if (!FileExists(dir)) {
    return absl::NotFoundError(absl::StrCat("cgroup ", dir, " does not exist"));
  }
  if (uint64_t weight = CpuSharesToWeight(r.cpu_shares); weight != 0) {
    CRID_RETURN_IF_ERROR(WriteCgroupFile(dir + "/cpu.weight", absl::StrCat(weight)));
  }
  if (std::string max = CpuMaxValue(r.cpu_quota_us, r.cpu_period_us); !max.empty()) {
    CRID_RETURN_IF_ERROR(WriteCgroupFile(dir + "/cpu.max", max));
  }
  if (!r.cpuset_cpus.empty()) {
    CRID_RETURN_IF_ERROR(WriteCgroupFile(dir + "/cpuset.cpus", r.cpuset_cpus));
  }
  if (!r.cpuset_mems.empty()) {
    CRID_RETURN_IF_ERROR(WriteCgroupFile(dir + "/cpuset.mems", r.cpuset_mems));
  }
  if (!swap.empty()) {
    // A host without swap has no memory.swap.max; "no swap" then holds anyway.
    if (FileExists(dir + "/memory.swap.max") || swap != "0") {
      CRID_RETURN_IF_ERROR(WriteCgroupFile(dir + "/memory.swap.max", swap));
    }
  }
  if (r.memory_limit_bytes != 0) {
    CRID_RETURN_IF_ERROR(
        WriteCgroupFile(dir + "/memory.max", LimitValue(r.memory_limit_bytes, "max")));
  }
  if (r.pids_limit != 0) {
    CRID_RETURN_IF_ERROR(WriteCgroupFile(dir + "/pids.max", LimitValue(r.pids_limit, "max")));
  }
  for (const auto& [size, limit] : r.hugepage_limits) {
    std::string file = absl::StrCat(dir, "/hugetlb.", size, ".max");
    if (!FileExists(file) && limit == 0) {
      continue;  // no hugetlb controller or no such page size: nothing to forbid
    }
    CRID_RETURN_IF_ERROR(WriteCgroupFile(file, absl::StrCat(limit)));
  }
  for (const auto& [key, value] : r.unified) {
    absl::Status st = WriteCgroupFile(absl::StrCat(dir, "/", key), value);
    if (absl::IsNotFound(st)) {
      return absl::InvalidArgumentError(absl::StrCat("linux.resources.unified: \"", key,
                                                     "\": no such file in ", dir,
                                                     " (is its controller enabled?)"));
    }
    CRID_RETURN_IF_ERROR(st);
  }
  return absl::OkStatus();
}

}  // namespace

bool CgroupResources::empty() const {
  return cpu_shares == 0 && cpu_quota_us == 0 && cpu_period_us == 0 && memory_limit_bytes == 0 &&
         memory_swap_limit_bytes == 0 && pids_limit == 0 && cpuset_cpus.empty() &&
         cpuset_mems.empty() && hugepage_limits.empty() && unified.empty();
}

CgroupResources FromCriResources(const runtime::v1::LinuxContainerResources& cri) {
  CgroupResources r;
  r.cpu_shares = cri.cpu_shares();
  r.cpu_quota_us = cri.cpu_quota();
  r.cpu_period_us = cri.cpu_period();
  r.memory_limit_bytes = cri.memory_limit_in_bytes();
  r.memory_swap_limit_bytes = cri.memory_swap_limit_in_bytes();
  r.cpuset_cpus = cri.cpuset_cpus();
  r.cpuset_mems = cri.cpuset_mems();
  for (const auto& h : cri.hugepage_limits()) {
    r.hugepage_limits[h.page_size()] = h.limit();
  }
  r.unified.insert(cri.unified().begin(), cri.unified().end());
  return r;
}

CgroupResources WithPodOverhead(const CgroupResources& pod, const CgroupResources& overhead) {
  CgroupResources total = pod;
  if (overhead.cpu_shares > 0) {
    total.cpu_shares += overhead.cpu_shares;
  }
  if (pod.cpu_quota_us > 0 && overhead.cpu_quota_us > 0) {
    const int64_t period = pod.cpu_period_us > 0 ? pod.cpu_period_us : kDefaultPeriodUs;
    const int64_t overhead_period =
        overhead.cpu_period_us > 0 ? overhead.cpu_period_us : kDefaultPeriodUs;
    // Rounded up: the pod gets at least the overhead's share of a CPU.
    total.cpu_quota_us += (overhead.cpu_quota_us * period + overhead_period - 1) / overhead_period;
  }
  if (pod.memory_limit_bytes > 0 && overhead.memory_limit_bytes > 0) {
    total.memory_limit_bytes += overhead.memory_limit_bytes;
  }
  return total;
}

uint64_t CpuSharesToWeight(int64_t shares) {
  if (shares == 0) {
    return 0;
  }
  shares = std::clamp<int64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

std::string CpuMaxValue(int64_t quota_us, int64_t period_us) {
  if (quota_us == 0 && period_us == 0) {
    return "";
  }
  int64_t period = period_us > 0 ? period_us : kDefaultPeriodUs;
  if (quota_us <= 0) {
    return absl::StrCat("max ", period);
  }
  return absl::StrCat(quota_us, " ", period);
}

absl::StatusOr<std::string> SwapMaxV2(int64_t memory_swap_limit, int64_t memory_limit) {
  if (memory_swap_limit == 0) {
    return std::string();
  }
  if (memory_swap_limit < 0) {
    return std::string("max");
  }
  if (memory_limit <= 0) {
    return absl::InvalidArgumentError(
        "memory_swap_limit_in_bytes: a swap limit needs memory_limit_in_bytes");
  }
  if (memory_swap_limit < memory_limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory_swap_limit_in_bytes (", memory_swap_limit,
                     ") must not be below memory_limit_in_bytes (", memory_limit, ")"));
  }
  return absl::StrCat(memory_swap_limit - memory_limit);
}

uint64_t CpuQuotaPerSecUsec(int64_t quota_us, int64_t period_us) {
  if (quota_us == 0) {
    return 0;
  }
  if (quota_us < 0) {
    return std::numeric_limits<uint64_t>::max();
  }
  uint64_t period = period_us > 0 ? period_us : kDefaultPeriodUs;
  uint64_t per_sec = static_cast<uint64_t>(quota_us) * 1000000 / period;
  if (per_sec % 10000 != 0) {
    per_sec = (per_sec / 10000 + 1) * 10000;
  }
  return per_sec;
}

absl::Status ApplyCgroupResources(const CgroupLayout& layout, const std::string& path,
                                  const CgroupResources& resources) {
  CRID_RETURN_IF_ERROR(ValidateCgroupPath(path));
  if (layout.unified) {
    return ApplyV2(layout.unified_mount + path, resources);
  }
  return ApplyV1(layout, path, resources);
}

}  // namespace crid
