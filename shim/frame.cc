#include "shim/frame.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/errors.h"

namespace crid::shim {

namespace {

// Waits until `fd` is ready for `events` or the deadline passes.
absl::Status AwaitReady(int fd, int16_t events, absl::Time deadline) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (left <= 0) {
        return absl::DeadlineExceededError("shim connection: timed out");
      }
      timeout_ms = static_cast<int>(std::min<int64_t>(left, 60'000));
    }
    struct pollfd p = {fd, events, 0};
    int n = ::poll(&p, 1, timeout_ms);
    if (n > 0) {
      return absl::OkStatus();
    }
    if (n < 0 && errno != EINTR) {
      return ErrnoError(errno, "poll shim connection");
    }
  }
}

absl::Status SendAll(int fd, const char* data, size_t size, absl::Time deadline) {
  while (size > 0) {
    CRID_RETURN_IF_ERROR(AwaitReady(fd, POLLOUT, deadline));
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      if (errno == EPIPE || errno == ECONNRESET) {
        return absl::UnavailableError("shim connection closed by peer");
      }
      return ErrnoError(errno, "write shim connection");
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status RecvAll(int fd, char* data, size_t size, absl::Time deadline) {
  while (size > 0) {
    CRID_RETURN_IF_ERROR(AwaitReady(fd, POLLIN, deadline));
    ssize_t n = ::recv(fd, data, size, MSG_DONTWAIT);
    if (n == 0) {
      return absl::UnavailableError("shim connection closed by peer");
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      if (errno == ECONNRESET) {
        return absl::UnavailableError("shim connection closed by peer");
      }
      return ErrnoError(errno, "read shim connection");
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& message, absl::Time deadline) {
  std::string body;
  if (!message.SerializeToString(&body)) {
    return absl::InternalError("shim message: cannot serialize");
  }
  if (body.size() > kMaxFrameBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("shim message of ", body.size(), " bytes exceeds ", kMaxFrameBytes));
  }
  uint32_t size = static_cast<uint32_t>(body.size());
  char header[4] = {static_cast<char>(size >> 24), static_cast<char>(size >> 16),
                    static_cast<char>(size >> 8), static_cast<char>(size)};
  CRID_RETURN_IF_ERROR(SendAll(fd, header, sizeof(header), deadline));
  return SendAll(fd, body.data(), body.size(), deadline);
}

absl::Status ReadFrame(int fd, google::protobuf::MessageLite* message, absl::Time deadline) {
  unsigned char header[4];
  CRID_RETURN_IF_ERROR(RecvAll(fd, reinterpret_cast<char*>(header), sizeof(header), deadline));
  size_t size = (size_t{header[0]} << 24) | (size_t{header[1]} << 16) | (size_t{header[2]} << 8) |
                size_t{header[3]};
  if (size > kMaxFrameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("shim message of ", size, " bytes exceeds ", kMaxFrameBytes));
  }
  std::string body(size, '\0');
  CRID_RETURN_IF_ERROR(RecvAll(fd, body.data(), size, deadline));
  if (!message->ParseFromString(body)) {
    return absl::InvalidArgumentError("shim message: unreadable");
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> FrameReader::Next(google::protobuf::MessageLite* message) {
  if (buffer_.size() < 4) {
    return false;
  }
  const auto* header = reinterpret_cast<const unsigned char*>(buffer_.data());
  size_t size = (size_t{header[0]} << 24) | (size_t{header[1]} << 16) | (size_t{header[2]} << 8) |
                size_t{header[3]};
  if (size > kMaxFrameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("shim message of ", size, " bytes exceeds ", kMaxFrameBytes));
  }
  if (buffer_.size() < 4 + size) {
    return false;
  }
  bool parsed = message->ParseFromArray(buffer_.data() + 4, static_cast<int>(size));
  buffer_.erase(0, 4 + size);
  if (!parsed) {
    return absl::InvalidArgumentError("shim message: unreadable");
  }
  return true;
}

absl::Status SendFds(int fd, const std::vector<int>& fds, absl::Time deadline) {
  if (fds.empty() || fds.size() > kMaxPassedFds) {
    return absl::InvalidArgumentError(absl::StrCat("cannot pass ", fds.size(), " descriptors"));
  }
  char byte = 'F';
  struct iovec iov = {&byte, 1};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  for (;;) {
    CRID_RETURN_IF_ERROR(AwaitReady(fd, POLLOUT, deadline));
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == 1) {
      return absl::OkStatus();
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      return absl::UnavailableError("shim connection closed by peer");
    }
    return ErrnoError(errno, "pass descriptors on the shim connection");
  }
}

absl::StatusOr<std::vector<UniqueFd>> ReceiveFds(int fd, size_t count, absl::Time deadline) {
  if (count == 0 || count > kMaxPassedFds) {
    return absl::InvalidArgumentError(absl::StrCat("cannot receive ", count, " descriptors"));
  }
  char byte = 0;
  struct iovec iov = {&byte, 1};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = 0;
  for (;;) {
    CRID_RETURN_IF_ERROR(AwaitReady(fd, POLLIN, deadline));
    n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    }
    break;
  }
  if (n < 0) {
    return ErrnoError(errno, "receive descriptors on the shim connection");
  }
  if (n == 0) {
    return absl::UnavailableError("shim connection closed by peer");
  }
  // Take ownership of whatever arrived before judging it, so nothing leaks.
  std::vector<UniqueFd> received;
  for (struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr;
       cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
      continue;
    }
    size_t n_fds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n_fds; ++i) {
      int passed = -1;
      std::memcpy(&passed, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
      received.emplace_back(passed);
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0) {
    return absl::InvalidArgumentError("too many descriptors passed on the shim connection");
  }
  if (received.size() != count) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", count, " descriptors with the request, got ", received.size()));
  }
  return received;
}

}  // namespace crid::shim
