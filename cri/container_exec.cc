// ExecSync, UpdateContainerResources and ReopenContainerLog: calls on a running
// container through its pod's shim.
#include "absl/strings/str_cat.h"
#include "cri/runtime_service.h"

namespace crid {

grpc::ServerUnaryReactor* RuntimeService::ExecSync(grpc::CallbackServerContext* context,
                                                   const runtime::v1::ExecSyncRequest* request,
                                                   runtime::v1::ExecSyncResponse* response) {
  if (request->container_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("container_id: must not be empty"));
  }
  if (request->cmd().empty() || request->cmd(0).empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("cmd: must name a command"));
  }
  if (request->timeout() < 0) {
    return FinishUnary(context, absl::InvalidArgumentError(absl::StrCat(
                                    "timeout: must not be negative, got ", request->timeout())));
  }
  return RunContainerWork(context, [this, request, response]() -> absl::Status {
    std::vector<std::string> cmd(request->cmd().begin(), request->cmd().end());
    absl::StatusOr<container::ExecResult> result =
        containers_->ExecSync(request->container_id(), cmd, absl::Seconds(request->timeout()));
    if (!result.ok()) {
      return result.status();
    }
    response->set_exit_code(result->exit_code);
    response->set_stdout(std::move(result->stdout_data));
    response->set_stderr(std::move(result->stderr_data));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RuntimeService::UpdateContainerResources(
    grpc::CallbackServerContext* context,
    const runtime::v1::UpdateContainerResourcesRequest* request,
    runtime::v1::UpdateContainerResourcesResponse* /*response*/) {
  if (request->container_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("container_id: must not be empty"));
  }
  if (!request->has_linux()) {
    return FinishUnary(context, absl::InvalidArgumentError(
                                    "linux: is required (Windows resources are not supported)"));
  }
  return RunContainerWork(context, [this, request]() {
    return containers_->UpdateResources(request->container_id(), request->linux());
  });
}

grpc::ServerUnaryReactor* RuntimeService::ReopenContainerLog(
    grpc::CallbackServerContext* context, const runtime::v1::ReopenContainerLogRequest* request,
    runtime::v1::ReopenContainerLogResponse* /*response*/) {
  if (request->container_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("container_id: must not be empty"));
  }
  return RunContainerWork(
      context, [this, request]() { return containers_->ReopenLog(request->container_id()); });
}

}  // namespace crid
