// cAdvisor's metric families built from crid's samples. Values are uint64 as
// CRI carries them; kubelet converts them to float as they are, so the
// *_seconds families are whole seconds (as containerd and CRI-O send them).
#include "cri/metric_families.h"

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
enum class Extra { kNone, kInterface, kFailure };

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

constexpr const Family* kFamilies[] = {
    &kCpuUsage,       &kMemoryUsage,     &kMemoryWorkingSet, &kMemoryRss, &kMemoryCache,
    &kMemoryFailures, &kSpecMemoryLimit, &kOomEvents,        &kThreads,   &kStartTime,
    &kLastSeen,       &kRxBytes,         &kRxPackets,        &kRxDropped, &kRxErrors,
    &kTxBytes,        &kTxPackets,       &kTxDropped,        &kTxErrors,
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
