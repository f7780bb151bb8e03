// Status: kubelet polls it every 5 s and marks the node NotReady unless both
// RuntimeReady and NetworkReady are reported true.
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/json.h"
#include "config/config.h"
#include "cri/runtime_service.h"
#include "cri/version_info.h"

namespace crid {

namespace {

runtime::v1::RuntimeCondition* AddCondition(runtime::v1::RuntimeStatus* status, const char* type,
                                            bool ok) {
  runtime::v1::RuntimeCondition* condition = status->add_conditions();
  condition->set_type(type);
  condition->set_status(ok);
  return condition;
}

}  // namespace

grpc::ServerUnaryReactor* RuntimeService::Status(grpc::CallbackServerContext* context,
                                                 const runtime::v1::StatusRequest* request,
                                                 runtime::v1::StatusResponse* response) {
  runtime::v1::RuntimeStatus* status = response->mutable_status();
  // crid answering at all means it can serve the runtime API.
  AddCondition(status, "RuntimeReady", true);
  // Pod networking is ready once a CNI network config is loaded (the conf dir
  // is watched, so this flips without a restart).
  absl::Status network_ready = sandboxes_ == nullptr || sandboxes_->cni() == nullptr
                                   ? absl::FailedPreconditionError("cni plugin not initialized")
                                   : sandboxes_->cni()->Ready();
  runtime::v1::RuntimeCondition* network = AddCondition(status, "NetworkReady", network_ready.ok());
  if (!network_ready.ok()) {
    network->set_reason("NetworkPluginNotReady");
    network->set_message(absl::StrCat("Network plugin returns error: ", network_ready.message()));
  }

  // The default handler is listed under "" as well as under its own name.
  bool any_user_namespaces = false;
  if (containers_ != nullptr) {
    std::vector<std::string> names = containers_->HandlerNames();
    names.insert(names.begin(), "");
    for (const std::string& name : names) {
      runtime::v1::RuntimeHandler* handler = response->add_runtime_handlers();
      handler->set_name(name);
      // Only what works here: the features were probed at start.
      container::HandlerFeatures features = containers_->Features(name);
      handler->mutable_features()->set_recursive_read_only_mounts(
          features.recursive_read_only_mounts);
      handler->mutable_features()->set_user_namespaces(features.user_namespaces);
      any_user_namespaces = any_user_namespaces || features.user_namespaces;
    }
  }
  // A user-namespaced pod may use the host network wherever user namespaces
  // work at all: its containers get the host's /sys bound (oci_spec.cc).
  response->mutable_features()->set_user_namespaces_host_network(any_user_namespaces);
  response->mutable_features()->set_supplemental_groups_policy(true);
  // Mount.mount_options: noexec, nodev and nosuid on bind mounts (container/oci_spec.cc).
  response->mutable_features()->set_mount_options(true);

  if (request->verbose()) {
    auto& info = *response->mutable_info();
    info["config"] = ConfigToJson(state_->config());
    info["version"] = JsonQuote(kCridVersion);
    info["cgroupDriver"] = JsonQuote(CgroupDriverName(state_->cgroup_driver()));
    info["podCIDR"] = JsonQuote(state_->pod_cidr());
    info["startedAt"] =
        JsonQuote(absl::FormatTime(absl::RFC3339_full, state_->started_at(), absl::UTCTimeZone()));
  }
  return FinishUnary(context, absl::OkStatus());
}

}  // namespace crid
