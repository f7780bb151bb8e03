#include "container/rootfs.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errors.h"
#include "base/unique_fd.h"

namespace crid {

namespace {

// mount(2) copies at most one page of options.
constexpr size_t kMaxMountData = 4095;

int FsOpen(const char* fs, unsigned flags) {
  return static_cast<int>(::syscall(SYS_fsopen, fs, flags));
}
int FsConfig(int fd, unsigned cmd, const char* key, const void* value, int aux) {
  return static_cast<int>(::syscall(SYS_fsconfig, fd, cmd, key, value, aux));
}
int FsMount(int fd, unsigned flags, unsigned attr) {
  return static_cast<int>(::syscall(SYS_fsmount, fd, flags, attr));
}
int MoveMount(int from_fd, const char* from, int to_fd, const char* to, unsigned flags) {
  return static_cast<int>(::syscall(SYS_move_mount, from_fd, from, to_fd, to, flags));
}

absl::Status CheckLayerPath(const std::string& dir) {
  // overlayfs splits lowerdir on ':' and ','; such a path would be misread.
  if (dir.empty() || dir[0] != '/' || dir.find_first_of(":,") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("bad layer directory \"", dir, "\""));
  }
  return absl::OkStatus();
}

absl::Status MountWithFsConfig(const std::vector<std::string>& lower_dirs,
                               const OverlayRootfs& paths) {
  UniqueFd fs(FsOpen("overlay", FSOPEN_CLOEXEC));
  if (!fs.valid()) {
    return ErrnoError(errno, "fsopen overlay");
  }
  auto set = [&](const char* key, const std::string& value) -> absl::Status {
    if (FsConfig(fs.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) != 0) {
      return ErrnoError(errno, "fsconfig ", key, "=", value);
    }
    return absl::OkStatus();
  };
  for (const std::string& dir : lower_dirs) {
    CRID_RETURN_IF_ERROR(set("lowerdir+", dir));
  }
  CRID_RETURN_IF_ERROR(set("upperdir", paths.upper));
  CRID_RETURN_IF_ERROR(set("workdir", paths.work));
  if (FsConfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return ErrnoError(errno, "create overlay for ", paths.rootfs);
  }
  UniqueFd mnt(FsMount(fs.get(), FSMOUNT_CLOEXEC, 0));
  if (!mnt.valid()) {
    return ErrnoError(errno, "fsmount overlay for ", paths.rootfs);
  }
  if (MoveMount(mnt.get(), "", AT_FDCWD, paths.rootfs.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return ErrnoError(errno, "move_mount overlay to ", paths.rootfs);
  }
  return absl::OkStatus();
}

bool IsMountPoint(const std::string& path) {
  struct stat st;
  struct stat parent;
  if (::lstat(path.c_str(), &st) != 0 || ::lstat((path + "/..").c_str(), &parent) != 0) {
    return false;
  }
  return st.st_dev != parent.st_dev;
}

}  // namespace

absl::StatusOr<OverlayRootfs> MountOverlayRootfs(const std::string& container_dir,
                                                 const std::vector<std::string>& lower_dirs,
                                                 const OverlayOptions& options) {
  if (lower_dirs.empty()) {
    return absl::InvalidArgumentError("an image needs at least one layer");
  }
  for (const std::string& dir : lower_dirs) {
    CRID_RETURN_IF_ERROR(CheckLayerPath(dir));
  }
  OverlayRootfs paths{container_dir + "/rootfs", container_dir + "/upper", container_dir + "/work"};
  CRID_RETURN_IF_ERROR(CheckLayerPath(paths.upper));
  bool created = false;
  struct stat st;
  if (::stat(container_dir.c_str(), &st) != 0) {
    CRID_RETURN_IF_ERROR(MakeDirs(container_dir, 0700));
    created = true;
  }
  absl::Cleanup undo = [&] {
    if (created) {
      (void)RemoveTree(container_dir);
    }
  };
  for (const std::string& dir : {paths.rootfs, paths.upper, paths.work}) {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "mkdir ", dir);
    }
  }
  std::string data = absl::StrCat("lowerdir=", absl::StrJoin(lower_dirs, ":"),
                                  ",upperdir=", paths.upper, ",workdir=", paths.work);
  if (!options.force_mount_api && data.size() <= kMaxMountData) {
    if (::mount("overlay", paths.rootfs.c_str(), "overlay", 0, data.c_str()) != 0) {
      return ErrnoError(errno, "mount overlay on ", paths.rootfs);
    }
  } else {
    CRID_RETURN_IF_ERROR(MountWithFsConfig(lower_dirs, paths));
  }
  std::move(undo).Cancel();
  return paths;
}

absl::Status RemoveOverlayRootfs(const std::string& container_dir) {
  std::string rootfs = container_dir + "/rootfs";
  if (IsMountPoint(rootfs) && ::umount2(rootfs.c_str(), MNT_DETACH) != 0 && errno != EINVAL &&
      errno != ENOENT) {
    return ErrnoError(errno, "unmount ", rootfs);
  }
  if (IsMountPoint(rootfs)) {
    return absl::FailedPreconditionError(absl::StrCat(rootfs, " is still mounted"));
  }
  return RemoveTree(container_dir);
}

absl::StatusOr<DiskUsage> WritableLayerUsage(const std::string& container_dir) {
  return MeasureDiskUsage(container_dir + "/upper");
}

LayerUsageCache::LayerUsageCache(absl::Duration max_age)
    : max_age_(max_age), thread_([this] { Refresh(); }) {}

LayerUsageCache::~LayerUsageCache() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

absl::StatusOr<LayerUsageCache::Sample> LayerUsageCache::Get(const std::string& container_dir) {
  absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    auto it = samples_.find(container_dir);
    if (it != samples_.end()) {
      if (now - it->second.taken >= max_age_) {
        stale_.insert(container_dir);
      }
      return it->second;
    }
  }
  absl::StatusOr<DiskUsage> usage = WritableLayerUsage(container_dir);
  if (!usage.ok()) {
    return usage.status();
  }
  Sample sample{*usage, now};
  absl::MutexLock lock(&mu_);
  samples_[container_dir] = sample;
  if (samples_.size() > kPruneAbove) {
    for (auto it = samples_.begin(); it != samples_.end();) {
      it = now - it->second.taken > 6 * max_age_ ? samples_.erase(it) : std::next(it);
    }
  }
  return sample;
}

void LayerUsageCache::Refresh() {
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.Await(absl::Condition(
        +[](LayerUsageCache* self)
             ABSL_NO_THREAD_SAFETY_ANALYSIS { return self->stopping_ || !self->stale_.empty(); },
        this));
    if (stopping_) {
      return;
    }
    std::string dir = *stale_.begin();
    stale_.erase(stale_.begin());
    mu_.Unlock();
    // Measured outside the lock: stats calls keep getting the old sample.
    absl::StatusOr<DiskUsage> usage = WritableLayerUsage(dir);
    absl::Time taken = absl::Now();
    mu_.Lock();
    if (!usage.ok()) {
      samples_.erase(dir);  // removed containers leave no sample
    } else if (auto it = samples_.find(dir); it != samples_.end()) {
      it->second = Sample{*usage, taken};
    }
  }
}

}  // namespace crid
