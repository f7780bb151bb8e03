// The CRI calls the benchmarks make, written once for every runtime: pods and
// containers configured as kubelet configures them, each call with a deadline
// and an error that names the RPC; and the latency samples they report.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bench/runtimes.h"
#include "proto/cri_api.pb.h"

namespace crid::bench {

// The p-quantile (0..1) of `v` by nearest rank; 0 when empty.
double Percentile(std::vector<double> v, double p);

// Latencies in milliseconds, added from any thread.
class Samples {
 public:
  Samples() = default;
  Samples(const Samples& other);
  Samples& operator=(const Samples& other);

  void Add(double ms);
  void AddSince(absl::Time start) { Add(absl::ToDoubleMilliseconds(absl::Now() - start)); }
  std::vector<double> values() const;
  size_t size() const;
  double p50() const { return Percentile(values(), 0.5); }
  double p99() const { return Percentile(values(), 0.99); }
  double max() const { return Percentile(values(), 1.0); }

 private:
  mutable absl::Mutex mu_;
  std::vector<double> ms_ ABSL_GUARDED_BY(mu_);
};

// A pod as kubelet asks for it by default: a PID namespace per container, a
// log directory under `log_root`.
::runtime::v1::PodSandboxConfig PodConfig(const std::string& name, const std::string& log_root);

// A container of `image` running `command` (argv), logging to NAME.log.
::runtime::v1::ContainerConfig ContainerConfig(const std::string& name, const std::string& image,
                                               const std::vector<std::string>& command);

// Each call fails with the RPC's name, the gRPC message and the runtime's name.
// `timeout` is the call's deadline.
absl::Status Pull(Runtime& rt, const std::string& image);
absl::StatusOr<std::string> RunPod(Runtime& rt, const ::runtime::v1::PodSandboxConfig& pod);
absl::StatusOr<std::string> CreateContainer(Runtime& rt, const std::string& pod_id,
                                            const ::runtime::v1::PodSandboxConfig& pod,
                                            const ::runtime::v1::ContainerConfig& container);
absl::Status StartContainer(Runtime& rt, const std::string& id);
absl::Status StopContainer(Runtime& rt, const std::string& id, int64_t grace_seconds,
                           absl::Duration timeout = absl::Minutes(2));
absl::Status RemoveContainer(Runtime& rt, const std::string& id);
absl::Status StopPod(Runtime& rt, const std::string& pod_id);
absl::Status RemovePod(Runtime& rt, const std::string& pod_id);
// Fails when the command does not exit 0.
absl::Status ExecSync(Runtime& rt, const std::string& id, const std::vector<std::string>& cmd,
                      int64_t timeout_seconds = 10);
absl::StatusOr<::runtime::v1::ContainerStatus> ContainerStatus(Runtime& rt, const std::string& id);
absl::StatusOr<::runtime::v1::ListContainersResponse> ListContainers(
    Runtime& rt, const ::runtime::v1::ContainerFilter& filter = {});
// ListContainers with the answer taken as bytes and not decoded: the call
// without the client's protobuf parsing. Returns the answer's size.
absl::StatusOr<size_t> ListContainersBytes(Runtime& rt);
// The containers, or the pods, the runtime lists (filtered by state when set).
absl::StatusOr<int> CountContainers(Runtime& rt,
                                    std::optional<::runtime::v1::ContainerState> state = {});
absl::StatusOr<int> CountPods(Runtime& rt,
                              std::optional<::runtime::v1::PodSandboxState> state = {});
absl::Status ListContainerStats(Runtime& rt);
absl::Status ImageFsInfo(Runtime& rt);
// Polls ContainerStatus until the container has EXITED.
absl::Status WaitExited(Runtime& rt, const std::string& id, absl::Duration timeout);

// A running pod with one container per entry of `commands`, started as kubelet
// starts a pod: RunPodSandbox, then CreateContainer + StartContainer for each.
struct PodRun {
  std::string pod_id;
  std::vector<std::string> container_ids;
};
absl::StatusOr<PodRun> StartPod(Runtime& rt, const std::string& name, const std::string& image,
                                const std::vector<std::vector<std::string>>& commands,
                                const std::string& log_root);
// StopContainer (grace 0) + RemoveContainer for each container, then
// StopPodSandbox + RemovePodSandbox.
absl::Status TearDownPod(Runtime& rt, const PodRun& pod);

// Runs fn(0) .. fn(n-1) on n threads at once; the first error, if any.
absl::Status RunInParallel(int n, const std::function<absl::Status(int)>& fn);

}  // namespace crid::bench
