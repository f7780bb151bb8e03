// Runtime-wide facts the CRI services report: the effective configuration, the
// cgroup driver, when crid started, and the pod CIDR kubelet pushed.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cgroups/driver.h"
#include "proto/config.pb.h"
#include "store/store.h"

namespace crid {

class RuntimeState {
 public:
  // Reads what earlier runs persisted (the pod CIDR).
  static absl::StatusOr<std::unique_ptr<RuntimeState>> Load(config::Config config,
                                                            CgroupDriver cgroup_driver,
                                                            Store* store);

  const config::Config& config() const { return config_; }
  CgroupDriver cgroup_driver() const { return cgroup_driver_; }
  absl::Time started_at() const { return started_at_; }

  std::string pod_cidr() const;
  // Persists first, then publishes: a crash never reports a CIDR it lost.
  absl::Status SetPodCidr(const std::string& cidr);

 private:
  RuntimeState(config::Config config, CgroupDriver cgroup_driver, Store* store)
      : config_(std::move(config)),
        cgroup_driver_(cgroup_driver),
        store_(store),
        started_at_(absl::Now()) {}

  const config::Config config_;
  const CgroupDriver cgroup_driver_;
  Store* const store_;
  const absl::Time started_at_;

  mutable absl::Mutex mu_;
  std::string pod_cidr_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crid
