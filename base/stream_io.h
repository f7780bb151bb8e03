// What the streaming server (cri/streaming) asks of the rest of crid: run a
// command in a container, attach to one, or open a connection to a pod's
// port. The server owns the client protocols; a runtime only sees file
// descriptors, so it can hand them to a child process or pass them to a shim
// as they are. Declared here, below both, so the container manager implements
// it without depending on the server.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace crid::streaming {

struct TerminalSize {
  uint16_t width = 0;
  uint16_t height = 0;
  bool operator==(const TerminalSize& o) const { return width == o.width && height == o.height; }
};

// Window sizes the client sent, oldest first. Only the last few are kept: a
// terminal only cares about the newest size.
class ResizeQueue {
 public:
  void Push(TerminalSize size);
  // Ends Next() for good.
  void Close();
  // Waits until a size arrives (returns it), the queue closes or `timeout`
  // passes (std::nullopt for both).
  std::optional<TerminalSize> Next(absl::Duration timeout = absl::InfiniteDuration());

 private:
  static constexpr size_t kMaxPending = 8;
  absl::Mutex mu_;
  std::deque<TerminalSize> pending_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// The I/O of one exec or attach session. The descriptors are pipe ends owned by
// the runtime from the call on: the server copies between them and the client
// and never buffers more than a pipe's worth, so a slow client slows the
// command down (as a terminal would) and a vanished client closes the pipes.
struct StreamIo {
  // Read end: what the client types; EOF when the client closes stdin.
  // Invalid when the request has no stdin.
  UniqueFd stdin_fd;
  // Write ends for the command's output. stderr is invalid with a TTY (the
  // terminal merges both) or when not requested.
  UniqueFd stdout_fd;
  UniqueFd stderr_fd;
  bool tty = false;
  // Terminal sizes (TTY sessions only; otherwise nullptr). Owned by the server.
  ResizeQueue* resize = nullptr;
  // Becomes readable (EOF) when the session ends early: the client went away
  // or the server is stopping. The runtime must then stop the command and
  // return. Owned by the server.
  int done_fd = -1;
};

class StreamingRuntime {
 public:
  virtual ~StreamingRuntime() = default;

  // Runs `cmd` in the container and returns its exit code once it exited.
  // A non-OK status means it could not be run (the client sees an internal error).
  virtual absl::StatusOr<int> Exec(const std::string& container_id,
                                   const std::vector<std::string>& cmd, StreamIo io) = 0;
  // Connects `io` to the container's main process until the process exits or
  // io.done_fd fires.
  virtual absl::Status Attach(const std::string& container_id, StreamIo io) = 0;
  // A connected TCP socket to `port` on the pod's loopback, inside its network
  // namespace. The server copies between it and the client.
  virtual absl::StatusOr<UniqueFd> PortForward(const std::string& pod_sandbox_id, int32_t port) = 0;
};

}  // namespace crid::streaming
