// Each pod's crid-shim as ContainerManager sees it: starting it with the pod
// (BeginPodShim), finding or launching it (placed in the pod's cgroup),
// subscribing to its event stream, and what happens when that stream ends
// because the shim died.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/logging.h"
#include "container/manager.h"
#include "container/manager_internal.h"
#include "spdlog/spdlog.h"

namespace crid::container {

namespace {

using manager_internal::NowNs;
using manager_internal::ShortId;

}  // namespace

std::string ContainerManager::ShimDir(const std::string& pod_id) const {
  // Half the ID keeps DIR/shim.sock within the 108 bytes of a socket address.
  return absl::StrCat(options_.shim_dir, "/", pod_id.substr(0, 32));
}

size_t ContainerManager::ShimCount() const {
  absl::MutexLock lock(&mu_);
  return shims_.size();
}

absl::StatusOr<std::shared_ptr<shim::ShimClient>> ContainerManager::ShimFor(
    const std::string& pod_id, bool launch) {
  {
    absl::MutexLock lock(&mu_);
    auto it = shims_.find(pod_id);
    if (it != shims_.end()) {
      return it->second;
    }
  }
  if (!launch) {
    return absl::NotFoundError(absl::StrCat("pod ", pod_id, " has no shim"));
  }
  std::shared_ptr<absl::Mutex> launch_mu = ShimLaunchLock(pod_id);
  absl::MutexLock launch_lock(launch_mu.get());
  {
    absl::MutexLock lock(&mu_);
    auto it = shims_.find(pod_id);
    if (it != shims_.end()) {
      return it->second;
    }
  }
  shim::LaunchOptions launch_options;
  launch_options.binary = options_.shim_binary;
  launch_options.pod_id = pod_id;
  launch_options.dir = ShimDir(pod_id);
  absl::StatusOr<std::unique_ptr<shim::ShimClient>> client =
      shim::ShimClient::Launch(launch_options);
  if (!client.ok()) {
    return Annotate(client.status(), absl::StrCat("starting crid-shim for pod ", pod_id));
  }
  return AdoptShim(pod_id, std::move(*client));
}

std::shared_ptr<absl::Mutex> ContainerManager::ShimLaunchLock(const std::string& pod_id) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<absl::Mutex>& slot = shim_launch_locks_[pod_id];
  if (slot == nullptr) {
    slot = std::make_shared<absl::Mutex>();
  }
  return slot;
}

absl::StatusOr<std::shared_ptr<shim::ShimClient>> ContainerManager::AdoptShim(
    const std::string& pod_id, std::unique_ptr<shim::ShimClient> client) {
  std::shared_ptr<shim::ShimClient> shared = std::move(client);
  // The shim works for the pod: it goes into the pod's cgroup, as kubelet
  // accounts pod overhead. A shim that cannot be placed is not used.
  if (std::string parent = PodCgroupParent(pod_id); !parent.empty()) {
    CgroupManager* cgroups = cgroups_.load();
    absl::StatusOr<std::string> placed = cgroups->PlaceProcess(
        sandbox::ShimCgroupName(pod_id), parent, shared->pid(), CgroupResources());
    if (!placed.ok()) {
      (void)shared->Shutdown();
      return Annotate(placed.status(), "placing crid-shim in the pod's cgroup");
    }
  }
  Subscribe(pod_id, shared.get());
  bool restart = false;
  {
    absl::MutexLock lock(&mu_);
    shims_[pod_id] = shared;
    restart = dead_shim_pods_.erase(pod_id) > 0;
  }
  if (metrics::ShimMetrics* metrics = shim_metrics_.load(); metrics != nullptr) {
    metrics->RecordLaunch(restart);
  }
  return shared;
}

sandbox::PodStartWork ContainerManager::BeginPodShim(const std::string& pod_id) {
  shim::LaunchOptions launch;
  launch.binary = options_.shim_binary;
  launch.pod_id = pod_id;
  launch.dir = ShimDir(pod_id);
  auto pending =
      std::make_shared<absl::StatusOr<shim::PendingLaunch>>(shim::ShimClient::BeginLaunch(launch));
  sandbox::PodStartWork work;
  // At READY the pod's cgroup exists (kubelet made it) and the pod's record
  // is published, so the shim is placed and kept as ShimFor would.
  work.ready = [this, pending, pod_id]() {
    absl::Status st = pending->status();
    if (st.ok()) {
      std::shared_ptr<absl::Mutex> launch_mu = ShimLaunchLock(pod_id);
      absl::MutexLock launch_lock(launch_mu.get());
      absl::StatusOr<std::unique_ptr<shim::ShimClient>> client =
          shim::ShimClient::FinishLaunch(std::move(**pending));
      st = client.ok() ? AdoptShim(pod_id, std::move(*client)).status() : client.status();
    }
    if (!st.ok()) {
      // The pod stands; its first container starts a shim as before.
      spdlog::warn("pod {}: crid-shim started with the pod is not used: {}", ShortId(pod_id),
                   st.message());
      (void)RemovePod(pod_id);
    }
  };
  // The pod failed: its shim was never placed or kept.
  work.abort = [this, pending, pod_id]() {
    if (pending->ok()) {
      absl::StatusOr<std::unique_ptr<shim::ShimClient>> client =
          shim::ShimClient::FinishLaunch(std::move(**pending));
      if (client.ok()) {
        (void)(*client)->Shutdown();
      }
    }
    (void)RemoveTree(ShimDir(pod_id));
  };
  return work;
}

void ContainerManager::Subscribe(const std::string& pod_id, shim::ShimClient* client) {
  absl::StatusOr<UniqueFd> stream = client->Subscribe();
  if (!stream.ok()) {
    // Exits are then only seen by Stop and after a restart.
    spdlog::error("pod {}: cannot subscribe to its shim's events: {}", ShortId(pod_id),
                  stream.status().message());
    return;
  }
  events_->Watch(pod_id, std::move(*stream));
}

void ContainerManager::OnShimStreamClosed(const std::string& pod_id) {
  // Checking the shim and killing what it ran take runtime calls: not on the
  // event thread.
  if (!pool_->Submit([this, pod_id] { HandleShimDeath(pod_id); })) {
    HandleShimDeath(pod_id);
  }
}

void ContainerManager::HandleShimDeath(const std::string& pod_id) {
  std::shared_ptr<shim::ShimClient> client;
  {
    absl::MutexLock lock(&mu_);
    auto it = shims_.find(pod_id);
    if (it == shims_.end()) {
      return;  // the pod was removed
    }
    client = it->second;
  }
  if (client->Ping().ok()) {
    // The shim lives; only its stream broke.
    Subscribe(pod_id, client.get());
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = shims_.find(pod_id);
    if (it != shims_.end() && it->second == client) {
      shims_.erase(it);
      dead_shim_pods_.insert(pod_id);
    }
  }
  runtime::v1::ContainerFilter filter;
  filter.set_pod_sandbox_id(pod_id);
  std::vector<RecordSnapshot> containers = List(filter);
  bool ran_something = std::any_of(containers.begin(), containers.end(), [&](const auto& c) {
    return c->pod_id() == pod_id && c->state() != ContainerRecord::EXITED;
  });
  if (ran_something) {
    spdlog::error("pod {}: its crid-shim (pid {}) is gone; killing the containers it ran",
                  ShortId(pod_id), client->pid());
    if (metrics::ShimMetrics* metrics = shim_metrics_.load(); metrics != nullptr) {
      metrics->RecordUnexpectedExit();
    }
  } else {
    // kubelet kills every process of a finished pod's cgroup, the shim's
    // included, before it removes the containers: nothing is lost.
    spdlog::info("pod {}: its crid-shim (pid {}) exited after its containers", ShortId(pod_id),
                 client->pid());
  }
  for (const RecordSnapshot& listed : containers) {
    if (listed->pod_id() != pod_id) {
      continue;
    }
    std::shared_ptr<absl::Mutex> op = OpLock(listed->id());
    absl::MutexLock op_lock(op.get());
    absl::StatusOr<ContainerRecord> record = Get(listed->id());
    if (!record.ok()) {
      continue;
    }
    if (record->state() == ContainerRecord::EXITED) {
      // Its runtime state would have gone with the shim's Delete; a new shim
      // for the pod does not know it.
      if (absl::StatusOr<const OciRuntimeConfig*> handler = Handler(record->runtime_handler());
          handler.ok()) {
        (void)OciRuntime(**handler).Delete(record->id(), /*force=*/true);
      }
      continue;
    }
    // An exit the shim saw before it went is in its exit records.
    absl::StatusOr<shim::ContainerState> recorded =
        shim::ShimClient::ReadExitRecord(ShimDir(pod_id), record->id());
    if (recorded.ok()) {
      RecordExit(record->id(), *recorded);
      continue;
    }
    // Nobody holds its stdio or would see it exit: it is killed, with its
    // runtime state, as a shim's cleanup does.
    absl::StatusOr<const OciRuntimeConfig*> handler = Handler(record->runtime_handler());
    std::string outcome = "crid killed it";
    if (handler.ok()) {
      if (absl::Status st = OciRuntime(**handler).Delete(record->id(), /*force=*/true); !st.ok()) {
        outcome = absl::StrCat("killing it failed: ", st.message());
        spdlog::error("container {}: {}", ShortId(record->id()), outcome);
      }
    } else {
      outcome = absl::StrCat("it could not be killed: ", handler.status().message());
    }
    shim::ContainerState lost;
    lost.set_id(record->id());
    lost.set_status(shim::ContainerState::EXITED);
    lost.set_exit_code(137);
    lost.set_finished_at_ns(NowNs());
    RecordExit(record->id(), lost, "ShimExited",
               absl::StrCat("the pod's crid-shim exited unexpectedly; ", outcome));
  }
}

std::string ContainerManager::PodCgroupParent(const std::string& pod_id) const {
  if (cgroups_.load() == nullptr) {
    return "";
  }
  absl::StatusOr<sandbox::SandboxRecord> pod = sandboxes_->Get(pod_id);
  return pod.ok() ? pod->config().linux().cgroup_parent() : "";
}

}  // namespace crid::container
