#include "cri/streaming/runtime.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "netns/namespace.h"

namespace crid::streaming {

namespace {

absl::StatusOr<UniqueFd> Connect(const sockaddr* addr, socklen_t len, absl::string_view what,
                                 absl::Duration timeout) {
  UniqueFd fd(socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) {
    return ErrnoError(errno, "socket");
  }
  if (connect(fd.get(), addr, len) != 0) {
    if (errno != EINPROGRESS) {
      return ErrnoError(errno, "connect to ", what);
    }
    pollfd p{fd.get(), POLLOUT, 0};
    int rc;
    do {
      rc = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) {
      return absl::DeadlineExceededError(absl::StrCat("connect to ", what, ": timed out"));
    }
    int err = 0;
    socklen_t err_len = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &err_len);
    if (err != 0) {
      return ErrnoError(err, "connect to ", what);
    }
  }
  // Back to blocking: the server copies with blocking I/O.
  int flags = fcntl(fd.get(), F_GETFL);
  fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

}  // namespace

absl::StatusOr<UniqueFd> DialLoopbackInNetns(const std::string& netns_path, int32_t port,
                                             absl::Duration timeout) {
  if (port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port ", port, " is not in 1-65535"));
  }
  absl::StatusOr<UniqueFd> result = absl::UnknownError("not dialed");
  auto dial = [&]() -> absl::Status {
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    v4.sin_port = htons(static_cast<uint16_t>(port));
    v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    result = Connect(reinterpret_cast<sockaddr*>(&v4), sizeof(v4), absl::StrCat("127.0.0.1:", port),
                     timeout);
    if (!result.ok()) {
      sockaddr_in6 v6{};
      v6.sin6_family = AF_INET6;
      v6.sin6_port = htons(static_cast<uint16_t>(port));
      v6.sin6_addr = in6addr_loopback;
      absl::StatusOr<UniqueFd> second = Connect(reinterpret_cast<sockaddr*>(&v6), sizeof(v6),
                                                absl::StrCat("[::1]:", port), timeout);
      if (second.ok()) {
        result = std::move(second);
      }
    }
    return absl::OkStatus();
  };
  if (netns_path.empty()) {
    CRID_RETURN_IF_ERROR(dial());
  } else {
    CRID_RETURN_IF_ERROR(RunInNamespaces({{NamespaceType::kNet, netns_path}}, dial));
  }
  return result;
}

}  // namespace crid::streaming
