// CreateContainer, StartContainer, StopContainer and RemoveContainer: validated
// here, run on the container worker pool (they wait on the OCI runtime).
#include "absl/strings/str_cat.h"
#include "cri/container_validate.h"
#include "cri/runtime_service.h"

namespace crid {

grpc::ServerUnaryReactor* RuntimeService::RunContainerWork(
    grpc::CallbackServerContext* context, absl::AnyInvocable<absl::Status() &&> work) {
  if (containers_ == nullptr) {
    return FinishUnary(context,
                       absl::UnavailableError("containers are not available in this crid"));
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  bool queued = containers_->pool()->Submit([reactor, work = std::move(work)]() mutable {
    reactor->Finish(ToGrpcStatus(std::move(work)()));
  });
  if (!queued) {
    reactor->Finish(ToGrpcStatus(
        absl::ResourceExhaustedError("too many container operations queued; retry later")));
  }
  return reactor;
}

grpc::ServerUnaryReactor* RuntimeService::CreateContainer(
    grpc::CallbackServerContext* context, const runtime::v1::CreateContainerRequest* request,
    runtime::v1::CreateContainerResponse* response) {
  if (request->pod_sandbox_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("pod_sandbox_id: must not be empty"));
  }
  if (!request->has_config()) {
    return FinishUnary(context, absl::InvalidArgumentError("config: is required"));
  }
  if (absl::Status st = ValidateContainerConfig(request->config()); !st.ok()) {
    return FinishUnary(context, st);
  }
  return RunContainerWork(context, [this, request, response]() -> absl::Status {
    absl::StatusOr<std::string> id = containers_->Create(
        request->pod_sandbox_id(), request->config(), request->sandbox_config());
    if (!id.ok()) {
      return id.status();
    }
    response->set_container_id(*id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RuntimeService::StartContainer(
    grpc::CallbackServerContext* context, const runtime::v1::StartContainerRequest* request,
    runtime::v1::StartContainerResponse* /*response*/) {
  if (request->container_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("container_id: must not be empty"));
  }
  return RunContainerWork(
      context, [this, request]() { return containers_->Start(request->container_id()); });
}

grpc::ServerUnaryReactor* RuntimeService::StopContainer(
    grpc::CallbackServerContext* context, const runtime::v1::StopContainerRequest* request,
    runtime::v1::StopContainerResponse* /*response*/) {
  if (request->container_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("container_id: must not be empty"));
  }
  if (request->timeout() < 0) {
    return FinishUnary(context, absl::InvalidArgumentError(absl::StrCat(
                                    "timeout: must not be negative, got ", request->timeout())));
  }
  if (containers_ == nullptr) {
    return FinishUnary(context,
                       absl::UnavailableError("containers are not available in this crid"));
  }
  // A worker only sends the signal; the answer goes out when the exit event
  // arrives, so a long grace period holds no thread.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  bool queued = containers_->pool()->Submit([this, request, reactor] {
    containers_->StopAsync(request->container_id(), absl::Seconds(request->timeout()),
                           [reactor](const absl::Status& st) {
                             // kubelet stops containers it may have removed already.
                             reactor->Finish(ToGrpcStatus(
                                 st.code() == absl::StatusCode::kNotFound ? absl::OkStatus() : st));
                           });
  });
  if (!queued) {
    reactor->Finish(ToGrpcStatus(
        absl::ResourceExhaustedError("too many container operations queued; retry later")));
  }
  return reactor;
}

grpc::ServerUnaryReactor* RuntimeService::RemoveContainer(
    grpc::CallbackServerContext* context, const runtime::v1::RemoveContainerRequest* request,
    runtime::v1::RemoveContainerResponse* /*response*/) {
  if (request->container_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("container_id: must not be empty"));
  }
  return RunContainerWork(
      context, [this, request]() { return containers_->Remove(request->container_id()); });
}

}  // namespace crid
