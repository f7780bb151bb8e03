// RuntimeConfig reports the cgroup driver kubelet must use; UpdateRuntimeConfig
// receives the node's pod CIDR from kubelet.
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/logging.h"
#include "base/net.h"
#include "cri/runtime_service.h"

namespace crid {

grpc::ServerUnaryReactor* RuntimeService::RuntimeConfig(
    grpc::CallbackServerContext* context, const runtime::v1::RuntimeConfigRequest* request,
    runtime::v1::RuntimeConfigResponse* response) {
  // kubelet ignores the answer when `linux` is unset (SYSTEMD is the zero value),
  // so the message is always set explicitly.
  response->mutable_linux()->set_cgroup_driver(state_->cgroup_driver() == CgroupDriver::kSystemd
                                                   ? runtime::v1::SYSTEMD
                                                   : runtime::v1::CGROUPFS);
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* RuntimeService::UpdateRuntimeConfig(
    grpc::CallbackServerContext* context, const runtime::v1::UpdateRuntimeConfigRequest* request,
    runtime::v1::UpdateRuntimeConfigResponse* response) {
  const std::string& cidr = request->runtime_config().network_config().pod_cidr();
  // An empty pod CIDR means "no change".
  if (cidr.empty()) {
    return FinishUnary(context, absl::OkStatus());
  }
  // Dual-stack nodes send "v4cidr,v6cidr".
  for (absl::string_view part : absl::StrSplit(cidr, ',')) {
    if (absl::Status st = ValidateCidr(part); !st.ok()) {
      return FinishUnary(context, absl::InvalidArgumentError(absl::StrCat(
                                      "runtime_config.network_config.pod_cidr: ", st.message())));
    }
  }
  absl::Status st = state_->SetPodCidr(cidr);
  if (st.ok()) {
    spdlog::info("pod CIDR set to {}", cidr);
  }
  return FinishUnary(context, st);
}

}  // namespace crid
