// UpdatePodSandboxResources: kubelet's in-place pod resize. kubelet sends the
// pod's new resources (the sum of its containers') and its overhead; the pod's
// cgroup gets their total, as kubelet computes it for the pod cgroup it made.
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "cgroups/resources.h"
#include "cri/runtime_service.h"
#include "spdlog/spdlog.h"

namespace crid {

grpc::ServerUnaryReactor* RuntimeService::UpdatePodSandboxResources(
    grpc::CallbackServerContext* context,
    const runtime::v1::UpdatePodSandboxResourcesRequest* request,
    runtime::v1::UpdatePodSandboxResourcesResponse* /*response*/) {
  if (request->pod_sandbox_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("pod_sandbox_id: must not be empty"));
  }
  if (!request->has_resources()) {
    return FinishUnary(context, absl::InvalidArgumentError(
                                    "resources: is required (the pod's new Linux resources)"));
  }
  for (const auto& [field, part] :
       {std::pair{"resources", &request->resources()}, {"overhead", &request->overhead()}}) {
    for (const auto& [name, value] : {std::pair{"cpu_shares", part->cpu_shares()},
                                      {"cpu_period", part->cpu_period()},
                                      {"memory_limit_in_bytes", part->memory_limit_in_bytes()}}) {
      if (value < 0) {
        return FinishUnary(context, absl::InvalidArgumentError(absl::StrCat(
                                        field, ".", name, ": must not be negative, got ", value)));
      }
    }
  }
  if (sandboxes_ == nullptr) {
    return FinishUnary(context, absl::UnavailableError("pod sandboxes are not available"));
  }
  return RunBlocking(context, [this, request]() -> absl::Status {
    CRID_ASSIGN_OR_RETURN(sandbox::SandboxRecord pod, sandboxes_->Get(request->pod_sandbox_id()));
    if (pod.state() != sandbox::SandboxRecord::READY) {
      return absl::FailedPreconditionError(
          absl::StrCat("pod sandbox ", pod.id(), " is not ready: its resources cannot change"));
    }
    const std::string& parent = pod.config().linux().cgroup_parent();
    if (parent.empty() || cgroups_ == nullptr) {
      // No pod cgroup (kubelet without cgroups per QoS, or crictl): the
      // containers' own limits are all there is, and kubelet resizes those
      // through UpdateContainerResources.
      spdlog::info("UpdatePodSandboxResources {}: the pod has no cgroup, nothing to change",
                   pod.id());
      return absl::OkStatus();
    }
    CRID_ASSIGN_OR_RETURN(std::string dir, cgroups_->PodCgroupDir(parent));
    CgroupResources total = WithPodOverhead(FromCriResources(request->resources()),
                                            FromCriResources(request->overhead()));
    absl::Status applied = cgroups_->ApplyResources(dir, total);
    if (!applied.ok()) {
      return Annotate(applied, absl::StrCat("resources of pod ", pod.id(), " (cgroup ", dir, ")"));
    }
    spdlog::info("pod {} resized: cpu shares {}, quota {} us per {} us, memory limit {}", pod.id(),
                 total.cpu_shares, total.cpu_quota_us, total.cpu_period_us,
                 total.memory_limit_bytes);
    return absl::OkStatus();
  });
}

}  // namespace crid
