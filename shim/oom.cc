#include "shim/oom.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/fs.h"

namespace crid::shim {

std::string MemoryCgroupDir(const CgroupLayout& layout, absl::string_view proc_cgroup) {
  auto memory = layout.controllers.find("memory");
  for (absl::string_view line : absl::StrSplit(proc_cgroup, '\n', absl::SkipEmpty())) {
    // hierarchy-id:controller-list:path
    std::vector<absl::string_view> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() != 3 || fields[2].empty() || fields[2][0] != '/') {
      continue;
    }
    if (memory != layout.controllers.end()) {
      for (absl::string_view c : absl::StrSplit(fields[1], ',')) {
        if (c == "memory") {
          return fields[2] == "/" ? memory->second : absl::StrCat(memory->second, fields[2]);
        }
      }
    } else if (fields[0] == "0" && fields[1].empty() && !layout.unified_mount.empty()) {
      return fields[2] == "/" ? layout.unified_mount
                              : absl::StrCat(layout.unified_mount, fields[2]);
    }
  }
  return "";
}

std::optional<uint64_t> ReadOomKills(const std::string& memory_cgroup_dir) {
  if (memory_cgroup_dir.empty()) {
    return std::nullopt;
  }
  absl::StatusOr<std::string> text = ReadFile(memory_cgroup_dir + "/memory.oom_control");
  if (!text.ok()) {
    text = ReadFile(memory_cgroup_dir + "/memory.events");
  }
  if (!text.ok()) {
    return std::nullopt;
  }
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, ' ');
    uint64_t value = 0;
    if (kv.first == "oom_kill" && absl::SimpleAtoi(kv.second, &value)) {
      return value;
    }
  }
  return std::nullopt;
}

}  // namespace crid::shim
