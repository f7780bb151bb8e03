#include "cgroups/tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/unique_fd.h"

namespace crid {

namespace {

// Controllers crid enables for its cgroups on v2.
constexpr const char* kV2Controllers[] = {"cpuset", "cpu", "io", "memory", "hugetlb", "pids"};

}  // namespace

absl::Status ValidateCgroupPath(absl::string_view path) {
  if (path.empty()) {
    return absl::OkStatus();
  }
  if (path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("cgroup path \"", path, "\" must be absolute"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("cgroup path \"", path, "\" must not contain \"", part, "\""));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> V1Hierarchies(const CgroupLayout& layout) {
  std::set<std::string> mounts;
  for (const auto& [controller, mount] : layout.controllers) {
    mounts.insert(mount);
  }
  for (const auto& [name, mount] : layout.named) {
    mounts.insert(mount);
  }
  return {mounts.begin(), mounts.end()};
}

absl::Status WriteCgroupFile(const std::string& file, absl::string_view value) {
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd.valid()) {
    return ErrnoError(errno, "open ", file);
  }
  ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n < 0) {
    // The kernel refusing a value (no such CPU, limit out of range) is the
    // caller's bad argument.
    int err = errno == ERANGE ? EINVAL : errno;
    return ErrnoError(err, "write \"", value, "\" to ", file);
  }
  if (static_cast<size_t>(n) != value.size()) {
    return absl::InternalError(absl::StrCat("short write of \"", value, "\" to ", file));
  }
  return absl::OkStatus();
}

absl::Status MakeCgroupDir(const std::string& hierarchy, const std::string& path, bool cpuset,
                           std::vector<std::string>* created) {
  CRID_RETURN_IF_ERROR(ValidateCgroupPath(path));
  std::string dir = hierarchy;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    std::string parent = dir;
    absl::StrAppend(&dir, "/", part);
    if (::mkdir(dir.c_str(), 0755) != 0) {
      if (errno != EEXIST) {
        return ErrnoError(errno, "mkdir ", dir);
      }
    } else {
      created->push_back(dir);
    }
    if (!cpuset) {
      continue;
    }
    for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
      CRID_ASSIGN_OR_RETURN(std::string mine, ReadFile(absl::StrCat(dir, "/", file)));
      if (!absl::StripAsciiWhitespace(mine).empty()) {
        continue;
      }
      CRID_ASSIGN_OR_RETURN(std::string inherited, ReadFile(absl::StrCat(parent, "/", file)));
      CRID_RETURN_IF_ERROR(
          WriteCgroupFile(absl::StrCat(dir, "/", file), absl::StripAsciiWhitespace(inherited)));
    }
  }
  return absl::OkStatus();
}

absl::Status EnableV2Controllers(const std::string& unified_mount, const std::string& path) {
  CRID_RETURN_IF_ERROR(ValidateCgroupPath(path));
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  std::string dir = unified_mount;
  // Every ancestor of the leaf delegates to its children; the leaf itself
  // holds processes and must not (the "no internal processes" rule).
  for (absl::string_view part : parts) {
    CRID_ASSIGN_OR_RETURN(std::string offered, ReadFile(dir + "/cgroup.controllers"));
    std::set<absl::string_view> available = absl::StrSplit(
        absl::StripAsciiWhitespace(offered), absl::ByAnyChar(" \n"), absl::SkipEmpty());
    std::string enable;
    for (const char* controller : kV2Controllers) {
      if (available.count(controller) != 0) {
        absl::StrAppend(&enable, enable.empty() ? "" : " ", "+", controller);
      }
    }
    if (!enable.empty()) {
      CRID_RETURN_IF_ERROR(WriteCgroupFile(dir + "/cgroup.subtree_control", enable));
    }
    absl::StrAppend(&dir, "/", part);
  }
  return absl::OkStatus();
}

absl::Status AddProcess(const std::string& dir, pid_t pid) {
  return WriteCgroupFile(dir + "/cgroup.procs", absl::StrCat(pid));
}

std::map<std::string, std::string> ParseProcessCgroups(absl::string_view text) {
  std::map<std::string, std::string> out;
  // "4:memory:/a/b", "2:cpu,cpuacct:/a", "1:name=systemd:/a", "0::/a"
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) {
      continue;
    }
    if (f[1].empty()) {
      out[""] = std::string(f[2]);
      continue;
    }
    for (absl::string_view c : absl::StrSplit(f[1], ',', absl::SkipEmpty())) {
      out[std::string(c)] = std::string(f[2]);
    }
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> ProcessCgroups(pid_t pid) {
  CRID_ASSIGN_OR_RETURN(std::string text, ReadFile(absl::StrCat("/proc/", pid, "/cgroup")));
  return ParseProcessCgroups(text);
}

absl::Status RemoveCgroupDir(const std::string& dir) {
  absl::Time deadline = absl::Now() + absl::Seconds(2);
  while (::rmdir(dir.c_str()) != 0) {
    if (errno == ENOENT) {
      return absl::OkStatus();
    }
    // EBUSY while exiting tasks are still being released from the cgroup.
    if (errno != EBUSY || absl::Now() > deadline) {
      return ErrnoError(errno, "rmdir ", dir);
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::OkStatus();
}

}  // namespace crid
