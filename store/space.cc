#include "store/space.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"
#include "base/unique_fd.h"

namespace crid {

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountField(absl::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && field[i + 1] >= '0' && field[i + 1] <= '3') {
      int value = 0;
      bool octal = true;
      for (size_t j = 1; j <= 3; ++j) {
        char c = field[i + j];
        if (c < '0' || c > '7') {
          octal = false;
          break;
        }
        value = value * 8 + (c - '0');
      }
      if (octal) {
        out.push_back(static_cast<char>(value));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

absl::Status WriteZeros(int fd, uint64_t bytes, const std::string& path) {
  std::vector<char> zeros(64 << 10);
  uint64_t done = 0;
  while (done < bytes) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), bytes - done));
    ssize_t w = ::pwrite(fd, zeros.data(), n, static_cast<off_t>(done));
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoError(errno, "write ", path);
    }
    done += static_cast<uint64_t>(w);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<FilesystemSpace> StatFilesystem(const std::string& path, bool find_mount) {
  struct statvfs vfs {};
  if (::statvfs(path.c_str(), &vfs) != 0) {
    return ErrnoError(errno, "statvfs ", path);
  }
  FilesystemSpace space;
  space.avail_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  space.avail_inodes = vfs.f_favail;
  space.inodes_limited = vfs.f_files != 0;
  space.mount_point = path;
  struct stat st {};
  if (!find_mount || ::stat(path.c_str(), &st) != 0) {
    return space;
  }
  // The last mount of the device is the one in view.
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  const std::string dev = absl::StrCat(major(st.st_dev), ":", minor(st.st_dev));
  while (std::getline(in, line)) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 10 || fields[2] != dev) {
      continue;
    }
    space.mount_point = UnescapeMountField(fields[4]);
    for (size_t i = 6; i + 1 < fields.size(); ++i) {
      if (fields[i] == "-") {
        space.fs_type = std::string(fields[i + 1]);
        break;
      }
    }
  }
  return space;
}

std::string HumanBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) {
    return absl::StrCat(bytes, " B");
  }
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < sizeof(kUnits) / sizeof(kUnits[0])) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

absl::Status SpaceReserve::Fill() {
  if (bytes_ == 0) {
    return absl::OkStatus();
  }
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<uint64_t>(st.st_blocks) * 512 >= bytes_) {
    held_ = true;
    return absl::OkStatus();
  }
  UniqueFd fd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) {
    held_ = false;
    return ErrnoError(errno, "create space reserve ", path_);
  }
  absl::Status st_fill;
  if (::fallocate(fd.get(), 0, 0, static_cast<off_t>(bytes_)) != 0) {
    if (errno == EOPNOTSUPP || errno == ENOSYS) {
      st_fill = WriteZeros(fd.get(), bytes_, path_);
    } else {
      st_fill = ErrnoError(errno, "fallocate ", HumanBytes(bytes_), " for space reserve ", path_);
    }
  }
  if (!st_fill.ok()) {
    // A partial reserve would eat the last free blocks and still not be there
    // when needed.
    fd.reset();
    ::unlink(path_.c_str());
    held_ = false;
    return st_fill;
  }
  held_ = true;
  return absl::OkStatus();
}

bool SpaceReserve::Release() {
  if (bytes_ == 0) {
    return false;
  }
  bool freed = ::unlink(path_.c_str()) == 0;
  held_ = false;
  return freed;
}

}  // namespace crid
