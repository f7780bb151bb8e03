#include "container/handler_features.h"

#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "container/rootfs.h"
#include "spdlog/spdlog.h"

namespace crid::container {

bool KernelHasMountSetattr() {
  // No valid call: only ENOSYS says the system call is missing.
  long rc = ::syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0);
  return !(rc < 0 && errno == ENOSYS);
}

// The runtime's init enters the pod's user namespace before it mounts the
// rootfs, so as an unprivileged host user it must be able to pass through
// every directory above the containers.
absl::Status CheckSearchableByOthers(const std::string& dir) {
  std::string path = dir;
  while (!path.empty()) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      return absl::FailedPreconditionError(absl::StrCat("stat ", path, ": ", std::strerror(errno)));
    }
    if ((st.st_mode & S_IXOTH) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, " is not searchable by others (mode ", absl::StrFormat("%04o", st.st_mode & 07777),
          "), so a pod's root could not reach its rootfs"));
    }
    size_t slash = path.rfind('/');
    path = slash == 0 && path.size() > 1 ? "/" : path.substr(0, slash);
    if (path == "/") {
      break;
    }
  }
  return absl::OkStatus();
}

std::map<std::string, HandlerFeatures> ProbeHandlerFeatures(
    const std::map<std::string, OciRuntimeConfig>& handlers, const std::string& scratch_dir) {
  const bool mount_setattr = KernelHasMountSetattr();
  absl::Status idmap = CheckIdmappedOverlay(scratch_dir);
  if (idmap.ok()) {
    idmap = CheckSearchableByOthers(scratch_dir.substr(0, scratch_dir.rfind('/')));
  }
  if (!idmap.ok()) {
    spdlog::warn("user namespaces are not offered (containers under {}): {}", scratch_dir,
                 std::string(idmap.message()));
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
