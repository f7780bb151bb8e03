// RemovePodSandbox: removes everything the pod owns; OK for unknown IDs.
#include "base/errors.h"
#include "cri/runtime_service.h"

namespace crid {

grpc::ServerUnaryReactor* RuntimeService::RemovePodSandbox(
    grpc::CallbackServerContext* context, const runtime::v1::RemovePodSandboxRequest* request,
    runtime::v1::RemovePodSandboxResponse* response) {
  if (request->pod_sandbox_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("pod_sandbox_id: must not be empty"));
  }
  return RunBlocking(context, [this, request]() -> absl::Status {
    absl::StatusOr<sandbox::SandboxRecord> record = sandboxes_->Get(request->pod_sandbox_id());
    if (!record.ok()) {
      return record.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus()
                                                                   : record.status();
    }
    // Containers go first (with the pod's shim): the pod's namespaces and files
    // must outlive every process that uses them.
    if (containers_ != nullptr) {
      CRID_RETURN_IF_ERROR(containers_->StopPod(record->id()));
      CRID_RETURN_IF_ERROR(containers_->RemovePod(record->id()));
    }
    return sandboxes_->Remove(record->id());
  });
}

}  // namespace crid
