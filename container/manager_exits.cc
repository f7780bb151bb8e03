// Container exits: the events each pod's shim pushes, the exit recorded in
// the container's record, and the stops that wait for it.
#include <utility>
#include <vector>

#include "base/logging.h"
#include "container/manager.h"
#include "container/manager_internal.h"
#include "spdlog/spdlog.h"

namespace crid::container {

namespace {

using manager_internal::NowNs;
using manager_internal::ShortId;

// The reason kubelet shows for an exit.
std::string ExitReason(const shim::ContainerState& state) {
  if (state.oom_killed()) {
    return "OOMKilled";
  }
  return state.exit_code() == 0 ? "Completed" : "Error";
}

}  // namespace

void ContainerManager::OnShimMessage(const std::string& pod_id, const shim::Response& message) {
  auto take = [this](const shim::ContainerState& state) {
    if (state.status() == shim::ContainerState::EXITED) {
      RecordExit(state.id(), state);
    }
  };
  if (message.has_event()) {
    take(message.event().state());
  } else if (message.has_states()) {
    for (const shim::ContainerState& state : message.states().containers()) {
      take(state);
    }
  }
}

void ContainerManager::RecordExit(const std::string& id, const shim::ContainerState& state,
                                  const std::string& reason, const std::string& message) {
  ContainerRecord exited;
  bool start_unreported = false;
  absl::ReleasableMutexLock events_lock(&events_mu_);
  {
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(id);
    if (it == containers_.end() || it->second->state() == ContainerRecord::EXITED) {
      return;
    }
    ContainerRecord r = *it->second;
    // An exit that overtook its StartContainer: subscribers see the start first.
    start_unreported = r.state() == ContainerRecord::CREATED && state.started_at_ns() != 0;
    r.set_state(ContainerRecord::EXITED);
    r.set_exit_code(state.exit_code());
    r.set_finished_at_ns(state.finished_at_ns() != 0 ? state.finished_at_ns() : NowNs());
    if (r.started_at_ns() == 0 && state.started_at_ns() != 0) {
      r.set_started_at_ns(state.started_at_ns());
    }
    if (!reason.empty()) {
      r.set_reason(reason);
      r.set_message(message);
    } else if (r.reason().empty()) {
      r.set_reason(ExitReason(state));
    }
    if (absl::Status st = Persist(r); !st.ok()) {
      spdlog::error("container {}: persisting its exit: {}", ShortId(id), st.message());
    }
    spdlog::info("container {} exited with code {} ({})", ShortId(id), r.exit_code(), r.reason());
    it->second = std::make_shared<const ContainerRecord>(r);
    exited = std::move(r);
  }
  if (start_unreported) {
    Notify(exited, ContainerEventKind::kStarted);
  }
  Notify(exited, ContainerEventKind::kStopped);
  events_lock.Release();
  FinishStops(id, absl::OkStatus());
}

void ContainerManager::FinishStops(const std::string& id, const absl::Status& status) {
  std::vector<StopDone> done;
  {
    absl::MutexLock lock(&mu_);
    auto it = stops_.find(id);
    if (it == stops_.end()) {
      return;
    }
    done = std::move(it->second.done);
    stops_.erase(it);
  }
  for (StopDone& d : done) {
    std::move(d)(status);
  }
}

bool ContainerManager::CheckExited(const std::string& id, const std::string& pod_id) {
  absl::StatusOr<std::shared_ptr<shim::ShimClient>> client = ShimFor(pod_id, false);
  if (!client.ok()) {
    return false;
  }
  absl::StatusOr<shim::ContainerState> state = (*client)->State(id);
  if (state.ok() && state->status() == shim::ContainerState::EXITED) {
    RecordExit(id, *state);
    return true;
  }
  return false;
}

}  // namespace crid::container
