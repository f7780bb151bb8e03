#include "container/handler_features.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/status/status.h"
#include "container/rootfs.h"
#include "spdlog/spdlog.h"

namespace crid::container {

bool KernelHasMountSetattr() {
  // No valid call: only ENOSYS says the system call is missing.
  long rc = ::syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0);
  return !(rc < 0 && errno == ENOSYS);
}

std::map<std::string, HandlerFeatures> ProbeHandlerFeatures(
    const std::map<std::string, OciRuntimeConfig>& handlers, const std::string& scratch_dir) {
  const bool mount_setattr = KernelHasMountSetattr();
  absl::Status idmap = CheckIdmappedOverlay(scratch_dir);
  if (!idmap.ok()) {
    spdlog::warn("user namespaces are not offered: overlayfs over idmapped layers under {}: {}",
                 scratch_dir, std::string(idmap.message()));
  }
  std::map<std::string, HandlerFeatures> features;
  for (const auto& [name, config] : handlers) {
    HandlerFeatures f;
    // runc and crun both join a user namespace by path; the rootfs and its
    // idmapped layers are crid's own work.
    f.user_namespaces = idmap.ok();
    absl::StatusOr<std::vector<std::string>> options = OciRuntime(config).FeatureMountOptions();
    if (!options.ok()) {
      spdlog::info("runtime handler {}: no recursive read-only mounts ({})", name,
                   std::string(options.status().message()));
    } else if (!mount_setattr) {
      spdlog::info("runtime handler {}: no recursive read-only mounts (no mount_setattr)", name);
    } else {
      f.recursive_read_only_mounts =
          std::find(options->begin(), options->end(), "rro") != options->end();
    }
    spdlog::info("runtime handler {}: recursive_read_only_mounts={} user_namespaces={}", name,
                 f.recursive_read_only_mounts, f.user_namespaces);
    features[name] = f;
  }
  return features;
}

}  // namespace crid::container
