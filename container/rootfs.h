// A container's root filesystem: the image's unpacked layers stacked read-only
// with overlayfs under a per-container upper (writable) and work directory.
//
//   <container dir>/rootfs   the overlay mount point (the OCI root.path)
//   <container dir>/upper    the container's writable layer
//   <container dir>/work     overlayfs' scratch directory
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/fs.h"

namespace crid {

struct OverlayRootfs {
  std::string rootfs;
  std::string upper;
  std::string work;
};

struct OverlayOptions {
  // Use the new mount API (fsopen/fsconfig "lowerdir+", one layer at a time) even
  // when the classic option string would fit in a page. Tests use it.
  bool force_mount_api = false;
};

// Creates the directories under `container_dir` and mounts the overlay.
// `lower_dirs` is topmost first. On failure nothing is left mounted or created.
// Layer lists too long for mount(2)'s one-page option string use the new mount
// API (Linux 6.8+).
absl::StatusOr<OverlayRootfs> MountOverlayRootfs(const std::string& container_dir,
                                                 const std::vector<std::string>& lower_dirs,
                                                 const OverlayOptions& options = {});

// Unmounts the rootfs (if mounted) and removes the container's directories.
// Missing pieces are fine: removing twice succeeds.
absl::Status RemoveOverlayRootfs(const std::string& container_dir);

// Bytes and inodes of the container's writable layer, for ContainerStats.
absl::StatusOr<DiskUsage> WritableLayerUsage(const std::string& container_dir);

}  // namespace crid
