#include "cmd/cleanup_command.h"

#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/lock_file.h"
#include "cgroups/manager.h"
#include "cmd/binaries.h"
#include "cni/network.h"
#include "container/container.pb.h"
#include "container/manager.h"
#include "netns/namespace.h"
#include "oci/oci_runtime.h"
#include "sandbox/manager.h"
#include "sandbox/pause_process.h"
#include "store/store.h"

ABSL_FLAG(bool, dry_run, false, "only list what would be removed");

namespace crid {
namespace {

struct Leftover {
  std::string what;
  std::function<absl::Status()> remove;
};

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return names;
  }
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") {
      names.push_back(std::move(name));
    }
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

bool IsUnder(const std::string& path, const std::string& dir) {
  return !dir.empty() && (path == dir || absl::StartsWith(path, dir + "/"));
}

// Sends SIGKILL to `pid` if it still is the process that started at
// `start_time`, and waits for it to be gone.
absl::Status KillProcess(pid_t pid, uint64_t start_time) {
  if (sandbox::ProcessStartTime(pid) != start_time) {
    return absl::OkStatus();
  }
  if (kill(pid, SIGKILL) != 0 && errno != ESRCH) {
    return ErrnoError(errno, "kill ", pid);
  }
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat")).value_or("");
    size_t paren = stat.rfind(')');
    // Gone, or a zombie its parent has yet to reap: nothing runs any more.
    if (paren == std::string::npos || stat.compare(paren + 2, 1, "Z") == 0 ||
        sandbox::ProcessStartTime(pid) != start_time) {
      return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("process ", pid, " survived SIGKILL"));
}

// crid-shim processes of this state directory: `crid-shim --pod-id ID --dir
// <state>/shims/...`, with the executable named crid-shim.
void FindShims(const std::string& state_dir, std::vector<Leftover>* out) {
  const std::string shim_dirs = state_dir + "/shims/";
  for (const std::string& name : DirEntries("/proc")) {
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const pid_t pid = std::stoi(name);
    std::vector<std::string> argv = absl::StrSplit(
        ReadFile(absl::StrCat("/proc/", pid, "/cmdline")).value_or(""), '\0', absl::SkipEmpty());
    if (argv.empty() || !absl::EndsWith(argv[0], "crid-shim")) {
      continue;
    }
    for (size_t i = 1; i + 1 < argv.size(); ++i) {
      if (argv[i] == "--dir" && absl::StartsWith(argv[i + 1], shim_dirs)) {
        const uint64_t start_time = sandbox::ProcessStartTime(pid);
        out->push_back({absl::StrCat("process ", pid, " (crid-shim of ", argv[i + 1], ")"),
                        [pid, start_time] { return KillProcess(pid, start_time); }});
        break;
      }
    }
  }
}

// A mount point, as mountinfo escapes it.
std::string Unescape(absl::string_view field) {
  return absl::StrReplaceAll(field, {{"\\040", " "}, {"\\011", "\t"}, {"\\134", "\\"}});
}

absl::Status Unmount(const std::string& point) {
  // Stacked mounts come off one at a time; EINVAL: nothing mounted any more.
  for (int i = 0; i < 16; ++i) {
    if (umount2(point.c_str(), MNT_DETACH) != 0) {
      return errno == EINVAL || errno == ENOENT ? absl::OkStatus()
                                                : ErrnoError(errno, "unmount ", point);
    }
  }
  return absl::OkStatus();
}

class Cleanup {
 public:
  explicit Cleanup(const config::Config& config, CgroupDriver driver)
      : config_(config), driver_(driver) {}

  absl::Status Load(Store* store);
  std::vector<Leftover> Find(Store* store);

 private:
  void FindContainers(std::vector<Leftover>* out);
  void FindNetworks(std::vector<Leftover>* out);
  void FindMounts(std::vector<Leftover>* out);
  void FindCgroups(std::vector<Leftover>* out);
  void FindRecords(Store* store, std::vector<Leftover>* out);
  bool NamesKnownId(absl::string_view name) const;

  const config::Config& config_;
  CgroupDriver driver_;
  std::vector<sandbox::SandboxRecord> pods_;
  std::vector<std::string> container_records_;
  // IDs of pods and containers this root has or had (records, state dirs,
  // the OCI runtime's state): only what names one of them is crid's.
  std::set<std::string> ids_;
  std::unique_ptr<cni::CniManager> cni_;
  std::unique_ptr<CgroupManager> cgroups_;
};

absl::Status Cleanup::Load(Store* store) {
  if (store != nullptr) {
    CRID_ASSIGN_OR_RETURN(auto pods, store->List(sandbox::kSandboxBucket));
    for (const auto& [id, value] : pods) {
      sandbox::SandboxRecord record;
      if (record.ParseFromString(value)) {
        ids_.insert(record.id());
        pods_.push_back(std::move(record));
      }
    }
    CRID_ASSIGN_OR_RETURN(auto containers, store->List(container::kContainerBucket));
    for (const auto& [id, value] : containers) {
      ids_.insert(id);
      container_records_.push_back(id);
    }
  }
  for (const std::string& dir : {config_.state() + "/pods", config_.state() + "/ns",
                                 config_.state() + "/shims", config_.root() + "/containers"}) {
    for (const std::string& name : DirEntries(dir)) {
      ids_.insert(name);
    }
  }
  return absl::OkStatus();
}

bool Cleanup::NamesKnownId(absl::string_view name) const {
  for (const std::string& id : ids_) {
    // Shim directories and netns pins carry the first 32 characters.
    if (id.size() >= 12 && absl::StrContains(name, id.substr(0, std::min<size_t>(id.size(), 32)))) {
      return true;
    }
  }
  return false;
}

void Cleanup::FindContainers(std::vector<Leftover>* out) {
  for (const auto& [name, handler] : RuntimeHandlerBinaries(config_)) {
    OciRuntimeConfig runtime;
    runtime.name = name;
    runtime.binary = handler.binary;
    runtime.root = handler.root.empty() ? config_.state() + "/runtime/" + name : handler.root;
    runtime.systemd_cgroup = driver_ == CgroupDriver::kSystemd;
    for (const std::string& id : DirEntries(runtime.root)) {
      ids_.insert(id);
      out->push_back({absl::StrCat("container ", id, " (", name, " state in ", runtime.root, ")"),
                      [runtime, id] { return OciRuntime(runtime).Delete(id, /*force=*/true); }});
    }
  }
}

void Cleanup::FindNetworks(std::vector<Leftover>* out) {
  for (const sandbox::SandboxRecord& pod : pods_) {
    if (!pod.network_attached()) {
      continue;
    }
    if (cni_ == nullptr) {
      cni::CniOptions options;
      options.conf_dir = config_.cni().conf_dir();
      options.bin_dirs.assign(config_.cni().bin_dirs().begin(), config_.cni().bin_dirs().end());
      options.cache_dir = config_.root() + "/cni/results";
      options.plugin_timeout = absl::Seconds(config_.cni().plugin_timeout_seconds());
      absl::StatusOr<std::unique_ptr<cni::CniManager>> cni =
          cni::CniManager::Create(std::move(options));
      if (!cni.ok()) {
        std::printf("cannot tear down pod networks: %s\n",
                    std::string(cni.status().message()).c_str());
        return;
      }
      cni_ = std::move(*cni);
    }
    cni::CniManager* cni = cni_.get();
    cni::Attachment attachment = sandbox::AttachmentFor(pod);
    out->push_back(
        {absl::StrCat("network attachment of pod ", pod.id(), " (", pod.netns_path(), ")"),
         [cni, attachment] { return cni->Teardown(attachment); }});
  }
}

void Cleanup::FindMounts(std::vector<Leftover>* out) {
  struct Mount {
    std::string point;
    std::string type;
  };
  std::vector<Mount> mounts;
  std::set<std::string> seen;
  const std::string pins = config_.pod().netns_dir() + "/crid-";
  for (absl::string_view line :
       absl::StrSplit(ReadFile("/proc/self/mountinfo").value_or(""), '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    size_t dash = std::find(fields.begin(), fields.end(), "-") - fields.begin();
    if (fields.size() < 5 || dash + 1 >= fields.size()) {
      continue;
    }
    std::string point = Unescape(fields[4]);
    bool ours = IsUnder(point, config_.root()) || IsUnder(point, config_.state()) ||
                (absl::StartsWith(point, pins) && NamesKnownId(point.substr(pins.size())));
    if (ours && seen.insert(point).second) {
      mounts.push_back({point, std::string(fields[dash + 1])});
    }
  }
  // Innermost first: an overlay inside a pod directory before the directory's own.
  std::sort(mounts.begin(), mounts.end(),
            [](const Mount& a, const Mount& b) { return a.point > b.point; });
  for (const Mount& m : mounts) {
    std::string point = m.point;
    if (m.type == "nsfs") {
      out->push_back({absl::StrCat("namespace pin ", point),
                      [point] { return RemovePinnedNamespace(point); }});
    } else {
      out->push_back(
          {absl::StrCat("mount ", point, " (", m.type, ")"), [point] { return Unmount(point); }});
    }
  }
}

void Cleanup::FindCgroups(std::vector<Leftover>* out) {
  std::set<std::string> parents;
  for (const sandbox::SandboxRecord& pod : pods_) {
    if (!pod.config().linux().cgroup_parent().empty()) {
      parents.insert(pod.config().linux().cgroup_parent());
    }
  }
  if (parents.empty()) {
    return;
  }
  CgroupManagerOptions options;
  options.driver = driver_;
  absl::StatusOr<CgroupLayout> layout = CgroupLayout::Detect();
  absl::StatusOr<std::unique_ptr<CgroupManager>> cgroups =
      layout.ok() ? (options.layout = *layout, NewCgroupManager(std::move(options)))
                  : absl::StatusOr<std::unique_ptr<CgroupManager>>(layout.status());
  if (!cgroups.ok()) {
    std::printf("cannot look for cgroups (%s driver): %s\n", CgroupDriverName(driver_),
                std::string(cgroups.status().message()).c_str());
    return;
  }
  cgroups_ = std::move(*cgroups);
  CgroupManager* manager = cgroups_.get();
  for (const std::string& parent : parents) {
    absl::StatusOr<std::vector<std::string>> names = manager->ListCgroups(parent);
    if (!names.ok()) {
      continue;
    }
    for (const std::string& name : *names) {
      if (NamesKnownId(name)) {
        out->push_back({absl::StrCat("cgroup crid-", name, " under ", parent),
                        [manager, name, parent] { return manager->RemoveCgroup(name, parent); }});
      }
    }
  }
}

void Cleanup::FindRecords(Store* store, std::vector<Leftover>* out) {
  // The records first, then the files: an interrupted cleanup leaves files no
  // record owns, which crid's recovery removes at start.
  if (store != nullptr) {
    for (const sandbox::SandboxRecord& pod : pods_) {
      std::string id = pod.id();
      out->push_back({absl::StrCat("record of pod ", id, " (", pod.config().metadata().namespace_(),
                                   "/", pod.config().metadata().name(), ")"),
                      [store, id] { return store->Delete(sandbox::kSandboxBucket, id); }});
    }
    for (const std::string& id : container_records_) {
      out->push_back({absl::StrCat("record of container ", id),
                      [store, id] { return store->Delete(container::kContainerBucket, id); }});
    }
  }
  for (const std::string& dir : {config_.state() + "/pods", config_.state() + "/ns",
                                 config_.root() + "/containers", config_.root() + "/cni/results"}) {
    for (const std::string& name : DirEntries(dir)) {
      std::string path = absl::StrCat(dir, "/", name);
      out->push_back({absl::StrCat("files ", path), [path] { return RemoveTree(path); }});
    }
  }
}

std::vector<Leftover> Cleanup::Find(Store* store) {
  // In the order they can be removed: the workloads, the processes that
  // watched them, the network (CNI DEL needs the namespace), then mounts and
  // pins, cgroups once empty, the shims' sockets, and last the records and
  // files of the pods and containers.
  std::vector<Leftover> found;
  FindContainers(&found);
  FindShims(config_.state(), &found);
  for (const sandbox::FoundPause& pause : sandbox::FindPauseProcesses(config_.state())) {
    sandbox::PauseProcess process = pause.process;
    found.push_back(
        {absl::StrCat("process ", process.pid, " (crid-pause of pod ", pause.pod_id, ")"),
         [process] { return sandbox::StopPause(process); }});
  }
  FindNetworks(&found);
  FindMounts(&found);
  FindCgroups(&found);
  const std::string shim_dir = config_.state() + "/shims";
  for (const std::string& name : DirEntries(shim_dir)) {
    std::string dir = absl::StrCat(shim_dir, "/", name);
    found.push_back({access((dir + "/shim.sock").c_str(), F_OK) == 0
                         ? absl::StrCat("shim socket ", dir, "/shim.sock")
                         : absl::StrCat("shim directory ", dir),
                     [dir] { return RemoveTree(dir); }});
  }
  FindRecords(store, &found);
  return found;
}

}  // namespace

int RunCleanupCommand(const config::Config& config, CgroupDriver driver) {
  const bool dry_run = absl::GetFlag(FLAGS_dry_run);
  std::optional<LockFile> lock;
  std::unique_ptr<Store> store;
  struct stat st = {};
  if (stat(config.root().c_str(), &st) == 0) {
    // The lock file is created when missing; a dry run still needs to know
    // whether a crid is running, or what it lists is live, not left over.
    absl::StatusOr<LockFile> acquired = LockFile::Acquire(config.root() + "/crid.lock");
    if (!acquired.ok()) {
      std::fprintf(stderr,
                   "crid cleanup: root %s is in use by a running crid (%s); stop it first\n",
                   config.root().c_str(), std::string(acquired.status().message()).c_str());
      return 1;
    }
    lock.emplace(std::move(*acquired));
    const std::string db = config.root() + "/crid.db";
    if (access(db.c_str(), F_OK) == 0) {
      absl::StatusOr<std::unique_ptr<Store>> opened = Store::Open(db);
      if (!opened.ok()) {
        std::fprintf(stderr, "crid cleanup: %s\n", std::string(opened.status().message()).c_str());
        return 1;
      }
      store = std::move(*opened);
    }
  }
  Cleanup cleanup(config, driver);
  if (absl::Status loaded = cleanup.Load(store.get()); !loaded.ok()) {
    std::fprintf(stderr, "crid cleanup: reading the store: %s\n",
                 std::string(loaded.message()).c_str());
    return 1;
  }
  std::vector<Leftover> leftovers = cleanup.Find(store.get());
  int failed = 0;
  for (const Leftover& item : leftovers) {
    if (dry_run) {
      std::printf("leftover: %s\n", item.what.c_str());
      continue;
    }
    std::printf("removing: %s\n", item.what.c_str());
    std::fflush(stdout);
    if (absl::Status removed = item.remove(); !removed.ok()) {
      std::printf("  failed: %s\n", std::string(removed.message()).c_str());
      ++failed;
    }
  }
  if (leftovers.empty()) {
    std::printf("nothing left over under %s and %s\n", config.root().c_str(),
                config.state().c_str());
  } else if (dry_run) {
    std::printf("%zu leftover%s (dry run: nothing removed)\n", leftovers.size(),
                leftovers.size() == 1 ? "" : "s");
  } else {
    std::printf("%zu removed, %d failed\n", leftovers.size() - failed, failed);
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace crid
