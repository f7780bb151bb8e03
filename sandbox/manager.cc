#include "sandbox/manager.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/logging.h"
#include "netns/namespace.h"
#include "sandbox/files.h"
#include "sandbox/pause_process.h"
#include "sandbox/validate.h"

namespace crid::sandbox {

namespace {

using runtime::v1::NamespaceMode;

std::string NewSandboxId() {
  std::random_device rd;
  std::string id;
  static const char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 64; ++i) {
    id.push_back(kHex[rd() & 0xf]);
  }
  return id;
}

Json StringList(const google::protobuf::RepeatedPtrField<std::string>& items) {
  return Json(std::vector<std::string>(items.begin(), items.end()));
}

// runtimeConfig values for the capabilities CNI plugins may declare.
Json CapabilityArgs(const runtime::v1::PodSandboxConfig& config) {
  Json args = Json::object();
  Json ports = Json::array();
  for (const auto& pm : config.port_mappings()) {
    if (pm.host_port() <= 0) {
      continue;
    }
    Json entry = {
        {"hostPort", pm.host_port()},
        {"containerPort", pm.container_port()},
        {"protocol", absl::AsciiStrToLower(runtime::v1::Protocol_Name(pm.protocol()))},
    };
    if (!pm.host_ip().empty()) {
      entry["hostIP"] = pm.host_ip();
    }
    ports.push_back(std::move(entry));
  }
  if (!ports.empty()) {
    args["portMappings"] = std::move(ports);
  }
  Json bandwidth = Json::object();
  struct BandwidthKey {
    const char* annotation;
    const char* rate;
    const char* burst;
  };
  static constexpr BandwidthKey kBandwidthKeys[] = {
      {"kubernetes.io/ingress-bandwidth", "ingressRate", "ingressBurst"},
      {"kubernetes.io/egress-bandwidth", "egressRate", "egressBurst"},
  };
  for (const auto& [annotation, rate, burst] : kBandwidthKeys) {
    auto it = config.annotations().find(annotation);
    if (it == config.annotations().end()) {
      continue;
    }
    absl::StatusOr<uint64_t> bits = ParseBandwidth(it->second);
    if (bits.ok()) {
      bandwidth[rate] = *bits;
      // As containerd: no burst limit to speak of.
      bandwidth[burst] = uint64_t{UINT32_MAX};
    }
  }
  if (!bandwidth.empty()) {
    args["bandwidth"] = std::move(bandwidth);
  }
  if (config.has_dns_config()) {
    args["dns"] = {
        {"servers", StringList(config.dns_config().servers())},
        {"searches", StringList(config.dns_config().searches())},
        {"options", StringList(config.dns_config().options())},
    };
  }
  if (!config.linux().cgroup_parent().empty()) {
    args["cgroupPath"] = config.linux().cgroup_parent();
  }
  Json annotations = Json::object();
  for (const auto& [k, v] : config.annotations()) {
    annotations[k] = v;
  }
  args["io.kubernetes.cri.pod-annotations"] = std::move(annotations);
  return args;
}

}  // namespace

cni::Attachment AttachmentFor(const SandboxRecord& record) {
  cni::Attachment a;
  a.container_id = record.id();
  a.netns = IsPinnedNamespace(record.netns_path()) ? record.netns_path() : "";
  a.ifname = record.ifname();
  const auto& md = record.config().metadata();
  a.args = {{"IgnoreUnknown", "1"},
            {"K8S_POD_NAMESPACE", md.namespace_()},
            {"K8S_POD_NAME", md.name()},
            {"K8S_POD_INFRA_CONTAINER_ID", record.id()},
            {"K8S_POD_UID", md.uid()}};
  a.capability_args = CapabilityArgs(record.config());
  return a;
}

namespace {

std::vector<IdMapping> IdMappings(
    const google::protobuf::RepeatedPtrField<runtime::v1::IDMapping>& mappings) {
  std::vector<IdMapping> out;
  for (const runtime::v1::IDMapping& m : mappings) {
    out.push_back({m.container_id(), m.host_id(), m.length()});
  }
  return out;
}

absl::Status WriteSysctl(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return ErrnoError(errno, "open ", path);
  }
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return absl::InvalidArgumentError(absl::StrCat("config.linux.sysctls: setting ", path, " to \"",
                                                   value, "\": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

std::string HostHostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

void RemoveIfEmptyDir(const std::string& path) { rmdir(path.c_str()); }

// Test hook: with CRID_TEST_CRASH_AT=<point> in its environment crid kills
// itself with SIGKILL at that point, leaving exactly what a crash there leaves.
void CrashPoint(absl::string_view point) {
  static const char* const crash_at = std::getenv("CRID_TEST_CRASH_AT");
  if (crash_at != nullptr && point == crash_at) {
    raise(SIGKILL);
  }
}

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return names;
  }
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") {
      names.push_back(std::move(name));
    }
  }
  closedir(d);
  return names;
}

ino_t InodeOf(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// The parent (kubelet's cgroup_parent, as the cgroup tree spells it) of the
// `crid-pause-<id>` cgroup `pid` is in, from /proc/<pid>/cgroup; "" if none.
std::string PauseCgroupParent(pid_t pid, const std::string& pod_id) {
  absl::StatusOr<std::string> cgroups = ReadFile(absl::StrCat("/proc/", pid, "/cgroup"));
  if (!cgroups.ok()) {
    return "";
  }
  const std::string leaf = "crid-" + PauseCgroupName(pod_id);
  for (absl::string_view line : absl::StrSplit(*cgroups, '\n')) {
    // hierarchy-ID:controllers:path
    size_t colon = line.find(':', line.find(':') + 1);
    if (colon == absl::string_view::npos) {
      continue;
    }
    absl::string_view path = line.substr(colon + 1);
    size_t slash = path.rfind('/');
    absl::string_view name = path.substr(slash + 1);
    if (slash != absl::string_view::npos && (name == leaf || name == leaf + ".scope")) {
      return slash == 0 ? "/" : std::string(path.substr(0, slash));
    }
  }
  return "";
}

bool Matches(const SandboxRecord& r, const runtime::v1::PodSandboxFilter& filter) {
  if (!filter.id().empty() && !absl::StartsWith(r.id(), filter.id())) {
    return false;
  }
  if (filter.has_state()) {
    bool ready = r.state() == SandboxRecord::READY;
    if ((filter.state().state() == runtime::v1::SANDBOX_READY) != ready) {
      return false;
    }
  }
  for (const auto& [k, v] : filter.label_selector()) {
    auto it = r.config().labels().find(k);
    if (it == r.config().labels().end() || it->second != v) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string MetadataKey(const runtime::v1::PodSandboxMetadata& md) {
  return absl::StrCat(md.name(), "_", md.namespace_(), "_", md.uid(), "_", md.attempt());
}

absl::StatusOr<std::unique_ptr<SandboxManager>> SandboxManager::Create(SandboxOptions options,
                                                                       Store* store,
                                                                       cni::CniManager* cni) {
  CRID_RETURN_IF_ERROR(MakeDirs(options.state_dir + "/pods", 0711));
  CRID_RETURN_IF_ERROR(MakeDirs(options.state_dir + "/ns", 0711));
  CRID_RETURN_IF_ERROR(MakeDirs(options.netns_dir, 0755));
  std::unique_ptr<SandboxManager> m(new SandboxManager(std::move(options), store, cni));
  m->cgroups_ = m->options_.cgroups;
  m->pool_ = std::make_unique<WorkerPool>(std::max<size_t>(m->options_.workers, 1),
                                          m->options_.max_queued);
  CRID_ASSIGN_OR_RETURN(auto rows, store->List(kSandboxBucket));
  // A crash between starting crid-pause and recording its PID leaves one
  // running that only its command line ties to its pod.
  const std::vector<FoundPause> pauses = FindPauseProcesses(m->options_.state_dir);
  for (const auto& [id, value] : rows) {
    SandboxRecord record;
    if (!record.ParseFromString(value)) {
      spdlog::error("sandbox record {} is unreadable; dropping it", id);
      (void)store->Delete(kSandboxBucket, id);
      continue;
    }
    if (record.state() == SandboxRecord::CREATING) {
      // crid stopped in the middle of RunPodSandbox: kubelet has no ID for it.
      spdlog::warn("sandbox {} was being created when crid stopped; removing it", id);
      if (record.pause_pid() == 0) {
        for (const FoundPause& pause : pauses) {
          if (pause.pod_id == id) {
            record.set_pause_pid(pause.process.pid);
            record.set_pause_start_time(pause.process.start_time);
            break;
          }
        }
      }
      (void)m->StopResources(&record, /*best_effort=*/true);
      (void)m->RemoveResources(record);
      (void)store->Delete(kSandboxBucket, id);
      continue;
    }
    if (record.state() == SandboxRecord::READY) {
      bool pause_gone =
          record.pause_pid() > 0 && !PauseAlive({record.pause_pid(), record.pause_start_time()});
      bool netns_gone = !record.netns_path().empty() && !IsPinnedNamespace(record.netns_path());
      if (pause_gone || netns_gone) {
        spdlog::warn("sandbox {} lost its {}; marking it NOTREADY", id,
                     pause_gone ? "pause process" : "network namespace");
        record.set_state(SandboxRecord::NOTREADY);
        (void)m->Persist(record);
      }
    }
    {
      absl::MutexLock lock(&m->mu_);
      auto run = std::make_shared<InFlight>();
      run->result = record.id();
      run->done.Notify();
      m->runs_[MetadataKey(record.config().metadata())] = run;
      m->pods_[id] = record;
    }
    m->WatchPause(record);
  }
  m->RemoveLeftovers(pauses);
  return m;
}

void SandboxManager::RemoveLeftovers(const std::vector<FoundPause>& pauses) {
  std::map<std::string, SandboxRecord> known;
  {
    absl::MutexLock lock(&mu_);
    known = pods_;
  }
  for (const FoundPause& pause : pauses) {
    auto it = known.find(pause.pod_id);
    const SandboxRecord* record = it != known.end() ? &it->second : nullptr;
    if (record != nullptr && record->pause_pid() == pause.process.pid &&
        record->pause_start_time() == pause.process.start_time) {
      continue;
    }
    // Pods torn down above have already stopped theirs.
    if (PauseAlive(pause.process)) {
      StopOrphanPause(pause, record);
    }
  }
  RemoveUnknownStateDirs(known);
}

void SandboxManager::StopOrphanPause(const FoundPause& pause, const SandboxRecord* record) {
  const std::string& id = pause.pod_id;
  const pid_t pid = pause.process.pid;
  spdlog::warn("crid-pause {} of sandbox {} belongs to no pod; stopping it", pid, id);
  // Read before it dies: where it was placed, and which network namespace it holds.
  std::string parent =
      record != nullptr ? record->config().linux().cgroup_parent() : PauseCgroupParent(pid, id);
  ino_t netns = InodeOf(absl::StrCat("/proc/", pid, "/ns/net"));
  if (absl::Status st = StopPause(pause.process); !st.ok()) {
    spdlog::error("sandbox {}: stopping crid-pause {}: {}", id, pid, st.message());
    return;
  }
  if (CgroupManager* cgroups = cgroups_.load(); cgroups != nullptr && !parent.empty()) {
    if (absl::Status st = cgroups->RemoveCgroup(PauseCgroupName(id), parent); !st.ok()) {
      spdlog::error("sandbox {}: removing crid-pause's cgroup: {}", id, st.message());
    }
  }
  // A pin is this pod's only when it pins the namespace crid-pause was in; a
  // pod with a record keeps its pin until it is stopped.
  std::string pin = absl::StrCat(options_.netns_dir, "/crid-", id.substr(0, 32));
  if (record == nullptr && netns != 0 && IsPinnedNamespace(pin) && InodeOf(pin) == netns) {
    if (absl::Status st = RemovePinnedNamespace(pin); !st.ok()) {
      spdlog::error("sandbox {}: {}", id, st.message());
    }
  }
}

void SandboxManager::RemoveUnknownStateDirs(const std::map<std::string, SandboxRecord>& known) {
  const std::string pods_dir = options_.state_dir + "/pods";
  for (const std::string& name : DirEntries(pods_dir)) {
    const std::string dir = absl::StrCat(pods_dir, "/", name);
    if (known.count(name) != 0) {
      // ReplaceFile's temporaries (`hosts.tmp.<pid>`) of a write cut short.
      for (const std::string& file : DirEntries(dir)) {
        if (absl::StrContains(file, ".tmp.")) {
          std::string path = absl::StrCat(dir, "/", file);
          spdlog::warn("sandbox {}: removing leftover {}", name, path);
          unlink(path.c_str());
        }
      }
      continue;
    }
    spdlog::warn("removing {}: no pod sandbox has it", dir);
    std::string shm = dir + "/shm";
    if (umount2(shm.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      spdlog::error("{}", ErrnoError(errno, "unmount ", shm).message());
    }
    if (absl::Status st = RemoveTree(dir); !st.ok()) {
      spdlog::error("removing {}: {}", dir, st.message());
    }
  }
  const std::string ns_root = options_.state_dir + "/ns";
  for (const std::string& name : DirEntries(ns_root)) {
    if (known.count(name) != 0) {
      continue;
    }
    const std::string dir = absl::StrCat(ns_root, "/", name);
    spdlog::warn("removing {}: no pod sandbox has it", dir);
    for (const std::string& entry : DirEntries(dir)) {
      if (absl::Status st = RemovePinnedNamespace(absl::StrCat(dir, "/", entry)); !st.ok()) {
        spdlog::error("{}", st.message());
      }
    }
    if (rmdir(dir.c_str()) != 0 && errno != ENOENT) {
      spdlog::error("{}", ErrnoError(errno, "remove ", dir).message());
    }
  }
}

absl::Status SandboxManager::Persist(const SandboxRecord& record) {
  return store_->Put(kSandboxBucket, record.id(), record.SerializeAsString());
}

void SandboxManager::Publish(const SandboxRecord& record) {
  absl::MutexLock lock(&mu_);
  pods_[record.id()] = record;
}

std::shared_ptr<absl::Mutex> SandboxManager::OpLock(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto& l = op_locks_[id];
  if (!l) {
    l = std::make_shared<absl::Mutex>();
  }
  return l;
}

absl::StatusOr<std::string> SandboxManager::Run(const runtime::v1::PodSandboxConfig& config,
                                                const std::string& runtime_handler) {
  const std::string key = MetadataKey(config.metadata());
  std::shared_ptr<InFlight> run;
  bool owner = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(key);
    if (it != runs_.end()) {
      run = it->second;
    } else {
      run = std::make_shared<InFlight>();
      runs_[key] = run;
      owner = true;
    }
  }
  if (!owner) {
    // kubelet's retry of a call still running (or already done).
    run->done.WaitForNotification();
    return run->result;
  }
  absl::StatusOr<std::string> result = RunLocked(config, runtime_handler);
  {
    absl::MutexLock lock(&mu_);
    run->result = result;
    if (!result.ok()) {
      runs_.erase(key);
    }
  }
  run->done.Notify();
  return result;
}

absl::StatusOr<std::string> SandboxManager::RunLocked(const runtime::v1::PodSandboxConfig& config,
                                                      const std::string& runtime_handler) {
  const auto& ns = config.linux().security_context().namespace_options();
  const bool own_net = ns.network() == NamespaceMode::POD;
  const bool own_ipc = ns.ipc() == NamespaceMode::POD;
  const bool own_pid = ns.pid() == NamespaceMode::POD;
  if (own_net) {
    if (absl::Status ready =
            cni_ == nullptr ? absl::FailedPreconditionError("no CNI manager") : cni_->Ready();
        !ready.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("pod network not ready: ", ready.message()));
    }
  }
  if (own_pid && options_.pause_binary.empty()) {
    return absl::FailedPreconditionError(
        "config.linux.security_context.namespace_options.pid: POD needs crid-pause, which was "
        "not found");
  }
  // A pod takes a little disk; refusing it keeps the last of a full disk for
  // the removals that free space.
  CRID_RETURN_IF_ERROR(store_->CheckRoom("create a pod sandbox"));

  SandboxRecord record;
  record.set_id(NewSandboxId());
  *record.mutable_config() = config;
  record.set_runtime_handler(runtime_handler);
  record.set_created_at_ns(absl::ToUnixNanos(absl::Now()));
  record.set_state(SandboxRecord::CREATING);
  record.set_ifname(options_.ifname);
  const std::string& id = record.id();
  const std::string pod_dir = absl::StrCat(options_.state_dir, "/pods/", id);
  const std::string ns_dir = absl::StrCat(options_.state_dir, "/ns/", id);
  record.set_pod_dir(pod_dir);
  const bool own_userns =
      ns.has_userns_options() && ns.userns_options().mode() == NamespaceMode::POD;
  // Every namespace pin and mount the pod will have is named in the first
  // commit, instead of one commit before each is made (three to four fewer
  // fdatasyncs per pod). Safe at any crash point: the undo below and
  // recovery's teardown of a CREATING pod (StopResources, RemoveResources)
  // treat a named path that was never made as already gone (unmount and
  // unlink tolerate ENOENT and EINVAL, the shm directory is removed only if
  // empty), the paths are derived from the pod's ID alone so they name
  // nothing of another pod, and the READY record ends up the same as before.
  // What recovery cannot find without a commit stays committed before it is
  // made: the network attachment (CNI DEL) and the user-namespace pod's
  // crid-pause.
  if (own_userns) {
    record.set_userns_path(ns_dir + "/user");
  }
  if (own_net) {
    // A pod with its own network also gets its own UTS namespace (hostname).
    record.set_uts_ns_path(ns_dir + "/uts");
    record.set_netns_path(absl::StrCat(options_.netns_dir, "/crid-", id.substr(0, 32)));
  }
  if (own_ipc) {
    record.set_ipc_ns_path(ns_dir + "/ipc");
    record.set_shm_path(pod_dir + "/shm");
  }

  bool committed = false;
  PodStartWork side_work;
  // Undo whatever was made, in reverse, unless the run completes.
  absl::Cleanup undo = [&] {
    if (committed) {
      return;
    }
    if (side_work.abort) {
      std::move(side_work.abort)();
    }
    (void)StopResources(&record, /*best_effort=*/true);
    (void)RemoveResources(record);
    (void)store_->Delete(kSandboxBucket, id);
  };

  // Persisted first: a crash from here on is cleaned up on the next start.
  CRID_RETURN_IF_ERROR(Persist(record));
  CRID_RETURN_IF_ERROR(MakeDirs(pod_dir, 0755));
  CRID_RETURN_IF_ERROR(MakeDirs(ns_dir, 0711));
  // The pod's shim (see SetPodStartHook) starts now and comes up while the
  // namespaces and the network are made.
  PodStartHook hook;
  {
    absl::MutexLock lock(&mu_);
    hook = pod_start_hook_;
  }
  if (hook) {
    side_work = hook(id, config.linux().cgroup_parent());
  }

  std::string hostname = config.hostname();
  if (hostname.empty()) {
    hostname = HostHostname();
  }
  // The pod's user namespace comes first: its network, IPC and UTS namespaces
  // are created inside it, so that its containers, which join it before the
  // others, may still enter them and have capabilities there.
  bool pause_started = false;
  if (own_userns) {
    const std::vector<IdMapping> uids = IdMappings(ns.userns_options().uids());
    const std::vector<IdMapping> gids = IdMappings(ns.userns_options().gids());
    if (own_pid) {
      // crid-pause creates the user namespace, so that its PID namespace,
      // which the containers join after the user namespace, belongs to it.
      CRID_ASSIGN_OR_RETURN(PauseProcess pause,
                            StartPause(options_.pause_binary, {}, {options_.state_dir, id},
                                       /*new_user_namespace=*/true));
      record.set_pause_pid(pause.pid);
      record.set_pause_start_time(pause.start_time);
      CRID_RETURN_IF_ERROR(Persist(record));
      pause_started = true;
      CRID_RETURN_IF_ERROR(WriteIdMappings(pause.pid, uids, gids));
      CRID_RETURN_IF_ERROR(
          PinProcessNamespace(pause.pid, NamespaceType::kUser, record.userns_path()));
    } else {
      CRID_RETURN_IF_ERROR(CreatePinnedUserNamespace(record.userns_path(), uids, gids));
    }
  }
  // Copied: the record's field may move when other fields are set.
  const std::string userns = record.userns_path();
  if (own_net) {
    CRID_RETURN_IF_ERROR(CreatePinnedNamespace(
        NamespaceType::kUts, record.uts_ns_path(),
        [&]() -> absl::Status {
          if (sethostname(hostname.data(), hostname.size()) != 0) {
            return ErrnoError(errno, "sethostname ", hostname);
          }
          return absl::OkStatus();
        },
        userns));
  }
  if (own_ipc) {
    CRID_RETURN_IF_ERROR(
        CreatePinnedNamespace(NamespaceType::kIpc, record.ipc_ns_path(), nullptr, userns));
    CRID_RETURN_IF_ERROR(MakeDirs(record.shm_path(), 0755));
    std::string opts = absl::StrCat("mode=1777,size=", options_.shm_size_bytes);
    if (mount("shm", record.shm_path().c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              opts.c_str()) != 0) {
      return ErrnoError(errno, "mount tmpfs on ", record.shm_path());
    }
  }
  if (own_net) {
    CRID_RETURN_IF_ERROR(
        CreatePinnedNamespace(NamespaceType::kNet, record.netns_path(), BringUpLoopback, userns));
  }

  // Namespaced sysctls, written from inside the pod's namespaces.
  if (!config.linux().sysctls().empty()) {
    std::vector<NamespacePath> join;
    if (own_net) {
      join.push_back({NamespaceType::kNet, record.netns_path()});
    }
    if (own_ipc) {
      join.push_back({NamespaceType::kIpc, record.ipc_ns_path()});
    }
    CRID_RETURN_IF_ERROR(RunInNamespaces(join, [&]() -> absl::Status {
      for (const auto& [name, value] : config.linux().sysctls()) {
        CRID_ASSIGN_OR_RETURN(std::string path, SysctlPath(name, own_net, own_ipc));
        CRID_RETURN_IF_ERROR(WriteSysctl(path, value));
      }
      return absl::OkStatus();
    }));
  }

  // The pod's files live in the state directory, which does not survive a
  // reboot (tmpfs in production), and no container of a pod from before a
  // reboot runs again: replaced atomically for readers, never synced (6
  // fsyncs per pod otherwise).
  CRID_RETURN_IF_ERROR(ReplaceFile(pod_dir + "/hostname", hostname + "\n", 0644));
  std::string host_resolv = ReadFile(options_.host_resolv_conf).value_or("");
  CRID_RETURN_IF_ERROR(
      ReplaceFile(pod_dir + "/resolv.conf", BuildResolvConf(config, host_resolv), 0644));

  if (own_net) {
    record.set_network_name(cni_->NetworkName());
    record.set_network_attached(true);
    CRID_RETURN_IF_ERROR(Persist(record));
    absl::StatusOr<cni::NetworkResult> net = cni_->Setup(AttachmentFor(record));
    if (!net.ok()) {
      // Setup already deleted what it added.
      record.set_network_attached(false);
      return Annotate(net.status(), "setting up pod network");
    }
    record.set_network_name(net->network_name);
    for (const cni::IpInfo& ip : net->ips) {
      // Only addresses on the pod's interface (or not tied to one).
      if (ip.interface >= 0 && ip.interface < static_cast<int>(net->interfaces.size()) &&
          net->interfaces[ip.interface].sandbox.empty()) {
        continue;
      }
      record.add_ips(ip.ip());
    }
  }
  std::vector<std::string> ips(record.ips().begin(), record.ips().end());
  std::string hosts = own_net ? BuildHosts(hostname, ips) : ReadFile("/etc/hosts").value_or("");
  CRID_RETURN_IF_ERROR(ReplaceFile(pod_dir + "/hosts", hosts, 0644));

  if (own_pid) {
    std::vector<NamespacePath> join;
    if (own_net) {
      join.push_back({NamespaceType::kNet, record.netns_path()});
      join.push_back({NamespaceType::kUts, record.uts_ns_path()});
    }
    if (own_ipc) {
      join.push_back({NamespaceType::kIpc, record.ipc_ns_path()});
    }
    // A pod with a user namespace has its crid-pause already; it stays in the
    // host's network, IPC and UTS namespaces, which it never uses.
    PauseProcess pause{record.pause_pid(), record.pause_start_time()};
    if (!pause_started) {
      CRID_ASSIGN_OR_RETURN(pause,
                            StartPause(options_.pause_binary, join, {options_.state_dir, id}));
    }
    record.set_pause_pid(pause.pid);
    record.set_pause_start_time(pause.start_time);
    // In the pod's cgroup, as kubelet accounts it; a failure undoes the pod.
    if (CgroupManager* cgroups = cgroups_.load();
        cgroups != nullptr && !config.linux().cgroup_parent().empty()) {
      absl::StatusOr<std::string> placed = cgroups->PlaceProcess(
          PauseCgroupName(id), config.linux().cgroup_parent(), pause.pid, CgroupResources());
      if (!placed.ok()) {
        return Annotate(placed.status(), "placing crid-pause in the pod's cgroup");
      }
    }
  }

  CrashPoint("sandbox-run-before-ready");
  record.set_state(SandboxRecord::READY);
  CRID_RETURN_IF_ERROR(Persist(record));
  committed = true;
  Publish(record);
  WatchPause(record);
  if (side_work.ready) {
    std::move(side_work.ready)();
  }
  spdlog::info("pod sandbox {} ({}/{}) ready{}", id, config.metadata().namespace_(),
               config.metadata().name(),
               record.ips().empty() ? "" : absl::StrCat(", IP ", record.ips(0)));
  return id;
}

absl::Status SandboxManager::StopResources(SandboxRecord* record, bool best_effort) {
  absl::Status first;
  auto note = [&](const absl::Status& st) {
    if (!st.ok()) {
      spdlog::warn("sandbox {}: {}", record->id(), st.message());
      if (first.ok()) {
        first = st;
      }
    }
  };
  if (record->pause_pid() > 0) {
    UnwatchPause(record->id());  // this exit is intended
    absl::Status st = StopPause({record->pause_pid(), record->pause_start_time()});
    note(st);
    if (st.ok()) {
      record->set_pause_pid(0);
      record->set_pause_start_time(0);
      const std::string& parent = record->config().linux().cgroup_parent();
      if (CgroupManager* cgroups = cgroups_.load(); cgroups != nullptr && !parent.empty()) {
        note(Annotate(cgroups->RemoveCgroup(PauseCgroupName(record->id()), parent),
                      "removing crid-pause's cgroup"));
      }
    } else if (!best_effort) {
      return first;
    }
  }
  if (record->network_attached()) {
    absl::Status st =
        cni_ == nullptr ? absl::FailedPreconditionError("no CNI manager")
                        : Annotate(cni_->Teardown(AttachmentFor(*record)), "tearing down network");
    note(st);
    if (st.ok()) {
      record->set_network_attached(false);
    } else if (!best_effort) {
      return first;
    }
  }
  if (!record->netns_path().empty()) {
    note(RemovePinnedNamespace(record->netns_path()));
  }
  return first;
}

absl::Status SandboxManager::RemoveResources(const SandboxRecord& record) {
  absl::Status first;
  auto note = [&](const absl::Status& st) {
    if (!st.ok() && first.ok()) {
      first = st;
    }
  };
  if (!record.shm_path().empty()) {
    if (umount2(record.shm_path().c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      note(ErrnoError(errno, "unmount ", record.shm_path()));
    }
    RemoveIfEmptyDir(record.shm_path());
  }
  if (!record.ipc_ns_path().empty()) {
    note(RemovePinnedNamespace(record.ipc_ns_path()));
  }
  if (!record.uts_ns_path().empty()) {
    note(RemovePinnedNamespace(record.uts_ns_path()));
  }
  if (!record.userns_path().empty()) {
    note(RemovePinnedNamespace(record.userns_path()));
  }
  // The whole directory, with any temporary file a crash left in it. It
  // holds no mount any more (shm is gone above); RemoveTree refuses to cross
  // one if it does.
  if (!record.pod_dir().empty()) {
    note(RemoveTree(record.pod_dir()));
  }
  std::string ns_dir = absl::StrCat(options_.state_dir, "/ns/", record.id());
  if (rmdir(ns_dir.c_str()) != 0 && errno != ENOENT) {
    note(ErrnoError(errno, "remove ", ns_dir));
  }
  return first;
}

void SandboxManager::WatchPause(const SandboxRecord& record) {
  if (record.state() != SandboxRecord::READY || record.pause_pid() <= 0) {
    return;
  }
  const std::string& id = record.id();
  const pid_t pid = record.pause_pid();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  // Opened first, checked second: the pidfd then surely names the pause.
  if (!pidfd.valid() || ProcessStartTime(pid) != record.pause_start_time()) {
    OnPauseExit(id, pid);
    return;
  }
  uint64_t key = pause_watch_->Add(std::move(pidfd), [this, id, pid] {
    // Handled on the pool: persisting waits for the pod's other operations.
    if (!pool_->Submit([this, id, pid] { OnPauseExit(id, pid); })) {
      OnPauseExit(id, pid);
    }
    return false;
  });
  absl::MutexLock lock(&mu_);
  pause_watches_[id] = key;
}

void SandboxManager::UnwatchPause(const std::string& id) {
  uint64_t key = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = pause_watches_.find(id);
    if (it == pause_watches_.end()) {
      return;
    }
    key = it->second;
    pause_watches_.erase(it);
  }
  pause_watch_->Remove(key);
}

void SandboxManager::OnPauseExit(const std::string& id, pid_t pid) {
  std::shared_ptr<absl::Mutex> op = OpLock(id);
  absl::MutexLock op_lock(op.get());
  SandboxRecord record;
  {
    absl::MutexLock lock(&mu_);
    pause_watches_.erase(id);
    auto it = pods_.find(id);
    if (it == pods_.end() || it->second.state() != SandboxRecord::READY ||
        it->second.pause_pid() != pid) {
      return;  // stopped or removed meanwhile
    }
    record = it->second;
  }
  spdlog::warn("pod sandbox {}: its crid-pause (pid {}) exited; the pod is NOTREADY", id, pid);
  record.set_state(SandboxRecord::NOTREADY);
  if (absl::Status st = Persist(record); !st.ok()) {
    spdlog::error("pod sandbox {}: persisting NOTREADY: {}", id, st.message());
  }
  Publish(record);
}

absl::Status SandboxManager::Stop(const std::string& id) {
  std::shared_ptr<absl::Mutex> op = OpLock(id);
  absl::MutexLock op_lock(op.get());
  SandboxRecord record;
  {
    absl::MutexLock lock(&mu_);
    auto it = pods_.find(id);
    if (it == pods_.end()) {
      return absl::OkStatus();
    }
    record = it->second;
  }
  if (record.state() == SandboxRecord::NOTREADY && record.pause_pid() == 0 &&
      !record.network_attached() && !IsPinnedNamespace(record.netns_path())) {
    return absl::OkStatus();
  }
  absl::Status st = StopResources(&record, /*best_effort=*/false);
  record.set_state(SandboxRecord::NOTREADY);
  CRID_RETURN_IF_ERROR(Persist(record));
  Publish(record);
  if (st.ok()) {
    spdlog::info("pod sandbox {} stopped", id);
  }
  return st;
}

absl::Status SandboxManager::Remove(const std::string& id) {
  CRID_RETURN_IF_ERROR(Stop(id));
  std::shared_ptr<absl::Mutex> op = OpLock(id);
  absl::MutexLock op_lock(op.get());
  SandboxRecord record;
  {
    absl::MutexLock lock(&mu_);
    auto it = pods_.find(id);
    if (it == pods_.end()) {
      return absl::OkStatus();
    }
    record = it->second;
  }
  CRID_RETURN_IF_ERROR(RemoveResources(record));
  CRID_RETURN_IF_ERROR(store_->Delete(kSandboxBucket, id));
  {
    absl::MutexLock lock(&mu_);
    pods_.erase(id);
    auto it = runs_.find(MetadataKey(record.config().metadata()));
    if (it != runs_.end() && it->second->done.HasBeenNotified() && it->second->result.ok() &&
        *it->second->result == id) {
      runs_.erase(it);
    }
  }
  spdlog::info("pod sandbox {} removed", id);
  return absl::OkStatus();
}

absl::StatusOr<SandboxRecord> SandboxManager::Get(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find(id);
  if (it != pods_.end()) {
    return it->second;
  }
  if (!id.empty()) {
    auto first = pods_.lower_bound(id);
    if (first != pods_.end() && absl::StartsWith(first->first, id)) {
      auto next = std::next(first);
      if (next == pods_.end() || !absl::StartsWith(next->first, id)) {
        return first->second;
      }
      return absl::InvalidArgumentError(
          absl::StrCat("pod_sandbox_id: prefix \"", id, "\" matches more than one sandbox"));
    }
  }
  return absl::NotFoundError(absl::StrCat("pod sandbox \"", id, "\" not found"));
}

std::vector<SandboxRecord> SandboxManager::List(const runtime::v1::PodSandboxFilter& filter) const {
  std::vector<SandboxRecord> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, record] : pods_) {
    if (Matches(record, filter)) {
      out.push_back(record);
    }
  }
  return out;
}

}  // namespace crid::sandbox
