// Queries answered from memory: a container by ID or unique prefix, the
// filtered list ListContainers and the stats RPCs read, and the layers that
// image garbage collection must keep.
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "container/manager.h"

namespace crid::container {

namespace {

namespace v1 = ::runtime::v1;

bool LabelsMatch(const google::protobuf::Map<std::string, std::string>& labels,
                 const google::protobuf::Map<std::string, std::string>& selector) {
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<ContainerRecord> ContainerManager::Get(const std::string& id) const {
  CRID_ASSIGN_OR_RETURN(RecordSnapshot snapshot, Find(id));
  return *snapshot;  // copied outside the lock
}

absl::StatusOr<RecordSnapshot> ContainerManager::Find(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = containers_.find(id);
  if (it != containers_.end()) {
    return it->second;
  }
  if (!id.empty()) {
    auto first = containers_.lower_bound(id);
    if (first != containers_.end() && absl::StartsWith(first->first, id)) {
      auto next = std::next(first);
      if (next == containers_.end() || !absl::StartsWith(next->first, id)) {
        return first->second;
      }
      return absl::InvalidArgumentError(
          absl::StrCat("container_id: prefix \"", id, "\" matches more than one container"));
    }
  }
  return absl::NotFoundError(absl::StrCat("container \"", id, "\" not found"));
}

std::vector<RecordSnapshot> ContainerManager::List(const v1::ContainerFilter& filter) const {
  std::vector<RecordSnapshot> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, snapshot] : containers_) {
    const ContainerRecord& record = *snapshot;
    if (record.state() == ContainerRecord::CREATING) {
      continue;
    }
    if (!filter.id().empty() && !absl::StartsWith(id, filter.id())) {
      continue;
    }
    if (!filter.pod_sandbox_id().empty() &&
        !absl::StartsWith(record.pod_id(), filter.pod_sandbox_id())) {
      continue;
    }
    if (filter.has_state() && CriState(record.state()) != filter.state().state()) {
      continue;
    }
    if (!LabelsMatch(record.config().labels(), filter.label_selector())) {
      continue;
    }
    out.push_back(snapshot);
  }
  return out;
}

std::set<std::string> ContainerManager::LayersInUse() const {
  std::set<std::string> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, record] : containers_) {
    out.insert(record->chain_ids().begin(), record->chain_ids().end());
    out.insert(record->volume_chain_ids().begin(), record->volume_chain_ids().end());
  }
  return out;
}

}  // namespace crid::container
