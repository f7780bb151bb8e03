// runtime.v1.RuntimeService: validates each request, hands the work to the
// subsystem that owns it and maps the outcome to a gRPC status. One .cc file per
// RPC (or per small family of RPCs), named after it.
#pragma once

#include <grpcpp/grpcpp.h>

#include "absl/functional/any_invocable.h"
#include "cri/reactors.h"
#include "cri/runtime_state.h"
#include "proto/cri_api.grpc.pb.h"
#include "sandbox/manager.h"

namespace crid {

// The fixed answers of Version: kubelet requires version "0.1.0" exactly.
inline constexpr char kKubeletApiVersion[] = "0.1.0";
inline constexpr char kRuntimeName[] = "crid";
inline constexpr char kRuntimeApiVersion[] = "v1";

class RuntimeService final : public runtime::v1::RuntimeService::CallbackService {
 public:
  explicit RuntimeService(RuntimeState* state, sandbox::SandboxManager* sandboxes = nullptr)
      : state_(state), sandboxes_(sandboxes) {}

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
  CRID_UNIMPLEMENTED_STREAM(RuntimeService, StreamPodSandboxes, StreamPodSandboxesRequest,
                            StreamPodSandboxesResponse)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, UpdatePodSandboxResources)

  // Containers.
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, CreateContainer)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, StartContainer)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, StopContainer)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, RemoveContainer)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, ListContainers)
  CRID_UNIMPLEMENTED_STREAM(RuntimeService, StreamContainers, StreamContainersRequest,
                            StreamContainersResponse)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, ContainerStatus)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, UpdateContainerResources)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, ReopenContainerLog)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, CheckpointContainer)
  CRID_UNIMPLEMENTED_STREAM(RuntimeService, GetContainerEvents, GetEventsRequest,
                            ContainerEventResponse)

  // Streaming.
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, ExecSync)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, Exec)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, Attach)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, PortForward)

  // Stats and metrics.
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, ContainerStats)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, ListContainerStats)
  CRID_UNIMPLEMENTED_STREAM(RuntimeService, StreamContainerStats, StreamContainerStatsRequest,
                            StreamContainerStatsResponse)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, PodSandboxStats)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, ListPodSandboxStats)
  CRID_UNIMPLEMENTED_STREAM(RuntimeService, StreamPodSandboxStats, StreamPodSandboxStatsRequest,
                            StreamPodSandboxStatsResponse)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, ListMetricDescriptors)
  CRID_UNIMPLEMENTED_UNARY(RuntimeService, ListPodSandboxMetrics)
  CRID_UNIMPLEMENTED_STREAM(RuntimeService, StreamPodSandboxMetrics, StreamPodSandboxMetricsRequest,
                            StreamPodSandboxMetricsResponse)

 private:
  // Runs `work` on the sandbox worker pool; it must Finish `reactor`.
  grpc::ServerUnaryReactor* RunBlocking(grpc::CallbackServerContext* context,
                                        absl::AnyInvocable<absl::Status() &&> work);

  RuntimeState* const state_;
  sandbox::SandboxManager* const sandboxes_;
};

}  // namespace crid
