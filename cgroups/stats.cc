#include "cgroups/stats.h"

#include <sys/stat.h>

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

void FinishMemory(CgroupStats& s, uint64_t inactive_file) {
  s.memory_working_set_bytes =
      s.memory_usage_bytes > inactive_file ? s.memory_usage_bytes - inactive_file : 0;
  if (s.memory_limit_bytes != 0 && s.memory_limit_bytes > s.memory_working_set_bytes) {
    s.memory_available_bytes = s.memory_limit_bytes - s.memory_working_set_bytes;
  }
}

absl::StatusOr<CgroupStats> ReadV2(const std::string& dir) {
  CgroupStats s;
  CRID_ASSIGN_OR_RETURN(auto cpu, ReadFlatKeyed(dir + "/cpu.stat"));
  s.cpu_usage_ns = Get(cpu, "usage_usec") * 1000;
  CRID_ASSIGN_OR_RETURN(s.memory_usage_bytes, ReadNumber(dir + "/memory.current"));
  CRID_ASSIGN_OR_RETURN(s.memory_limit_bytes, ReadNumber(dir + "/memory.max"));
  CRID_ASSIGN_OR_RETURN(auto mem, ReadFlatKeyed(dir + "/memory.stat"));
  s.memory_rss_bytes = Get(mem, "anon");
  s.memory_cache_bytes = Get(mem, "file");
  s.memory_page_faults = Get(mem, "pgfault");
  s.memory_major_page_faults = Get(mem, "pgmajfault");
  FinishMemory(s, Get(mem, "inactive_file"));
  CRID_ASSIGN_OR_RETURN(auto events, ReadFlatKeyed(dir + "/memory.events"));
  s.oom_kills = Get(events, "oom_kill");
  CRID_ASSIGN_OR_RETURN(s.pids_current, ReadNumber(dir + "/pids.current"));
  return s;
}

absl::StatusOr<CgroupStats> ReadV1(const CgroupLayout& layout, const std::string& path) {
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
  }
  if (std::string memory = dir("memory"); !memory.empty()) {
    CRID_ASSIGN_OR_RETURN(s.memory_usage_bytes, ReadNumber(memory + "/memory.usage_in_bytes"));
    CRID_ASSIGN_OR_RETURN(uint64_t limit, ReadNumber(memory + "/memory.limit_in_bytes"));
    s.memory_limit_bytes = limit >= kV1Unlimited ? 0 : limit;
    CRID_ASSIGN_OR_RETURN(auto mem, ReadFlatKeyed(memory + "/memory.stat"));
    s.memory_rss_bytes = Get(mem, "total_rss");
    s.memory_cache_bytes = Get(mem, "total_cache");
    s.memory_page_faults = Get(mem, "total_pgfault");
    s.memory_major_page_faults = Get(mem, "total_pgmajfault");
    FinishMemory(s, Get(mem, "total_inactive_file"));
    CRID_ASSIGN_OR_RETURN(auto oom, ReadFlatKeyed(memory + "/memory.oom_control"));
    s.oom_kills = Get(oom, "oom_kill");
  }
  if (std::string pids = dir("pids"); !pids.empty()) {
    CRID_ASSIGN_OR_RETURN(s.pids_current, ReadNumber(pids + "/pids.current"));
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat("cgroup ", path, " does not exist"));
  }
  return s;
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

absl::StatusOr<CgroupStats> ReadCgroupStats(const CgroupLayout& layout, const std::string& path) {
  if (path.empty() || path[0] != '/' || absl::StrContains(path, "..")) {
    return absl::InvalidArgumentError(absl::StrCat("bad cgroup path \"", path, "\""));
  }
  if (layout.unified) {
    std::string dir = layout.unified_mount + path;
    if (!IsDir(dir)) {
      return absl::NotFoundError(absl::StrCat("cgroup ", path, " does not exist"));
    }
    return ReadV2(dir);
  }
  return ReadV1(layout, path);
}

}  // namespace crid
