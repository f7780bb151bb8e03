// CheckpointContainer: kubelet's forensic checkpoint of a running container,
// written as a CRI-O/containerd-style archive (container/checkpoint.h). Runs
// on the container worker pool: CRIU and tar take a while.
#include "absl/strings/str_cat.h"
#include "cri/runtime_service.h"

namespace crid {

grpc::ServerUnaryReactor* RuntimeService::CheckpointContainer(
    grpc::CallbackServerContext* context, const runtime::v1::CheckpointContainerRequest* request,
    runtime::v1::CheckpointContainerResponse* /*response*/) {
  if (request->container_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("container_id: must not be empty"));
  }
  // kubelet passes an absolute path under its checkpoints directory; a
  // relative one would land wherever crid happens to run.
  if (request->location().empty() || request->location()[0] != '/' ||
      request->location().back() == '/') {
    return FinishUnary(context, absl::InvalidArgumentError(absl::StrCat(
                                    "location: must be an absolute path of a file, got \"",
                                    request->location(), "\"")));
  }
  if (request->timeout() < 0) {
    return FinishUnary(context, absl::InvalidArgumentError(absl::StrCat(
                                    "timeout: must not be negative, got ", request->timeout())));
  }
  return RunContainerWork(context, [this, request]() {
    return containers_->Checkpoint(request->container_id(), request->location(),
                                   absl::Seconds(request->timeout()));
  });
}

}  // namespace crid
