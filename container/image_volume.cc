#include "container/image_volume.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/unique_fd.h"
#include "container/idmapped_mounts.h"

namespace crid {

namespace {

// mount(2) takes its option string in one page.
constexpr size_t kMaxMountData = 4095;

// A read-only overlay of `lower_dirs` through the new mount API, for layer
// lists longer than mount(2)'s page (each layer is one fsconfig call).
absl::Status MountReadOnlyOverlayWithFsConfig(const std::vector<std::string>& lower_dirs,
                                              const std::string& target) {
  UniqueFd fs(static_cast<int>(::syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC)));
  if (!fs.valid()) {
    return ErrnoError(errno, "fsopen overlay");
  }
  for (const std::string& dir : lower_dirs) {
    if (::syscall(SYS_fsconfig, fs.get(), FSCONFIG_SET_STRING, "lowerdir+", dir.c_str(), 0) != 0) {
      return ErrnoError(errno, "fsconfig lowerdir+=", dir);
    }
  }
  if (::syscall(SYS_fsconfig, fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return ErrnoError(errno, "create overlay for ", target);
  }
  UniqueFd mnt(static_cast<int>(
      ::syscall(SYS_fsmount, fs.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV)));
  if (!mnt.valid()) {
    return ErrnoError(errno, "fsmount overlay for ", target);
  }
  if (::syscall(SYS_move_mount, mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) !=
      0) {
    return ErrnoError(errno, "move_mount overlay to ", target);
  }
  return absl::OkStatus();
}

absl::Status MountLayersReadOnly(const std::vector<std::string>& lower_dirs,
                                 const std::string& target) {
  for (const std::string& dir : lower_dirs) {
    // overlayfs splits lowerdir on ':' and ','.
    if (dir.empty() || dir[0] != '/' || dir.find_first_of(":,") != std::string::npos) {
      return absl::InternalError(absl::StrCat("bad layer directory \"", dir, "\""));
    }
  }
  if (lower_dirs.size() == 1) {
    // overlayfs needs two lower layers when it has no upper one; a single
    // layer is bound read-only instead.
    if (::mount(lower_dirs[0].c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return ErrnoError(errno, "bind ", lower_dirs[0], " on ", target);
    }
    if (::mount(nullptr, target.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV,
                nullptr) != 0) {
      const int err = errno;
      ::umount2(target.c_str(), MNT_DETACH);
      return ErrnoError(err, "remount ", target, " read-only");
    }
    return absl::OkStatus();
  }
  const std::string data = absl::StrCat("lowerdir=", absl::StrJoin(lower_dirs, ":"));
  if (data.size() > kMaxMountData) {
    return MountReadOnlyOverlayWithFsConfig(lower_dirs, target);
  }
  if (::mount("overlay", target.c_str(), "overlay", MS_RDONLY | MS_NODEV, data.c_str()) != 0) {
    return ErrnoError(errno, "mount overlay on ", target);
  }
  return absl::OkStatus();
}

// `sub_path` inside the image mounted at `root`, symlinks resolved as if
// `root` were "/": the real path, always below `root`.
absl::StatusOr<std::string> ResolveInImage(const std::string& root, const std::string& sub_path) {
  UniqueFd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) {
    return ErrnoError(errno, "open ", root);
  }
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  UniqueFd fd(
      static_cast<int>(::syscall(SYS_openat2, root_fd.get(), sub_path.c_str(), &how, sizeof(how))));
  if (!fd.valid()) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return absl::InvalidArgumentError(
          absl::StrCat("mounts.image_sub_path: \"", sub_path, "\" does not exist in the image"));
    }
    return ErrnoError(errno, "mounts.image_sub_path: open \"", sub_path, "\" in the image");
  }
  char buf[PATH_MAX];
  const std::string link = absl::StrCat("/proc/self/fd/", fd.get());
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) {
    return ErrnoError(errno, "readlink ", link);
  }
  std::string real(buf, static_cast<size_t>(n));
  if (real != root && !absl::StartsWith(real, root + "/")) {
    return absl::InternalError(
        absl::StrCat("mounts.image_sub_path: \"", sub_path, "\" resolved outside the image"));
  }
  return real;
}

}  // namespace

absl::Status ValidateImageVolume(const runtime::v1::Mount& mount) {
  if (!mount.readonly()) {
    // As kubelet, containerd and CRI-O: an image is never written through.
    return absl::InvalidArgumentError(absl::StrCat(
        "mounts.readonly: an image volume must be read-only (", mount.container_path(), ")"));
  }
  const std::string& sub_path = mount.image_sub_path();
  if (!sub_path.empty()) {
    if (sub_path[0] == '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "mounts.image_sub_path: must be relative to the image's root, got \"", sub_path, "\""));
    }
    for (absl::string_view part : absl::StrSplit(sub_path, '/')) {
      if (part == "..") {
        return absl::InvalidArgumentError(
            absl::StrCat("mounts.image_sub_path: must not contain \"..\", got \"", sub_path, "\""));
      }
    }
  }
  return absl::OkStatus();
}

std::string ImageVolumeDir(const std::string& container_dir, int index) {
  return absl::StrCat(container_dir, "/image-volumes/", index);
}

absl::StatusOr<std::string> MountImageVolume(const std::string& mount_point,
                                             const std::vector<std::string>& lower_dirs,
                                             const std::string& sub_path,
                                             const std::string& userns_path) {
  if (lower_dirs.empty()) {
    return absl::FailedPreconditionError("mounts.image: the image has no layers");
  }
  CRID_RETURN_IF_ERROR(MakeDirs(mount_point, 0700));
  if (userns_path.empty()) {
    CRID_RETURN_IF_ERROR(MountLayersReadOnly(lower_dirs, mount_point));
  } else {
    // The runtime's init, already the pod's unprivileged root, binds it.
    const std::string parent = mount_point.substr(0, mount_point.rfind('/'));
    if (::chmod(parent.c_str(), 0711) != 0) {
      return ErrnoError(errno, "chmod ", parent);
    }
    // overlayfs cannot be idmapped, its layers can: the volume is stacked on
    // idmapped clones of them, which go once the overlay holds its own.
    IdmappedLayers layers(mount_point + ".layers");
    CRID_ASSIGN_OR_RETURN(std::vector<std::string> mapped, layers.Mount(lower_dirs, userns_path));
    CRID_RETURN_IF_ERROR(MountLayersReadOnly(mapped, mount_point));
  }
  bool keep = false;
  absl::Cleanup unmount = [&] {
    if (!keep) {
      ::umount2(mount_point.c_str(), MNT_DETACH);
      ::rmdir(mount_point.c_str());
    }
  };
  std::string source = mount_point;
  if (!sub_path.empty()) {
    CRID_ASSIGN_OR_RETURN(source, ResolveInImage(mount_point, sub_path));
  }
  keep = true;
  return source;
}

absl::Status RemoveImageVolumes(const std::string& container_dir) {
  const std::string dir = container_dir + "/image-volumes";
  absl::StatusOr<std::vector<std::string>> entries = ListDir(dir);
  if (!entries.ok()) {
    return absl::IsNotFound(entries.status()) ? absl::OkStatus() : entries.status();
  }
  for (const std::string& name : *entries) {
    const std::string mount_point = absl::StrCat(dir, "/", name);
    if (absl::EndsWith(name, ".layers")) {
      // Idmapped layer clones a crash left behind (MountImageVolume).
      absl::StatusOr<std::vector<std::string>> layers = ListDir(mount_point);
      for (const std::string& layer : layers.ok() ? *layers : std::vector<std::string>{}) {
        const std::string path = absl::StrCat(mount_point, "/", layer);
        CRID_RETURN_IF_ERROR(UnmountAll(path));
        if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
          return ErrnoError(errno, "remove ", path);
        }
      }
    }
    CRID_RETURN_IF_ERROR(UnmountAll(mount_point));
    if (::rmdir(mount_point.c_str()) != 0 && errno != ENOENT) {
      return ErrnoError(errno, "remove ", mount_point);
    }
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "remove ", dir);
  }
  return absl::OkStatus();
}

}  // namespace crid
