// The receiving end of the OCI runtime's --console-socket: a listening unix
// socket the runtime connects to after it made the container's terminal, and
// over which it passes the pty master (SCM_RIGHTS).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace crid::shim {

class ConsoleSocket {
 public:
  // Listens on a new socket in `dir` (or /tmp when `dir` is too long for a
  // socket path). Removed again when the object dies.
  static absl::StatusOr<ConsoleSocket> Listen(const std::string& dir);
  ConsoleSocket(ConsoleSocket&&) = default;
  ConsoleSocket& operator=(ConsoleSocket&&) = default;
  ~ConsoleSocket();

  const std::string& path() const { return path_; }
  // The pty master the runtime sent. Call after the runtime succeeded: by then
  // its connection and message are queued on the socket, so nothing blocks.
  absl::StatusOr<UniqueFd> ReceiveMaster();

 private:
  ConsoleSocket(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  std::string path_;
  UniqueFd fd_;
};

}  // namespace crid::shim
