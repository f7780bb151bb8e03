// CRI calls shared by the benchmarks (see cri_calls.h).
#include "bench/cri_calls.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace crid::bench {

namespace v1 = ::runtime::v1;

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  auto i = static_cast<size_t>(std::lround(p * static_cast<double>(v.size() - 1)));
  return v[std::min(i, v.size() - 1)];
}

Samples::Samples(const Samples& other) : ms_(other.values()) {}

Samples& Samples::operator=(const Samples& other) {
  if (this != &other) {
    std::vector<double> copy = other.values();
    absl::MutexLock lock(&mu_);
    ms_ = std::move(copy);
  }
  return *this;
}

void Samples::Add(double ms) {
  absl::MutexLock lock(&mu_);
  ms_.push_back(ms);
}

std::vector<double> Samples::values() const {
  absl::MutexLock lock(&mu_);
  return ms_;
}

size_t Samples::size() const {
  absl::MutexLock lock(&mu_);
  return ms_.size();
}

v1::PodSandboxConfig PodConfig(const std::string& name, const std::string& log_root) {
  v1::PodSandboxConfig config;
  config.mutable_metadata()->set_name(name);
  config.mutable_metadata()->set_namespace_("bench");
  config.mutable_metadata()->set_uid(name + "-uid");
  config.set_hostname(name);
  config.set_log_directory(absl::StrCat(log_root, "/", name));
  // kubelet's default: a PID namespace per container.
  config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      v1::CONTAINER);
  return config;
}

v1::ContainerConfig ContainerConfig(const std::string& name, const std::string& image,
                                    const std::vector<std::string>& command) {
  v1::ContainerConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_image()->set_image(image);
  if (!command.empty()) {
    c.add_command(command[0]);
    for (size_t i = 1; i < command.size(); ++i) {
      c.add_args(command[i]);
    }
  }
  c.set_log_path(name + ".log");
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      v1::CONTAINER);
  return c;
}

namespace {

// A context whose deadline is `timeout` from now.
void SetDeadline(grpc::ClientContext* ctx, absl::Duration timeout) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
}

absl::Status Failed(const Runtime& rt, const char* rpc, const std::string& what,
                    const grpc::Status& st) {
  return absl::InternalError(absl::StrCat(rt.name(), ": ", rpc, " ", what, ": ", st.error_message(),
                                          " (gRPC code ", static_cast<int>(st.error_code()), ")"));
}

constexpr absl::Duration kCallTimeout = absl::Minutes(2);

}  // namespace

absl::Status Pull(Runtime& rt, const std::string& image) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Minutes(5));
  v1::PullImageRequest req;
  req.mutable_image()->set_image(image);
  v1::PullImageResponse resp;
  grpc::Status st = rt.images()->PullImage(&ctx, req, &resp);
  return st.ok() ? absl::OkStatus() : Failed(rt, "PullImage", image, st);
}

absl::StatusOr<std::string> RunPod(Runtime& rt, const v1::PodSandboxConfig& pod) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, kCallTimeout);
  v1::RunPodSandboxRequest req;
  *req.mutable_config() = pod;
  v1::RunPodSandboxResponse resp;
  grpc::Status st = rt.runtime()->RunPodSandbox(&ctx, req, &resp);
  if (!st.ok()) {
    return Failed(rt, "RunPodSandbox", pod.metadata().name(), st);
  }
  return resp.pod_sandbox_id();
}

absl::StatusOr<std::string> CreateContainer(Runtime& rt, const std::string& pod_id,
                                            const v1::PodSandboxConfig& pod,
                                            const v1::ContainerConfig& container) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, kCallTimeout);
  v1::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod_id);
  *req.mutable_config() = container;
  *req.mutable_sandbox_config() = pod;
  v1::CreateContainerResponse resp;
  grpc::Status st = rt.runtime()->CreateContainer(&ctx, req, &resp);
  if (!st.ok()) {
    return Failed(rt, "CreateContainer",
                  absl::StrCat(pod.metadata().name(), "/", container.metadata().name()), st);
  }
  return resp.container_id();
}

absl::Status StartContainer(Runtime& rt, const std::string& id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, kCallTimeout);
  v1::StartContainerRequest req;
  req.set_container_id(id);
  v1::StartContainerResponse resp;
  grpc::Status st = rt.runtime()->StartContainer(&ctx, req, &resp);
  return st.ok() ? absl::OkStatus() : Failed(rt, "StartContainer", id, st);
}

absl::Status StopContainer(Runtime& rt, const std::string& id, int64_t grace_seconds,
                           absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  v1::StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(grace_seconds);
  v1::StopContainerResponse resp;
  grpc::Status st = rt.runtime()->StopContainer(&ctx, req, &resp);
  return st.ok() ? absl::OkStatus() : Failed(rt, "StopContainer", id, st);
}

absl::Status RemoveContainer(Runtime& rt, const std::string& id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, kCallTimeout);
  v1::RemoveContainerRequest req;
  req.set_container_id(id);
  v1::RemoveContainerResponse resp;
  grpc::Status st = rt.runtime()->RemoveContainer(&ctx, req, &resp);
  return st.ok() ? absl::OkStatus() : Failed(rt, "RemoveContainer", id, st);
}

absl::Status StopPod(Runtime& rt, const std::string& pod_id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, kCallTimeout);
  v1::StopPodSandboxRequest req;
  req.set_pod_sandbox_id(pod_id);
  v1::StopPodSandboxResponse resp;
  grpc::Status st = rt.runtime()->StopPodSandbox(&ctx, req, &resp);
  return st.ok() ? absl::OkStatus() : Failed(rt, "StopPodSandbox", pod_id, st);
}

absl::Status RemovePod(Runtime& rt, const std::string& pod_id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, kCallTimeout);
  v1::RemovePodSandboxRequest req;
  req.set_pod_sandbox_id(pod_id);
  v1::RemovePodSandboxResponse resp;
  grpc::Status st = rt.runtime()->RemovePodSandbox(&ctx, req, &resp);
  return st.ok() ? absl::OkStatus() : Failed(rt, "RemovePodSandbox", pod_id, st);
}

absl::Status ExecSync(Runtime& rt, const std::string& id, const std::vector<std::string>& cmd,
                      int64_t timeout_seconds) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(timeout_seconds + 30));
  v1::ExecSyncRequest req;
  req.set_container_id(id);
  for (const std::string& arg : cmd) {
    req.add_cmd(arg);
  }
  req.set_timeout(timeout_seconds);
  v1::ExecSyncResponse resp;
  grpc::Status st = rt.runtime()->ExecSync(&ctx, req, &resp);
  if (!st.ok()) {
    return Failed(rt, "ExecSync", id, st);
  }
  if (resp.exit_code() != 0) {
    return absl::InternalError(absl::StrCat(rt.name(), ": ExecSync ", absl::StrJoin(cmd, " "),
                                            " exited ", resp.exit_code(), ": ", resp.stderr()));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ContainerStatus> ContainerStatus(Runtime& rt, const std::string& id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, kCallTimeout);
  v1::ContainerStatusRequest req;
  req.set_container_id(id);
  v1::ContainerStatusResponse resp;
  grpc::Status st = rt.runtime()->ContainerStatus(&ctx, req, &resp);
  if (!st.ok()) {
    return Failed(rt, "ContainerStatus", id, st);
  }
  return resp.status();
}

absl::StatusOr<v1::ListContainersResponse> ListContainers(Runtime& rt,
                                                          const v1::ContainerFilter& filter) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, kCallTimeout);
  v1::ListContainersRequest req;
  *req.mutable_filter() = filter;
  v1::ListContainersResponse resp;
  grpc::Status st = rt.runtime()->ListContainers(&ctx, req, &resp);
  if (!st.ok()) {
    return Failed(rt, "ListContainers", "", st);
  }
  return resp;
}

absl::StatusOr<size_t> ListContainersBytes(Runtime& rt) {
  grpc::GenericStub stub(rt.channel());
  grpc::ClientContext ctx;
  SetDeadline(&ctx, kCallTimeout);
  std::string req = v1::ListContainersRequest().SerializeAsString();
  grpc::Slice slice(req);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  absl::Mutex mu;
  bool done = false;
  grpc::Status st;
  stub.UnaryCall(&ctx, "/runtime.v1.RuntimeService/ListContainers", grpc::StubOptions(), &request,
                 &response, [&](grpc::Status s) {
                   absl::MutexLock lock(&mu);
                   st = std::move(s);
                   done = true;
                 });
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&done));
  }
  if (!st.ok()) {
    return Failed(rt, "ListContainers", "", st);
  }
  return response.Length();
}

absl::StatusOr<int> CountContainers(Runtime& rt, std::optional<v1::ContainerState> state) {
  v1::ContainerFilter filter;
  if (state.has_value()) {
    filter.mutable_state()->set_state(*state);
  }
  absl::StatusOr<v1::ListContainersResponse> resp = ListContainers(rt, filter);
  if (!resp.ok()) {
    return resp.status();
  }
  return resp->containers_size();
}

absl::StatusOr<int> CountPods(Runtime& rt, std::optional<v1::PodSandboxState> state) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, kCallTimeout);
  v1::ListPodSandboxRequest req;
  if (state.has_value()) {
    req.mutable_filter()->mutable_state()->set_state(*state);
  }
  v1::ListPodSandboxResponse resp;
  grpc::Status st = rt.runtime()->ListPodSandbox(&ctx, req, &resp);
  if (!st.ok()) {
    return Failed(rt, "ListPodSandbox", "", st);
  }
  return resp.items_size();
}

absl::Status ListContainerStats(Runtime& rt) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, kCallTimeout);
  v1::ListContainerStatsRequest req;
  v1::ListContainerStatsResponse resp;
  grpc::Status st = rt.runtime()->ListContainerStats(&ctx, req, &resp);
  return st.ok() ? absl::OkStatus() : Failed(rt, "ListContainerStats", "", st);
}

absl::Status ImageFsInfo(Runtime& rt) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, kCallTimeout);
  v1::ImageFsInfoRequest req;
  v1::ImageFsInfoResponse resp;
  grpc::Status st = rt.images()->ImageFsInfo(&ctx, req, &resp);
  return st.ok() ? absl::OkStatus() : Failed(rt, "ImageFsInfo", "", st);
}

absl::Status WaitExited(Runtime& rt, const std::string& id, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    absl::StatusOr<v1::ContainerStatus> status = ContainerStatus(rt, id);
    if (!status.ok()) {
      return status.status();
    }
    if (status->state() == v1::CONTAINER_EXITED) {
      return absl::OkStatus();
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          rt.name(), ": container ", id, " has not exited after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

absl::StatusOr<PodRun> StartPod(Runtime& rt, const std::string& name, const std::string& image,
                                const std::vector<std::vector<std::string>>& commands,
                                const std::string& log_root) {
  const v1::PodSandboxConfig pod = PodConfig(name, log_root);
  PodRun run;
  absl::StatusOr<std::string> pod_id = RunPod(rt, pod);
  if (!pod_id.ok()) {
    return pod_id.status();
  }
  run.pod_id = *pod_id;
  for (size_t i = 0; i < commands.size(); ++i) {
    absl::StatusOr<std::string> id = CreateContainer(
        rt, run.pod_id, pod, ContainerConfig(absl::StrCat("c", i), image, commands[i]));
    if (!id.ok()) {
      return id.status();
    }
    if (absl::Status st = StartContainer(rt, *id); !st.ok()) {
      return st;
    }
    run.container_ids.push_back(*id);
  }
  return run;
}

absl::Status TearDownPod(Runtime& rt, const PodRun& pod) {
  for (const std::string& id : pod.container_ids) {
    if (absl::Status st = StopContainer(rt, id, 0); !st.ok()) {
      return st;
    }
    if (absl::Status st = RemoveContainer(rt, id); !st.ok()) {
      return st;
    }
  }
  if (absl::Status st = StopPod(rt, pod.pod_id); !st.ok()) {
    return st;
  }
  return RemovePod(rt, pod.pod_id);
}

absl::Status RunInParallel(int n, const std::function<absl::Status(int)>& fn) {
  absl::Mutex mu;
  absl::Status first;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      absl::Status st = fn(i);
      if (!st.ok()) {
        absl::MutexLock lock(&mu);
        if (first.ok()) {
          first = std::move(st);
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  return first;
}

}  // namespace crid::bench
