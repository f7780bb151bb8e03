#include "container/rootfs.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errors.h"
#include "base/unique_fd.h"
#include "container/idmapped_mounts.h"

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

absl::Status MountOverlay(const std::vector<std::string>& lower_dirs, const OverlayRootfs& paths,
                          bool force_mount_api) {
  std::string data = absl::StrCat("lowerdir=", absl::StrJoin(lower_dirs, ":"),
                                  ",upperdir=", paths.upper, ",workdir=", paths.work);
  if (!force_mount_api && data.size() <= kMaxMountData) {
    if (::mount("overlay", paths.rootfs.c_str(), "overlay", 0, data.c_str()) != 0) {
      return ErrnoError(errno, "mount overlay on ", paths.rootfs);
    }
  } else {
    CRID_RETURN_IF_ERROR(MountWithFsConfig(lower_dirs, paths));
  }
  // overlayfs falls back to read-only, with only a kernel log line, when it
  // cannot use its work directory (e.g. an upper layer it may not write).
  struct statvfs vfs;
  if (::statvfs(paths.rootfs.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY) != 0) {
    ::umount2(paths.rootfs.c_str(), MNT_DETACH);
    return absl::InternalError(
        absl::StrCat("overlay on ", paths.rootfs, " came up read-only (see the kernel log)"));
  }
  return absl::OkStatus();
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
  if (options.userns_path.empty()) {
    CRID_RETURN_IF_ERROR(MountOverlay(lower_dirs, paths, options.force_mount_api));
  } else {
    // The runtime's init, already in the namespace, must reach the rootfs.
    if (::chmod(container_dir.c_str(), 0711) != 0) {
      return ErrnoError(errno, "chmod ", container_dir);
    }
    // The namespace's root owns the writable layer; what it writes is stored
    // with its host IDs, as runc would have it without idmapped layers.
    for (const std::string& dir : {paths.rootfs, paths.upper}) {
      if (::chown(dir.c_str(), options.host_uid, options.host_gid) != 0) {
        return ErrnoError(errno, "chown ", dir);
      }
    }
    IdmappedLayers layers(container_dir + "/idmap");
    CRID_ASSIGN_OR_RETURN(std::vector<std::string> mapped,
                          layers.Mount(lower_dirs, options.userns_path));
    CRID_RETURN_IF_ERROR(MountOverlay(mapped, paths, options.force_mount_api));
  }
  std::move(undo).Cancel();
  return paths;
}

absl::Status CheckIdmappedOverlay(const std::string& scratch_dir) {
  CRID_RETURN_IF_ERROR(MakeDirs(scratch_dir, 0700));
  absl::Cleanup remove = [&] {
    (void)RemoveOverlayRootfs(scratch_dir + "/container");
    (void)RemoveTree(scratch_dir);
  };
  const std::string layer = scratch_dir + "/layer";
  if (::mkdir(layer.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoError(errno, "mkdir ", layer);
  }
  // A throwaway user namespace: a child that unshares and waits.
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  UniqueFd ready_read(ready[0]), ready_write(ready[1]);
  pid_t child = ::fork();
  if (child < 0) {
    return ErrnoError(errno, "fork");
  }
  if (child == 0) {
    char byte = ::unshare(CLONE_NEWUSER) == 0 ? 1 : 0;
    (void)!::write(ready_write.get(), &byte, 1);
    ::pause();
    ::_exit(0);
  }
  absl::Cleanup reap = [child] {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
  };
  ready_write.reset();
  char byte = 0;
  if (::read(ready_read.get(), &byte, 1) != 1 || byte != 1) {
    return absl::FailedPreconditionError("cannot create a user namespace");
  }
  // Any unprivileged range will do.
  constexpr uint32_t kHostId = 1879048192;
  for (const char* map : {"uid_map", "gid_map"}) {
    std::string path = absl::StrCat("/proc/", child, "/", map);
    std::string text = absl::StrCat("0 ", kHostId, " 65536\n");
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid() || ::write(fd.get(), text.data(), text.size()) < 0) {
      return ErrnoError(errno, "write ", path);
    }
  }
  OverlayOptions options;
  options.userns_path = absl::StrCat("/proc/", child, "/ns/user");
  options.host_uid = kHostId;
  options.host_gid = kHostId;
  CRID_ASSIGN_OR_RETURN(OverlayRootfs rootfs,
                        MountOverlayRootfs(scratch_dir + "/container", {layer}, options));
  const std::string probe = rootfs.rootfs + "/probe";
  UniqueFd file(::open(probe.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  if (!file.valid()) {
    return ErrnoError(errno, "write into an overlay of idmapped layers: create ", probe);
  }
  return absl::OkStatus();
}

absl::Status RemoveOverlayRootfs(const std::string& container_dir) {
  // The volumes' idmapped clones first: the directory is removed below, and a
  // clone of a host directory shares its st_dev, so the removal would not stop
  // at it.
  CRID_RETURN_IF_ERROR(RemoveIdmappedMounts(container_dir));
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
