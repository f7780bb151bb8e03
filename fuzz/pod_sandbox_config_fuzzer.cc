// Fuzz target: RunPodSandbox's config as kubelet sends it (protobuf wire
// format), through the checks made before anything is created.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "proto/cri_api.pb.h"
#include "sandbox/validate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  runtime::v1::PodSandboxConfig config;
  if (!config.ParseFromArray(data, static_cast<int>(size))) {
    return 0;
  }
  crid::sandbox::ValidatePodSandboxConfig(config).IgnoreError();
  for (const auto& [key, value] : config.annotations()) {
    crid::sandbox::ParseBandwidth(value).IgnoreError();
  }
  for (const auto& [name, value] : config.linux().sysctls()) {
    // A sysctl crid accepts is a file under /proc/sys, never a path out of it.
    absl::StatusOr<std::string> path = crid::sandbox::SysctlPath(name, true, true);
    if (path.ok() && (!absl::StartsWith(*path, "/proc/sys/") || absl::StrContains(*path, ".."))) {
      __builtin_trap();
    }
    crid::sandbox::SysctlPath(name, false, false).IgnoreError();
  }
  return 0;
}
