// The StreamingRuntime crid serves with: port forwarding into pod network
// namespaces through the sandbox manager, and exec/attach delegated to the
// container runtime once one is plugged in.
#pragma once

#include <atomic>

#include "cri/streaming/runtime.h"
#include "sandbox/manager.h"

namespace crid::streaming {

class SandboxStreamingRuntime final : public StreamingRuntime {
 public:
  explicit SandboxStreamingRuntime(sandbox::SandboxManager* sandboxes) : sandboxes_(sandboxes) {}

  // Where Exec and Attach go (not owned); until set they fail with UNIMPLEMENTED.
  void SetContainerRuntime(StreamingRuntime* containers) { containers_ = containers; }

  absl::StatusOr<int> Exec(const std::string& container_id, const std::vector<std::string>& cmd,
                           StreamIo io) override;
  absl::Status Attach(const std::string& container_id, StreamIo io) override;
  // Dials the port on the loopback of the pod's network namespace (crid's own
  // for host-network pods). The pod must be ready.
  absl::StatusOr<UniqueFd> PortForward(const std::string& pod_sandbox_id, int32_t port) override;

 private:
  sandbox::SandboxManager* const sandboxes_;
  std::atomic<StreamingRuntime*> containers_{nullptr};
};

}  // namespace crid::streaming
