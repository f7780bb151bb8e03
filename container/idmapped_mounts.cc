#include "container/idmapped_mounts.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/unique_fd.h"

namespace crid {

namespace {

int OpenTree(int dfd, const char* path, unsigned flags) {
  return static_cast<int>(::syscall(SYS_open_tree, dfd, path, flags));
}
int MountSetattr(int dfd, const char* path, unsigned flags, struct mount_attr* attr) {
  return static_cast<int>(::syscall(SYS_mount_setattr, dfd, path, flags, attr, sizeof(*attr)));
}
int MoveMount(int from_fd, const char* from, int to_fd, const char* to, unsigned flags) {
  return static_cast<int>(::syscall(SYS_move_mount, from_fd, from, to_fd, to, flags));
}

// A bind mount takes the kind of its source: a directory on a directory, a
// file on a file.
absl::Status MakeMountPoint(const std::string& path, bool directory) {
  if (directory) {
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "mkdir ", path);
    }
    return absl::OkStatus();
  }
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) {
    return ErrnoError(errno, "create ", path);
  }
  return absl::OkStatus();
}

bool HasOption(const nlohmann::json& mount, const char* option) {
  for (const nlohmann::json& o : mount.value("options", nlohmann::json::array())) {
    if (o.is_string() && o.get<std::string>() == option) {
      return true;
    }
  }
  return false;
}

}  // namespace

absl::Status IdmappedBindMount(const std::string& source, const std::string& target, int userns_fd,
                               bool recursive) {
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
  UniqueFd tree(OpenTree(AT_FDCWD, source.c_str(), flags));
  if (!tree.valid()) {
    return ErrnoError(errno, "open_tree ", source);
  }
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (MountSetattr(tree.get(), "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr) != 0) {
    const int err = errno;
    if (err == EINVAL || err == EOPNOTSUPP) {
      return absl::FailedPreconditionError(absl::StrCat(
          "idmap a mount of ", source, ": its filesystem",
          recursive ? " (or one mounted below it)" : "",
          " does not support idmapped mounts (mount_setattr: ", std::strerror(err), ")"));
    }
    return ErrnoError(err, "idmap a mount of ", source);
  }
  if (MoveMount(tree.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return ErrnoError(errno, "move_mount idmapped ", source, " to ", target);
  }
  return absl::OkStatus();
}

absl::Status UnmountAll(const std::string& path) {
  for (int i = 0; i < 16; ++i) {
    if (::umount2(path.c_str(), MNT_DETACH) != 0) {
      if (errno == EINVAL || errno == ENOENT) {
        return absl::OkStatus();
      }
      return ErrnoError(errno, "unmount ", path);
    }
  }
  return absl::FailedPreconditionError(absl::StrCat(path, " is still mounted"));
}

IdmappedLayers::~IdmappedLayers() {
  for (const std::string& target : targets_) {
    ::umount2(target.c_str(), MNT_DETACH);
    ::rmdir(target.c_str());
  }
  ::rmdir(dir_.c_str());
}

absl::StatusOr<std::vector<std::string>> IdmappedLayers::Mount(
    const std::vector<std::string>& lower_dirs, const std::string& userns_path) {
  UniqueFd userns(::open(userns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!userns.valid()) {
    return ErrnoError(errno, "open user namespace ", userns_path);
  }
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError(errno, "mkdir ", dir_);
  }
  std::vector<std::string> mapped;
  for (size_t i = 0; i < lower_dirs.size(); ++i) {
    std::string target = absl::StrCat(dir_, "/", i);
    if (::mkdir(target.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "mkdir ", target);
    }
    targets_.push_back(target);
    CRID_RETURN_IF_ERROR(IdmappedBindMount(lower_dirs[i], target, userns.get(), false));
    mapped.push_back(std::move(target));
  }
  return mapped;
}

absl::Status IdmapBindMounts(const std::string& container_dir, const std::string& userns_path,
                             const std::string& skip_prefix, nlohmann::json& mounts) {
  UniqueFd userns(::open(userns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!userns.valid()) {
    return ErrnoError(errno, "open user namespace ", userns_path);
  }
  const std::string dir = container_dir + "/idmapped";
  // The runtime's init resolves the sources as the pod's unprivileged root.
  if (::mkdir(dir.c_str(), 0711) != 0 && errno != EEXIST) {
    return ErrnoError(errno, "mkdir ", dir);
  }
  bool done = false;
  absl::Cleanup undo = [&] {
    if (!done) {
      (void)RemoveIdmappedMounts(container_dir);
    }
  };
  // Sources are rewritten only once every clone is in place.
  std::vector<std::pair<nlohmann::json*, std::string>> clones;
  for (nlohmann::json& m : mounts) {
    if (m.value("type", "") != "bind") {
      continue;
    }
    const std::string source = m.value("source", "");
    const std::string destination = m.value("destination", "");
    if (!skip_prefix.empty() && absl::StartsWith(source, skip_prefix)) {
      continue;
    }
    // The host's /sys for a pod on the host network (oci_spec.cc): sysfs
    // cannot be idmapped, and its files are the host's in any case.
    if (destination == "/sys" && source == "/sys") {
      continue;
    }
    struct stat st;
    if (::stat(source.c_str(), &st) != 0) {
      return ErrnoError(errno, "mounts: ", destination, ": stat ", source);
    }
    const std::string target = absl::StrCat(dir, "/", clones.size());
    CRID_RETURN_IF_ERROR(MakeMountPoint(target, S_ISDIR(st.st_mode)));
    absl::Status mounted = IdmappedBindMount(source, target, userns.get(), HasOption(m, "rbind"));
    if (!mounted.ok()) {
      return absl::Status(mounted.code(),
                          absl::StrCat("mounts: ", destination,
                                       " in a pod with a user namespace: ", mounted.message()));
    }
    clones.emplace_back(&m, target);
  }
  for (auto& [mount, target] : clones) {
    (*mount)["source"] = std::move(target);
  }
  done = true;
  return absl::OkStatus();
}

absl::Status RemoveIdmappedMounts(const std::string& container_dir) {
  const std::string dir = container_dir + "/idmapped";
  absl::StatusOr<std::vector<std::string>> entries = ListDir(dir);
  if (!entries.ok()) {
    return absl::IsNotFound(entries.status()) ? absl::OkStatus() : entries.status();
  }
  for (const std::string& name : *entries) {
    const std::string target = absl::StrCat(dir, "/", name);
    CRID_RETURN_IF_ERROR(UnmountAll(target));
    // rmdir and unlink refuse a mount point (EBUSY): a clone that is somehow
    // still mounted is never removed through.
    struct stat st;
    if (::lstat(target.c_str(), &st) != 0) {
      continue;
    }
    if ((S_ISDIR(st.st_mode) ? ::rmdir(target.c_str()) : ::unlink(target.c_str())) != 0 &&
        errno != ENOENT) {
      return ErrnoError(errno, "remove ", target);
    }
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "remove ", dir);
  }
  return absl::OkStatus();
}

}  // namespace crid
