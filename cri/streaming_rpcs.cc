// Exec, Attach and PortForward: validate the request and answer with a
// one-time URL on crid's streaming server, where the client's SPDY or
// WebSocket session does the work (cri/streaming/).
#include "cri/runtime_service.h"

namespace crid {

namespace {

absl::Status NoStreamingServer() {
  return absl::UnavailableError("the streaming server is not running");
}

}  // namespace

grpc::ServerUnaryReactor* RuntimeService::Exec(grpc::CallbackServerContext* context,
                                               const runtime::v1::ExecRequest* request,
                                               runtime::v1::ExecResponse* response) {
  if (streaming_ == nullptr) {
    return FinishUnary(context, NoStreamingServer());
  }
  absl::StatusOr<runtime::v1::ExecResponse> url = streaming_->GetExec(*request);
  if (url.ok()) {
    *response = std::move(*url);
  }
  return FinishUnary(context, url.status());
}

grpc::ServerUnaryReactor* RuntimeService::Attach(grpc::CallbackServerContext* context,
                                                 const runtime::v1::AttachRequest* request,
                                                 runtime::v1::AttachResponse* response) {
  if (streaming_ == nullptr) {
    return FinishUnary(context, NoStreamingServer());
  }
  absl::StatusOr<runtime::v1::AttachResponse> url = streaming_->GetAttach(*request);
  if (url.ok()) {
    *response = std::move(*url);
  }
  return FinishUnary(context, url.status());
}

grpc::ServerUnaryReactor* RuntimeService::PortForward(
    grpc::CallbackServerContext* context, const runtime::v1::PortForwardRequest* request,
    runtime::v1::PortForwardResponse* response) {
  if (streaming_ == nullptr) {
    return FinishUnary(context, NoStreamingServer());
  }
  if (absl::Status st = streaming::ValidatePortForwardRequest(*request); !st.ok()) {
    return FinishUnary(context, st);
  }
  // Refuse pods that are gone or stopped now rather than when the client connects.
  if (sandboxes_ != nullptr) {
    absl::StatusOr<sandbox::SandboxRecord> pod = sandboxes_->Get(request->pod_sandbox_id());
    if (!pod.ok()) {
      return FinishUnary(context, pod.status());
    }
    if (pod->state() != sandbox::SandboxRecord::READY) {
      return FinishUnary(context, absl::FailedPreconditionError(
                                      absl::StrCat("pod sandbox ", pod->id(), " is not ready")));
    }
  }
  absl::StatusOr<runtime::v1::PortForwardResponse> url = streaming_->GetPortForward(*request);
  if (url.ok()) {
    *response = std::move(*url);
  }
  return FinishUnary(context, url.status());
}

}  // namespace crid
