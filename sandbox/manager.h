// Pod sandboxes: the namespaces, files, network and (for PID mode POD) the
// crid-pause process that make a pod, with their lifecycle:
//
//   Run:  CREATING --(namespaces, files, sysctls, CNI ADD, pause)--> READY
//         any failure undoes every earlier step; a crash while CREATING is
//         undone on the next start.
//   Stop: READY -> NOTREADY (pause stopped, CNI DEL, netns removed); idempotent.
//   Remove: everything gone, record deleted; unknown IDs are fine.
//
// Every state change is persisted in the store before it is published; Status
// and List read an in-memory index and never touch the disk.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "base/fd_watch.h"
#include "base/worker_pool.h"
#include "cgroups/manager.h"
#include "cni/network.h"
#include "proto/cri_api.pb.h"
#include "sandbox/pause_process.h"
#include "sandbox/sandbox.pb.h"
#include "store/store.h"

namespace crid::sandbox {

struct SandboxOptions {
  // Per-pod files under STATE/pods/<id>, IPC/UTS namespaces under STATE/ns/<id>.
  std::string state_dir;
  // Network namespaces, where `ip netns` finds them.
  std::string netns_dir = "/run/netns";
  // crid-pause; empty means PID mode POD is refused.
  std::string pause_binary;
  uint64_t shm_size_bytes = 64ull << 20;
  std::string host_resolv_conf = "/etc/resolv.conf";
  // Interface name inside the pod.
  std::string ifname = "eth0";
  // Threads for Run/Stop/Remove, and how many requests may wait for one.
  size_t workers = 4;
  size_t max_queued = 256;
  // Where crid-pause processes go (see SetCgroupManager); given here so that
  // recovery can remove the cgroups of pods it tears down. Not owned.
  CgroupManager* cgroups = nullptr;
};

// Work a subsystem above the sandbox manager does for each new pod beside the
// pod's own set-up (the container manager starts the pod's crid-shim, so its
// first container finds it listening). See SandboxManager::SetPodStartHook.
struct PodStartWork {
  // Called once the pod is READY and committed; failures are the work's to
  // log and undo (the pod stands).
  absl::AnyInvocable<void() &&> ready;
  // Called instead when the pod's creation fails; leaves nothing behind.
  absl::AnyInvocable<void() &&> abort;
};
// (pod ID, the pod's cgroup_parent) -> the work begun for it.
using PodStartHook =
    std::function<PodStartWork(const std::string& pod_id, const std::string& cgroup_parent)>;

// The store bucket of sandbox records (key: sandbox ID).
inline constexpr char kSandboxBucket[] = "pods";

class SandboxManager {
 public:
  // Puts each pod's crid-pause into the pod's cgroup (kubelet's
  // cgroup_parent): a `crid-pause-<pod id>` scope or directory. Not owned;
  // without one (or without a cgroup_parent) crid-pause stays in crid's.
  void SetCgroupManager(CgroupManager* cgroups) { cgroups_ = cgroups; }

  // Called for every new pod right after its first record commit, so that a
  // crash from then on is cleaned up by recovery (the pod's, then whatever the
  // hook's owner recovers for a pod that is gone), and before its namespaces
  // and network, which the work then runs alongside. Set by the container
  // manager; nullptr clears it.
  void SetPodStartHook(PodStartHook hook) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    pod_start_hook_ = std::move(hook);
  }

  // Loads every record; finishes the teardown of pods whose creation was cut
  // short by a crash; marks pods whose pause process died NOTREADY. Then
  // removes what a crash left that no record owns: crid-pause processes of
  // this state directory (with their cgroups and network namespace pins),
  // pod directories and namespace directories, and temporary files in the
  // pod directories that remain.
  static absl::StatusOr<std::unique_ptr<SandboxManager>> Create(SandboxOptions options,
                                                                Store* store, cni::CniManager* cni);

  // The config must have passed ValidatePodSandboxConfig. A retry with the same
  // metadata (name, namespace, uid, attempt) while the first call is still
  // working waits for it; after it finished, it gets the same sandbox ID.
  absl::StatusOr<std::string> Run(const runtime::v1::PodSandboxConfig& config,
                                  const std::string& runtime_handler);
  // OK for unknown IDs and for pods already stopped.
  absl::Status Stop(const std::string& id);
  // OK for unknown IDs.
  absl::Status Remove(const std::string& id);

  // By full ID or unique prefix. NOT_FOUND when absent.
  absl::StatusOr<SandboxRecord> Get(const std::string& id) const;
  std::vector<SandboxRecord> List(const runtime::v1::PodSandboxFilter& filter) const;

  cni::CniManager* cni() const { return cni_; }
  // Where the gRPC layer runs the blocking calls above.
  WorkerPool* pool() const { return pool_.get(); }
  const SandboxOptions& options() const { return options_; }

 private:
  struct InFlight {
    absl::Notification done;
    absl::StatusOr<std::string> result;
  };

  SandboxManager(SandboxOptions options, Store* store, cni::CniManager* cni)
      : options_(std::move(options)), store_(store), cni_(cni) {}

  absl::StatusOr<std::string> RunLocked(const runtime::v1::PodSandboxConfig& config,
                                        const std::string& runtime_handler);
  absl::Status Persist(const SandboxRecord& record);
  // Stops pause, runs CNI DEL and removes the netns; updates `record`.
  absl::Status StopResources(SandboxRecord* record, bool best_effort);
  // Everything else: shm, IPC/UTS namespaces, files, directories.
  absl::Status RemoveResources(const SandboxRecord& record);
  // Recovery, after the records are loaded: `pauses` are the crid-pause
  // processes found running for this state directory.
  void RemoveLeftovers(const std::vector<FoundPause>& pauses);
  void StopOrphanPause(const FoundPause& pause, const SandboxRecord* record);
  void RemoveUnknownStateDirs(const std::map<std::string, SandboxRecord>& known);
  std::shared_ptr<absl::Mutex> OpLock(const std::string& id);
  void Publish(const SandboxRecord& record);
  // Watches a READY pod's crid-pause through a pidfd: its exit makes the pod
  // NOTREADY (kubelet then recreates it). A pause whose PID now names another
  // process counts as exited.
  void WatchPause(const SandboxRecord& record);
  void UnwatchPause(const std::string& id);
  void OnPauseExit(const std::string& id, pid_t pid);

  const SandboxOptions options_;
  Store* const store_;
  cni::CniManager* const cni_;

  mutable absl::Mutex mu_;
  std::map<std::string, SandboxRecord> pods_ ABSL_GUARDED_BY(mu_);
  PodStartHook pod_start_hook_ ABSL_GUARDED_BY(mu_);
  // Metadata key -> in-flight or finished Run.
  std::map<std::string, std::shared_ptr<InFlight>> runs_ ABSL_GUARDED_BY(mu_);
  // Serializes Stop/Remove of one pod.
  std::map<std::string, std::shared_ptr<absl::Mutex>> op_locks_ ABSL_GUARDED_BY(mu_);
  // pod ID -> key of its crid-pause's pidfd in pause_watch_.
  std::map<std::string, uint64_t> pause_watches_ ABSL_GUARDED_BY(mu_);
  // Declared last: destroyed first, finishing queued work while the rest lives.
  std::unique_ptr<WorkerPool> pool_;
  std::atomic<CgroupManager*> cgroups_{nullptr};
  // Destroyed before the pool: no pause exit is handled after that.
  std::unique_ptr<FdWatch> pause_watch_ = std::make_unique<FdWatch>();
};

// "name_namespace_uid_attempt": the identity kubelet retries with.
std::string MetadataKey(const runtime::v1::PodSandboxMetadata& md);

// The cgroup name (`crid-<name>`) of a pod's crid-pause and of its shim.
inline std::string PauseCgroupName(const std::string& pod_id) { return "pause-" + pod_id; }
inline std::string ShimCgroupName(const std::string& pod_id) { return "shim-" + pod_id; }

// The pod's CNI attachment as RunPodSandbox set it up and StopPodSandbox tears
// it down (also for `crid cleanup`, which tears down what a dead crid left).
cni::Attachment AttachmentFor(const SandboxRecord& record);

}  // namespace crid::sandbox
