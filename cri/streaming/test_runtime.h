// A StreamingRuntime for tests of the streaming server: runs commands as host
// processes on the pipes it is given, attaches by echoing stdin, and forwards
// ports on the host loopback.
#pragma once

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cri/streaming/runtime.h"

namespace crid::streaming {

class HostProcessRuntime final : public StreamingRuntime {
 public:
  absl::StatusOr<int> Exec(const std::string& container_id, const std::vector<std::string>& cmd,
                           StreamIo io) override;
  absl::Status Attach(const std::string& container_id, StreamIo io) override;
  absl::StatusOr<UniqueFd> PortForward(const std::string& pod_sandbox_id, int32_t port) override;

  std::vector<TerminalSize> sizes();
  int finished_execs() const { return finished_execs_.load(); }
  // The last Exec was stopped because the session ended early.
  bool last_exec_cancelled() const { return last_exec_cancelled_.load(); }

 private:
  absl::Mutex mu_;
  std::vector<TerminalSize> sizes_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> finished_execs_{0};
  std::atomic<bool> last_exec_cancelled_{false};
};

}  // namespace crid::streaming
