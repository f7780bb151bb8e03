#include "store/small_filesystem.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/unique_fd.h"

namespace crid {

SmallFilesystem::SmallFilesystem(uint64_t size_bytes) : path_(tmp_.Sub("fs")) {
  if (::mkdir(path_.c_str(), 0755) != 0) {
    status_ = ErrnoError(errno, "mkdir ", path_);
    return;
  }
  std::string options = absl::StrCat("size=", size_bytes, ",mode=0755");
  if (::mount("crid-test-small", path_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) !=
      0) {
    status_ = ErrnoError(errno, "mount tmpfs (", options, ") on ", path_);
    path_.clear();
  }
}

SmallFilesystem::~SmallFilesystem() {
  if (status_.ok() && !path_.empty()) {
    if (::umount2(path_.c_str(), 0) != 0) {
      ::umount2(path_.c_str(), MNT_DETACH);
    }
  }
}

absl::StatusOr<uint64_t> SmallFilesystem::Fill(const std::string& filler) {
  std::string path = Sub(filler);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    return ErrnoError(errno, "open ", path);
  }
  std::string block(64 << 10, 'x');
  uint64_t written = 0;
  // Big writes first, then ever smaller ones, so the last page is used too.
  for (size_t chunk = block.size(); chunk >= 1; chunk /= 4) {
    while (true) {
      ssize_t n = ::write(fd.get(), block.data(), chunk);
      if (n > 0) {
        written += static_cast<uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && errno != ENOSPC) {
        return ErrnoError(errno, "write ", path);
      }
      break;
    }
  }
  return written;
}

uint64_t SmallFilesystem::Available() const {
  struct statvfs vfs {};
  if (::statvfs(path_.c_str(), &vfs) != 0) {
    return 0;
  }
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

}  // namespace crid
