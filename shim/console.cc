#include "shim/console.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/errors.h"

namespace crid::shim {

namespace {

std::atomic<int> next_console{0};

}  // namespace

absl::StatusOr<ConsoleSocket> ConsoleSocket::Listen(const std::string& dir) {
  std::string name = absl::StrCat("console-", ::getpid(), "-", next_console++, ".sock");
  std::string path = absl::StrCat(dir, "/", name);
  struct sockaddr_un addr = {};
  if (path.size() >= sizeof(addr.sun_path)) {
    path = absl::StrCat("/tmp/crid-", name);
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) {
    return ErrnoError(errno, "socket");
  }
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoError(errno, "bind ", path);
  }
  // Only root (the runtime) may hand us a terminal.
  if (::chmod(path.c_str(), 0600) != 0 || ::listen(fd.get(), 1) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return ErrnoError(err, "listen ", path);
  }
  return ConsoleSocket(std::move(path), std::move(fd));
}

ConsoleSocket::~ConsoleSocket() {
  if (fd_.valid()) {
    ::unlink(path_.c_str());
  }
}

absl::StatusOr<UniqueFd> ConsoleSocket::ReceiveMaster() {
  // The runtime has exited by now, but give a slow kernel a moment.
  struct pollfd p = {fd_.get(), POLLIN, 0};
  if (::poll(&p, 1, 5000) <= 0) {
    return absl::InternalError(absl::StrCat("the runtime sent no terminal on ", path_));
  }
  UniqueFd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn.valid()) {
    return ErrnoError(errno, "accept ", path_);
  }
  char name[256];
  struct iovec iov = {name, sizeof(name)};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  p = {conn.get(), POLLIN, 0};
  if (::poll(&p, 1, 5000) <= 0) {
    return absl::InternalError(absl::StrCat("the runtime sent no terminal on ", path_));
  }
  ssize_t n = ::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) {
    return ErrnoError(errno, "recvmsg ", path_);
  }
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(sizeof(int))) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c), sizeof(fd));
      return UniqueFd(fd);
    }
  }
  return absl::InternalError(absl::StrCat("the runtime's message on ", path_, " had no terminal"));
}

}  // namespace crid::shim
