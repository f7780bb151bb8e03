// Containers: turns CRI requests into OCI bundles on overlayfs rootfs and runs
// them through the pod's crid-shim, with their lifecycle:
//
//   Create: CREATING --(rootfs, config.json, shim create)--> CREATED
//           any failure undoes every earlier step; a crash while CREATING is
//           undone on the next start.
//   Start:  CREATED -> RUNNING; the shim's exit event moves it to EXITED.
//   Stop:   stop signal, SIGKILL after the timeout -> EXITED; idempotent.
//   Remove: killed if running, runtime state, rootfs and record gone.
//
// Records are persisted in the store before a change is published; Status and
// List read memory. Exits arrive as events each pod's shim pushes over one
// stream (ShimEventLoop: one thread for every shim). A stream that ends means
// the shim died: what it ran is killed through the OCI runtime and recorded as
// exited, and the pod's next container gets a new shim. After a restart every
// record is matched against its pod's shim: exits that happened while crid was
// down are taken from the shim (or its exit records).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "base/stream_io.h"
#include "base/worker_pool.h"
#include "cdi/cdi.h"
#include "cgroups/driver.h"
#include "cgroups/manager.h"
#include "container/apparmor.h"
#include "container/container.pb.h"
#include "container/handler_features.h"
#include "container/selinux.h"
#include "container/shim_events.h"
#include "image/image_store.h"
#include "metrics/metrics.h"
#include "oci/oci_runtime.h"
#include "proto/cri_api.pb.h"
#include "proto/shim.pb.h"
#include "sandbox/manager.h"
#include "shim/client.h"
#include "store/store.h"

namespace crid::container {

// A container's record as it was at one moment; never edited in place.
using RecordSnapshot = std::shared_ptr<const ContainerRecord>;

struct ContainerOptions {
  // Bundles and writable layers: ROOT/containers/<id>.
  std::string root_dir;
  // Shim directories: STATE/shims/<pod id>.
  std::string shim_dir;
  // crid's state directory (STATE): the generated AppArmor profile lives in
  // STATE/apparmor.
  std::string state_dir;
  std::string shim_binary;
  // CRI handler name -> runtime. The pod's handler ("" = default) picks one.
  std::map<std::string, OciRuntimeConfig> handlers;
  std::string default_handler = "runc";
  CgroupDriver cgroup_driver = CgroupDriver::kCgroupfs;
  size_t workers = 16;
  size_t max_queued = 1024;
  size_t exec_output_limit = size_t{8} << 20;
  // Exec enters runc containers from the shim, which also starts them without
  // `runc start` (container.native_exec); false runs the runtime for both.
  bool native_exec = true;
  // CDI spec directories; a later one wins for the same device.
  std::vector<std::string> cdi_spec_dirs = DefaultCdiSpecDirs();
};

// The store bucket of container records (key: container ID).
inline constexpr char kContainerBucket[] = "containers";

// The changes GetContainerEvents reports.
enum class ContainerEventKind { kCreated, kStarted, kStopped, kDeleted };
using ContainerObserver = std::function<void(const ContainerRecord&, ContainerEventKind)>;

// What ExecSync returns.
struct ExecResult {
  int exit_code = 0;
  std::string stdout_data;
  std::string stderr_data;
};

class ContainerManager {
 public:
  // Loads every record and reconciles it with the shims (see above).
  static absl::StatusOr<std::unique_ptr<ContainerManager>> Create(
      ContainerOptions options, Store* store, sandbox::SandboxManager* sandboxes,
      ImageStore* images);
  ~ContainerManager();

  // The request must name a READY pod. A retry with the same metadata while the
  // first call still works waits for it; afterwards it gets the same ID.
  absl::StatusOr<std::string> Create(const std::string& pod_id,
                                     const runtime::v1::ContainerConfig& config,
                                     const runtime::v1::PodSandboxConfig& sandbox_config);
  absl::Status Start(const std::string& id);
  // Stop signal, then SIGKILL once `timeout` passed (0: at once). OK when the
  // container already exited. StopAsync waits on nothing: `done` runs once
  // the shim's exit event arrives (or with an error when even SIGKILL did not
  // end it), so a long grace period holds no thread. Stop waits for it.
  using StopDone = absl::AnyInvocable<void(absl::Status) &&>;
  void StopAsync(const std::string& id, absl::Duration timeout, StopDone done);
  absl::Status Stop(const std::string& id, absl::Duration timeout);
  // OK for unknown IDs.
  absl::Status Remove(const std::string& id);
  absl::StatusOr<ExecResult> ExecSync(const std::string& id, const std::vector<std::string>& cmd,
                                      absl::Duration timeout);
  absl::Status UpdateResources(const std::string& id,
                               const runtime::v1::LinuxContainerResources& resources);
  absl::Status ReopenLog(const std::string& id);
  // Writes a checkpoint archive of the running container to `location`
  // (checkpoint_container.cc); the container keeps running. FAILED_PRECONDITION
  // when it is not running or CRIU cannot run on this host. A container whose
  // config names a checkpoint archive as its image is created from it and
  // restored by Start.
  absl::Status Checkpoint(const std::string& id, const std::string& location,
                          absl::Duration timeout);
  // Interactive exec and attach through the pod's shim: the session's
  // descriptors go to the shim as they are; terminal sizes from io.resize are
  // forwarded; io.done_fd ends the session early.
  absl::StatusOr<int> ExecStream(const std::string& id, const std::vector<std::string>& cmd,
                                 streaming::StreamIo io);
  absl::Status Attach(const std::string& id, streaming::StreamIo io);

  // Every container of a pod: stopped with no grace (StopPodSandbox), or
  // removed together with the pod's shim (RemovePodSandbox).
  absl::Status StopPod(const std::string& pod_id);
  absl::Status RemovePod(const std::string& pod_id);

  // By full ID or unique prefix; NOT_FOUND when absent. Find shares the
  // snapshot; Get copies it.
  absl::StatusOr<ContainerRecord> Get(const std::string& id) const;
  absl::StatusOr<RecordSnapshot> Find(const std::string& id) const;
  // The matching records as they are now: shared, immutable snapshots (a
  // state change replaces a container's record, it never edits one in place),
  // so listing copies pointers, not configs, under the lock.
  std::vector<RecordSnapshot> List(const runtime::v1::ContainerFilter& filter) const;

  // Chain IDs of the layers under every container's rootfs (image GC keeps them).
  std::set<std::string> LayersInUse() const;

  // The handlers, as Status reports them (sorted by name).
  std::vector<std::string> HandlerNames() const;
  // What a handler ("" = the default) offers, probed once at start.
  HandlerFeatures Features(const std::string& handler) const;

  // Told of every create, start, exit and removal, after the record is
  // published, one at a time and in the order the states changed (the
  // manager's other locks are not held). Setting it (nullptr to stop) waits
  // for a call in progress: once it returns the old observer is never called.
  void SetObserver(ContainerObserver observer);

  // Counts shim launches, restarts and unexpected exits. Not owned; null
  // (the default) counts nothing.
  void SetShimMetrics(metrics::ShimMetrics* metrics) { shim_metrics_.store(metrics); }
  // The shims crid runs now (one per pod with containers).
  size_t ShimCount() const;

  // Puts each pod's shim into the pod's cgroup (kubelet's cgroup_parent) as
  // `crid-shim-<pod id>`. Not owned; without one the shims stay in crid's.
  void SetCgroupManager(CgroupManager* cgroups) { cgroups_ = cgroups; }

  WorkerPool* pool() const { return pool_.get(); }
  const ContainerOptions& options() const { return options_; }

 private:
  struct InFlight {
    absl::Notification done;
    absl::StatusOr<std::string> result;
  };

  ContainerManager(ContainerOptions options, Store* store, sandbox::SandboxManager* sandboxes,
                   ImageStore* images)
      : options_(std::move(options)),
        store_(store),
        sandboxes_(sandboxes),
        images_(images),
        cdi_(options_.cdi_spec_dirs),
        apparmor_(DetectAppArmor(options_.state_dir)),
        selinux_(DetectSELinux()) {}

  absl::Status Recover();
  // An unpacked checkpoint archive and the config the container is created
  // with from it (checkpoint_container.cc).
  struct RestoreSource {
    std::string dir;
    runtime::v1::ContainerConfig config;
  };
  absl::StatusOr<std::string> CreateLocked(const std::string& pod_id,
                                           const runtime::v1::ContainerConfig& config,
                                           const runtime::v1::PodSandboxConfig& sandbox_config,
                                           const RestoreSource* restore = nullptr);
  // Unpacks the archive `config` names as its image into a new directory
  // under the root and derives the container's config from it.
  absl::StatusOr<RestoreSource> PrepareRestore(const runtime::v1::ContainerConfig& config);
  // Moves the unpacked archive into the new container's directory and applies
  // its rootfs diff to the (not yet mounted) writable layer.
  absl::Status AdoptRestore(const RestoreSource& restore, ContainerRecord* record);
  // Mounts the image volumes (Mount.image) of `config` under the record's
  // directory, leasing their images, and returns the config the spec is built
  // from: `config` itself when it has none, else `with_volumes`, whose image
  // mounts bind what was mounted. The record keeps the images' layers
  // (volume_chain_ids) and each mount's image_ref.
  absl::StatusOr<const runtime::v1::ContainerConfig*> MountImageVolumes(
      const runtime::v1::ContainerConfig& config, ContainerRecord* record,
      runtime::v1::ContainerConfig* with_volumes, std::vector<ImageLease>* leases);
  // `runtime create` (or, with `checkpoint_dir`, `runtime restore`) of the
  // record's bundle in the pod's shim; its pid goes into `record`.
  absl::Status CreateInShim(ContainerRecord* record, const OciRuntimeConfig& runtime,
                            const std::string& cgroup_parent, const std::string& checkpoint_dir);
  // Start of a restored container: the pod's shim restores it from the
  // checkpoint; its pid goes into `record`.
  absl::Status RestoreInShim(ContainerRecord* record);
  absl::StatusOr<const OciRuntimeConfig*> Handler(const std::string& name) const;
  // The pod's shim directory: STATE/shims/<first 32 characters of the pod ID>.
  std::string ShimDir(const std::string& pod_id) const;
  // The pod's shim, started on first use.
  absl::StatusOr<std::shared_ptr<shim::ShimClient>> ShimFor(const std::string& pod_id, bool launch);
  // Places a shim that answers in the pod's cgroup, subscribes to its events
  // and keeps it as the pod's; the caller holds the pod's launch lock.
  absl::StatusOr<std::shared_ptr<shim::ShimClient>> AdoptShim(
      const std::string& pod_id, std::unique_ptr<shim::ShimClient> client);
  std::shared_ptr<absl::Mutex> ShimLaunchLock(const std::string& pod_id);
  // The sandbox manager's pod start hook: spawns a new pod's crid-shim.
  sandbox::PodStartWork BeginPodShim(const std::string& pod_id);
  absl::Status Persist(const ContainerRecord& record);
  void Publish(const ContainerRecord& record);
  // Records an exit the shim reported; persists and publishes. `reason` and
  // `message` (when set) say why, instead of the exit code.
  void RecordExit(const std::string& id, const shim::ContainerState& state,
                  const std::string& reason = "", const std::string& message = "");
  // Opens the pod's shim event stream and hands it to the event loop.
  void Subscribe(const std::string& pod_id, shim::ShimClient* client);
  // Event loop handlers (ShimEventLoop::Handlers).
  void OnShimMessage(const std::string& pod_id, const shim::Response& message);
  void OnShimStreamClosed(const std::string& pod_id);
  // The pod's shim stopped answering: kills its containers through the OCI
  // runtime, records their exits and forgets the shim.
  void HandleShimDeath(const std::string& pod_id);
  void Notify(const ContainerRecord& record, ContainerEventKind kind) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(events_mu_);
  // Completes (and forgets) the stops waiting for container `id`.
  void FinishStops(const std::string& id, const absl::Status& status);
  // The one thread behind every stop's deadline: SIGKILL when the grace period
  // is over, an error when even that did not end the container.
  void RunStopTimer();
  // Asks the pod's shim whether the container exited (an event that never
  // came); records the exit if so.
  bool CheckExited(const std::string& id, const std::string& pod_id);
  // Undoes what a (possibly half-done) container made: runtime state, rootfs,
  // directory, record.
  absl::Status Destroy(const ContainerRecord& record);
  std::shared_ptr<absl::Mutex> OpLock(const std::string& id);
  // The pod's cgroup_parent when its crid processes are placed ("" if not).
  std::string PodCgroupParent(const std::string& pod_id) const;

  const ContainerOptions options_;
  // Set in Create before anything else runs; read-only afterwards.
  std::map<std::string, HandlerFeatures> features_;
  Store* const store_;
  sandbox::SandboxManager* const sandboxes_;
  ImageStore* const images_;
  // CDI spec files, reread when they change; thread-safe.
  CdiRegistry cdi_;
  // The host's LSMs, probed once: whether AppArmor or SELinux is on does not
  // change while crid runs (whether a profile is loaded is asked at each use).
  const AppArmorHost apparmor_;
  const SELinuxHost selinux_;

  // Held from a state change through its Notify, so a container's events
  // reach the observer in the order its state changed (an exit racing its
  // StartContainer is reported after the start).
  absl::Mutex events_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::map<std::string, RecordSnapshot> containers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<InFlight>> creates_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<absl::Mutex>> op_locks_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<shim::ShimClient>> shims_ ABSL_GUARDED_BY(mu_);
  // Pods whose shim died and has not been replaced: their next launch is a
  // restart (ShimMetrics).
  std::set<std::string> dead_shim_pods_ ABSL_GUARDED_BY(mu_);
  std::atomic<metrics::ShimMetrics*> shim_metrics_{nullptr};
  // One launch at a time per pod (the pod gets one shim); pods launch theirs
  // in parallel. Entries go with the pod (RemovePod).
  std::map<std::string, std::shared_ptr<absl::Mutex>> shim_launch_locks_ ABSL_GUARDED_BY(mu_);
  ContainerObserver observer_ ABSL_GUARDED_BY(events_mu_);
  // Stops waiting for an exit, by container ID.
  struct PendingStop {
    std::string pod_id;
    absl::Time deadline;
    bool killed = false;  // SIGKILL was sent; the deadline is the last one
    std::vector<StopDone> done;
  };
  std::map<std::string, PendingStop> stops_ ABSL_GUARDED_BY(mu_);
  absl::CondVar stops_changed_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::thread stop_timer_;
  std::atomic<uint64_t> next_session_{1};
  std::atomic<CgroupManager*> cgroups_{nullptr};
  // Declared last: destroyed first, finishing queued work while the rest lives.
  std::unique_ptr<WorkerPool> pool_;
  // Stopped first of all in the destructor: its handlers use the rest.
  std::unique_ptr<ShimEventLoop> events_;
};

// "name_podname_podnamespace_poduid_attempt": a container's identity in its pod.
std::string ContainerKey(const runtime::v1::ContainerMetadata& md,
                         const runtime::v1::PodSandboxMetadata& pod);

// A signal by name ("SIGTERM", "TERM", "SIGRTMIN+3") or number; 0 if unknown.
int SignalNumber(absl::string_view name);

// CRI's state for a record.
runtime::v1::ContainerState CriState(ContainerRecord::State state);

// The streaming server's exec and attach, served by the container manager.
// Port forwarding is the pod's business (SandboxStreamingRuntime).
class ContainerStreams final : public streaming::StreamingRuntime {
 public:
  explicit ContainerStreams(ContainerManager* containers) : containers_(containers) {}

  absl::StatusOr<int> Exec(const std::string& container_id, const std::vector<std::string>& cmd,
                           streaming::StreamIo io) override {
    return containers_->ExecStream(container_id, cmd, std::move(io));
  }
  absl::Status Attach(const std::string& container_id, streaming::StreamIo io) override {
    return containers_->Attach(container_id, std::move(io));
  }
  absl::StatusOr<UniqueFd> PortForward(const std::string& pod_sandbox_id, int32_t port) override {
    return absl::UnimplementedError("port forwarding is served by the pod sandbox");
  }

 private:
  ContainerManager* const containers_;
};

}  // namespace crid::container
