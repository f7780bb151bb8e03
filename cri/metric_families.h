// The metric families of ListMetricDescriptors and ListPodSandboxMetrics.
// kubelet (PodAndContainerStatsFromCRI) serves them on /metrics/cadvisor in
// place of cAdvisor's, so names, help, types and labels are cAdvisor's: every
// family has the label keys of kMetricLabelKeys (cAdvisor's container labels
// under kubelet), some with one or two more at the end. Pure logic: the
// samples come from the caller.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cgroups/stats.h"
#include "proto/cri_api.pb.h"

namespace crid {

// The labels every family starts with, in this order.
inline constexpr const char* kMetricLabelKeys[] = {"container", "id",        "image",
                                                   "name",      "namespace", "pod"};

struct MetricLabels {
  std::string container;  // the container's metadata name; "" for pod-level samples
  std::string id;         // container ID, or the pod sandbox ID for pod-level samples
  std::string image;      // the image as the container config named it; "" for the pod
  std::string name;       // the runtime's name: the container ID; "" for the pod
  std::string namespace_name;
  std::string pod;
};

// One interface's counters from /proc/PID/net/dev.
struct InterfaceCounters {
  std::string name;
  uint64_t rx_bytes = 0;
  uint64_t rx_packets = 0;
  uint64_t rx_errors = 0;
  uint64_t rx_dropped = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_errors = 0;
  uint64_t tx_dropped = 0;
};

// Every interface but lo in /proc/net/dev text; malformed lines are skipped.
std::vector<InterfaceCounters> ParseNetDev(absl::string_view text);
// The same read from /proc/PID/net/dev (the network namespace of PID).
absl::StatusOr<std::vector<InterfaceCounters>> ReadNetDev(pid_t pid);

// The filesystem holding a container's writable layer, as cAdvisor reports it.
struct FilesystemSample {
  std::string device;        // the mount source, e.g. /dev/vda1
  uint64_t limit_bytes = 0;  // the filesystem's size
  uint64_t usage_bytes = 0;  // what the container's writable layer uses
  uint64_t inodes_total = 0;
  uint64_t inodes_free = 0;
};

// The source (device) of the mount of device MAJOR:MINOR in /proc/PID/mountinfo
// text; "" when none matches.
std::string MountSourceOf(absl::string_view mountinfo, unsigned major, unsigned minor);
// Size, free inodes and device of the filesystem holding `path` (usage_bytes
// is left 0 for the caller).
absl::StatusOr<FilesystemSample> ReadFilesystem(const std::string& path);
// "/dev/NAME" of block device MAJOR:MINOR from sysfs; "" when unknown.
std::string BlockDeviceName(uint32_t major, uint32_t minor);

// What is known about one container or one pod, read when the call came.
struct MetricSample {
  MetricLabels labels;
  std::optional<CgroupStats> cgroup;            // absent: no cgroup usage metrics
  std::optional<CgroupProcessStats> processes;  // absent: no process metrics
  // Names of the block devices in cgroup->io, by (major, minor); a device not
  // named here is labelled "".
  std::map<std::pair<uint32_t, uint32_t>, std::string> block_devices;
  std::optional<FilesystemSample> filesystem;  // containers only
  // When the container started (the pod: was created); InfinitePast: unknown.
  absl::Time started = absl::InfinitePast();
  // Pod only: the interfaces of its network namespace.
  std::vector<InterfaceCounters> interfaces;
};

// The descriptors of every family this runtime reports, in a fixed order.
std::vector<runtime::v1::MetricDescriptor> MetricDescriptors();

// Appends the samples of `sample` (container_last_seen at `now`). Their
// timestamp is 0: CRI's mark of a value gathered live rather than cached, so
// kubelet exposes them without one and Prometheus's staleness handling works.
void AppendMetrics(const MetricSample& sample, absl::Time now,
                   google::protobuf::RepeatedPtrField<runtime::v1::Metric>* out);

}  // namespace crid
