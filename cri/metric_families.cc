// cAdvisor's metric families built from crid's samples. Values are uint64 as
// CRI carries them; kubelet converts them to float as they are, so the
// *_seconds families are whole seconds (as containerd and CRI-O send them).
#include "cri/metric_families.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <iterator>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/errors.h"
#include "base/fs.h"

namespace crid {

namespace {

namespace v1 = ::runtime::v1;

// The extra label keys a family has after kMetricLabelKeys.
enum class Extra { kNone, kInterface, kFailure, kDevice, kBlkio };

struct Family {
  const char* name;
  const char* help;
  v1::MetricType type;
  Extra extra;
};

// cAdvisor's names, help text and types (metrics/prometheus.go).
constexpr Family kCpuUsage = {"container_cpu_usage_seconds_total",
                              "Cumulative cpu time consumed in seconds.", v1::COUNTER,
                              Extra::kNone};
constexpr Family kMemoryUsage = {
    "container_memory_usage_bytes",
    "Current memory usage in bytes, including all memory regardless of when it was accessed",
    v1::GAUGE, Extra::kNone};
constexpr Family kMemoryWorkingSet = {"container_memory_working_set_bytes",
                                      "Current working set in bytes.", v1::GAUGE, Extra::kNone};
constexpr Family kMemoryRss = {"container_memory_rss", "Size of RSS in bytes.", v1::GAUGE,
                               Extra::kNone};
constexpr Family kMemoryCache = {"container_memory_cache", "Number of bytes of page cache memory.",
                                 v1::GAUGE, Extra::kNone};
constexpr Family kMemoryFailures = {"container_memory_failures_total",
                                    "Cumulative count of memory allocation failures.", v1::COUNTER,
                                    Extra::kFailure};
constexpr Family kSpecMemoryLimit = {"container_spec_memory_limit_bytes",
                                     "Memory limit for the container.", v1::GAUGE, Extra::kNone};
constexpr Family kOomEvents = {"container_oom_events_total",
                               "Count of out of memory events observed for the container",
                               v1::COUNTER, Extra::kNone};
constexpr Family kThreads = {"container_threads", "Number of threads running inside the container",
                             v1::GAUGE, Extra::kNone};
constexpr Family kStartTime = {"container_start_time_seconds",
                               "Start time of the container since unix epoch in seconds.",
                               v1::GAUGE, Extra::kNone};
constexpr Family kLastSeen = {"container_last_seen",
                              "Last time a container was seen by the exporter", v1::GAUGE,
                              Extra::kNone};
constexpr Family kRxBytes = {"container_network_receive_bytes_total",
                             "Cumulative count of bytes received", v1::COUNTER, Extra::kInterface};
constexpr Family kRxPackets = {"container_network_receive_packets_total",
                               "Cumulative count of packets received", v1::COUNTER,
                               Extra::kInterface};
constexpr Family kRxDropped = {"container_network_receive_packets_dropped_total",
                               "Cumulative count of packets dropped while receiving", v1::COUNTER,
                               Extra::kInterface};
constexpr Family kRxErrors = {"container_network_receive_errors_total",
                              "Cumulative count of errors encountered while receiving", v1::COUNTER,
                              Extra::kInterface};
constexpr Family kTxBytes = {"container_network_transmit_bytes_total",
                             "Cumulative count of bytes transmitted", v1::COUNTER,
                             Extra::kInterface};
constexpr Family kTxPackets = {"container_network_transmit_packets_total",
                               "Cumulative count of packets transmitted", v1::COUNTER,
                               Extra::kInterface};
constexpr Family kTxDropped = {"container_network_transmit_packets_dropped_total",
                               "Cumulative count of packets dropped while transmitting",
                               v1::COUNTER, Extra::kInterface};
constexpr Family kTxErrors = {"container_network_transmit_errors_total",
                              "Cumulative count of errors encountered while transmitting",
                              v1::COUNTER, Extra::kInterface};

constexpr Family kCpuUser = {"container_cpu_user_seconds_total",
                             "Cumulative user cpu time consumed in seconds.", v1::COUNTER,
                             Extra::kNone};
constexpr Family kCpuSystem = {"container_cpu_system_seconds_total",
                               "Cumulative system cpu time consumed in seconds.", v1::COUNTER,
                               Extra::kNone};
constexpr Family kCfsPeriods = {"container_cpu_cfs_periods_total",
                                "Number of elapsed enforcement period intervals.", v1::COUNTER,
                                Extra::kNone};
constexpr Family kCfsThrottledPeriods = {"container_cpu_cfs_throttled_periods_total",
                                         "Number of throttled period intervals.", v1::COUNTER,
                                         Extra::kNone};
constexpr Family kCfsThrottledSeconds = {"container_cpu_cfs_throttled_seconds_total",
                                         "Total time duration the container has been throttled.",
                                         v1::COUNTER, Extra::kNone};
constexpr Family kSpecCpuPeriod = {"container_spec_cpu_period", "CPU period of the container.",
                                   v1::GAUGE, Extra::kNone};
constexpr Family kSpecCpuQuota = {"container_spec_cpu_quota", "CPU quota of the container.",
                                  v1::GAUGE, Extra::kNone};
constexpr Family kSpecCpuShares = {"container_spec_cpu_shares", "CPU share of the container.",
                                   v1::GAUGE, Extra::kNone};
constexpr Family kSpecMemorySwapLimit = {"container_spec_memory_swap_limit_bytes",
                                         "Memory swap limit for the container.", v1::GAUGE,
                                         Extra::kNone};
constexpr Family kMemoryFailcnt = {"container_memory_failcnt", "Number of memory usage hits limits",
                                   v1::COUNTER, Extra::kNone};
constexpr Family kMemoryKernel = {"container_memory_kernel_usage",
                                  "Size of kernel memory allocated in bytes.", v1::GAUGE,
                                  Extra::kNone};
constexpr Family kMemoryMappedFile = {"container_memory_mapped_file",
                                      "Size of memory mapped files in bytes.", v1::GAUGE,
                                      Extra::kNone};
constexpr Family kMemoryMaxUsage = {"container_memory_max_usage_bytes",
                                    "Maximum memory usage recorded in bytes", v1::GAUGE,
                                    Extra::kNone};
constexpr Family kMemorySwap = {"container_memory_swap", "Container swap usage in bytes.",
                                v1::GAUGE, Extra::kNone};
constexpr Family kProcesses = {"container_processes",
                               "Number of processes running inside the container.", v1::GAUGE,
                               Extra::kNone};
constexpr Family kFileDescriptors = {"container_file_descriptors",
                                     "Number of open file descriptors for the container.",
                                     v1::GAUGE, Extra::kNone};
constexpr Family kSockets = {"container_sockets", "Number of open sockets for the container.",
                             v1::GAUGE, Extra::kNone};
constexpr Family kThreadsMax = {
    "container_threads_max",
    "Maximum number of threads allowed inside the container, infinity if value is zero", v1::GAUGE,
    Extra::kNone};
constexpr Family kFsInodesFree = {"container_fs_inodes_free", "Number of available Inodes",
                                  v1::GAUGE, Extra::kDevice};
constexpr Family kFsInodesTotal = {"container_fs_inodes_total", "Number of Inodes", v1::GAUGE,
                                   Extra::kDevice};
constexpr Family kFsLimit = {
    "container_fs_limit_bytes",
    "Number of bytes that can be consumed by the container on this filesystem.", v1::GAUGE,
    Extra::kDevice};
constexpr Family kFsUsage = {
    "container_fs_usage_bytes",
    "Number of bytes that are consumed by the container on this filesystem.", v1::GAUGE,
    Extra::kDevice};
constexpr Family kFsReadsBytes = {"container_fs_reads_bytes_total",
                                  "Cumulative count of bytes read", v1::COUNTER, Extra::kDevice};
constexpr Family kFsReads = {"container_fs_reads_total", "Cumulative count of reads completed",
                             v1::COUNTER, Extra::kDevice};
constexpr Family kFsWritesBytes = {"container_fs_writes_bytes_total",
                                   "Cumulative count of bytes written", v1::COUNTER,
                                   Extra::kDevice};
constexpr Family kFsWrites = {"container_fs_writes_total", "Cumulative count of writes completed",
                              v1::COUNTER, Extra::kDevice};
constexpr Family kBlkioDeviceUsage = {"container_blkio_device_usage_total",
                                      "Blkio Device bytes usage", v1::COUNTER, Extra::kBlkio};

constexpr const Family* kFamilies[] = {
    &kCpuUsage,
    &kCpuUser,
    &kCpuSystem,
    &kCfsPeriods,
    &kCfsThrottledPeriods,
    &kCfsThrottledSeconds,
    &kSpecCpuPeriod,
    &kSpecCpuQuota,
    &kSpecCpuShares,
    &kMemoryUsage,
    &kMemoryWorkingSet,
    &kMemoryRss,
    &kMemoryCache,
    &kMemoryFailures,
    &kMemoryFailcnt,
    &kMemoryKernel,
    &kMemoryMappedFile,
    &kMemoryMaxUsage,
    &kMemorySwap,
    &kSpecMemoryLimit,
    &kSpecMemorySwapLimit,
    &kOomEvents,
    &kThreads,
    &kThreadsMax,
    &kProcesses,
    &kFileDescriptors,
    &kSockets,
    &kFsInodesFree,
    &kFsInodesTotal,
    &kFsLimit,
    &kFsUsage,
    &kFsReadsBytes,
    &kFsReads,
    &kFsWritesBytes,
    &kFsWrites,
    &kBlkioDeviceUsage,
    &kStartTime,
    &kLastSeen,
    &kRxBytes,
    &kRxPackets,
    &kRxDropped,
    &kRxErrors,
    &kTxBytes,
    &kTxPackets,
    &kTxDropped,
    &kTxErrors,
};

constexpr uint64_t kNanosPerSecond = 1000000000;

// Appends one sample of `family`; `extra` holds the values of its extra keys.
void Add(const Family& family, const MetricLabels& labels, std::vector<std::string> extra,
         uint64_t value, google::protobuf::RepeatedPtrField<v1::Metric>* out) {
  v1::Metric* metric = out->Add();
  metric->set_name(family.name);
  metric->set_metric_type(family.type);
  for (const std::string* v : {&labels.container, &labels.id, &labels.image, &labels.name,
                               &labels.namespace_name, &labels.pod}) {
    metric->add_label_values(*v);
  }
  for (std::string& v : extra) {
    metric->add_label_values(std::move(v));
  }
  metric->mutable_value()->set_value(value);
}

}  // namespace

std::vector<InterfaceCounters> ParseNetDev(absl::string_view text) {
  std::vector<InterfaceCounters> interfaces;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) {
      continue;
    }
    absl::string_view name = absl::StripAsciiWhitespace(line.substr(0, colon));
    if (name.empty() || name == "lo") {
      continue;
    }
    std::vector<absl::string_view> fields =
        absl::StrSplit(line.substr(colon + 1), ' ', absl::SkipEmpty());
    // Receive: bytes packets errs drop fifo frame compressed multicast;
    // transmit: bytes packets errs drop ...
    if (fields.size() < 12) {
      continue;
    }
    InterfaceCounters c;
    c.name = std::string(name);
    if (!absl::SimpleAtoi(fields[0], &c.rx_bytes) || !absl::SimpleAtoi(fields[1], &c.rx_packets) ||
        !absl::SimpleAtoi(fields[2], &c.rx_errors) || !absl::SimpleAtoi(fields[3], &c.rx_dropped) ||
        !absl::SimpleAtoi(fields[8], &c.tx_bytes) || !absl::SimpleAtoi(fields[9], &c.tx_packets) ||
        !absl::SimpleAtoi(fields[10], &c.tx_errors) ||
        !absl::SimpleAtoi(fields[11], &c.tx_dropped)) {
      continue;
    }
    interfaces.push_back(std::move(c));
  }
  return interfaces;
}

absl::StatusOr<std::vector<InterfaceCounters>> ReadNetDev(pid_t pid) {
  CRID_ASSIGN_OR_RETURN(std::string text, ReadFile(absl::StrCat("/proc/", pid, "/net/dev")));
  return ParseNetDev(text);
}

std::string MountSourceOf(absl::string_view mountinfo, unsigned major, unsigned minor) {
  const std::string dev = absl::StrCat(major, ":", minor);
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS"
    std::pair<absl::string_view, absl::string_view> halves = absl::StrSplit(line, " - ");
    std::vector<absl::string_view> left = absl::StrSplit(halves.first, ' ');
    std::vector<absl::string_view> right = absl::StrSplit(halves.second, ' ');
    if (left.size() >= 3 && right.size() >= 2 && left[2] == dev) {
      return std::string(right[1]);
    }
  }
  return "";
}

absl::StatusOr<FilesystemSample> ReadFilesystem(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return ErrnoError(errno, "stat ", path);
  }
  struct statvfs vfs;
  if (::statvfs(path.c_str(), &vfs) != 0) {
    return ErrnoError(errno, "statvfs ", path);
  }
  FilesystemSample fs;
  fs.limit_bytes = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  fs.inodes_total = vfs.f_files;
  fs.inodes_free = vfs.f_ffree;
  CRID_ASSIGN_OR_RETURN(std::string mountinfo, ReadFile("/proc/self/mountinfo"));
  fs.device = MountSourceOf(mountinfo, major(st.st_dev), minor(st.st_dev));
  return fs;
}

std::string BlockDeviceName(uint32_t major, uint32_t minor) {
  absl::StatusOr<std::string> uevent =
      ReadFile(absl::StrCat("/sys/dev/block/", major, ":", minor, "/uevent"));
  if (!uevent.ok()) {
    return "";
  }
  for (absl::string_view line : absl::StrSplit(*uevent, '\n')) {
    if (absl::ConsumePrefix(&line, "DEVNAME=")) {
      return absl::StrCat("/dev/", line);
    }
  }
  return "";
}

std::vector<v1::MetricDescriptor> MetricDescriptors() {
  std::vector<v1::MetricDescriptor> descriptors;
  descriptors.reserve(std::size(kFamilies));
  for (const Family* family : kFamilies) {
    v1::MetricDescriptor& d = descriptors.emplace_back();
    d.set_name(family->name);
    d.set_help(family->help);
    for (const char* key : kMetricLabelKeys) {
      d.add_label_keys(key);
    }
    switch (family->extra) {
      case Extra::kNone:
        break;
      case Extra::kInterface:
        d.add_label_keys("interface");
        break;
      case Extra::kFailure:
        d.add_label_keys("failure_type");
        d.add_label_keys("scope");
        break;
      case Extra::kDevice:
        d.add_label_keys("device");
        break;
      case Extra::kBlkio:
        for (const char* key : {"device", "major", "minor", "operation"}) {
          d.add_label_keys(key);
        }
        break;
    }
  }
  return descriptors;
}

void AppendMetrics(const MetricSample& sample, absl::Time now,
                   google::protobuf::RepeatedPtrField<v1::Metric>* out) {
  const MetricLabels& l = sample.labels;
  Add(kLastSeen, l, {}, static_cast<uint64_t>(absl::ToUnixSeconds(now)), out);
  if (sample.started != absl::InfinitePast()) {
    Add(kStartTime, l, {}, static_cast<uint64_t>(absl::ToUnixSeconds(sample.started)), out);
  }
  if (sample.cgroup.has_value()) {
    const CgroupStats& s = *sample.cgroup;
    Add(kCpuUsage, l, {}, s.cpu_usage_ns / kNanosPerSecond, out);
    Add(kMemoryUsage, l, {}, s.memory_usage_bytes, out);
    Add(kMemoryWorkingSet, l, {}, s.memory_working_set_bytes, out);
    Add(kMemoryRss, l, {}, s.memory_rss_bytes, out);
    Add(kMemoryCache, l, {}, s.memory_cache_bytes, out);
    Add(kMemoryFailures, l, {"pgfault", "container"}, s.memory_page_faults, out);
    Add(kMemoryFailures, l, {"pgmajfault", "container"}, s.memory_major_page_faults, out);
    // cAdvisor reports an unlimited cgroup as 0 too.
    Add(kSpecMemoryLimit, l, {}, s.memory_limit_bytes, out);
    Add(kOomEvents, l, {}, s.oom_kills, out);
    // pids.current counts tasks, that is threads.
    Add(kThreads, l, {}, s.pids_current, out);
    Add(kThreadsMax, l, {}, s.pids_max, out);  // 0: unlimited, as in cAdvisor
    Add(kCpuUser, l, {}, s.cpu_user_ns / kNanosPerSecond, out);
    Add(kCpuSystem, l, {}, s.cpu_system_ns / kNanosPerSecond, out);
    // cAdvisor has the CFS families only for a cgroup with a quota.
    if (s.cpu_quota_us != 0) {
      Add(kCfsPeriods, l, {}, s.cpu_cfs_periods, out);
      Add(kCfsThrottledPeriods, l, {}, s.cpu_cfs_throttled_periods, out);
      Add(kCfsThrottledSeconds, l, {}, s.cpu_cfs_throttled_ns / kNanosPerSecond, out);
      Add(kSpecCpuQuota, l, {}, s.cpu_quota_us, out);
    }
    Add(kSpecCpuPeriod, l, {}, s.cpu_period_us, out);
    Add(kSpecCpuShares, l, {}, s.cpu_shares, out);
    Add(kMemoryFailcnt, l, {}, s.memory_failcnt, out);
    Add(kMemoryKernel, l, {}, s.memory_kernel_bytes, out);
    Add(kMemoryMappedFile, l, {}, s.memory_mapped_file_bytes, out);
    Add(kMemoryMaxUsage, l, {}, s.memory_max_usage_bytes, out);
    Add(kMemorySwap, l, {}, s.memory_swap_bytes, out);
    Add(kSpecMemorySwapLimit, l, {}, s.memory_swap_limit_bytes, out);
    for (const CgroupStats::DeviceIo& io : s.io) {
      auto name = sample.block_devices.find({io.major, io.minor});
      std::string device = name == sample.block_devices.end() ? "" : name->second;
      Add(kFsReadsBytes, l, {device}, io.read_bytes, out);
      Add(kFsReads, l, {device}, io.reads, out);
      Add(kFsWritesBytes, l, {device}, io.write_bytes, out);
      Add(kFsWrites, l, {device}, io.writes, out);
      // cAdvisor's operations are the blkio file's; crid keeps Read and Write.
      std::string major = absl::StrCat(io.major);
      std::string minor = absl::StrCat(io.minor);
      Add(kBlkioDeviceUsage, l, {device, major, minor, "Read"}, io.read_bytes, out);
      Add(kBlkioDeviceUsage, l, {device, major, minor, "Write"}, io.write_bytes, out);
    }
  }
  if (sample.processes.has_value()) {
    Add(kProcesses, l, {}, sample.processes->processes, out);
    Add(kFileDescriptors, l, {}, sample.processes->file_descriptors, out);
    Add(kSockets, l, {}, sample.processes->sockets, out);
  }
  if (sample.filesystem.has_value()) {
    const FilesystemSample& fs = *sample.filesystem;
    Add(kFsInodesFree, l, {fs.device}, fs.inodes_free, out);
    Add(kFsInodesTotal, l, {fs.device}, fs.inodes_total, out);
    Add(kFsLimit, l, {fs.device}, fs.limit_bytes, out);
    Add(kFsUsage, l, {fs.device}, fs.usage_bytes, out);
  }
  for (const InterfaceCounters& c : sample.interfaces) {
    Add(kRxBytes, l, {c.name}, c.rx_bytes, out);
    Add(kRxPackets, l, {c.name}, c.rx_packets, out);
    Add(kRxDropped, l, {c.name}, c.rx_dropped, out);
    Add(kRxErrors, l, {c.name}, c.rx_errors, out);
    Add(kTxBytes, l, {c.name}, c.tx_bytes, out);
    Add(kTxPackets, l, {c.name}, c.tx_packets, out);
    Add(kTxDropped, l, {c.name}, c.tx_dropped, out);
    Add(kTxErrors, l, {c.name}, c.tx_errors, out);
  }
}

}  // namespace crid
