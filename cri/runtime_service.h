// runtime.v1.RuntimeService: validates each request, hands the work to the
// subsystem that owns it and maps the outcome to a gRPC status. One .cc file per
// RPC (or per small family of RPCs), named after it.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "cgroups/manager.h"
#include "container/manager.h"
#include "container/rootfs.h"
#include "cri/container_events.h"
#include "cri/reactors.h"
#include "cri/runtime_state.h"
#include "cri/stats_sampler.h"
#include "cri/streaming/server.h"
#include "cri/wire_entries.h"
#include "proto/cri_api.grpc.pb.h"
#include "sandbox/manager.h"

namespace crid {

// The fixed answers of Version: kubelet requires version "0.1.0" exactly.
inline constexpr char kKubeletApiVersion[] = "0.1.0";
inline constexpr char kRuntimeName[] = "crid";
inline constexpr char kRuntimeApiVersion[] = "v1";

// The CRI view of a record (container_status.cc, sandbox_status.cc).
void ToCriContainer(const container::ContainerRecord& r, runtime::v1::Container* c);
void ToCriContainerStatus(const container::ContainerRecord& r,
                          runtime::v1::ContainerStatus* status);
void ToCriPodSandboxStatus(const sandbox::SandboxRecord& r, runtime::v1::PodSandboxStatus* status);
// The statuses of every container of pod `pod_id`, newest first
// (container_status.cc): for PodSandboxStatus and container events, from which
// kubelet's Evented PLEG takes a pod's containers. kubelet takes the first
// status of a name as that container's current one (FindContainerStatusByName)
// and sorts only the statuses it lists itself.
void AddPodContainerStatuses(
    const container::ContainerManager& containers, const std::string& pod_id,
    google::protobuf::RepeatedPtrField<runtime::v1::ContainerStatus>* statuses);

// ListContainers and ListContainerStats are served raw: their answers are
// built from wire bytes kept per container (cri/wire_entries.h,
// cri/stats_sampler.h).
using RuntimeServiceBase = runtime::v1::RuntimeService::WithRawCallbackMethod_ListContainers<
    runtime::v1::RuntimeService::WithRawCallbackMethod_ListContainerStats<
        runtime::v1::RuntimeService::CallbackService>>;

class RuntimeService final : public RuntimeServiceBase {
 public:
  // With a container manager, its lifecycle changes feed GetContainerEvents.
  explicit RuntimeService(RuntimeState* state, sandbox::SandboxManager* sandboxes = nullptr,
                          container::ContainerManager* containers = nullptr);
  ~RuntimeService() override;

  // version.cc
  grpc::ServerUnaryReactor* Version(grpc::CallbackServerContext* context,
                                    const runtime::v1::VersionRequest* request,
                                    runtime::v1::VersionResponse* response) override;
  // status.cc
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const runtime::v1::StatusRequest* request,
                                   runtime::v1::StatusResponse* response) override;
  // runtime_config.cc
  grpc::ServerUnaryReactor* RuntimeConfig(grpc::CallbackServerContext* context,
                                          const runtime::v1::RuntimeConfigRequest* request,
                                          runtime::v1::RuntimeConfigResponse* response) override;
  grpc::ServerUnaryReactor* UpdateRuntimeConfig(
      grpc::CallbackServerContext* context, const runtime::v1::UpdateRuntimeConfigRequest* request,
      runtime::v1::UpdateRuntimeConfigResponse* response) override;

  // Pod sandboxes (sandbox_run.cc, sandbox_stop.cc, sandbox_remove.cc,
  // sandbox_status.cc for Status and List). Without a sandbox manager they answer
  // UNAVAILABLE.
  grpc::ServerUnaryReactor* RunPodSandbox(grpc::CallbackServerContext* context,
                                          const runtime::v1::RunPodSandboxRequest* request,
                                          runtime::v1::RunPodSandboxResponse* response) override;
  grpc::ServerUnaryReactor* StopPodSandbox(grpc::CallbackServerContext* context,
                                           const runtime::v1::StopPodSandboxRequest* request,
                                           runtime::v1::StopPodSandboxResponse* response) override;
  grpc::ServerUnaryReactor* RemovePodSandbox(
      grpc::CallbackServerContext* context, const runtime::v1::RemovePodSandboxRequest* request,
      runtime::v1::RemovePodSandboxResponse* response) override;
  grpc::ServerUnaryReactor* PodSandboxStatus(
      grpc::CallbackServerContext* context, const runtime::v1::PodSandboxStatusRequest* request,
      runtime::v1::PodSandboxStatusResponse* response) override;
  grpc::ServerUnaryReactor* ListPodSandbox(grpc::CallbackServerContext* context,
                                           const runtime::v1::ListPodSandboxRequest* request,
                                           runtime::v1::ListPodSandboxResponse* response) override;
  grpc::ServerWriteReactor<runtime::v1::StreamPodSandboxesResponse>* StreamPodSandboxes(
      grpc::CallbackServerContext* context,
      const runtime::v1::StreamPodSandboxesRequest* request) override;
  // sandbox_resources.cc: in-place pod resize, written to the pod's cgroup.
  grpc::ServerUnaryReactor* UpdatePodSandboxResources(
      grpc::CallbackServerContext* context,
      const runtime::v1::UpdatePodSandboxResourcesRequest* request,
      runtime::v1::UpdatePodSandboxResourcesResponse* response) override;

  // Containers.
  // container_lifecycle.cc; without a container manager they answer UNAVAILABLE.
  grpc::ServerUnaryReactor* CreateContainer(
      grpc::CallbackServerContext* context, const runtime::v1::CreateContainerRequest* request,
      runtime::v1::CreateContainerResponse* response) override;
  grpc::ServerUnaryReactor* StartContainer(grpc::CallbackServerContext* context,
                                           const runtime::v1::StartContainerRequest* request,
                                           runtime::v1::StartContainerResponse* response) override;
  grpc::ServerUnaryReactor* StopContainer(grpc::CallbackServerContext* context,
                                          const runtime::v1::StopContainerRequest* request,
                                          runtime::v1::StopContainerResponse* response) override;
  grpc::ServerUnaryReactor* RemoveContainer(
      grpc::CallbackServerContext* context, const runtime::v1::RemoveContainerRequest* request,
      runtime::v1::RemoveContainerResponse* response) override;
  // container_status.cc
  // A runtime::v1::ListContainersRequest in, a ListContainersResponse out.
  grpc::ServerUnaryReactor* ListContainers(grpc::CallbackServerContext* context,
                                           const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<runtime::v1::StreamContainersResponse>* StreamContainers(
      grpc::CallbackServerContext* context,
      const runtime::v1::StreamContainersRequest* request) override;
  grpc::ServerUnaryReactor* ContainerStatus(
      grpc::CallbackServerContext* context, const runtime::v1::ContainerStatusRequest* request,
      runtime::v1::ContainerStatusResponse* response) override;
  // container_exec.cc (with ExecSync)
  grpc::ServerUnaryReactor* UpdateContainerResources(
      grpc::CallbackServerContext* context,
      const runtime::v1::UpdateContainerResourcesRequest* request,
      runtime::v1::UpdateContainerResourcesResponse* response) override;
  grpc::ServerUnaryReactor* ReopenContainerLog(
      grpc::CallbackServerContext* context, const runtime::v1::ReopenContainerLogRequest* request,
      runtime::v1::ReopenContainerLogResponse* response) override;
  // container_checkpoint.cc
  grpc::ServerUnaryReactor* CheckpointContainer(
      grpc::CallbackServerContext* context, const runtime::v1::CheckpointContainerRequest* request,
      runtime::v1::CheckpointContainerResponse* response) override;
  // Pod-level checkpoints (cri-api v0.37, alpha): not offered; no runtime serves them yet.
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, CheckpointPod)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, RestorePod)
  // container_events.cc
  grpc::ServerWriteReactor<runtime::v1::ContainerEventResponse>* GetContainerEvents(
      grpc::CallbackServerContext* context, const runtime::v1::GetEventsRequest* request) override;

  // Streaming.
  grpc::ServerUnaryReactor* ExecSync(grpc::CallbackServerContext* context,
                                     const runtime::v1::ExecSyncRequest* request,
                                     runtime::v1::ExecSyncResponse* response) override;
  // streaming_rpcs.cc: one-time URLs on the streaming server (UNAVAILABLE
  // until SetStreamingServer).
  grpc::ServerUnaryReactor* Exec(grpc::CallbackServerContext* context,
                                 const runtime::v1::ExecRequest* request,
                                 runtime::v1::ExecResponse* response) override;
  grpc::ServerUnaryReactor* Attach(grpc::CallbackServerContext* context,
                                   const runtime::v1::AttachRequest* request,
                                   runtime::v1::AttachResponse* response) override;
  grpc::ServerUnaryReactor* PortForward(grpc::CallbackServerContext* context,
                                        const runtime::v1::PortForwardRequest* request,
                                        runtime::v1::PortForwardResponse* response) override;
  // Not owned; set before serving.
  void SetStreamingServer(streaming::Server* server) { streaming_ = server; }

  // Stats and metrics.
  // stats.cc; without a cgroup manager only the writable layer is reported.
  grpc::ServerUnaryReactor* ContainerStats(grpc::CallbackServerContext* context,
                                           const runtime::v1::ContainerStatsRequest* request,
                                           runtime::v1::ContainerStatsResponse* response) override;
  // A runtime::v1::ListContainerStatsRequest in, a ListContainerStatsResponse out.
  grpc::ServerUnaryReactor* ListContainerStats(grpc::CallbackServerContext* context,
                                               const grpc::ByteBuffer* request,
                                               grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<runtime::v1::StreamContainerStatsResponse>* StreamContainerStats(
      grpc::CallbackServerContext* context,
      const runtime::v1::StreamContainerStatsRequest* request) override;
  grpc::ServerUnaryReactor* PodSandboxStats(
      grpc::CallbackServerContext* context, const runtime::v1::PodSandboxStatsRequest* request,
      runtime::v1::PodSandboxStatsResponse* response) override;
  grpc::ServerUnaryReactor* ListPodSandboxStats(
      grpc::CallbackServerContext* context, const runtime::v1::ListPodSandboxStatsRequest* request,
      runtime::v1::ListPodSandboxStatsResponse* response) override;
  grpc::ServerWriteReactor<runtime::v1::StreamPodSandboxStatsResponse>* StreamPodSandboxStats(
      grpc::CallbackServerContext* context,
      const runtime::v1::StreamPodSandboxStatsRequest* request) override;
  // metrics.cc: cAdvisor's metric families (cri/metric_families.h).
  grpc::ServerUnaryReactor* ListMetricDescriptors(
      grpc::CallbackServerContext* context,
      const runtime::v1::ListMetricDescriptorsRequest* request,
      runtime::v1::ListMetricDescriptorsResponse* response) override;
  grpc::ServerUnaryReactor* ListPodSandboxMetrics(
      grpc::CallbackServerContext* context,
      const runtime::v1::ListPodSandboxMetricsRequest* request,
      runtime::v1::ListPodSandboxMetricsResponse* response) override;
  grpc::ServerWriteReactor<runtime::v1::StreamPodSandboxMetricsResponse>* StreamPodSandboxMetrics(
      grpc::CallbackServerContext* context,
      const runtime::v1::StreamPodSandboxMetricsRequest* request) override;

  // Not owned; set before serving.
  void SetCgroupManager(CgroupManager* cgroups) { cgroups_ = cgroups; }

 private:
  // The replies of the List RPCs, shared with their Stream twins (which send
  // the same items in batches, cri/batch_stream.h).
  absl::Status FillPodSandboxes(const runtime::v1::PodSandboxFilter& filter,
                                runtime::v1::ListPodSandboxResponse* response) const;
  absl::Status FillContainers(const runtime::v1::ContainerFilter& filter,
                              runtime::v1::ListContainersResponse* response) const;
  absl::Status FillContainerStats(const runtime::v1::ContainerStatsFilter& filter,
                                  runtime::v1::ListContainerStatsResponse* response) const;
  absl::Status FillPodSandboxStats(const runtime::v1::PodSandboxStatsFilter& filter,
                                   runtime::v1::ListPodSandboxStatsResponse* response) const;
  absl::Status FillPodSandboxMetrics(runtime::v1::ListPodSandboxMetricsResponse* response) const;

  // stats.cc
  runtime::v1::ContainerStats StatsOf(const container::ContainerRecord& record) const;
  // The same when the caller already has the pod's cgroup parent.
  runtime::v1::ContainerStats StatsOf(const container::ContainerRecord& record,
                                      const std::string& cgroup_parent) const;
  runtime::v1::PodSandboxStats PodStatsOf(const sandbox::SandboxRecord& pod) const;
  // Serialised ContainerStats of each record, each pod's cgroup parent looked
  // up once (for the sampler).
  std::vector<std::string> MeasureContainerStats(
      const std::vector<container::RecordSnapshot>& records) const;
  // container_events.cc: the event of `kind` for `record`, with its pod's
  // status and the statuses of the pod's containers.
  runtime::v1::ContainerEventResponse EventOf(const container::ContainerRecord& record,
                                              container::ContainerEventKind kind) const;
  // A process inside the pod's network namespace: crid-pause, else one of
  // its running containers (from `containers`); 0 when there is none.
  static pid_t PodNetnsPid(const sandbox::SandboxRecord& pod,
                           const std::vector<container::RecordSnapshot>& containers);

  // Runs `work` on the sandbox worker pool; it must Finish `reactor`.
  grpc::ServerUnaryReactor* RunBlocking(grpc::CallbackServerContext* context,
                                        absl::AnyInvocable<absl::Status() &&> work);

  // The same on the container worker pool.
  grpc::ServerUnaryReactor* RunContainerWork(grpc::CallbackServerContext* context,
                                             absl::AnyInvocable<absl::Status() &&> work);

  RuntimeState* const state_;
  sandbox::SandboxManager* const sandboxes_;
  streaming::Server* streaming_ = nullptr;
  container::ContainerManager* const containers_;
  // Writable-layer sizes for the stats RPCs, measured at most every 10 s.
  mutable LayerUsageCache layer_usage_;
  CgroupManager* cgroups_ = nullptr;
  ContainerEventHub events_;
  // ListContainersResponse.containers (field 1) entries.
  WireEntryCache container_entries_{1};
  // Last: its thread measures through the members above, and stops first.
  ContainerStatsSampler stats_sampler_;
};

}  // namespace crid
