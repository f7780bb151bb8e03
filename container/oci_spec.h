// Turns a CRI ContainerConfig, the image's config and the pod sandbox into an OCI
// runtime spec (config.json) for runc/crun, following Kubernetes' rules for
// command/args, env, user, mounts, namespaces, resources and security.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cdi/cdi.h"
#include "cgroups/driver.h"
#include "container/apparmor.h"
#include "container/selinux.h"
#include "nlohmann/json.hpp"
#include "proto/cri_api.pb.h"

namespace crid {

// The parts of an OCI image config that shape a container.
struct ImageProcessConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=value"
  std::string working_dir;
  std::string user;
};

// What the pod sandbox provides to its containers.
struct SandboxSpecInfo {
  std::string id;
  std::string name;
  std::string namespace_;
  std::string uid;
  // Namespace files to join; an empty path means the host's namespace.
  std::string netns_path;
  std::string ipc_ns_path;
  std::string uts_ns_path;
  // The pod-shared PID namespace (PID mode POD), e.g. /proc/<pause>/ns/pid.
  std::string pid_ns_path;
  // The pod's user namespace (userns_options mode POD); its mappings are
  // linux.security_context.namespace_options.userns_options.
  std::string userns_path;
  // Pod files bind-mounted into every container (empty: not provided).
  std::string hostname_file;
  std::string hosts_file;
  std::string resolv_conf_file;
  std::string shm_path;
  std::string cgroup_parent;
  runtime::v1::LinuxPodSandboxConfig linux;
};

struct SpecOptions {
  std::string container_id;
  std::string rootfs;  // mounted rootfs (absolute)
  std::string image_name;
  CgroupDriver cgroup_driver = CgroupDriver::kCgroupfs;
  // The lowest oom_score_adj this process may give a child (its own): the kernel
  // refuses lower values without CAP_SYS_RESOURCE.
  int min_oom_score_adj = -1000;
  // For PID mode TARGET: the target container's PID namespace file.
  std::string target_pid_ns_path;
  // The OCI runtime applies the `rro` mount option (mount_setattr with
  // AT_RECURSIVE, Linux 5.12+): Mount.recursive_read_only is honoured.
  bool recursive_read_only_mounts = false;
  // The host's AppArmor (DetectAppArmor); the default is a host without it.
  AppArmorHost apparmor;
  // The host's SELinux (DetectSELinux); the default is a host without it.
  SELinuxHost selinux;
  // The host runs cgroup v2 alone (unified): a non-privileged container gets
  // its own cgroup namespace, as with runc's default spec and containerd.
  bool cgroup_unified = false;
  // Resolves CDI_devices and the cdi.k8s.io/ annotations; null refuses them.
  CdiRegistry* cdi = nullptr;
};

// Builds config.json. Errors are INVALID_ARGUMENT naming the CRI field, or
// NOT_FOUND for users/groups missing from the image.
// Whether the OCI runtime can set hugepage limits on this host.
bool HugetlbControllerAvailable();

absl::StatusOr<nlohmann::json> BuildOciSpec(const runtime::v1::ContainerConfig& config,
                                            const ImageProcessConfig& image,
                                            const SandboxSpecInfo& sandbox,
                                            const SpecOptions& options);

// The OCI linux.cgroupsPath for a container: "slice:crid:<id>" for the systemd
// driver (as runc and crun expect), "<parent>/crid-<id>" for cgroupfs.
absl::StatusOr<std::string> OciCgroupsPath(CgroupDriver driver, const std::string& cgroup_parent,
                                           const std::string& id);

// The OCI linux.resources object for CRI resources (without device rules), as
// config.json holds it and `runc update -r` takes it. INVALID_ARGUMENT names
// the bad field.
absl::StatusOr<nlohmann::json> OciResources(const runtime::v1::LinuxContainerResources& resources);

// Kubernetes' command rules: command (+ args) replaces the entrypoint; args
// alone replace the image's Cmd.
std::vector<std::string> ContainerArgs(const runtime::v1::ContainerConfig& config,
                                       const ImageProcessConfig& image);

}  // namespace crid
