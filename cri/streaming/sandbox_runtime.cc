#include "cri/streaming/sandbox_runtime.h"

#include "absl/strings/str_cat.h"

namespace crid::streaming {

absl::StatusOr<int> SandboxStreamingRuntime::Exec(const std::string& container_id,
                                                  const std::vector<std::string>& cmd,
                                                  StreamIo io) {
  StreamingRuntime* containers = containers_.load();
  if (containers == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("exec in container ", container_id,
                     ": crid does not run containers yet (no container runtime is configured)"));
  }
  return containers->Exec(container_id, cmd, std::move(io));
}

absl::Status SandboxStreamingRuntime::Attach(const std::string& container_id, StreamIo io) {
  StreamingRuntime* containers = containers_.load();
  if (containers == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("attach to container ", container_id,
                     ": crid does not run containers yet (no container runtime is configured)"));
  }
  return containers->Attach(container_id, std::move(io));
}

absl::StatusOr<UniqueFd> SandboxStreamingRuntime::PortForward(const std::string& pod_sandbox_id,
                                                              int32_t port) {
  absl::StatusOr<sandbox::SandboxRecord> record = sandboxes_->Get(pod_sandbox_id);
  if (!record.ok()) {
    return record.status();
  }
  if (record->state() != sandbox::SandboxRecord::READY) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod sandbox ", record->id(), " is not ready"));
  }
  return DialLoopbackInNetns(record->netns_path(), port);
}

}  // namespace crid::streaming
