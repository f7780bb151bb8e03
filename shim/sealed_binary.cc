#include "shim/sealed_binary.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/errors.h"

namespace crid::shim {

namespace {

// Since Linux 6.3 a memfd is executable only when asked for (or when the
// vm.memfd_noexec sysctl allows the old default); older kernels refuse the
// flag and make every memfd executable.
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

constexpr char kElfMagic[4] = {0x7f, 'E', 'L', 'F'};
constexpr int kSeals = F_SEAL_SEAL | F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;

int64_t MtimeNs(const struct stat& st) {
  return int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
}

absl::StatusOr<UniqueFd> CreateMemfd() {
  UniqueFd memfd(::memfd_create("crid-shim", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC));
  if (!memfd.valid() && errno == EINVAL) {
    memfd.reset(::memfd_create("crid-shim", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  }
  if (!memfd.valid()) {
    return ErrnoError(errno, "memfd_create for crid-shim");
  }
  return memfd;
}

// Copies `size` bytes of `from` to `to` in the kernel; read/write where
// sendfile cannot.
absl::Status CopyAll(int from, int to, off_t size, const std::string& path) {
  off_t offset = 0;
  while (offset < size) {
    ssize_t n = ::sendfile(to, from, &offset, static_cast<size_t>(size - offset));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EINVAL || errno == ENOSYS) && offset == 0) {
      break;
    }
    if (n < 0) {
      return ErrnoError(errno, "sendfile ", path, " to a memfd");
    }
    if (n == 0) {
      return absl::DataLossError(absl::StrCat(path, " shrank while it was copied"));
    }
  }
  char buf[1 << 16];
  while (offset < size) {
    ssize_t n = ::pread(from, buf, sizeof(buf), offset);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return n < 0 ? ErrnoError(errno, "read ", path)
                   : absl::DataLossError(absl::StrCat(path, " shrank while it was copied"));
    }
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::pwrite(to, buf + done, static_cast<size_t>(n - done), offset + done);
      if (w < 0 && errno == EINTR) {
        continue;
      }
      if (w < 0) {
        return ErrnoError(errno, "write a memfd copy of ", path);
      }
      done += w;
    }
    offset += n;
  }
  return absl::OkStatus();
}

}  // namespace

SealedBinary& SealedBinary::Shared() {
  static SealedBinary* shared = new SealedBinary();
  return *shared;
}

absl::StatusOr<std::shared_ptr<const UniqueFd>> SealedBinary::Get(const std::string& path) {
  struct stat st = {};
  if (::stat(path.c_str(), &st) != 0) {
    return ErrnoError(errno, "stat ", path);
  }
  Identity current{path, st.st_dev, st.st_ino, MtimeNs(st), st.st_size};
  absl::MutexLock lock(&mu_);
  if (memfd_ != nullptr && identity_ == current) {
    return memfd_;
  }
  UniqueFd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file.valid()) {
    return ErrnoError(errno, "open ", path);
  }
  if (::fstat(file.get(), &st) != 0) {
    return ErrnoError(errno, "fstat ", path);
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  }
  char magic[4] = {};
  if (::pread(file.get(), magic, sizeof(magic), 0) != sizeof(magic) ||
      std::memcmp(magic, kElfMagic, sizeof(magic)) != 0) {
    return nullptr;
  }
  CRID_ASSIGN_OR_RETURN(UniqueFd memfd, CreateMemfd());
  CRID_RETURN_IF_ERROR(CopyAll(file.get(), memfd.get(), st.st_size, path));
  // A file rewritten in place during the copy (an upgrade) could give a
  // mixture of two binaries: the copy counts only if nothing changed.
  struct stat after = {};
  if (::fstat(file.get(), &after) != 0) {
    return ErrnoError(errno, "fstat ", path);
  }
  if (MtimeNs(after) != MtimeNs(st) || after.st_size != st.st_size) {
    return absl::UnavailableError(absl::StrCat(path, " changed while it was copied"));
  }
  if (::fcntl(memfd.get(), F_ADD_SEALS, kSeals) != 0) {
    return ErrnoError(errno, "seal the memfd copy of ", path);
  }
  identity_ = {path, st.st_dev, st.st_ino, MtimeNs(st), st.st_size};
  memfd_ = std::make_shared<const UniqueFd>(std::move(memfd));
  return memfd_;
}

}  // namespace crid::shim
