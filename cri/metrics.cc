// ListMetricDescriptors and ListPodSandboxMetrics: cAdvisor's families
// (cri/metric_families.h) for every ready pod and its running containers, read
// straight from the cgroup tree (without touching the cgroup manager's
// nano-core samples, which belong to the stats RPCs) and from the pod's
// network namespace, the processes' fds in /proc and the filesystem of the
// writable layers. One listing of the containers serves every pod.
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "cri/batch_stream.h"
#include "cri/metric_families.h"
#include "cri/runtime_service.h"

namespace crid {

namespace {

using container::ContainerRecord;
namespace v1 = ::runtime::v1;

// The usage of the cgroup at `dir` now; nothing when it cannot be read.
std::optional<CgroupStats> SampleCgroup(const CgroupLayout& layout,
                                        const absl::StatusOr<std::string>& dir) {
  if (!dir.ok()) {
    return std::nullopt;
  }
  absl::StatusOr<CgroupStats> stats = ReadCgroupStats(layout, *dir);
  if (!stats.ok()) {
    return std::nullopt;
  }
  return *std::move(stats);
}

// Adds the cgroup's process counts and names its block devices (through
// `names`, which keeps the sysfs lookups to one per device per call).
void SampleProcessesAndDevices(const CgroupLayout& layout, const absl::StatusOr<std::string>& dir,
                               std::map<std::pair<uint32_t, uint32_t>, std::string>& names,
                               MetricSample& sample) {
  if (!sample.cgroup.has_value()) {
    return;
  }
  absl::StatusOr<CgroupProcessStats> processes = ReadCgroupProcessStats(layout, *dir);
  if (processes.ok()) {
    sample.processes = *processes;
  }
  for (const CgroupStats::DeviceIo& io : sample.cgroup->io) {
    std::pair<uint32_t, uint32_t> key(io.major, io.minor);
    auto it = names.find(key);
    if (it == names.end()) {
      it = names.emplace(key, BlockDeviceName(io.major, io.minor)).first;
    }
    sample.block_devices.insert(*it);
  }
}

}  // namespace

grpc::ServerUnaryReactor* RuntimeService::ListMetricDescriptors(
    grpc::CallbackServerContext* context, const v1::ListMetricDescriptorsRequest* /*request*/,
    v1::ListMetricDescriptorsResponse* response) {
  for (v1::MetricDescriptor& descriptor : MetricDescriptors()) {
    *response->add_descriptors() = std::move(descriptor);
  }
  return FinishUnary(context, absl::OkStatus());
}

absl::Status RuntimeService::FillPodSandboxMetrics(
    v1::ListPodSandboxMetricsResponse* response) const {
  if (containers_ == nullptr || sandboxes_ == nullptr) {
    return absl::UnavailableError("pod sandboxes are not available");
  }
  std::map<std::string, std::vector<container::RecordSnapshot>> running;
  for (container::RecordSnapshot& record : containers_->List(v1::ContainerFilter())) {
    if (record->state() == ContainerRecord::RUNNING) {
      std::string pod_id = record->pod_id();
      running[pod_id].push_back(std::move(record));
    }
  }
  static const std::vector<container::RecordSnapshot> kNone;
  const absl::Time now = absl::Now();
  std::map<std::pair<uint32_t, uint32_t>, std::string> device_names;
  for (const sandbox::SandboxRecord& pod : sandboxes_->List(v1::PodSandboxFilter())) {
    if (pod.state() != sandbox::SandboxRecord::READY) {
      continue;
    }
    auto it = running.find(pod.id());
    const std::vector<container::RecordSnapshot>& containers =
        it == running.end() ? kNone : it->second;
    const std::string& parent = pod.config().linux().cgroup_parent();
    v1::PodSandboxMetrics* pod_metrics = response->add_pod_metrics();
    pod_metrics->set_pod_sandbox_id(pod.id());

    // Pod-level samples: the pod's cgroup (when kubelet gave one) and its network.
    MetricSample sample;
    sample.labels.id = pod.id();
    sample.labels.namespace_name = pod.config().metadata().namespace_();
    sample.labels.pod = pod.config().metadata().name();
    if (pod.created_at_ns() > 0) {
      sample.started = absl::FromUnixNanos(pod.created_at_ns());
    }
    if (cgroups_ != nullptr && !parent.empty()) {
      absl::StatusOr<std::string> dir = cgroups_->PodCgroupDir(parent);
      sample.cgroup = SampleCgroup(cgroups_->layout(), dir);
      SampleProcessesAndDevices(cgroups_->layout(), dir, device_names, sample);
    }
    pid_t netns_pid = PodNetnsPid(pod, containers);
    if (netns_pid > 0 && !pod.netns_path().empty()) {
      absl::StatusOr<std::vector<InterfaceCounters>> interfaces = ReadNetDev(netns_pid);
      if (interfaces.ok()) {
        sample.interfaces = *std::move(interfaces);
      }
    }
    AppendMetrics(sample, now, pod_metrics->mutable_metrics());

    for (const container::RecordSnapshot& snapshot : containers) {
      const ContainerRecord& record = *snapshot;
      v1::ContainerMetrics* container_metrics = pod_metrics->add_container_metrics();
      container_metrics->set_container_id(record.id());
      MetricSample c;
      c.labels.container = record.config().metadata().name();
      c.labels.id = record.id();
      c.labels.image =
          record.image_name().empty() ? record.config().image().image() : record.image_name();
      c.labels.name = record.id();
      c.labels.namespace_name = sample.labels.namespace_name;
      c.labels.pod = sample.labels.pod;
      if (record.started_at_ns() > 0) {
        c.started = absl::FromUnixNanos(record.started_at_ns());
      }
      if (cgroups_ != nullptr) {
        absl::StatusOr<std::string> dir = cgroups_->ContainerCgroupDir(parent, record.id());
        c.cgroup = SampleCgroup(cgroups_->layout(), dir);
        SampleProcessesAndDevices(cgroups_->layout(), dir, device_names, c);
      }
      // The writable layer's filesystem; usage is the layer's (cached, as for
      // ContainerStats).
      absl::StatusOr<LayerUsageCache::Sample> layer = layer_usage_.Get(record.dir());
      absl::StatusOr<FilesystemSample> fs = ReadFilesystem(record.dir());
      if (layer.ok() && fs.ok()) {
        fs->usage_bytes = layer->usage.bytes;
        c.filesystem = *std::move(fs);
      }
      AppendMetrics(c, now, container_metrics->mutable_metrics());
    }
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* RuntimeService::ListPodSandboxMetrics(
    grpc::CallbackServerContext* context, const v1::ListPodSandboxMetricsRequest* /*request*/,
    v1::ListPodSandboxMetricsResponse* response) {
  return FinishUnary(context, FillPodSandboxMetrics(response));
}

grpc::ServerWriteReactor<v1::StreamPodSandboxMetricsResponse>*
RuntimeService::StreamPodSandboxMetrics(grpc::CallbackServerContext* /*context*/,
                                        const v1::StreamPodSandboxMetricsRequest* /*request*/) {
  return StreamFromList<v1::StreamPodSandboxMetricsResponse, v1::ListPodSandboxMetricsResponse>(
      [&](v1::ListPodSandboxMetricsResponse* list) { return FillPodSandboxMetrics(list); },
      &v1::ListPodSandboxMetricsResponse::mutable_pod_metrics,
      &v1::StreamPodSandboxMetricsResponse::mutable_pod_sandbox_metrics);
}

}  // namespace crid
