// Idmapped mounts for pods with their own user namespace: the image layers a
// container's rootfs or image volume is stacked on, and the bind mounts of its
// spec (hostPath volumes, the pod's hostname, hosts and resolv.conf, /dev/shm).
// runc 1.1 cannot idmap a mount itself, so crid clones the source, idmaps the
// clone into the pod's user namespace and hands runc that clone:
//
//   <container dir>/idmapped/<n>   the idmapped clone of the spec's bind mount n
//
// Inside the namespace a file owned by host ID H appears owned by the ID that
// H maps to there (host root's files are root's, not nobody's).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace crid {

// Mounts `source` again at `target` (an existing directory or file), with
// the ownership seen through the user namespace `userns_fd` (MOUNT_ATTR_IDMAP):
// an ID mapped to host ID H there appears as its namespace ID. With
// `recursive`, submounts come along (each must support idmapping). A
// filesystem that cannot be idmapped is FAILED_PRECONDITION.
absl::Status IdmappedBindMount(const std::string& source, const std::string& target, int userns_fd,
                               bool recursive);

// Unmounts everything stacked on `path`. A bind mount has the same st_dev as
// its parent directory, so unmounting until the kernel says "not a mount
// point" (EINVAL) is the check.
absl::Status UnmountAll(const std::string& path);

// The idmapped clones of a list of layer directories, each at `dir`/<i>.
// They are needed only while something is mounted on them (overlayfs and bind
// mounts keep their own copies), so they go with this object.
class IdmappedLayers {
 public:
  explicit IdmappedLayers(std::string dir) : dir_(std::move(dir)) {}
  ~IdmappedLayers();
  IdmappedLayers(const IdmappedLayers&) = delete;
  IdmappedLayers& operator=(const IdmappedLayers&) = delete;

  // Returns the clones' paths, in the order of `lower_dirs`.
  absl::StatusOr<std::vector<std::string>> Mount(const std::vector<std::string>& lower_dirs,
                                                 const std::string& userns_path);

 private:
  std::string dir_;
  std::vector<std::string> targets_;
};

// Replaces the source of every bind mount in `mounts` (an OCI spec's "mounts")
// by an idmapped clone under `container_dir`/idmapped, recursively (as "rbind"
// would bind it). Sources under `skip_prefix` (image volumes, already mounted
// over idmapped layers) keep theirs. As containerd, a volume whose filesystem
// cannot be idmapped is refused: FAILED_PRECONDITION naming its destination.
// On failure nothing stays mounted.
absl::Status IdmapBindMounts(const std::string& container_dir, const std::string& userns_path,
                             const std::string& skip_prefix, nlohmann::json& mounts);

// Unmounts and removes the clones IdmapBindMounts made. Missing pieces are
// fine; an unmount that fails leaves the directory (never removes through a
// mount into a host directory).
absl::Status RemoveIdmappedMounts(const std::string& container_dir);

}  // namespace crid
