#include "tests/leak_census.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/fs.h"

namespace crid {
namespace {

// The shortest ID prefix crid writes (its logs shorten container IDs).
constexpr size_t kMinIdPrefix = 12;

// The names in `dir`, without "." and "..".
std::vector<std::string> DirEntries(const std::string& dir, bool only_dirs = false) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (struct dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") {
        continue;
      }
      if (only_dirs && e->d_type != DT_DIR) {
        continue;
      }
      names.push_back(std::move(name));
    }
    closedir(d);
  }
  return names;
}

std::string Readlink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, n) : std::string();
}

bool IsUnder(absl::string_view path, const std::string& dir) {
  if (dir.empty()) {
    return false;
  }
  return path == dir || absl::StartsWith(path, absl::StrCat(dir, "/"));
}

// Runs become hex runs of at least kMinIdPrefix digits: the IDs in `text`.
void CollectHexRuns(absl::string_view text, std::set<std::string>* out) {
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    bool hex = i < text.size() && absl::ascii_isxdigit(text[i]) && !absl::ascii_isupper(text[i]);
    if (hex) {
      continue;
    }
    if (i - start >= kMinIdPrefix) {
      out->insert(std::string(text.substr(start, i - start)));
    }
    start = i + 1;
  }
}

}  // namespace

LeakCensus::LeakCensus(LeakCensusOptions options) : options_(std::move(options)) {
  baseline_ = Take();
}

std::set<std::string> LeakCensus::OwnedIds() const {
  std::set<std::string> ids = owned_ids_;
  for (const std::string& file : options_.log_files) {
    CollectHexRuns(ReadFile(file).value_or(""), &ids);
  }
  return ids;
}

bool LeakCensus::NamesOwnedId(const std::string& name, const std::set<std::string>& ids) const {
  std::set<std::string> runs;
  CollectHexRuns(name, &runs);
  for (const std::string& run : runs) {
    for (const std::string& id : ids) {
      if (absl::StartsWith(run, id) || absl::StartsWith(id, run)) {
        return true;
      }
    }
  }
  return false;
}

std::set<std::string> LeakCensus::Take() const {
  const std::set<std::string> ids = OwnedIds();
  const auto ours = [&](absl::string_view text) {
    return (!options_.root_dir.empty() && absl::StrContains(text, options_.root_dir)) ||
           (!options_.state_dir.empty() && absl::StrContains(text, options_.state_dir));
  };
  std::set<std::string> items;

  for (const std::string& name : DirEntries(options_.netns_dir)) {
    if (absl::StartsWith(name, "crid-") && NamesOwnedId(name, ids)) {
      items.insert(absl::StrCat("network namespace ", options_.netns_dir, "/", name));
    }
  }

  for (absl::string_view line :
       absl::StrSplit(ReadFile("/proc/self/mountinfo").value_or(""), '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 5) {
      continue;
    }
    const std::string point = absl::StrReplaceAll(fields[4], {{"\\040", " "}, {"\\011", "\t"}});
    if (IsUnder(point, options_.root_dir) || IsUnder(point, options_.state_dir) ||
        (absl::StartsWith(point, options_.netns_dir + "/crid-") && NamesOwnedId(point, ids))) {
      items.insert(absl::StrCat("mount ", point));
    }
  }

  // Processes: crid and its helpers name the root or state on their command
  // line; container processes see them in their own mount namespace; anything
  // in a cgroup named after one of the test's IDs.
  const std::string self = std::to_string(getpid());
  const std::string self_mnt = Readlink("/proc/self/ns/mnt");
  for (const std::string& pid : DirEntries("/proc", /*only_dirs=*/true)) {
    if (pid.find_first_not_of("0123456789") != std::string::npos || pid == self) {
      continue;
    }
    const std::string proc = "/proc/" + pid;
    const std::string stat = ReadFile(proc + "/stat").value_or("");
    // Fields after the command name (which may hold spaces); start time is the 22nd.
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat.size()) {
      continue;
    }
    std::vector<absl::string_view> fields =
        absl::StrSplit(absl::string_view(stat).substr(paren + 2), ' ');
    if (fields.size() < 20) {
      continue;
    }
    std::string cmdline = ReadFile(proc + "/cmdline").value_or("");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    bool owned = ours(cmdline) || IsUnder(Readlink(proc + "/root"), options_.root_dir) ||
                 IsUnder(Readlink(proc + "/cwd"), options_.root_dir) ||
                 IsUnder(Readlink(proc + "/cwd"), options_.state_dir);
    if (!owned) {
      const std::string mnt = Readlink(proc + "/ns/mnt");
      owned = !mnt.empty() && mnt != self_mnt && ours(ReadFile(proc + "/mountinfo").value_or(""));
    }
    if (!owned) {
      for (absl::string_view line :
           absl::StrSplit(ReadFile(proc + "/cgroup").value_or(""), '\n', absl::SkipEmpty())) {
        owned = owned || NamesOwnedId(std::string(line.substr(line.rfind(':') + 1)), ids);
      }
    }
    if (owned) {
      items.insert(absl::StrCat("process ", pid, " (started at tick ", fields[19],
                                "): ", Readlink(proc + "/exe"), ": ", cmdline));
    }
  }

  // Cgroups named after the test's pods and containers (crid-pause-<pod>,
  // crid-shim-<pod>, <parent>/<container>), in every hierarchy.
  std::vector<std::pair<std::string, int>> stack = {{"/sys/fs/cgroup", 0}};
  while (!stack.empty()) {
    auto [dir, depth] = stack.back();
    stack.pop_back();
    for (const std::string& name : DirEntries(dir, /*only_dirs=*/true)) {
      const std::string sub = absl::StrCat(dir, "/", name);
      if (NamesOwnedId(name, ids)) {
        items.insert(absl::StrCat("cgroup ", sub));
      }
      if (depth < 6) {
        stack.emplace_back(sub, depth + 1);
      }
    }
  }

  if (!options_.bridge.empty()) {
    for (const std::string& port : DirEntries("/sys/class/net/" + options_.bridge + "/brif")) {
      items.insert(absl::StrCat("port ", port, " on bridge ", options_.bridge));
    }
  }

  if (!options_.network_name.empty()) {
    // portmap's rules carry the network's name in a comment.
    // iptables lives in the sbin directories, which test environments drop.
    if (FILE* p = popen("PATH=/usr/sbin:/sbin:$PATH iptables -w -t nat -S 2>/dev/null", "r")) {
      std::string text;
      char buf[4096];
      while (size_t n = fread(buf, 1, sizeof(buf), p)) {
        text.append(buf, n);
      }
      pclose(p);
      for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
        if (absl::StrContains(line, options_.network_name)) {
          items.insert(absl::StrCat("iptables -t nat rule ", line));
        }
      }
    }
  }

  // Per-pod and per-container records, namespaces, shim directories, CNI results.
  std::vector<std::string> record_dirs;
  if (!options_.state_dir.empty()) {
    for (const char* sub : {"/pods", "/ns", "/shims"}) {
      record_dirs.push_back(options_.state_dir + sub);
    }
  }
  if (!options_.root_dir.empty()) {
    for (const char* sub : {"/containers", "/cni/results"}) {
      record_dirs.push_back(options_.root_dir + sub);
    }
  }
  for (const std::string& dir : record_dirs) {
    for (const std::string& name : DirEntries(dir)) {
      items.insert(absl::StrCat("file ", dir, "/", name));
    }
  }
  return items;
}

std::vector<std::string> LeakCensus::Leaks(absl::Duration grace) const {
  const absl::Time deadline = absl::Now() + grace;
  while (true) {
    std::set<std::string> now = Take();
    std::vector<std::string> leaks;
    std::set_difference(now.begin(), now.end(), baseline_.begin(), baseline_.end(),
                        std::back_inserter(leaks));
    if (leaks.empty() || absl::Now() >= deadline) {
      return leaks;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

}  // namespace crid
