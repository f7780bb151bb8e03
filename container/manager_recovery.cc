// ContainerManager::Recover: at start, every container record is matched
// against its pod's shim: half-made containers are undone, exits that
// happened while crid was down are recorded, containers whose shim is gone
// are killed, and directories and shims nobody owns any more are removed.
#include <dirent.h>

#include <cerrno>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/logging.h"
#include "container/manager.h"
#include "container/manager_internal.h"
#include "container/rootfs.h"
#include "spdlog/spdlog.h"

namespace crid::container {

namespace {

using manager_internal::NowNs;
using manager_internal::ShortId;

// Entry names of a directory ("." and ".." left out).
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    return ErrnoError(errno, "opendir ", path);
  }
  std::vector<std::string> names;
  while (struct dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") {
      names.push_back(std::move(name));
    }
  }
  ::closedir(dir);
  return names;
}

}  // namespace

absl::Status ContainerManager::Recover() {
  CRID_ASSIGN_OR_RETURN(auto entries, store_->List(kContainerBucket));
  std::map<std::string, std::vector<ContainerRecord>> by_pod;
  std::set<std::string> known_dirs;
  for (const auto& [key, value] : entries) {
    ContainerRecord record;
    if (!record.ParseFromString(value)) {
      spdlog::error("container record {} is unreadable; dropping it", key);
      (void)store_->Delete(kContainerBucket, key);
      continue;
    }
    known_dirs.insert(record.id());
    by_pod[record.pod_id()].push_back(std::move(record));
  }
  for (auto& [pod_id, records] : by_pod) {
    std::shared_ptr<shim::ShimClient> client;
    absl::StatusOr<std::unique_ptr<shim::ShimClient>> connected =
        shim::ShimClient::Connect(ShimDir(pod_id));
    std::map<std::string, shim::ContainerState> states;
    if (connected.ok()) {
      client = std::move(*connected);
      // Subscribed before the states are read: an exit after the read still
      // arrives as an event.
      Subscribe(pod_id, client.get());
      absl::StatusOr<std::vector<shim::ContainerState>> list = client->List();
      if (list.ok()) {
        for (shim::ContainerState& s : *list) {
          states[s.id()] = std::move(s);
        }
      }
      absl::MutexLock lock(&mu_);
      shims_[pod_id] = client;
    }
    for (ContainerRecord& record : records) {
      if (record.state() == ContainerRecord::CREATING) {
        spdlog::warn("container {}: creation was cut short; removing what it made",
                     ShortId(record.id()));
        if (absl::Status st = Destroy(record); !st.ok()) {
          spdlog::error("container {}: cleanup failed: {}", ShortId(record.id()), st.message());
        }
        continue;
      }
      Publish(record);
      if (record.state() == ContainerRecord::EXITED) {
        continue;
      }
      auto it = states.find(record.id());
      if (it == states.end() && !client) {
        // The shim is gone; it may have recorded the exit before it went.
        absl::StatusOr<shim::ContainerState> recorded =
            shim::ShimClient::ReadExitRecord(ShimDir(pod_id), record.id());
        if (recorded.ok()) {
          it = states.emplace(record.id(), *recorded).first;
        }
      }
      if (it == states.end() && record.state() == ContainerRecord::CREATED &&
          !record.restore_dir().empty()) {
        continue;  // restored from its checkpoint by StartContainer; nothing runs yet
      }
      if (it == states.end()) {
        shim::ContainerState lost;
        lost.set_id(record.id());
        lost.set_status(shim::ContainerState::EXITED);
        lost.set_exit_code(255);
        lost.set_finished_at_ns(NowNs());
        std::string message = "the pod's shim no longer knows the container";
        if (!client) {
          // Its shim died while crid was down: nothing watches it any more.
          message = "the pod's crid-shim exited unexpectedly; crid killed the container";
          absl::StatusOr<const OciRuntimeConfig*> handler = Handler(record.runtime_handler());
          absl::Status killed =
              handler.ok() ? OciRuntime(**handler).Delete(record.id(), true) : handler.status();
          if (!killed.ok()) {
            message = absl::StrCat(
                "the pod's crid-shim exited unexpectedly; killing the "
                "container failed: ",
                killed.message());
          }
        }
        RecordExit(record.id(), lost, client ? "Unknown" : "ShimExited", message);
        continue;
      }
      if (it->second.status() == shim::ContainerState::EXITED) {
        RecordExit(record.id(), it->second);
      } else if (it->second.status() == shim::ContainerState::RUNNING &&
                 record.state() == ContainerRecord::CREATED) {
        // crid died between the runtime's start and the record: it runs.
        record.set_state(ContainerRecord::RUNNING);
        record.set_started_at_ns(it->second.started_at_ns());
        (void)Persist(record);
        Publish(record);
      }
    }
  }
  // Directories no record owns were left by a crash before the first persist.
  absl::StatusOr<std::vector<std::string>> dirs = ListDir(options_.root_dir);
  if (dirs.ok()) {
    for (const std::string& name : *dirs) {
      if (known_dirs.count(name) == 0) {
        std::string dir = absl::StrCat(options_.root_dir, "/", name);
        spdlog::warn("removing leftover container directory {}", dir);
        (void)RemoveOverlayRootfs(dir);
        (void)RemoveTree(dir);
      }
    }
  }
  // Shims whose pod is gone (removed while a crash interrupted the teardown).
  absl::StatusOr<std::vector<std::string>> shim_dirs = ListDir(options_.shim_dir);
  if (shim_dirs.ok() && sandboxes_ != nullptr) {
    for (const std::string& pod_id : *shim_dirs) {
      if (sandboxes_->Get(pod_id).ok()) {
        continue;
      }
      std::string dir = ShimDir(pod_id);
      absl::StatusOr<std::unique_ptr<shim::ShimClient>> orphan = shim::ShimClient::Connect(dir);
      if (orphan.ok()) {
        (void)(*orphan)->Shutdown();
      }
      (void)RemoveTree(dir);
      absl::MutexLock lock(&mu_);
      shims_.erase(pod_id);
    }
  }
  return absl::OkStatus();
}

}  // namespace crid::container
