#include "base/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/unique_fd.h"

namespace crid {

absl::Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) {
    return absl::InvalidArgumentError("MakeDirs: empty path");
  }
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a directory"));
    }
    return absl::OkStatus();
  }
  std::string::size_type slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    CRID_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash), mode));
  }
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return ErrnoError(errno, "mkdir ", path);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return ErrnoError(errno, "open ", path);
  }
  std::string out;
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoError(errno, "read ", path);
    }
    if (n == 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

namespace {

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoError(errno, "write ", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

std::string DirName(const std::string& path) {
  std::string::size_type slash = path.find_last_of('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    return ErrnoError(errno, "open directory ", path);
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = ::readdir(dir)) {
    absl::string_view name = entry->d_name;
    if (name != "." && name != "..") {
      names.emplace_back(name);
    }
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) {
    return ErrnoError(err, "read directory ", path);
  }
  return names;
}

namespace {

// Writes `data` to PATH.tmp.PID and renames it to `path`; with `sync`, the
// file is fsynced before the rename and its directory after.
absl::Status WriteAndRename(const std::string& path, absl::string_view data, mode_t mode,
                            bool sync) {
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd.valid()) {
    return ErrnoError(errno, "create ", tmp);
  }
  absl::Status st = WriteAll(fd.get(), data, tmp);
  if (st.ok() && ::fchmod(fd.get(), mode) != 0) {
    st = ErrnoError(errno, "fchmod ", tmp);
  }
  if (st.ok() && sync && ::fsync(fd.get()) != 0) {
    st = ErrnoError(errno, "fsync ", tmp);
  }
  fd.reset();
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = ErrnoError(errno, "rename ", tmp, " to ", path);
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  if (!sync) {
    return absl::OkStatus();
  }
  std::string dir = DirName(path);
  UniqueFd dirfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd.valid()) {
    return ErrnoError(errno, "open ", dir);
  }
  if (::fsync(dirfd.get()) != 0) {
    return ErrnoError(errno, "fsync ", dir);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, mode_t mode) {
  return WriteAndRename(path, data, mode, /*sync=*/true);
}

absl::Status ReplaceFile(const std::string& path, absl::string_view data, mode_t mode) {
  return WriteAndRename(path, data, mode, /*sync=*/false);
}

namespace {

// Removes the entry `name` in `parent_fd`; `dev` is the filesystem it must be on.
absl::Status RemoveEntryAt(int parent_fd, const char* name, dev_t dev, const std::string& path) {
  struct stat st;
  if (::fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? absl::OkStatus() : ErrnoError(errno, "stat ", path);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(parent_fd, name, 0) != 0 && errno != ENOENT) {
      return ErrnoError(errno, "unlink ", path);
    }
    return absl::OkStatus();
  }
  if (st.st_dev != dev) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is a mount point; not removing"));
  }
  int fd = ::openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOENT ? absl::OkStatus() : ErrnoError(errno, "open ", path);
  }
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return ErrnoError(err, "opendir ", path);
  }
  absl::Status result;
  while (struct dirent* entry = ::readdir(dir)) {
    absl::string_view child = entry->d_name;
    if (child == "." || child == "..") {
      continue;
    }
    result = RemoveEntryAt(::dirfd(dir), entry->d_name, dev, absl::StrCat(path, "/", child));
    if (!result.ok()) {
      break;
    }
  }
  ::closedir(dir);
  CRID_RETURN_IF_ERROR(result);
  if (::unlinkat(parent_fd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "rmdir ", path);
  }
  return absl::OkStatus();
}

struct UsageWalker {
  dev_t root_dev;
  DiskUsage usage;
  std::set<std::pair<dev_t, ino_t>> linked;  // inodes with several names, counted once

  void Count(const struct stat& st) {
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && !linked.insert({st.st_dev, st.st_ino}).second) {
      return;
    }
    usage.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    usage.inodes += 1;
  }

  // `dirfd` is an open directory already counted by the caller.
  absl::Status Walk(int dirfd, const std::string& path) {
    DIR* dir = ::fdopendir(dirfd);
    if (dir == nullptr) {
      int err = errno;
      ::close(dirfd);
      return ErrnoError(err, "opendir ", path);
    }
    absl::Status result;
    while (struct dirent* entry = ::readdir(dir)) {
      absl::string_view name = entry->d_name;
      if (name == "." || name == "..") {
        continue;
      }
      struct stat st;
      if (::fstatat(::dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
          continue;  // removed while we walked
        }
        result = ErrnoError(errno, "stat ", path, "/", name);
        break;
      }
      if (st.st_dev != root_dev) {
        continue;  // another filesystem mounted below the root
      }
      Count(st);
      if (S_ISDIR(st.st_mode)) {
        int child =
            ::openat(::dirfd(dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (child < 0) {
          if (errno == ENOENT) {
            continue;
          }
          result = ErrnoError(errno, "open ", path, "/", name);
          break;
        }
        result = Walk(child, absl::StrCat(path, "/", name));
        if (!result.ok()) {
          break;
        }
      }
    }
    ::closedir(dir);
    return result;
  }
};

}  // namespace

absl::Status RemoveTree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? absl::OkStatus() : ErrnoError(errno, "stat ", path);
  }
  std::string parent = DirName(path);
  UniqueFd parent_fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent_fd.valid()) {
    return ErrnoError(errno, "open ", parent);
  }
  std::string name = path.substr(path.find_last_of('/') + 1);
  return RemoveEntryAt(parent_fd.get(), name.c_str(), st.st_dev, path);
}

absl::StatusOr<DiskUsage> MeasureDiskUsage(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return ErrnoError(errno, "open ", path);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoError(err, "stat ", path);
  }
  UsageWalker walker{st.st_dev, {}, {}};
  walker.Count(st);
  CRID_RETURN_IF_ERROR(walker.Walk(fd, path));
  return walker.usage;
}

}  // namespace crid
