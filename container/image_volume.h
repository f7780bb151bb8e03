// Image volumes (CRI Mount.image, kubelet's `image` volume source): an image's
// layers, as pulled, mounted read-only and bind-mounted into a container.
//
//   <container dir>/image-volumes/<n>   the read-only overlay of volume n's
//                                       layers (a read-only bind for an image
//                                       of one layer)
//
// The container's OCI bind mount takes its source from there (below it, the
// mount's image_sub_path). The layers stay on disk while the container exists:
// its record lists their chain IDs (ContainerRecord.volume_chain_ids), which
// image garbage collection treats as in use.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/cri_api.pb.h"

namespace crid {

// What CreateContainer checks of an image mount before anything is mounted:
// it must be read-only, and its sub path relative without "..".
absl::Status ValidateImageVolume(const runtime::v1::Mount& mount);

// Mounts `lower_dirs` (topmost first) read-only at `mount_point` (created),
// then finds `sub_path` inside it (symlinks resolved inside the image, never
// out of it) and returns the path to bind into the container. A sub path that
// the image does not have is INVALID_ARGUMENT naming mounts.image_sub_path;
// on any failure nothing stays mounted. With `userns_path` (a pod's user
// namespace) the layers are seen through idmapped mounts into it, so the
// image's root-owned files are the pod's root's.
absl::StatusOr<std::string> MountImageVolume(const std::string& mount_point,
                                             const std::vector<std::string>& lower_dirs,
                                             const std::string& sub_path,
                                             const std::string& userns_path = "");

// Unmounts and removes every image volume of a container. Missing pieces are
// fine: removing twice succeeds.
absl::Status RemoveImageVolumes(const std::string& container_dir);

// Where a container's volume `index` is mounted.
std::string ImageVolumeDir(const std::string& container_dir, int index);

}  // namespace crid
