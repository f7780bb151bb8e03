#include "oci/native_start.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/unique_fd.h"

namespace crid {

namespace {

constexpr char kFifo[] = "exec.fifo";

// Reads what is there without blocking. Returns false at end of file (the
// init has exec'd or died and no writer is left).
absl::StatusOr<bool> ReadAvailable(int fd, size_t* total) {
  char buf[64];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      *total += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      return false;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN) {
      return true;
    }
    return ErrnoError(errno, "read exec fifo");
  }
}

}  // namespace

absl::Status NativeStart(const std::string& root, const std::string& id, int init_pidfd,
                         absl::Duration timeout) {
  // The id names a directory of runc's root: the caller validated it, but it
  // must stay one path component here whoever calls.
  if (id.empty() || id == "." || id == ".." || absl::StrContains(id, '/')) {
    return absl::InvalidArgumentError(absl::StrCat("id: ", id, " is no container id"));
  }
  UniqueFd dir(
      ::open(absl::StrCat(root, "/", id).c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.valid()) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("container ", id, " does not exist"));
    }
    return ErrnoError(errno, "open ", root, "/", id);
  }
  // Non-blocking: the open does not wait for a writer. The init is already
  // blocked opening the FIFO for writing, and proceeds once a reader is there.
  UniqueFd fifo(::openat(dir.get(), kFifo, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC));
  if (!fifo.valid()) {
    if (errno == ENOENT) {
      // runc removes the FIFO at start.
      return absl::NotFoundError(
          absl::StrCat("container ", id, " has no exec fifo: it is not waiting to start"));
    }
    return ErrnoError(errno, "open exec fifo of ", id);
  }
  struct stat st {};
  if (::fstat(fifo.get(), &st) != 0) {
    return ErrnoError(errno, "stat exec fifo of ", id);
  }
  if (!S_ISFIFO(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(root, "/", id, "/", kFifo, " is not a FIFO"));
  }
  // Until end of file, as runc reads it: the init writes one byte, runs its
  // startContainer hooks and execs, and the exec closes its end. Only read
  // once poll says so: until the init's open has completed there is no
  // writer, and a read would answer end of file at once. A reader that opened
  // before any writer gets no hangup from poll until a writer has come and
  // gone.
  const absl::Time deadline = absl::Now() + timeout;
  size_t total = 0;
  bool init_exited = false;
  for (;;) {
    struct pollfd fds[2] = {{fifo.get(), POLLIN, 0}, {init_pidfd, POLLIN, 0}};
    const nfds_t nfds = init_pidfd >= 0 ? 2 : 1;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "start of container ", id, " did not finish within ", absl::FormatDuration(timeout)));
    }
    int ms = static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))));
    int n = ::poll(fds, nfds, ms);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoError(errno, "poll exec fifo of ", id);
    }
    if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      CRID_ASSIGN_OR_RETURN(bool open, ReadAvailable(fifo.get(), &total));
      if (!open) {
        break;
      }
    }
    if (n > 0 && nfds == 2 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      // The init is gone: whatever it wrote is there now. A container that
      // started, ran and exited between two polls has left its byte.
      CRID_ASSIGN_OR_RETURN(bool open, ReadAvailable(fifo.get(), &total));
      (void)open;
      init_exited = true;
      break;
    }
  }
  if (total == 0) {
    if (init_exited) {
      return absl::FailedPreconditionError("container process is already dead");
    }
    return absl::FailedPreconditionError("cannot start an already running container");
  }
  if (::unlinkat(dir.get(), kFifo, 0) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "remove exec fifo of ", id);
  }
  return absl::OkStatus();
}

}  // namespace crid
