// crid's cgroup manager: where pods, containers and crid's own per-pod processes
// (the shim, crid-pause) live in the cgroup tree, their limits, and their usage.
// One interface, two drivers chosen by CgroupDriver:
//  - systemd: kubelet's pod cgroup is a slice (passed expanded, e.g.
//    /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice);
//    containers become `crid-<id>.scope` units under it (created by the OCI
//    runtime from the `slice:crid:<id>` cgroupsPath) and crid's own processes
//    transient scopes started over D-Bus;
//  - cgroupfs: plain directories `<parent>/crid-<name>` in every v1 hierarchy or
//    in the v2 tree.
// Thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cgroups/driver.h"
#include "cgroups/resources.h"
#include "cgroups/stats.h"
#include "proto/cri_api.pb.h"

namespace crid {

struct CgroupUsage {
  CgroupStats stats;
  absl::Time timestamp;
  // CPU use since the previous Stats() of the same cgroup, in nano-cores
  // (1e9 = one core busy). Valid only from the second sample on.
  bool has_nano_cores = false;
  uint64_t usage_nano_cores = 0;
};

class CgroupManager {
 public:
  virtual ~CgroupManager() = default;

  virtual CgroupDriver driver() const = 0;
  virtual const CgroupLayout& layout() const = 0;

  // The OCI `linux.cgroupsPath` for container `id` of a pod whose cgroup
  // parent is `parent` (kubelet's LinuxPodSandboxConfig.cgroup_parent):
  // systemd `<parent slice name>:crid:<id>`, cgroupfs `<parent>/crid-<id>`.
  virtual absl::StatusOr<std::string> ContainerCgroupsPath(const std::string& parent,
                                                           const std::string& id) const = 0;

  // Where that container's cgroup lives in the tree (the path below each
  // hierarchy's mount point), for Stats and ApplyResources:
  // systemd `<expanded slice>/crid-<id>.scope`, cgroupfs `<parent>/crid-<id>`.
  virtual absl::StatusOr<std::string> ContainerCgroupDir(const std::string& parent,
                                                         const std::string& id) const = 0;

  // The pod's own cgroup (for PodSandboxStats and pod-level limits) from
  // kubelet's cgroup_parent: systemd the expanded slice path (kubelet passes
  // it expanded already; a bare slice name is expanded), cgroupfs the path.
  virtual absl::StatusOr<std::string> PodCgroupDir(const std::string& parent) const = 0;

  // Puts the running process `pid` (one of crid's own, such as a pod's shim or
  // crid-pause) into a new cgroup `crid-<name>` under `parent`, with
  // `resources`, and returns its path (as ContainerCgroupDir(parent, name)).
  // systemd: transient unit `crid-<name>.scope` (Slice=, Delegate=yes,
  // PIDs=), waiting for systemd's start job; an existing unit of that name
  // gets the pid attached. cgroupfs: the directories, limits, cgroup.procs.
  // On failure nothing new is left behind.
  virtual absl::StatusOr<std::string> PlaceProcess(const std::string& name,
                                                   const std::string& parent, pid_t pid,
                                                   const CgroupResources& resources) = 0;

  // Once the OCI runtime has created container `id` of a pod with cgroup
  // parent `parent` (its init `pid` waiting to be started), moves the init
  // back into the container's own cgroup in every v1 hierarchy where something
  // moved it out (systemd driver on v1, see manager.cc; nothing to do
  // otherwise). Returns the controllers it corrected, each with where the
  // process was.
  virtual absl::StatusOr<std::vector<std::string>> KeepContainerInItsCgroups(
      const std::string& parent, const std::string& id, pid_t pid) = 0;

  // Removes what PlaceProcess made (stops the scope, waiting for the job /
  // removes the directories). A cgroup that is already gone is success.
  virtual absl::Status RemoveCgroup(const std::string& name, const std::string& parent) = 0;

  // The names (`<name>` of PlaceProcess and ContainerCgroupDir) of crid's
  // cgroups directly under `parent`, read from the tree: for sweeping up
  // what a crash left behind. A parent that does not exist has none.
  virtual absl::StatusOr<std::vector<std::string>> ListCgroups(const std::string& parent) const = 0;

  // Writes limits into an existing cgroup (a path from ContainerCgroupDir or
  // PlaceProcess, or a pod-level cgroup), on v1 or v2, as runc converts them.
  // For UpdateContainerResources when the OCI runtime cannot, and for pod
  // cgroups. The CRI `unified` map on v1 is INVALID_ARGUMENT.
  virtual absl::Status ApplyResources(const std::string& cgroup_path,
                                      const CgroupResources& resources) = 0;
  absl::Status ApplyResources(const std::string& cgroup_path,
                              const runtime::v1::LinuxContainerResources& resources) {
    return ApplyResources(cgroup_path, FromCriResources(resources));
  }

  // Current usage of a cgroup, with CPU nano-cores over the interval since
  // the previous call for the same path (a small cache keeps one sample per
  // cgroup). Only the usage fields are read (CgroupStatsDetail::kUsage): this
  // is what the stats RPCs call for every container. NOT_FOUND when the
  // cgroup does not exist.
  virtual absl::StatusOr<CgroupUsage> Stats(const std::string& cgroup_path) = 0;

  // Drops the cached sample of a removed cgroup.
  virtual void ForgetStats(const std::string& cgroup_path) = 0;
};

struct CgroupManagerOptions {
  CgroupDriver driver = CgroupDriver::kCgroupfs;
  // Where the hierarchies are; Detect() for the host, a fixture tree in tests.
  CgroupLayout layout;
  // systemd only: the D-Bus address of systemd. Empty: systemd's private
  // socket (unix:path=/run/systemd/private) when running as root and it
  // exists, else the system bus.
  std::string systemd_bus_address;
  // How long to wait for a systemd job.
  absl::Duration job_timeout = absl::Seconds(30);
};

absl::StatusOr<std::unique_ptr<CgroupManager>> NewCgroupManager(CgroupManagerOptions options);

}  // namespace crid
