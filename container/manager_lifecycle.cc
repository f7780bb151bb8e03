// Start, stop and remove: a container's state changes after its create, the
// stop deadlines (one timer thread for all), tearing down a container and
// every container of a pod, resource updates and log reopening.
#include <signal.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/logging.h"
#include "container/image_volume.h"
#include "container/manager.h"
#include "container/manager_internal.h"
#include "container/oci_spec.h"
#include "container/rootfs.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace crid::container {

namespace {

namespace v1 = ::runtime::v1;
using json = nlohmann::json;
using manager_internal::NowNs;
using manager_internal::ShortId;

// After SIGKILL, how long a container may take to be reaped.
constexpr absl::Duration kKillWait = absl::Seconds(30);

}  // namespace

absl::Status ContainerManager::Destroy(const ContainerRecord& record) {
  absl::StatusOr<std::shared_ptr<shim::ShimClient>> client = ShimFor(record.pod_id(), false);
  // The shim deletes what it runs (and answers OK for what it does not know).
  absl::Status deleted = client.ok() ? (*client)->Delete(record.id()) : client.status();
  if (!deleted.ok()) {
    // No shim to ask (gone, or killed with the pod's cgroup by kubelet before
    // it removes the containers): the runtime's state goes without it.
    absl::StatusOr<const OciRuntimeConfig*> handler = Handler(record.runtime_handler());
    if (!handler.ok()) {
      return Annotate(handler.status(), absl::StrCat("deleting container ", record.id()));
    }
    if (absl::Status st = OciRuntime(**handler).Delete(record.id(), /*force=*/true); !st.ok()) {
      return Annotate(st, absl::StrCat("deleting container ", record.id()));
    }
  }
  if (!record.dir().empty()) {
    // Image volumes first: removing the directory must never reach into them.
    CRID_RETURN_IF_ERROR(RemoveImageVolumes(record.dir()));
    CRID_RETURN_IF_ERROR(RemoveOverlayRootfs(record.dir()));
    CRID_RETURN_IF_ERROR(RemoveTree(record.dir()));
  }
  CRID_RETURN_IF_ERROR(store_->Delete(kContainerBucket, record.id()));
  bool was_published = false;
  absl::ReleasableMutexLock events_lock(&events_mu_);
  {
    absl::MutexLock lock(&mu_);
    was_published = containers_.erase(record.id()) != 0;
    op_locks_.erase(record.id());
    for (auto it = creates_.begin(); it != creates_.end();) {
      if (it->second->done.HasBeenNotified() && it->second->result.ok() &&
          *it->second->result == record.id()) {
        it = creates_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (was_published) {
    Notify(record, ContainerEventKind::kDeleted);
  }
  events_lock.Release();
  FinishStops(record.id(), absl::OkStatus());
  return absl::OkStatus();
}

absl::Status ContainerManager::Start(const std::string& id) {
  CRID_ASSIGN_OR_RETURN(ContainerRecord record, Get(id));
  std::shared_ptr<absl::Mutex> op = OpLock(record.id());
  absl::MutexLock op_lock(op.get());
  CRID_ASSIGN_OR_RETURN(record, Get(record.id()));
  if (record.state() != ContainerRecord::CREATED) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", record.id(), " is ",
                     v1::ContainerState_Name(CriState(record.state())), ", not CONTAINER_CREATED"));
  }
  // A restored container may be the first of its pod to run: its shim is launched then.
  const bool restore = !record.restore_dir().empty();
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<shim::ShimClient> client,
                        ShimFor(record.pod_id(), restore));
  if (absl::Status st = restore ? RestoreInShim(&record) : client->Start(record.id()); !st.ok()) {
    record.set_state(ContainerRecord::EXITED);
    record.set_exit_code(128);
    record.set_reason("StartError");
    record.set_message(std::string(st.message()));
    record.set_finished_at_ns(NowNs());
    (void)Persist(record);
    Publish(record);
    return st;
  }
  absl::StatusOr<shim::ContainerState> state = client->State(record.id());
  int64_t started = state.ok() && state->started_at_ns() != 0 ? state->started_at_ns() : NowNs();
  absl::MutexLock events_lock(&events_mu_);
  {
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(record.id());
    // Its exit event may have come first (a container that exits at once):
    // the exit stands, and RecordExit has reported the start with it.
    bool exited = it != containers_.end() && it->second->state() == ContainerRecord::EXITED;
    if (exited) {
      record = *it->second;
    } else {
      record.set_state(ContainerRecord::RUNNING);
    }
    if (record.started_at_ns() == 0) {
      record.set_started_at_ns(started);
    }
    CRID_RETURN_IF_ERROR(Persist(record));
    containers_[record.id()] = std::make_shared<const ContainerRecord>(record);
    if (exited) {
      return absl::OkStatus();
    }
  }
  spdlog::info("container {} started", ShortId(record.id()));
  Notify(record, ContainerEventKind::kStarted);
  return absl::OkStatus();
}

void ContainerManager::StopAsync(const std::string& id, absl::Duration timeout, StopDone done) {
  absl::StatusOr<ContainerRecord> record = Get(id);
  if (!record.ok()) {
    std::move(done)(record.status());
    return;
  }
  std::shared_ptr<absl::Mutex> op = OpLock(record->id());
  absl::MutexLock op_lock(op.get());
  record = Get(record->id());
  if (!record.ok() || record->state() == ContainerRecord::EXITED) {
    std::move(done)(record.ok() ? absl::OkStatus() : record.status());
    return;
  }
  if (record->state() == ContainerRecord::CREATED && !record->restore_dir().empty()) {
    // Its restore never started: there is no process to signal.
    shim::ContainerState never;
    never.set_status(shim::ContainerState::EXITED);
    never.set_exit_code(255);
    never.set_finished_at_ns(NowNs());
    RecordExit(record->id(), never, "Error", "stopped before its restore started");
    std::move(done)(absl::OkStatus());
    return;
  }
  absl::StatusOr<std::shared_ptr<shim::ShimClient>> client = ShimFor(record->pod_id(), false);
  if (!client.ok()) {
    shim::ContainerState lost;
    lost.set_exit_code(255);
    RecordExit(record->id(), lost);
    std::move(done)(absl::OkStatus());
    return;
  }
  // A container that was never started has no stop signal handler to wait for.
  bool kill_now = timeout <= absl::ZeroDuration() || record->state() != ContainerRecord::RUNNING;
  {
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(record->id());
    if (it == containers_.end() || it->second->state() == ContainerRecord::EXITED) {
      std::move(done)(absl::OkStatus());
      return;
    }
    absl::Time deadline = absl::Now() + (kill_now ? kKillWait : timeout);
    PendingStop& pending = stops_[record->id()];
    if (pending.done.empty()) {
      pending.pod_id = record->pod_id();
      pending.deadline = deadline;
      pending.killed = kill_now;
    } else if (kill_now && !pending.killed) {
      pending.killed = true;  // a later stop with less patience
      pending.deadline = deadline;
    } else if (!pending.killed) {
      pending.deadline = std::min(pending.deadline, deadline);
    }
    pending.done.push_back(std::move(done));
    stops_changed_.Signal();
  }
  absl::Status st = kill_now ? (*client)->Kill(record->id(), SIGKILL, true)
                             : (*client)->Kill(record->id(), record->stop_signal(), false);
  if (!st.ok()) {
    spdlog::debug("container {}: stop signal: {}", ShortId(record->id()), st.message());
  }
}

absl::Status ContainerManager::Stop(const std::string& id, absl::Duration timeout) {
  absl::Notification stopped;
  absl::Status result;
  StopAsync(id, timeout, [&](const absl::Status& st) {
    result = st;
    stopped.Notify();
  });
  stopped.WaitForNotification();
  return result;
}

void ContainerManager::RunStopTimer() {
  absl::MutexLock lock(&mu_);
  while (!shutting_down_) {
    absl::Time next = absl::InfiniteFuture();
    for (const auto& [id, pending] : stops_) {
      next = std::min(next, pending.deadline);
    }
    stops_changed_.WaitWithDeadline(&mu_, next);
    absl::Time now = absl::Now();
    std::vector<std::pair<std::string, std::string>> to_kill;
    std::vector<std::pair<std::string, std::string>> overdue;
    for (auto& [id, pending] : stops_) {
      if (pending.deadline > now) {
        continue;
      }
      if (!pending.killed) {
        pending.killed = true;
        pending.deadline = now + kKillWait;
        to_kill.emplace_back(id, pending.pod_id);
      } else {
        pending.deadline = absl::InfiniteFuture();  // settled below
        overdue.emplace_back(id, pending.pod_id);
      }
    }
    if (to_kill.empty() && overdue.empty()) {
      continue;
    }
    mu_.Unlock();
    for (const auto& [id, pod_id] : to_kill) {
      absl::StatusOr<std::shared_ptr<shim::ShimClient>> client = ShimFor(pod_id, false);
      if (client.ok()) {
        if (absl::Status st = (*client)->Kill(id, SIGKILL, true); !st.ok()) {
          spdlog::debug("container {}: SIGKILL: {}", ShortId(id), st.message());
        }
      }
    }
    for (const auto& [id, pod_id] : overdue) {
      if (!CheckExited(id, pod_id)) {
        FinishStops(id, absl::DeadlineExceededError(
                            absl::StrCat("container ", id, " did not exit within ",
                                         absl::FormatDuration(kKillWait), " of SIGKILL")));
      }
    }
    mu_.Lock();
  }
}

absl::Status ContainerManager::Remove(const std::string& id) {
  absl::StatusOr<ContainerRecord> found = Get(id);
  if (!found.ok()) {
    return found.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus() : found.status();
  }
  if (found->state() == ContainerRecord::RUNNING || found->state() == ContainerRecord::CREATED) {
    CRID_RETURN_IF_ERROR(Stop(found->id(), absl::ZeroDuration()));
  }
  std::shared_ptr<absl::Mutex> op = OpLock(found->id());
  absl::MutexLock op_lock(op.get());
  absl::StatusOr<ContainerRecord> record = Get(found->id());
  if (!record.ok()) {
    return absl::OkStatus();
  }
  CRID_RETURN_IF_ERROR(Destroy(*record));
  spdlog::info("container {} removed", ShortId(record->id()));
  return absl::OkStatus();
}

absl::Status ContainerManager::StopPod(const std::string& pod_id) {
  runtime::v1::ContainerFilter filter;
  filter.set_pod_sandbox_id(pod_id);
  // Every container is killed at once; then the exits are awaited together.
  absl::Mutex mu;
  absl::Status first;
  size_t pending = 0;
  for (const RecordSnapshot& record : List(filter)) {
    if (record->pod_id() != pod_id || record->state() == ContainerRecord::EXITED) {
      continue;
    }
    {
      absl::MutexLock lock(&mu);
      ++pending;
    }
    StopAsync(record->id(), absl::ZeroDuration(), [&](const absl::Status& st) {
      absl::MutexLock lock(&mu);
      first.Update(st);
      --pending;
    });
  }
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(
      +[](size_t* left) { return *left == 0; }, &pending));
  return first;
}

absl::Status ContainerManager::RemovePod(const std::string& pod_id) {
  runtime::v1::ContainerFilter filter;
  filter.set_pod_sandbox_id(pod_id);
  for (const RecordSnapshot& record : List(filter)) {
    if (record->pod_id() == pod_id) {
      CRID_RETURN_IF_ERROR(Remove(record->id()));
    }
  }
  std::shared_ptr<shim::ShimClient> client;
  {
    absl::MutexLock lock(&mu_);
    auto it = shims_.find(pod_id);
    if (it != shims_.end()) {
      client = it->second;
      shims_.erase(it);
    }
    shim_launch_locks_.erase(pod_id);
    dead_shim_pods_.erase(pod_id);
  }
  // The stream closing now is the shutdown, not a death.
  events_->Unwatch(pod_id);
  std::string dir = ShimDir(pod_id);
  if (!client) {
    absl::StatusOr<std::unique_ptr<shim::ShimClient>> c = shim::ShimClient::Connect(dir);
    if (c.ok()) {
      client = std::move(*c);
    }
  }
  if (client) {
    CRID_RETURN_IF_ERROR(client->Shutdown());
  }
  if (std::string parent = PodCgroupParent(pod_id); !parent.empty()) {
    CRID_RETURN_IF_ERROR(
        Annotate(cgroups_.load()->RemoveCgroup(sandbox::ShimCgroupName(pod_id), parent),
                 "removing crid-shim's cgroup"));
  }
  return RemoveTree(dir);
}

absl::Status ContainerManager::UpdateResources(const std::string& id,
                                               const v1::LinuxContainerResources& resources) {
  CRID_ASSIGN_OR_RETURN(ContainerRecord record, Get(id));
  std::shared_ptr<absl::Mutex> op = OpLock(record.id());
  absl::MutexLock op_lock(op.get());
  CRID_ASSIGN_OR_RETURN(record, Get(record.id()));
  if (record.state() == ContainerRecord::EXITED) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", record.id(), " has exited; its resources cannot change"));
  }
  CRID_ASSIGN_OR_RETURN(json oci, OciResources(resources));
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<shim::ShimClient> client, ShimFor(record.pod_id(), false));
  CRID_RETURN_IF_ERROR(client->Update(record.id(), oci.dump()));
  *record.mutable_config()->mutable_linux()->mutable_resources() = resources;
  CRID_RETURN_IF_ERROR(Persist(record));
  Publish(record);
  return absl::OkStatus();
}

absl::Status ContainerManager::ReopenLog(const std::string& id) {
  CRID_ASSIGN_OR_RETURN(ContainerRecord record, Get(id));
  if (record.state() != ContainerRecord::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", record.id(), " is not running"));
  }
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<shim::ShimClient> client, ShimFor(record.pod_id(), false));
  return client->ReopenLog(record.id());
}

}  // namespace crid::container
