// RunPodSandbox, and the helper that moves blocking sandbox work off gRPC's
// callback threads onto the sandbox worker pool.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "container/selinux.h"
#include "cri/runtime_service.h"
#include "sandbox/validate.h"

namespace crid {

namespace {

absl::Status NoSandboxes() {
  return absl::UnavailableError("pod sandboxes are not available in this crid");
}

}  // namespace

grpc::ServerUnaryReactor* RuntimeService::RunBlocking(grpc::CallbackServerContext* context,
                                                      absl::AnyInvocable<absl::Status() &&> work) {
  if (sandboxes_ == nullptr) {
    return FinishUnary(context, NoSandboxes());
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // If kubelet gives up, the work still finishes: its retry finds the result.
  bool queued = sandboxes_->pool()->Submit([reactor, work = std::move(work)]() mutable {
    reactor->Finish(ToGrpcStatus(std::move(work)()));
  });
  if (!queued) {
    reactor->Finish(ToGrpcStatus(
        absl::ResourceExhaustedError("too many pod sandbox operations queued; retry later")));
  }
  return reactor;
}

grpc::ServerUnaryReactor* RuntimeService::RunPodSandbox(
    grpc::CallbackServerContext* context, const runtime::v1::RunPodSandboxRequest* request,
    runtime::v1::RunPodSandboxResponse* response) {
  if (!request->has_config()) {
    return FinishUnary(context, absl::InvalidArgumentError("config: is required"));
  }
  if (absl::Status st = sandbox::ValidatePodSandboxConfig(request->config()); !st.ok()) {
    return FinishUnary(context, st);
  }
  // Checked on every host, SELinux or not, as containerd does.
  if (absl::Status st =
          ValidateSELinuxOption(request->config().linux().security_context().selinux_options(),
                                "config.linux.security_context.selinux_options");
      !st.ok()) {
    return FinishUnary(context, st);
  }
  const std::string& handler = request->runtime_handler();
  if (containers_ != nullptr) {
    std::vector<std::string> known = containers_->HandlerNames();
    if (!handler.empty() && std::find(known.begin(), known.end(), handler) == known.end()) {
      return FinishUnary(
          context, absl::InvalidArgumentError(
                       absl::StrCat("runtime_handler: no runtime handler \"", handler,
                                    "\" is configured (known: ", absl::StrJoin(known, ", "), ")")));
    }
    const runtime::v1::NamespaceOption& ns =
        request->config().linux().security_context().namespace_options();
    if (ns.has_userns_options() && ns.userns_options().mode() == runtime::v1::POD &&
        !containers_->Features(handler).user_namespaces) {
      return FinishUnary(context,
                         absl::FailedPreconditionError(absl::StrCat(
                             "config.linux.security_context.namespace_options."
                             "userns_options: runtime handler \"",
                             handler, "\" offers no user namespaces here (see crid's log)")));
    }
  } else if (!handler.empty() && handler != "runc" && handler != "crun") {
    return FinishUnary(context, absl::InvalidArgumentError(
                                    absl::StrCat("runtime_handler: no runtime handler \"", handler,
                                                 "\" is configured (known: \"\", runc, crun)")));
  }
  return RunBlocking(context, [this, request, response]() -> absl::Status {
    absl::StatusOr<std::string> id = sandboxes_->Run(request->config(), request->runtime_handler());
    if (!id.ok()) {
      return id.status();
    }
    response->set_pod_sandbox_id(*id);
    return absl::OkStatus();
  });
}

}  // namespace crid
