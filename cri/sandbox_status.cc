// PodSandboxStatus and ListPodSandbox: answered from the in-memory index on the
// callback thread, never waiting for sandbox operations in progress.
#include <utility>

#include "absl/time/clock.h"
#include "base/json.h"
#include "cri/batch_stream.h"
#include "cri/runtime_service.h"

namespace crid {

namespace {

runtime::v1::PodSandboxState ToCriState(const sandbox::SandboxRecord& record) {
  return record.state() == sandbox::SandboxRecord::READY ? runtime::v1::SANDBOX_READY
                                                         : runtime::v1::SANDBOX_NOTREADY;
}

// The verbose "info" entry: where the pod's namespaces, files and processes are;
// with `cni_check` (not empty), what the network's CNI CHECK said.
std::string VerboseInfo(const sandbox::SandboxRecord& r, const std::string& cni_check) {
  Json sysctls = Json::object();
  for (const auto& [k, v] : r.config().linux().sysctls()) {
    sysctls[k] = v;
  }
  Json info = {
      {"netnsPath", r.netns_path()},
      {"ipcNamespacePath", r.ipc_ns_path()},
      {"utsNamespacePath", r.uts_ns_path()},
      {"podDir", r.pod_dir()},
      {"shmPath", r.shm_path()},
      {"networkName", r.network_name()},
      {"networkAttached", r.network_attached()},
      {"pid", r.pause_pid()},
      {"runtimeHandler", r.runtime_handler()},
      {"sysctls", std::move(sysctls)},
  };
  if (!cni_check.empty()) {
    info["cniCheck"] = cni_check;
  }
  return JsonText(info);
}

}  // namespace

void ToCriPodSandboxStatus(const sandbox::SandboxRecord& r, runtime::v1::PodSandboxStatus* status) {
  status->set_id(r.id());
  *status->mutable_metadata() = r.config().metadata();
  status->set_state(ToCriState(r));
  status->set_created_at(r.created_at_ns());
  if (r.ips_size() > 0) {
    status->mutable_network()->set_ip(r.ips(0));
    for (int i = 1; i < r.ips_size(); ++i) {
      status->mutable_network()->add_additional_ips()->set_ip(r.ips(i));
    }
  }
  const auto& ns = r.config().linux().security_context().namespace_options();
  auto* options = status->mutable_linux()->mutable_namespaces()->mutable_options();
  options->set_network(ns.network());
  options->set_pid(ns.pid());
  options->set_ipc(ns.ipc());
  *status->mutable_labels() = r.config().labels();
  *status->mutable_annotations() = r.config().annotations();
  status->set_runtime_handler(r.runtime_handler());
}

grpc::ServerUnaryReactor* RuntimeService::PodSandboxStatus(
    grpc::CallbackServerContext* context, const runtime::v1::PodSandboxStatusRequest* request,
    runtime::v1::PodSandboxStatusResponse* response) {
  if (sandboxes_ == nullptr) {
    return FinishUnary(context, absl::UnavailableError("pod sandboxes are not available"));
  }
  if (request->pod_sandbox_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("pod_sandbox_id: must not be empty"));
  }
  // The timestamp is taken before anything is read: kubelet's Evented PLEG keeps
  // whichever of this answer and a container event is newer, so the answer must
  // not claim a time later than the state it reports. Taken after the reads, a
  // container that exits in between would be reported running at a time later
  // than its CONTAINER_STOPPED event, and kubelet would drop that event.
  const int64_t observed_at = absl::ToUnixNanos(absl::Now());
  absl::StatusOr<sandbox::SandboxRecord> r = sandboxes_->Get(request->pod_sandbox_id());
  if (!r.ok()) {
    return FinishUnary(context, r.status());
  }
  ToCriPodSandboxStatus(*r, response->mutable_status());
  // kubelet's Evented PLEG takes the pod's container statuses from here
  // whenever the timestamp is set: they must all be present.
  if (containers_ != nullptr) {
    AddPodContainerStatuses(*containers_, r->id(), response->mutable_containers_statuses());
  }
  response->set_timestamp(observed_at);
  if (request->verbose()) {
    cni::CniManager* cni = sandboxes_->cni();
    if (cni != nullptr && r->network_attached() && cni->ChecksAttachments()) {
      // CHECK runs the network's plugins: on the sandbox pool, not this thread.
      return RunBlocking(context, [cni, record = *r, response]() -> absl::Status {
        absl::Status check = cni->Check(sandbox::AttachmentFor(record));
        (*response->mutable_info())["info"] =
            VerboseInfo(record, check.ok() ? "ok" : std::string(check.message()));
        return absl::OkStatus();
      });
    }
    (*response->mutable_info())["info"] = VerboseInfo(*r, "");
  }
  return FinishUnary(context, absl::OkStatus());
}

absl::Status RuntimeService::FillPodSandboxes(const runtime::v1::PodSandboxFilter& filter,
                                              runtime::v1::ListPodSandboxResponse* response) const {
  if (sandboxes_ == nullptr) {
    return absl::UnavailableError("pod sandboxes are not available");
  }
  for (const sandbox::SandboxRecord& r : sandboxes_->List(filter)) {
    runtime::v1::PodSandbox* item = response->add_items();
    item->set_id(r.id());
    *item->mutable_metadata() = r.config().metadata();
    item->set_state(ToCriState(r));
    item->set_created_at(r.created_at_ns());
    *item->mutable_labels() = r.config().labels();
    *item->mutable_annotations() = r.config().annotations();
    item->set_runtime_handler(r.runtime_handler());
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* RuntimeService::ListPodSandbox(
    grpc::CallbackServerContext* context, const runtime::v1::ListPodSandboxRequest* request,
    runtime::v1::ListPodSandboxResponse* response) {
  return FinishUnary(context, FillPodSandboxes(request->filter(), response));
}

grpc::ServerWriteReactor<runtime::v1::StreamPodSandboxesResponse>*
RuntimeService::StreamPodSandboxes(grpc::CallbackServerContext* /*context*/,
                                   const runtime::v1::StreamPodSandboxesRequest* request) {
  return StreamFromList<runtime::v1::StreamPodSandboxesResponse,
                        runtime::v1::ListPodSandboxResponse>(
      [&](runtime::v1::ListPodSandboxResponse* list) {
        return FillPodSandboxes(request->filter(), list);
      },
      &runtime::v1::ListPodSandboxResponse::mutable_items,
      &runtime::v1::StreamPodSandboxesResponse::mutable_pod_sandboxes);
}

}  // namespace crid
