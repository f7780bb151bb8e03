#include "cgroups/stats.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/errors.h"
#include "base/fs.h"

namespace crid {

namespace {

// v1 reports "no limit" as the largest page-aligned signed value.
constexpr uint64_t kV1Unlimited = 0x7FFFFFFFFFFFF000ULL;

std::map<std::string, uint64_t> ParseFlatKeyed(absl::string_view text) {
  std::map<std::string, uint64_t> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, ' ');
    uint64_t value;
    if (absl::SimpleAtoi(kv.second, &value)) {
      out[std::string(kv.first)] = value;
    }
  }
  return out;
}

// Reads one number; "max" reads as 0 (unlimited). Missing files are 0.
absl::StatusOr<uint64_t> ReadNumber(const std::string& file) {
  absl::StatusOr<std::string> text = ReadFile(file);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return 0;
    }
    return text.status();
  }
  absl::string_view value = absl::StripAsciiWhitespace(*text);
  if (value == "max") {
    return 0;
  }
  uint64_t number;
  if (!absl::SimpleAtoi(value, &number)) {
    return absl::DataLossError(absl::StrCat(file, ": not a number: \"", value, "\""));
  }
  return number;
}

absl::StatusOr<std::map<std::string, uint64_t>> ReadFlatKeyed(const std::string& file) {
  absl::StatusOr<std::string> text = ReadFile(file);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return std::map<std::string, uint64_t>();
    }
    return text.status();
  }
  return ParseFlatKeyed(*text);
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

uint64_t Get(const std::map<std::string, uint64_t>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

// Reads a signed number such as v1's cpu.cfs_quota_us ("-1": none); negative
// values and missing files read as 0.
absl::StatusOr<uint64_t> ReadSignedNumber(const std::string& file) {
  absl::StatusOr<std::string> text = ReadFile(file);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return 0;
    }
    return text.status();
  }
  absl::string_view value = absl::StripAsciiWhitespace(*text);
  int64_t number;
  if (!absl::SimpleAtoi(value, &number)) {
    return absl::DataLossError(absl::StrCat(file, ": not a number: \"", value, "\""));
  }
  return number < 0 ? 0 : static_cast<uint64_t>(number);
}

// A v1 memory limit as cAdvisor's spec shows it: the "unlimited" value is 0.
uint64_t V1Limit(uint64_t limit) { return limit >= kV1Unlimited ? 0 : limit; }

// The entry for MAJOR:MINOR in `io`, added when new.
CgroupStats::DeviceIo& DeviceEntry(std::vector<CgroupStats::DeviceIo>& io,
                                   absl::string_view device) {
  std::pair<absl::string_view, absl::string_view> mm = absl::StrSplit(device, ':');
  uint32_t major = 0;
  uint32_t minor = 0;
  (void)absl::SimpleAtoi(mm.first, &major);
  (void)absl::SimpleAtoi(mm.second, &minor);
  for (CgroupStats::DeviceIo& d : io) {
    if (d.major == major && d.minor == minor) {
      return d;
    }
  }
  CgroupStats::DeviceIo& d = io.emplace_back();
  d.major = major;
  d.minor = minor;
  return d;
}

// v2 io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N".
std::vector<CgroupStats::DeviceIo> ParseIoStat(absl::string_view text) {
  std::vector<CgroupStats::DeviceIo> io;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.empty() || !absl::StrContains(fields[0], ':')) {
      continue;
    }
    CgroupStats::DeviceIo& d = DeviceEntry(io, fields[0]);
    for (size_t i = 1; i < fields.size(); ++i) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(fields[i], '=');
      uint64_t value;
      if (!absl::SimpleAtoi(kv.second, &value)) {
        continue;
      }
      if (kv.first == "rbytes") {
        d.read_bytes = value;
      } else if (kv.first == "wbytes") {
        d.write_bytes = value;
      } else if (kv.first == "rios") {
        d.reads = value;
      } else if (kv.first == "wios") {
        d.writes = value;
      }
    }
  }
  return io;
}

// v1 blkio files: "MAJ:MIN Read N", "MAJ:MIN Write N", ... "Total N". Adds the
// Read and Write lines to `bytes ? read/write_bytes : reads/writes`.
void ParseBlkio(absl::string_view text, bool bytes, std::vector<CgroupStats::DeviceIo>& io) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t value;
    if (fields.size() != 3 || !absl::StrContains(fields[0], ':') ||
        !absl::SimpleAtoi(fields[2], &value)) {
      continue;
    }
    if (fields[1] == "Read") {
      (bytes ? DeviceEntry(io, fields[0]).read_bytes : DeviceEntry(io, fields[0]).reads) = value;
    } else if (fields[1] == "Write") {
      (bytes ? DeviceEntry(io, fields[0]).write_bytes : DeviceEntry(io, fields[0]).writes) = value;
    }
  }
}

// v1 block I/O the way runc gathers it for cAdvisor: the first policy whose
// files have per-device lines (CFQ, then BFQ, then the throttle counters that
// every kernel keeps).
absl::StatusOr<std::vector<CgroupStats::DeviceIo>> ReadV1Blkio(const std::string& dir) {
  for (const char* prefix : {"blkio.", "blkio.bfq.", "blkio.throttle."}) {
    std::vector<CgroupStats::DeviceIo> io;
    for (bool bytes : {true, false}) {
      std::string file =
          absl::StrCat(dir, "/", prefix, bytes ? "io_service_bytes" : "io_serviced", "_recursive");
      absl::StatusOr<std::string> text = ReadFile(file);
      if (!text.ok()) {
        if (absl::IsNotFound(text.status())) {
          continue;
        }
        return text.status();
      }
      ParseBlkio(*text, bytes, io);
    }
    if (!io.empty()) {
      return io;
    }
  }
  return std::vector<CgroupStats::DeviceIo>();
}

void FinishMemory(CgroupStats& s, uint64_t inactive_file) {
  s.memory_working_set_bytes =
      s.memory_usage_bytes > inactive_file ? s.memory_usage_bytes - inactive_file : 0;
  if (s.memory_limit_bytes != 0 && s.memory_limit_bytes > s.memory_working_set_bytes) {
    s.memory_available_bytes = s.memory_limit_bytes - s.memory_working_set_bytes;
  }
}

absl::StatusOr<CgroupStats> ReadV2(const std::string& dir, CgroupStatsDetail detail) {
  CgroupStats s;
  CRID_ASSIGN_OR_RETURN(auto cpu, ReadFlatKeyed(dir + "/cpu.stat"));
  s.cpu_usage_ns = Get(cpu, "usage_usec") * 1000;
  CRID_ASSIGN_OR_RETURN(s.memory_usage_bytes, ReadNumber(dir + "/memory.current"));
  CRID_ASSIGN_OR_RETURN(s.memory_limit_bytes, ReadNumber(dir + "/memory.max"));
  CRID_ASSIGN_OR_RETURN(auto mem, ReadFlatKeyed(dir + "/memory.stat"));
  s.memory_rss_bytes = Get(mem, "anon");
  s.memory_cache_bytes = Get(mem, "file");
  s.memory_mapped_file_bytes = Get(mem, "file_mapped");
  s.memory_page_faults = Get(mem, "pgfault");
  s.memory_major_page_faults = Get(mem, "pgmajfault");
  FinishMemory(s, Get(mem, "inactive_file"));
  CRID_ASSIGN_OR_RETURN(s.pids_current, ReadNumber(dir + "/pids.current"));
  if (detail == CgroupStatsDetail::kUsage) {
    return s;
  }
  s.cpu_user_ns = Get(cpu, "user_usec") * 1000;
  s.cpu_system_ns = Get(cpu, "system_usec") * 1000;
  s.cpu_cfs_periods = Get(cpu, "nr_periods");
  s.cpu_cfs_throttled_periods = Get(cpu, "nr_throttled");
  s.cpu_cfs_throttled_ns = Get(cpu, "throttled_usec") * 1000;
  // cpu.max: "QUOTA PERIOD", QUOTA "max" when there is none.
  if (absl::StatusOr<std::string> max = ReadFile(dir + "/cpu.max"); max.ok()) {
    std::pair<absl::string_view, absl::string_view> qp =
        absl::StrSplit(absl::StripAsciiWhitespace(*max), ' ');
    (void)absl::SimpleAtoi(qp.first, &s.cpu_quota_us);  // "max" leaves 0
    (void)absl::SimpleAtoi(qp.second, &s.cpu_period_us);
  } else if (!absl::IsNotFound(max.status())) {
    return max.status();
  }
  CRID_ASSIGN_OR_RETURN(uint64_t weight, ReadNumber(dir + "/cpu.weight"));
  if (weight >= 1 && weight <= 10000) {
    // cAdvisor's convertCPUWeightToCPULimit, the inverse of runc's shares -> weight.
    s.cpu_shares = 2 + ((weight - 1) * 262142) / 9999;
  }
  // memory.peak exists since Linux 5.19; before, cAdvisor reports 0 as well.
  CRID_ASSIGN_OR_RETURN(s.memory_max_usage_bytes, ReadNumber(dir + "/memory.peak"));
  // Without swap accounting these files are absent and read as 0, as in cAdvisor.
  CRID_ASSIGN_OR_RETURN(s.memory_swap_bytes, ReadNumber(dir + "/memory.swap.current"));
  CRID_ASSIGN_OR_RETURN(s.memory_swap_limit_bytes, ReadNumber(dir + "/memory.swap.max"));
  CRID_ASSIGN_OR_RETURN(auto events, ReadFlatKeyed(dir + "/memory.events"));
  s.oom_kills = Get(events, "oom_kill");
  // v2 has no failcnt and no separate kernel usage: runc leaves both 0 for
  // cAdvisor, and so do we.
  CRID_ASSIGN_OR_RETURN(s.pids_max, ReadNumber(dir + "/pids.max"));
  if (absl::StatusOr<std::string> io = ReadFile(dir + "/io.stat"); io.ok()) {
    s.io = ParseIoStat(*io);
  } else if (!absl::IsNotFound(io.status())) {
    return io.status();
  }
  return s;
}

absl::StatusOr<CgroupStats> ReadV1(const CgroupLayout& layout, const std::string& path,
                                   CgroupStatsDetail detail) {
  const bool full = detail == CgroupStatsDetail::kFull;
  CgroupStats s;
  bool found = false;
  auto dir = [&](const char* controller) -> std::string {
    auto it = layout.controllers.find(controller);
    if (it == layout.controllers.end()) {
      return "";
    }
    std::string d = it->second + path;
    if (!IsDir(d)) {
      return "";
    }
    found = true;
    return d;
  };
  if (std::string cpuacct = dir("cpuacct"); !cpuacct.empty()) {
    CRID_ASSIGN_OR_RETURN(s.cpu_usage_ns, ReadNumber(cpuacct + "/cpuacct.usage"));
    if (full) {
      // "user TICKS\nsystem TICKS", in USER_HZ.
      CRID_ASSIGN_OR_RETURN(auto modes, ReadFlatKeyed(cpuacct + "/cpuacct.stat"));
      static const uint64_t kTicksPerSecond = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
      if (kTicksPerSecond > 0) {
        s.cpu_user_ns = Get(modes, "user") * 1'000'000'000 / kTicksPerSecond;
        s.cpu_system_ns = Get(modes, "system") * 1'000'000'000 / kTicksPerSecond;
      }
    }
  }
  if (std::string cpu = full ? dir("cpu") : ""; !cpu.empty()) {
    CRID_ASSIGN_OR_RETURN(auto stat, ReadFlatKeyed(cpu + "/cpu.stat"));
    s.cpu_cfs_periods = Get(stat, "nr_periods");
    s.cpu_cfs_throttled_periods = Get(stat, "nr_throttled");
    s.cpu_cfs_throttled_ns = Get(stat, "throttled_time");
    CRID_ASSIGN_OR_RETURN(s.cpu_period_us, ReadNumber(cpu + "/cpu.cfs_period_us"));
    CRID_ASSIGN_OR_RETURN(s.cpu_quota_us, ReadSignedNumber(cpu + "/cpu.cfs_quota_us"));
    CRID_ASSIGN_OR_RETURN(s.cpu_shares, ReadNumber(cpu + "/cpu.shares"));
  }
  if (std::string memory = dir("memory"); !memory.empty()) {
    CRID_ASSIGN_OR_RETURN(s.memory_usage_bytes, ReadNumber(memory + "/memory.usage_in_bytes"));
    CRID_ASSIGN_OR_RETURN(uint64_t limit, ReadNumber(memory + "/memory.limit_in_bytes"));
    s.memory_limit_bytes = V1Limit(limit);
    if (full) {
      CRID_ASSIGN_OR_RETURN(s.memory_max_usage_bytes,
                            ReadNumber(memory + "/memory.max_usage_in_bytes"));
      CRID_ASSIGN_OR_RETURN(s.memory_failcnt, ReadNumber(memory + "/memory.failcnt"));
      // Kernels built without kmem accounting lack the file: 0, as cAdvisor shows.
      CRID_ASSIGN_OR_RETURN(s.memory_kernel_bytes,
                            ReadNumber(memory + "/memory.kmem.usage_in_bytes"));
      // Absent without swap accounting (swapaccount=0): 0, as cAdvisor shows.
      CRID_ASSIGN_OR_RETURN(uint64_t swap_limit,
                            ReadNumber(memory + "/memory.memsw.limit_in_bytes"));
      s.memory_swap_limit_bytes = V1Limit(swap_limit);
    }
    CRID_ASSIGN_OR_RETURN(auto mem, ReadFlatKeyed(memory + "/memory.stat"));
    s.memory_rss_bytes = Get(mem, "total_rss");
    s.memory_cache_bytes = Get(mem, "total_cache");
    s.memory_mapped_file_bytes = Get(mem, "total_mapped_file");
    // Listed only with swap accounting on; otherwise 0.
    s.memory_swap_bytes = Get(mem, "total_swap");
    s.memory_page_faults = Get(mem, "total_pgfault");
    s.memory_major_page_faults = Get(mem, "total_pgmajfault");
    FinishMemory(s, Get(mem, "total_inactive_file"));
    if (full) {
      CRID_ASSIGN_OR_RETURN(auto oom, ReadFlatKeyed(memory + "/memory.oom_control"));
      s.oom_kills = Get(oom, "oom_kill");
    }
  }
  if (std::string pids = dir("pids"); !pids.empty()) {
    CRID_ASSIGN_OR_RETURN(s.pids_current, ReadNumber(pids + "/pids.current"));
    if (full) {
      CRID_ASSIGN_OR_RETURN(s.pids_max, ReadNumber(pids + "/pids.max"));
    }
  }
  if (std::string blkio = full ? dir("blkio") : ""; !blkio.empty()) {
    CRID_ASSIGN_OR_RETURN(s.io, ReadV1Blkio(blkio));
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat("cgroup ", path, " does not exist"));
  }
  return s;
}

// The directory whose cgroup.procs lists the cgroup's processes; "" if none.
std::string ProcsDir(const CgroupLayout& layout, const std::string& path) {
  if (layout.unified) {
    return layout.unified_mount + path;
  }
  for (const char* controller : {"pids", "memory", "cpu", "cpuacct"}) {
    auto it = layout.controllers.find(controller);
    if (it != layout.controllers.end() && IsDir(it->second + path)) {
      return it->second + path;
    }
  }
  return "";
}

}  // namespace

CgroupLayout CgroupLayout::FromMountinfo(absl::string_view mountinfo) {
  CgroupLayout layout;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS"
    std::pair<absl::string_view, absl::string_view> halves = absl::StrSplit(line, " - ");
    std::vector<absl::string_view> left = absl::StrSplit(halves.first, ' ');
    std::vector<absl::string_view> right = absl::StrSplit(halves.second, ' ');
    if (left.size() < 5 || right.size() < 3) {
      continue;
    }
    std::string mount_point(left[4]);
    if (right[0] == "cgroup2") {
      layout.unified_mount = mount_point;
    } else if (right[0] == "cgroup") {
      for (absl::string_view opt : absl::StrSplit(right[2], ',')) {
        if (absl::StartsWith(opt, "name=")) {
          layout.named[std::string(opt)] = mount_point;
        }
        if (opt == "cpu" || opt == "cpuacct" || opt == "memory" || opt == "pids" ||
            opt == "cpuset" || opt == "blkio" || opt == "hugetlb" || opt == "devices" ||
            opt == "freezer") {
          layout.controllers[std::string(opt)] = mount_point;
        }
      }
    }
  }
  // Pure v2 when no v1 controller hierarchy is mounted.
  layout.unified = layout.controllers.empty() && !layout.unified_mount.empty();
  return layout;
}

absl::StatusOr<CgroupLayout> CgroupLayout::Detect() {
  CRID_ASSIGN_OR_RETURN(std::string mountinfo, ReadFile("/proc/self/mountinfo"));
  CgroupLayout layout = FromMountinfo(mountinfo);
  if (!layout.unified && layout.controllers.empty()) {
    return absl::FailedPreconditionError("no cgroup hierarchy is mounted");
  }
  return layout;
}

absl::StatusOr<CgroupStats> ReadCgroupStats(const CgroupLayout& layout, const std::string& path,
                                            CgroupStatsDetail detail) {
  if (path.empty() || path[0] != '/' || absl::StrContains(path, "..")) {
    return absl::InvalidArgumentError(absl::StrCat("bad cgroup path \"", path, "\""));
  }
  if (layout.unified) {
    std::string dir = layout.unified_mount + path;
    if (!IsDir(dir)) {
      return absl::NotFoundError(absl::StrCat("cgroup ", path, " does not exist"));
    }
    return ReadV2(dir, detail);
  }
  return ReadV1(layout, path, detail);
}

absl::StatusOr<CgroupProcessStats> ReadCgroupProcessStats(const CgroupLayout& layout,
                                                          const std::string& path,
                                                          const std::string& proc_root) {
  if (path.empty() || path[0] != '/' || absl::StrContains(path, "..")) {
    return absl::InvalidArgumentError(absl::StrCat("bad cgroup path \"", path, "\""));
  }
  std::string dir = ProcsDir(layout, path);
  if (dir.empty() || !IsDir(dir)) {
    return absl::NotFoundError(absl::StrCat("cgroup ", path, " does not exist"));
  }
  CRID_ASSIGN_OR_RETURN(std::string procs, ReadFile(dir + "/cgroup.procs"));
  CgroupProcessStats stats;
  for (absl::string_view line : absl::StrSplit(procs, '\n', absl::SkipEmpty())) {
    uint64_t pid;
    if (!absl::SimpleAtoi(line, &pid)) {
      continue;
    }
    ++stats.processes;
    std::string fd_dir = absl::StrCat(proc_root, "/", pid, "/fd");
    std::unique_ptr<DIR, int (*)(DIR*)> fds(::opendir(fd_dir.c_str()), &::closedir);
    if (fds == nullptr) {
      continue;  // exited meanwhile
    }
    while (const struct dirent* entry = ::readdir(fds.get())) {
      if (entry->d_name[0] == '.') {
        continue;
      }
      ++stats.file_descriptors;
      char target[64];
      std::string link = absl::StrCat(fd_dir, "/", entry->d_name);
      ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
      if (n > 0 && absl::StartsWith(absl::string_view(target, n), "socket:")) {
        ++stats.sockets;
      }
    }
  }
  return stats;
}

}  // namespace crid
