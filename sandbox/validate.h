// Checks a PodSandboxConfig before anything is created. Every error is
// INVALID_ARGUMENT and names the offending field as written in the CRI proto.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/cri_api.pb.h"

namespace crid::sandbox {

absl::Status ValidatePodSandboxConfig(const runtime::v1::PodSandboxConfig& config);

// A sysctl a pod may set: namespaced in a namespace the pod owns (net.* with
// its own network namespace; kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*
// with its own IPC namespace) and present in /proc/sys. Returns its path
// under /proc/sys, or why it is refused.
absl::StatusOr<std::string> SysctlPath(const std::string& name, bool own_netns, bool own_ipc);

// "10M", "1Gi", "500k" -> bits per second (for the bandwidth annotations).
absl::StatusOr<uint64_t> ParseBandwidth(const std::string& quantity);

}  // namespace crid::sandbox
