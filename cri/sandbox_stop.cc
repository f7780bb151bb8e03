// StopPodSandbox: idempotent, OK for unknown IDs (kubelet and critest rely on it).
#include "base/errors.h"
#include "cri/runtime_service.h"

namespace crid {

grpc::ServerUnaryReactor* RuntimeService::StopPodSandbox(
    grpc::CallbackServerContext* context, const runtime::v1::StopPodSandboxRequest* request,
    runtime::v1::StopPodSandboxResponse* response) {
  if (request->pod_sandbox_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("pod_sandbox_id: must not be empty"));
  }
  return RunBlocking(context, [this, request]() -> absl::Status {
    absl::StatusOr<sandbox::SandboxRecord> record = sandboxes_->Get(request->pod_sandbox_id());
    if (!record.ok()) {
      return record.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus()
                                                                   : record.status();
    }
    // kubelet stops containers first with their grace period; what still runs
    // is killed.
    if (containers_ != nullptr) {
      CRID_RETURN_IF_ERROR(containers_->StopPod(record->id()));
    }
    return sandboxes_->Stop(record->id());
  });
}

}  // namespace crid
