// crid's side of the shim protocol (proto/shim.proto): starts a pod's crid-shim
// detached from crid, finds it again after a restart, and makes calls on it.
// Every call opens its own connection, so calls may run concurrently.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "proto/shim.pb.h"

namespace crid::shim {

struct LaunchOptions {
  // The crid-shim binary (absolute path). The shim runs from a sealed memfd
  // copy of it, made again when the file changes.
  std::string binary;
  std::string pod_id;
  // The shim's directory: its socket (shim.sock), pid file (shim.pid), exit
  // records and log. Created if missing.
  std::string dir;
  // How long to wait for the new shim to answer.
  absl::Duration start_timeout = absl::Seconds(10);
};

// A shim started by ShimClient::BeginLaunch that has not been waited for.
struct PendingLaunch {
  LaunchOptions options;
  // The read end of the shim's --ready-fd pipe.
  UniqueFd ready;
};

class ShimClient {
 public:
  // Connects to the pod's shim when one answers on DIR/shim.sock; otherwise
  // starts a new one (detached, in its own session, so it outlives crid) and
  // waits for it to answer. A binary that cannot be executed fails at once.
  static absl::StatusOr<std::unique_ptr<ShimClient>> Launch(const LaunchOptions& options);
  // Launch in two halves, so that the caller can do other work while the
  // shim starts: BeginLaunch starts a new shim (never looking for one that
  // runs) and returns at once; FinishLaunch waits until it listens and
  // connects. A shim that lost a race to serve the pod exits, and FinishLaunch
  // connects to the one that won.
  static absl::StatusOr<PendingLaunch> BeginLaunch(const LaunchOptions& options);
  static absl::StatusOr<std::unique_ptr<ShimClient>> FinishLaunch(PendingLaunch pending);
  // Connects to a running shim; UNAVAILABLE when none answers.
  static absl::StatusOr<std::unique_ptr<ShimClient>> Connect(const std::string& dir);

  absl::StatusOr<pid_t> Create(const CreateRequest& request);
  absl::Status Start(const std::string& id);
  absl::Status Kill(const std::string& id, int signal, bool all = false);
  // The state once the container has exited; DEADLINE_EXCEEDED if it still
  // runs after `timeout`.
  absl::StatusOr<ContainerState> Wait(const std::string& id, absl::Duration timeout);
  absl::Status Delete(const std::string& id);
  absl::StatusOr<ContainerState> State(const std::string& id);
  absl::StatusOr<std::vector<ContainerState>> List();
  absl::StatusOr<ExecResponse> Exec(const ExecRequest& request);
  // Interactive sessions (see proto/shim.proto). `fds` are the session's
  // stdio descriptors in the order stdin, stdout, stderr (those the request
  // asks for); the caller keeps its own copies and should close them. The
  // call lasts as long as the session; when `cancel_fd` becomes readable the
  // connection is closed, which ends the session in the shim (an exec'd
  // process is killed), and the call answers CANCELLED.
  absl::StatusOr<int> ExecStream(const ExecStreamRequest& request, const std::vector<int>& fds,
                                 int cancel_fd);
  absl::Status Attach(const AttachRequest& request, const std::vector<int>& fds, int cancel_fd);
  absl::Status Resize(const std::string& id, const std::string& session_id, uint16_t width,
                      uint16_t height);
  absl::Status ReopenLog(const std::string& id);
  absl::Status Update(const std::string& id, const std::string& resources_json);
  // Asks the shim to delete its remaining containers and exit; waits for it to
  // be gone. A shim that is already gone is success.
  absl::Status Shutdown();
  absl::StatusOr<PingResponse> Ping();
  // Opens the shim's event stream (see SubscribeRequest): the returned
  // connection carries framed Responses, a `states` snapshot first.
  absl::StatusOr<UniqueFd> Subscribe();

  // The exit a shim wrote to DIR/exits/<id>.json (see shim/service.h), for a
  // container whose shim is gone: status EXITED with its exit code, OOM flag
  // and times. NOT_FOUND when the shim recorded no exit for it.
  static absl::StatusOr<ContainerState> ReadExitRecord(const std::string& dir,
                                                       const std::string& id);

  // The shim's process ID (from its pid file or Ping).
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }

  // One round trip; a non-OK Response.code becomes that status.
  absl::StatusOr<Response> Call(const Request& request, absl::Duration timeout = absl::Minutes(5));
  // A round trip that passes `fds` with the request and waits for the answer
  // for as long as it takes, or until `cancel_fd` is readable.
  absl::StatusOr<Response> CallSession(const Request& request, const std::vector<int>& fds,
                                       int cancel_fd);

 private:
  ShimClient(std::string dir, pid_t pid) : dir_(std::move(dir)), pid_(pid) {}

  const std::string dir_;
  pid_t pid_;
};

}  // namespace crid::shim
