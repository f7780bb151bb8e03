#include "cri/runtime_state.h"

#include "base/errors.h"

namespace crid {

namespace {
constexpr char kBucket[] = "runtime";
constexpr char kPodCidrKey[] = "pod_cidr";
}  // namespace

absl::StatusOr<std::unique_ptr<RuntimeState>> RuntimeState::Load(config::Config config,
                                                                 CgroupDriver cgroup_driver,
                                                                 Store* store) {
  std::unique_ptr<RuntimeState> state(new RuntimeState(std::move(config), cgroup_driver, store));
  CRID_ASSIGN_OR_RETURN(std::optional<std::string> cidr, store->Get(kBucket, kPodCidrKey));
  if (cidr.has_value()) {
    absl::MutexLock lock(&state->mu_);
    state->pod_cidr_ = *cidr;
  }
  return state;
}

std::string RuntimeState::pod_cidr() const {
  absl::MutexLock lock(&mu_);
  return pod_cidr_;
}

absl::Status RuntimeState::SetPodCidr(const std::string& cidr) {
  absl::MutexLock lock(&mu_);
  if (cidr == pod_cidr_) {
    return absl::OkStatus();
  }
  CRID_RETURN_IF_ERROR(store_->Put(kBucket, kPodCidrKey, cidr));
  pod_cidr_ = cidr;
  return absl::OkStatus();
}

}  // namespace crid
