#include "cgroups/manager.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/fs.h"
#include "cgroups/slice.h"
#include "cgroups/systemd_bus.h"
#include "cgroups/tree.h"

namespace crid {

namespace {

constexpr uint64_t kInfinity = std::numeric_limits<uint64_t>::max();

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

absl::Status ValidateName(const std::string& name, absl::string_view field) {
  if (name.empty() || absl::StrContains(name, "/") || name == "." || name == "..") {
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", name, "\" cannot name a cgroup"));
  }
  return absl::OkStatus();
}

// Shared by both drivers: limits written into files, and usage with a
// one-sample-per-cgroup cache for nano-cores.
class CgroupManagerBase : public CgroupManager {
 public:
  explicit CgroupManagerBase(CgroupLayout layout) : layout_(std::move(layout)) {}

  const CgroupLayout& layout() const override { return layout_; }

  using CgroupManager::ApplyResources;
  absl::Status ApplyResources(const std::string& cgroup_path,
                              const CgroupResources& resources) override {
    return ApplyCgroupResources(layout_, cgroup_path, resources);
  }

  absl::StatusOr<CgroupUsage> Stats(const std::string& cgroup_path) override {
    CgroupUsage usage;
    CRID_ASSIGN_OR_RETURN(usage.stats,
                          ReadCgroupStats(layout_, cgroup_path, CgroupStatsDetail::kUsage));
    usage.timestamp = absl::Now();
    absl::MutexLock lock(&mu_);
    auto it = samples_.find(cgroup_path);
    if (it == samples_.end()) {
      Prune(usage.timestamp);
      samples_[cgroup_path] = Sample{usage.timestamp, usage.stats.cpu_usage_ns, false, 0};
      return usage;
    }
    Sample& prev = it->second;
    absl::Duration interval = usage.timestamp - prev.time;
    if (interval < kMinInterval || usage.stats.cpu_usage_ns < prev.cpu_ns) {
      // Two readers right after each other (or a recreated cgroup): keep the
      // last full interval's rate instead of dividing by almost nothing.
      usage.has_nano_cores = prev.has_rate;
      usage.usage_nano_cores = prev.rate;
      if (usage.stats.cpu_usage_ns < prev.cpu_ns) {
        prev = Sample{usage.timestamp, usage.stats.cpu_usage_ns, false, 0};
      }
      return usage;
    }
    double ns = absl::ToDoubleNanoseconds(interval);
    double used = static_cast<double>(usage.stats.cpu_usage_ns - prev.cpu_ns);
    usage.has_nano_cores = true;
    usage.usage_nano_cores = static_cast<uint64_t>(used / ns * 1e9);
    prev = Sample{usage.timestamp, usage.stats.cpu_usage_ns, true, usage.usage_nano_cores};
    return usage;
  }

  absl::StatusOr<std::vector<std::string>> ListCgroups(const std::string& parent) const override {
    CRID_ASSIGN_OR_RETURN(std::string dir, PodCgroupDir(parent));
    std::string path = ListingRoot() + (dir == "/" ? "" : dir);
    std::vector<std::string> names;
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) {
      if (errno == ENOENT) {
        return names;
      }
      return ErrnoError(errno, "opendir ", path);
    }
    const absl::string_view suffix = driver() == CgroupDriver::kSystemd ? ".scope" : "";
    while (struct dirent* e = ::readdir(d)) {
      absl::string_view entry = e->d_name;
      if (e->d_type == DT_DIR && absl::ConsumePrefix(&entry, "crid-") &&
          absl::ConsumeSuffix(&entry, suffix) && !entry.empty()) {
        names.emplace_back(entry);
      }
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }

  void ForgetStats(const std::string& cgroup_path) override {
    absl::MutexLock lock(&mu_);
    samples_.erase(cgroup_path);
  }

 protected:
  // The hierarchy that holds every cgroup crid or runc makes: v2, else
  // systemd's named hierarchy, else the memory controller's.
  std::string ListingRoot() const {
    if (layout_.unified) {
      return layout_.unified_mount;
    }
    for (const auto* map : {&layout_.named, &layout_.controllers}) {
      for (const char* key : {"name=systemd", "memory", "pids", "cpu"}) {
        if (auto it = map->find(key); it != map->end()) {
          return it->second;
        }
      }
    }
    return layout_.unified_mount;
  }

  const CgroupLayout layout_;

 private:
  static constexpr absl::Duration kMinInterval = absl::Milliseconds(100);

  struct Sample {
    absl::Time time;
    uint64_t cpu_ns = 0;
    bool has_rate = false;
    uint64_t rate = 0;
  };

  // Samples of cgroups nobody asked about for a while (removed without
  // ForgetStats) are dropped.
  void Prune(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (samples_.size() < 1024) {
      return;
    }
    for (auto it = samples_.begin(); it != samples_.end();) {
      it = now - it->second.time > absl::Minutes(10) ? samples_.erase(it) : std::next(it);
    }
  }

  absl::Mutex mu_;
  std::map<std::string, Sample> samples_ ABSL_GUARDED_BY(mu_);
};

// ---- cgroupfs ----

class CgroupfsManager : public CgroupManagerBase {
 public:
  using CgroupManagerBase::CgroupManagerBase;

  CgroupDriver driver() const override { return CgroupDriver::kCgroupfs; }

  absl::StatusOr<std::string> ContainerCgroupsPath(const std::string& parent,
                                                   const std::string& id) const override {
    return ContainerCgroupDir(parent, id);
  }

  absl::StatusOr<std::string> ContainerCgroupDir(const std::string& parent,
                                                 const std::string& id) const override {
    CRID_RETURN_IF_ERROR(ValidateName(id, "id"));
    std::string dir = parent.empty() ? "/crid" : parent;
    absl::Status valid = ValidateCgroupPath(dir);
    if (!valid.ok()) {
      return Annotate(valid, "linux.cgroup_parent");
    }
    while (dir.size() > 1 && dir.back() == '/') {
      dir.pop_back();
    }
    return absl::StrCat(dir == "/" ? "" : dir, "/crid-", id);
  }

  absl::StatusOr<std::string> PodCgroupDir(const std::string& parent) const override {
    absl::Status valid =
        parent.empty() ? absl::InvalidArgumentError("empty") : ValidateCgroupPath(parent);
    if (!valid.ok()) {
      return Annotate(valid, "linux.cgroup_parent");
    }
    std::string dir = parent;
    while (dir.size() > 1 && dir.back() == '/') {
      dir.pop_back();
    }
    return dir;
  }

  absl::StatusOr<std::string> PlaceProcess(const std::string& name, const std::string& parent,
                                           pid_t pid, const CgroupResources& resources) override {
    CRID_ASSIGN_OR_RETURN(std::string path, ContainerCgroupDir(parent, name));
    std::vector<std::string> created;
    // hierarchy -> the cgroup the pid was in before it was moved
    std::vector<std::pair<std::string, std::string>> joined;
    absl::Status st = Place(path, pid, resources, &created, &joined);
    if (st.ok()) {
      return path;
    }
    // Move the process back where it was, then remove what was made.
    for (const auto& [hierarchy, original] : joined) {
      (void)AddProcess(hierarchy + (original == "/" ? "" : original), pid);
    }
    for (auto it = created.rbegin(); it != created.rend(); ++it) {
      (void)RemoveCgroupDir(*it);
    }
    return st;
  }

  // runc's cgroupfs driver writes the container into every hierarchy itself,
  // and nothing moves it afterwards.
  absl::StatusOr<std::vector<std::string>> KeepContainerInItsCgroups(const std::string& /*parent*/,
                                                                     const std::string& /*id*/,
                                                                     pid_t /*pid*/) override {
    return std::vector<std::string>();
  }

  absl::Status RemoveCgroup(const std::string& name, const std::string& parent) override {
    CRID_ASSIGN_OR_RETURN(std::string path, ContainerCgroupDir(parent, name));
    ForgetStats(path);
    if (layout_.unified) {
      return RemoveCgroupDir(layout_.unified_mount + path);
    }
    absl::Status result;
    for (const std::string& hierarchy : V1Hierarchies(layout_)) {
      absl::Status st = RemoveCgroupDir(hierarchy + path);
      if (result.ok()) {
        result = st;
      }
    }
    return result;
  }

 private:
  absl::Status Place(const std::string& path, pid_t pid, const CgroupResources& resources,
                     std::vector<std::string>* created,
                     std::vector<std::pair<std::string, std::string>>* joined) {
    if (layout_.unified) {
      CRID_RETURN_IF_ERROR(MakeCgroupDir(layout_.unified_mount, path, false, created));
      CRID_RETURN_IF_ERROR(EnableV2Controllers(layout_.unified_mount, path));
      CRID_RETURN_IF_ERROR(ApplyResources(path, resources));
      CRID_RETURN_IF_ERROR(AddProcess(layout_.unified_mount + path, pid));
      return absl::OkStatus();
    }
    std::vector<std::string> hierarchies = V1Hierarchies(layout_);
    auto cpuset = layout_.controllers.find("cpuset");
    for (const std::string& hierarchy : hierarchies) {
      bool is_cpuset = cpuset != layout_.controllers.end() && cpuset->second == hierarchy;
      CRID_RETURN_IF_ERROR(MakeCgroupDir(hierarchy, path, is_cpuset, created));
    }
    CRID_RETURN_IF_ERROR(ApplyResources(path, resources));
    for (const std::string& hierarchy : hierarchies) {
      std::string original = CurrentCgroup(hierarchy, pid);
      CRID_RETURN_IF_ERROR(AddProcess(hierarchy + path, pid));
      joined->emplace_back(hierarchy, std::move(original));
    }
    return absl::OkStatus();
  }

  // The v1 cgroup of `pid` in the hierarchy mounted at `hierarchy` ("/" when
  // unknown).
  std::string CurrentCgroup(const std::string& hierarchy, pid_t pid) const {
    absl::StatusOr<std::map<std::string, std::string>> current = ProcessCgroups(pid);
    if (!current.ok()) {
      return "/";
    }
    for (const auto* map : {&layout_.controllers, &layout_.named}) {
      for (const auto& [controller, mount] : *map) {
        auto it = current->find(controller);
        if (mount == hierarchy && it != current->end()) {
          return it->second;
        }
      }
    }
    return "/";
  }
};

// ---- systemd ----

// "0-2,4" -> little-endian CPU bitmask, as systemd's AllowedCPUs= takes it.
absl::StatusOr<std::vector<uint8_t>> RangeListToMask(const std::string& list,
                                                     absl::string_view field) {
  std::vector<uint8_t> mask;
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> range =
        absl::StrSplit(part, absl::MaxSplits('-', 1));
    uint32_t lo = 0;
    uint32_t hi = 0;
    if (!absl::SimpleAtoi(range.first, &lo) ||
        !absl::SimpleAtoi(range.second.empty() ? range.first : range.second, &hi) || hi < lo ||
        hi > 8191) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": \"", list, "\" is not a list of ranges"));
    }
    for (uint32_t i = lo; i <= hi; ++i) {
      if (mask.size() <= i / 8) {
        mask.resize(i / 8 + 1);
      }
      mask[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
    }
  }
  return mask;
}

uint64_t LimitOrInfinity(int64_t value) {
  return value < 0 ? kInfinity : static_cast<uint64_t>(value);
}

class SystemdManager : public CgroupManagerBase {
 public:
  using CgroupManager::ApplyResources;
  SystemdManager(CgroupLayout layout, std::unique_ptr<SystemdBus> bus, absl::Duration timeout)
      : CgroupManagerBase(std::move(layout)), bus_(std::move(bus)), timeout_(timeout) {}

  CgroupDriver driver() const override { return CgroupDriver::kSystemd; }

  absl::StatusOr<std::string> ContainerCgroupsPath(const std::string& parent,
                                                   const std::string& id) const override {
    CRID_RETURN_IF_ERROR(ValidateName(id, "id"));
    CRID_ASSIGN_OR_RETURN(std::string slice, ParentSlice(parent));
    return absl::StrCat(slice, ":crid:", id);
  }

  absl::StatusOr<std::string> ContainerCgroupDir(const std::string& parent,
                                                 const std::string& id) const override {
    CRID_RETURN_IF_ERROR(ValidateName(id, "id"));
    CRID_ASSIGN_OR_RETURN(std::string slice, ParentSlice(parent));
    CRID_ASSIGN_OR_RETURN(std::string expanded, ExpandSlice(slice));
    return absl::StrCat(expanded == "/" ? "" : expanded, "/", UnitName(id));
  }

  absl::StatusOr<std::string> PodCgroupDir(const std::string& parent) const override {
    CRID_ASSIGN_OR_RETURN(std::string slice, ParentSlice(parent));
    return ExpandSlice(slice);
  }

  absl::StatusOr<std::string> PlaceProcess(const std::string& name, const std::string& parent,
                                           pid_t pid, const CgroupResources& resources) override {
    CRID_ASSIGN_OR_RETURN(std::string path, ContainerCgroupDir(parent, name));
    CRID_ASSIGN_OR_RETURN(std::string slice, ParentSlice(parent));
    std::string unit = UnitName(name);
    std::vector<UnitProperty> props = {
        UnitProperty::String("Description", absl::StrCat("crid ", name)),
        UnitProperty::String("Slice", slice),
        UnitProperty::Bool("Delegate", true),
        UnitProperty::Pids("PIDs", {static_cast<uint32_t>(pid)}),
        UnitProperty::Bool("DefaultDependencies", false),
        UnitProperty::Bool("CPUAccounting", true),
        UnitProperty::Bool("MemoryAccounting", true),
        UnitProperty::Bool("TasksAccounting", true),
    };
    CRID_RETURN_IF_ERROR(AddResourceProperties(resources, &props));
    absl::Status started = bus_->StartTransientUnit(unit, "fail", props, timeout_);
    if (absl::IsAlreadyExists(started)) {
      // Left from before a restart of crid: the same process or its
      // successor belongs there.
      started = bus_->AttachProcesses(unit, {static_cast<uint32_t>(pid)});
    }
    if (!started.ok()) {
      (void)bus_->ResetFailed(unit);
      return started;
    }
    if (absl::StatusOr<std::string> group = bus_->ControlGroup(unit); group.ok()) {
      path = *group;
    }
    absl::Status st = FinishPlacement(path, pid, resources);
    if (!st.ok()) {
      (void)RemoveUnit(unit, path);
      return st;
    }
    return path;
  }

  // On cgroup v1, runc's systemd driver starts the container's scope without
  // device rules, writes the init into the scope's cgroup of every hierarchy
  // itself, and only then sets DevicePolicy= and DeviceAllow= on the scope.
  // When the scope is the first unit with device rules in its slice (a pod's
  // first container, or its first after all others went), systemd adds the
  // devices controller to the slice and its ancestors, and moves every process
  // below each of them (by the name=systemd tree) into that slice's devices
  // cgroup; the scope is delegated, so systemd never moves its processes back
  // down (unit_update_cgroup: no migration for a realized delegated unit). The
  // container would run in the pod slice's devices cgroup, which allows every
  // device. A round trip to systemd first: it realizes the cgroups queued by
  // runc's SetUnitProperties before it reads the next message.
  absl::StatusOr<std::vector<std::string>> KeepContainerInItsCgroups(const std::string& parent,
                                                                     const std::string& id,
                                                                     pid_t pid) override {
    std::vector<std::string> moved;
    if (layout_.unified) {
      return moved;
    }
    // The names checked; the path is systemd's own answer, as in PlaceProcess.
    CRID_RETURN_IF_ERROR(ContainerCgroupDir(parent, id).status());
    CRID_ASSIGN_OR_RETURN(std::string path, bus_->ControlGroup(UnitName(id)));
    CRID_ASSIGN_OR_RETURN(auto current, ProcessCgroups(pid));
    for (const auto& [controller, mount] : layout_.controllers) {
      auto it = current.find(controller);
      // A hierarchy the runtime made no cgroup in for the container is not
      // one it manages.
      if (it == current.end() || it->second == path || !IsDirectory(mount + path)) {
        continue;
      }
      CRID_RETURN_IF_ERROR(AddProcess(mount + path, pid));
      moved.push_back(absl::StrCat(controller, " (from ", it->second, ")"));
    }
    return moved;
  }

  absl::Status RemoveCgroup(const std::string& name, const std::string& parent) override {
    CRID_ASSIGN_OR_RETURN(std::string path, ContainerCgroupDir(parent, name));
    ForgetStats(path);
    return RemoveUnit(UnitName(name), path);
  }

  // A unit's cgroup (a scope or slice) gets the limits as unit properties
  // too, as `runc update` does; otherwise systemd would put its own older
  // values back on the next daemon-reload.
  absl::Status ApplyResources(const std::string& cgroup_path,
                              const CgroupResources& resources) override {
    CRID_RETURN_IF_ERROR(ValidateCgroupPath(cgroup_path));
    std::string unit = cgroup_path.substr(cgroup_path.rfind('/') + 1);
    if (absl::EndsWith(unit, ".scope") || absl::EndsWith(unit, ".slice")) {
      std::vector<UnitProperty> props;
      CRID_RETURN_IF_ERROR(AddResourceProperties(resources, &props));
      if (!props.empty()) {
        CRID_RETURN_IF_ERROR(bus_->SetUnitProperties(unit, props));
      }
    }
    return CgroupManagerBase::ApplyResources(cgroup_path, resources);
  }

 private:
  static std::string UnitName(const std::string& name) {
    return absl::StrCat("crid-", name, ".scope");
  }

  static absl::StatusOr<std::string> ParentSlice(const std::string& parent) {
    absl::StatusOr<std::string> slice = SliceName(parent);
    if (!slice.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("linux.cgroup_parent: the systemd cgroup driver needs a slice, got \"",
                       parent, "\": ", slice.status().message()));
    }
    return slice;
  }

  absl::Status AddResourceProperties(const CgroupResources& r, std::vector<UnitProperty>* p) {
    bool v2 = layout_.unified;
    if (r.cpu_shares != 0) {
      p->push_back(v2 ? UnitProperty::Uint64("CPUWeight", CpuSharesToWeight(r.cpu_shares))
                      : UnitProperty::Uint64("CPUShares", r.cpu_shares));
    }
    if (uint64_t quota = CpuQuotaPerSecUsec(r.cpu_quota_us, r.cpu_period_us); quota != 0) {
      p->push_back(UnitProperty::Uint64("CPUQuotaPerSecUSec", quota));
    }
    if (r.cpu_period_us > 0) {
      p->push_back(UnitProperty::Uint64("CPUQuotaPeriodUSec", r.cpu_period_us));
    }
    if (r.memory_limit_bytes != 0) {
      p->push_back(UnitProperty::Uint64(v2 ? "MemoryMax" : "MemoryLimit",
                                        LimitOrInfinity(r.memory_limit_bytes)));
    }
    if (v2) {
      CRID_ASSIGN_OR_RETURN(std::string swap,
                            SwapMaxV2(r.memory_swap_limit_bytes, r.memory_limit_bytes));
      if (!swap.empty()) {
        uint64_t bytes = kInfinity;
        if (swap != "max" && !absl::SimpleAtoi(swap, &bytes)) {
          return absl::InternalError(absl::StrCat("swap limit \"", swap, "\""));
        }
        p->push_back(UnitProperty::Uint64("MemorySwapMax", bytes));
      }
      if (!r.cpuset_cpus.empty()) {
        CRID_ASSIGN_OR_RETURN(auto mask, RangeListToMask(r.cpuset_cpus, "cpuset_cpus"));
        p->push_back(UnitProperty::Bytes("AllowedCPUs", std::move(mask)));
      }
      if (!r.cpuset_mems.empty()) {
        CRID_ASSIGN_OR_RETURN(auto mask, RangeListToMask(r.cpuset_mems, "cpuset_mems"));
        p->push_back(UnitProperty::Bytes("AllowedMemoryNodes", std::move(mask)));
      }
    }
    if (r.pids_limit != 0) {
      p->push_back(UnitProperty::Uint64("TasksMax", LimitOrInfinity(r.pids_limit)));
    }
    return absl::OkStatus();
  }

  // systemd on v1 leaves cpuset and hugetlb alone: like runc, make the
  // cgroup there and join it; then write every limit into the files too,
  // which also covers what has no unit property (swap on v1, hugepages).
  absl::Status FinishPlacement(const std::string& path, pid_t pid, const CgroupResources& r) {
    if (!layout_.unified) {
      for (const char* controller : ExtraV1Controllers(r)) {
        std::vector<std::string> created;
        const std::string& hierarchy = layout_.controllers.at(controller);
        CRID_RETURN_IF_ERROR(
            MakeCgroupDir(hierarchy, path, std::string(controller) == "cpuset", &created));
        CRID_RETURN_IF_ERROR(AddProcess(hierarchy + path, pid));
      }
    }
    return CgroupManagerBase::ApplyResources(path, r);
  }

  std::vector<const char*> ExtraV1Controllers(const CgroupResources& r) const {
    std::vector<const char*> out;
    if ((!r.cpuset_cpus.empty() || !r.cpuset_mems.empty()) &&
        layout_.controllers.count("cpuset") != 0) {
      out.push_back("cpuset");
    }
    if (!r.hugepage_limits.empty() && layout_.controllers.count("hugetlb") != 0) {
      out.push_back("hugetlb");
    }
    return out;
  }

  absl::Status RemoveUnit(const std::string& unit, const std::string& path) {
    absl::Status st = bus_->StopUnit(unit, timeout_);
    if (absl::IsNotFound(st)) {
      st = absl::OkStatus();
    }
    (void)bus_->ResetFailed(unit);
    if (!layout_.unified) {
      for (const char* controller : {"cpuset", "hugetlb"}) {
        auto it = layout_.controllers.find(controller);
        if (it != layout_.controllers.end()) {
          absl::Status removed = RemoveCgroupDir(it->second + path);
          if (st.ok()) {
            st = removed;
          }
        }
      }
    }
    return st;
  }

  std::unique_ptr<SystemdBus> bus_;
  absl::Duration timeout_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CgroupManager>> NewCgroupManager(CgroupManagerOptions options) {
  if (options.driver == CgroupDriver::kCgroupfs) {
    return std::make_unique<CgroupfsManager>(std::move(options.layout));
  }
  std::string address = options.systemd_bus_address;
  if (address.empty() && ::geteuid() == 0 && ::access("/run/systemd/private", F_OK) == 0) {
    address = SystemdBus::kPrivateAddress;
  }
  CRID_ASSIGN_OR_RETURN(std::unique_ptr<SystemdBus> bus, SystemdBus::Connect(address));
  return std::make_unique<SystemdManager>(std::move(options.layout), std::move(bus),
                                          options.job_timeout);
}

}  // namespace crid
