// A container's root filesystem: the image's unpacked layers stacked read-only
// with overlayfs under a per-container upper (writable) and work directory.
//
//   <container dir>/rootfs   the overlay mount point (the OCI root.path)
//   <container dir>/upper    the container's writable layer
//   <container dir>/work     overlayfs' scratch directory
//   <container dir>/idmapped the volumes' idmapped clones in a pod with a user
//                            namespace (container/idmapped_mounts.h)
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
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
  // For a pod with its own user namespace (this pinned namespace file): each
  // layer is stacked through an idmapped mount into it, and the upper layer
  // belongs to the namespace's root (host_uid/host_gid), so inside the
  // namespace the files are owned as the image says while on the host they
  // belong to the pod's unprivileged range. (overlayfs itself cannot be
  // idmapped; its layers can, Linux 5.19+.)
  std::string userns_path;
  uint32_t host_uid = 0;
  uint32_t host_gid = 0;
};

// Whether overlayfs over idmapped layers works under `scratch_dir` (the
// filesystem the layers and containers live on): mounts a small overlay
// through a throwaway user namespace and writes to it. Leaves nothing behind.
absl::Status CheckIdmappedOverlay(const std::string& scratch_dir);

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

// WritableLayerUsage measured at most once per `max_age` per container: the
// walk costs a few syscalls per file, and kubelet asks for every container's
// stats every few seconds, so at hundreds of containers the List calls would
// otherwise spend their time in the upper directories. Thread-safe.
class LayerUsageCache {
 public:
  struct Sample {
    DiskUsage usage;
    absl::Time taken;  // when it was measured
  };

  // Starts the refresh thread.
  explicit LayerUsageCache(absl::Duration max_age = absl::Seconds(10));
  ~LayerUsageCache();
  LayerUsageCache(const LayerUsageCache&) = delete;
  LayerUsageCache& operator=(const LayerUsageCache&) = delete;

  // The container's last sample. A sample older than max_age is still
  // answered, and measured again on the refresh thread, so a stats call never
  // walks a layer; only a container's first call measures (its layer is new).
  absl::StatusOr<Sample> Get(const std::string& container_dir);

 private:
  // Samples of containers nobody asked about for this long are dropped.
  static constexpr size_t kPruneAbove = 256;
  void Refresh();

  const absl::Duration max_age_;
  absl::Mutex mu_;
  std::map<std::string, Sample> samples_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> stale_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace crid
