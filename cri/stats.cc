// ContainerStats, ListContainerStats, PodSandboxStats and ListPodSandboxStats:
// usage read from the cgroup tree (through the cgroup manager, which keeps one
// previous sample per cgroup for nano-cores), the writable layer, and the
// pod's network counters from inside its network namespace.
#include <map>
#include <string>

#include "absl/time/clock.h"
#include "container/rootfs.h"
#include "cri/batch_stream.h"
#include "cri/metric_families.h"
#include "cri/runtime_service.h"

namespace crid {

namespace {

using container::ContainerRecord;
namespace v1 = ::runtime::v1;

void FillCpuMemory(const CgroupUsage& usage, v1::CpuUsage* cpu, v1::MemoryUsage* memory) {
  const int64_t ts = absl::ToUnixNanos(usage.timestamp);
  cpu->set_timestamp(ts);
  cpu->mutable_usage_core_nano_seconds()->set_value(usage.stats.cpu_usage_ns);
  if (usage.has_nano_cores) {
    cpu->mutable_usage_nano_cores()->set_value(usage.usage_nano_cores);
  }
  memory->set_timestamp(ts);
  memory->mutable_working_set_bytes()->set_value(usage.stats.memory_working_set_bytes);
  memory->mutable_available_bytes()->set_value(usage.stats.memory_available_bytes);
  memory->mutable_usage_bytes()->set_value(usage.stats.memory_usage_bytes);
  memory->mutable_rss_bytes()->set_value(usage.stats.memory_rss_bytes);
  memory->mutable_page_faults()->set_value(usage.stats.memory_page_faults);
  memory->mutable_major_page_faults()->set_value(usage.stats.memory_major_page_faults);
}

// The pod's interfaces (all but lo) read inside its network namespace.
void FillNetwork(pid_t pid, const std::string& default_ifname, v1::NetworkUsage* network) {
  absl::StatusOr<std::vector<InterfaceCounters>> interfaces = ReadNetDev(pid);
  if (!interfaces.ok()) {
    return;
  }
  network->set_timestamp(absl::ToUnixNanos(absl::Now()));
  for (const InterfaceCounters& counters : *interfaces) {
    v1::NetworkInterfaceUsage* iface = network->add_interfaces();
    iface->set_name(counters.name);
    iface->mutable_rx_bytes()->set_value(counters.rx_bytes);
    iface->mutable_rx_errors()->set_value(counters.rx_errors);
    iface->mutable_tx_bytes()->set_value(counters.tx_bytes);
    iface->mutable_tx_errors()->set_value(counters.tx_errors);
    if (counters.name == default_ifname) {
      *network->mutable_default_interface() = *iface;
    }
  }
}

}  // namespace

v1::ContainerStats RuntimeService::StatsOf(const ContainerRecord& record) const {
  absl::StatusOr<sandbox::SandboxRecord> pod = sandboxes_->Get(record.pod_id());
  return StatsOf(record, pod.ok() ? pod->config().linux().cgroup_parent() : "");
}

v1::ContainerStats RuntimeService::StatsOf(const ContainerRecord& record,
                                           const std::string& cgroup_parent) const {
  v1::ContainerStats stats;
  v1::ContainerAttributes* attributes = stats.mutable_attributes();
  attributes->set_id(record.id());
  *attributes->mutable_metadata() = record.config().metadata();
  *attributes->mutable_labels() = record.config().labels();
  *attributes->mutable_annotations() = record.config().annotations();
  if (record.state() != ContainerRecord::EXITED && cgroups_ != nullptr) {
    absl::StatusOr<std::string> cgroup = cgroups_->ContainerCgroupDir(cgroup_parent, record.id());
    if (cgroup.ok()) {
      absl::StatusOr<CgroupUsage> usage = cgroups_->Stats(*cgroup);
      if (usage.ok()) {
        FillCpuMemory(*usage, stats.mutable_cpu(), stats.mutable_memory());
      }
    }
  }
  absl::StatusOr<LayerUsageCache::Sample> layer = layer_usage_.Get(record.dir());
  if (layer.ok()) {
    v1::FilesystemUsage* fs = stats.mutable_writable_layer();
    fs->set_timestamp(absl::ToUnixNanos(layer->taken));
    fs->mutable_fs_id()->set_mountpoint(containers_->options().root_dir);
    fs->mutable_used_bytes()->set_value(layer->usage.bytes);
    fs->mutable_inodes_used()->set_value(layer->usage.inodes);
  }
  return stats;
}

pid_t RuntimeService::PodNetnsPid(const sandbox::SandboxRecord& pod,
                                  const std::vector<container::RecordSnapshot>& containers) {
  if (pod.pause_pid() > 0) {
    return pod.pause_pid();
  }
  for (const container::RecordSnapshot& record : containers) {
    if (record->pod_id() == pod.id() && record->state() == ContainerRecord::RUNNING) {
      return record->pid();
    }
  }
  return 0;
}

v1::PodSandboxStats RuntimeService::PodStatsOf(const sandbox::SandboxRecord& pod) const {
  v1::PodSandboxStats stats;
  v1::PodSandboxAttributes* attributes = stats.mutable_attributes();
  attributes->set_id(pod.id());
  *attributes->mutable_metadata() = pod.config().metadata();
  *attributes->mutable_labels() = pod.config().labels();
  *attributes->mutable_annotations() = pod.config().annotations();
  v1::LinuxPodSandboxStats* linux = stats.mutable_linux();
  v1::ContainerFilter filter;
  filter.set_pod_sandbox_id(pod.id());
  uint64_t cpu_ns = 0, nano_cores = 0, working_set = 0, usage = 0, rss = 0, faults = 0,
           major_faults = 0;
  bool any_usage = false;
  const std::vector<container::RecordSnapshot> containers = containers_->List(filter);
  for (const container::RecordSnapshot& record : containers) {
    if (record->pod_id() != pod.id()) {
      continue;
    }
    v1::ContainerStats c = StatsOf(*record, pod.config().linux().cgroup_parent());
    if (c.has_cpu()) {
      any_usage = true;
      cpu_ns += c.cpu().usage_core_nano_seconds().value();
      nano_cores += c.cpu().usage_nano_cores().value();
      working_set += c.memory().working_set_bytes().value();
      usage += c.memory().usage_bytes().value();
      rss += c.memory().rss_bytes().value();
      faults += c.memory().page_faults().value();
      major_faults += c.memory().major_page_faults().value();
    }
    *linux->add_containers() = std::move(c);
  }
  // The pod's own cgroup when kubelet gave one; else the sum of its containers.
  absl::StatusOr<CgroupUsage> pod_usage = absl::NotFoundError("no pod cgroup");
  if (cgroups_ != nullptr && !pod.config().linux().cgroup_parent().empty()) {
    absl::StatusOr<std::string> dir = cgroups_->PodCgroupDir(pod.config().linux().cgroup_parent());
    if (dir.ok()) {
      pod_usage = cgroups_->Stats(*dir);
    }
  }
  if (pod_usage.ok()) {
    FillCpuMemory(*pod_usage, linux->mutable_cpu(), linux->mutable_memory());
    linux->mutable_process()->set_timestamp(absl::ToUnixNanos(pod_usage->timestamp));
    linux->mutable_process()->mutable_process_count()->set_value(pod_usage->stats.pids_current);
  } else if (any_usage) {
    const int64_t now = absl::ToUnixNanos(absl::Now());
    linux->mutable_cpu()->set_timestamp(now);
    linux->mutable_cpu()->mutable_usage_core_nano_seconds()->set_value(cpu_ns);
    linux->mutable_cpu()->mutable_usage_nano_cores()->set_value(nano_cores);
    v1::MemoryUsage* memory = linux->mutable_memory();
    memory->set_timestamp(now);
    memory->mutable_working_set_bytes()->set_value(working_set);
    memory->mutable_usage_bytes()->set_value(usage);
    memory->mutable_rss_bytes()->set_value(rss);
    memory->mutable_page_faults()->set_value(faults);
    memory->mutable_major_page_faults()->set_value(major_faults);
  }
  pid_t netns_pid = PodNetnsPid(pod, containers);
  if (netns_pid > 0 && !pod.netns_path().empty()) {
    FillNetwork(netns_pid, pod.ifname().empty() ? "eth0" : pod.ifname(), linux->mutable_network());
  }
  return stats;
}

grpc::ServerUnaryReactor* RuntimeService::ContainerStats(grpc::CallbackServerContext* context,
                                                         const v1::ContainerStatsRequest* request,
                                                         v1::ContainerStatsResponse* response) {
  if (containers_ == nullptr) {
    return FinishUnary(context, absl::UnavailableError("containers are not available"));
  }
  if (request->container_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("container_id: must not be empty"));
  }
  absl::StatusOr<ContainerRecord> record = containers_->Get(request->container_id());
  if (!record.ok()) {
    return FinishUnary(context, record.status());
  }
  *response->mutable_stats() = StatsOf(*record);
  return FinishUnary(context, absl::OkStatus());
}

namespace {

v1::ContainerFilter ToContainerFilter(const v1::ContainerStatsFilter& request_filter) {
  v1::ContainerFilter filter;
  filter.set_id(request_filter.id());
  filter.set_pod_sandbox_id(request_filter.pod_sandbox_id());
  *filter.mutable_label_selector() = request_filter.label_selector();
  return filter;
}

}  // namespace

std::vector<std::string> RuntimeService::MeasureContainerStats(
    const std::vector<container::RecordSnapshot>& records) const {
  // Each pod's cgroup parent looked up once, not once per container.
  std::map<std::string, std::string> parents;
  std::vector<std::string> out;
  out.reserve(records.size());
  for (const container::RecordSnapshot& record : records) {
    auto [it, added] = parents.try_emplace(record->pod_id());
    if (added && sandboxes_ != nullptr) {
      absl::StatusOr<sandbox::SandboxRecord> pod = sandboxes_->Get(record->pod_id());
      if (pod.ok()) {
        it->second = pod->config().linux().cgroup_parent();
      }
    }
    out.push_back(StatsOf(*record, it->second).SerializeAsString());
  }
  return out;
}

absl::Status RuntimeService::FillContainerStats(const v1::ContainerStatsFilter& request_filter,
                                                v1::ListContainerStatsResponse* response) const {
  if (containers_ == nullptr) {
    return absl::UnavailableError("containers are not available");
  }
  for (const std::string& bytes :
       MeasureContainerStats(containers_->List(ToContainerFilter(request_filter)))) {
    if (!response->add_stats()->ParseFromString(bytes)) {
      return absl::InternalError("ContainerStats did not parse back");
    }
  }
  return absl::OkStatus();
}

// From the sampler (cri/stats_sampler.h): what it measured at most about two
// seconds ago, else measured now.
grpc::ServerUnaryReactor* RuntimeService::ListContainerStats(grpc::CallbackServerContext* context,
                                                             const grpc::ByteBuffer* request,
                                                             grpc::ByteBuffer* response) {
  v1::ListContainerStatsRequest parsed;
  if (!FromByteBuffer(*request, &parsed)) {
    return FinishUnary(
        context, absl::InvalidArgumentError("request: not a ListContainerStatsRequest message"));
  }
  if (containers_ == nullptr) {
    return FinishUnary(context, absl::UnavailableError("containers are not available"));
  }
  std::string bytes;
  stats_sampler_.Append(containers_->List(ToContainerFilter(parsed.filter())), &bytes);
  *response = ToByteBuffer(bytes);
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::StreamContainerStatsResponse>* RuntimeService::StreamContainerStats(
    grpc::CallbackServerContext* /*context*/, const v1::StreamContainerStatsRequest* request) {
  return StreamFromList<v1::StreamContainerStatsResponse, v1::ListContainerStatsResponse>(
      [&](v1::ListContainerStatsResponse* list) {
        return FillContainerStats(request->filter(), list);
      },
      &v1::ListContainerStatsResponse::mutable_stats,
      &v1::StreamContainerStatsResponse::mutable_container_stats);
}

grpc::ServerUnaryReactor* RuntimeService::PodSandboxStats(grpc::CallbackServerContext* context,
                                                          const v1::PodSandboxStatsRequest* request,
                                                          v1::PodSandboxStatsResponse* response) {
  if (containers_ == nullptr || sandboxes_ == nullptr) {
    return FinishUnary(context, absl::UnavailableError("pod sandboxes are not available"));
  }
  if (request->pod_sandbox_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("pod_sandbox_id: must not be empty"));
  }
  absl::StatusOr<sandbox::SandboxRecord> pod = sandboxes_->Get(request->pod_sandbox_id());
  if (!pod.ok()) {
    return FinishUnary(context, pod.status());
  }
  *response->mutable_stats() = PodStatsOf(*pod);
  return FinishUnary(context, absl::OkStatus());
}

absl::Status RuntimeService::FillPodSandboxStats(const v1::PodSandboxStatsFilter& request_filter,
                                                 v1::ListPodSandboxStatsResponse* response) const {
  if (containers_ == nullptr || sandboxes_ == nullptr) {
    return absl::UnavailableError("pod sandboxes are not available");
  }
  // The sandbox manager's filter already matches ID prefixes and labels.
  v1::PodSandboxFilter filter;
  filter.set_id(request_filter.id());
  *filter.mutable_label_selector() = request_filter.label_selector();
  for (const sandbox::SandboxRecord& pod : sandboxes_->List(filter)) {
    *response->add_stats() = PodStatsOf(pod);
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* RuntimeService::ListPodSandboxStats(
    grpc::CallbackServerContext* context, const v1::ListPodSandboxStatsRequest* request,
    v1::ListPodSandboxStatsResponse* response) {
  return FinishUnary(context, FillPodSandboxStats(request->filter(), response));
}

grpc::ServerWriteReactor<v1::StreamPodSandboxStatsResponse>* RuntimeService::StreamPodSandboxStats(
    grpc::CallbackServerContext* /*context*/, const v1::StreamPodSandboxStatsRequest* request) {
  return StreamFromList<v1::StreamPodSandboxStatsResponse, v1::ListPodSandboxStatsResponse>(
      [&](v1::ListPodSandboxStatsResponse* list) {
        return FillPodSandboxStats(request->filter(), list);
      },
      &v1::ListPodSandboxStatsResponse::mutable_stats,
      &v1::StreamPodSandboxStatsResponse::mutable_pod_sandbox_stats);
}

}  // namespace crid
