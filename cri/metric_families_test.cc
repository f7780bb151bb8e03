// The metric families: cAdvisor's names and types, label values lined up with
// their descriptor's keys, values taken from the samples, /proc/net/dev parsing.
#include "cri/metric_families.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::ElementsAre;
namespace v1 = ::runtime::v1;

std::map<std::string, v1::MetricDescriptor> DescriptorsByName() {
  std::map<std::string, v1::MetricDescriptor> by_name;
  for (const v1::MetricDescriptor& d : MetricDescriptors()) {
    EXPECT_TRUE(by_name.emplace(d.name(), d).second) << "duplicate " << d.name();
  }
  return by_name;
}

// The sample of `name` whose label `key` is `value` (or the first one when
// key is empty); nullptr when there is none.
const v1::Metric* Find(const google::protobuf::RepeatedPtrField<v1::Metric>& metrics,
                       const std::string& name, const std::string& key = "",
                       const std::string& value = "") {
  static const std::map<std::string, v1::MetricDescriptor> descriptors = DescriptorsByName();
  for (const v1::Metric& m : metrics) {
    if (m.name() != name) {
      continue;
    }
    if (key.empty()) {
      return &m;
    }
    const v1::MetricDescriptor& d = descriptors.at(name);
    for (int i = 0; i < d.label_keys_size() && i < m.label_values_size(); ++i) {
      if (d.label_keys(i) == key && m.label_values(i) == value) {
        return &m;
      }
    }
  }
  return nullptr;
}

MetricSample ContainerSample() {
  MetricSample s;
  s.labels = {"app", "c0ffee", "registry.example/app:1", "c0ffee", "prod", "web-0"};
  CgroupStats stats;
  stats.cpu_usage_ns = 3'700'000'000;  // 3.7 s
  stats.memory_usage_bytes = 50'000;
  stats.memory_working_set_bytes = 40'000;
  stats.memory_rss_bytes = 30'000;
  stats.memory_cache_bytes = 20'000;
  stats.memory_page_faults = 77;
  stats.memory_major_page_faults = 3;
  stats.memory_limit_bytes = 1 << 20;
  stats.oom_kills = 2;
  stats.pids_current = 5;
  stats.pids_max = 1024;
  stats.cpu_user_ns = 2'900'000'000;
  stats.cpu_system_ns = 800'000'000;
  stats.cpu_cfs_periods = 40;
  stats.cpu_cfs_throttled_periods = 7;
  stats.cpu_cfs_throttled_ns = 4'200'000'000;
  stats.cpu_period_us = 100000;
  stats.cpu_quota_us = 20000;
  stats.cpu_shares = 1024;
  stats.memory_failcnt = 6;
  stats.memory_kernel_bytes = 700;
  stats.memory_mapped_file_bytes = 800;
  stats.memory_max_usage_bytes = 90'000;
  stats.memory_swap_bytes = 4096;
  stats.memory_swap_limit_bytes = 2 << 20;
  CgroupStats::DeviceIo io;
  io.major = 8;
  io.minor = 16;
  io.read_bytes = 4096;
  io.write_bytes = 12288;
  io.reads = 1;
  io.writes = 3;
  stats.io = {io};
  s.cgroup = stats;
  s.block_devices[{8, 16}] = "/dev/sdb";
  s.processes = CgroupProcessStats{2, 9, 3};
  FilesystemSample fs;
  fs.device = "/dev/vda1";
  fs.limit_bytes = 10'000'000'000;
  fs.usage_bytes = 123'456;
  fs.inodes_total = 600'000;
  fs.inodes_free = 500'000;
  s.filesystem = fs;
  s.started = absl::FromUnixSeconds(1'699'999'000);
  return s;
}

TEST(MetricDescriptors, CadvisorNamesAndLabelKeys) {
  std::map<std::string, v1::MetricDescriptor> d = DescriptorsByName();
  for (const char* name :
       {"container_cpu_usage_seconds_total", "container_memory_usage_bytes",
        "container_memory_working_set_bytes", "container_memory_rss", "container_memory_cache",
        "container_memory_failures_total", "container_spec_memory_limit_bytes",
        "container_oom_events_total", "container_threads", "container_start_time_seconds",
        "container_last_seen", "container_network_receive_bytes_total",
        "container_network_transmit_errors_total"}) {
    ASSERT_EQ(d.count(name), 1u) << name;
    EXPECT_FALSE(d.at(name).help().empty()) << name;
  }
  EXPECT_THAT(d.at("container_memory_rss").label_keys(),
              ElementsAre("container", "id", "image", "name", "namespace", "pod"));
  EXPECT_THAT(d.at("container_network_receive_bytes_total").label_keys(),
              ElementsAre("container", "id", "image", "name", "namespace", "pod", "interface"));
  EXPECT_THAT(
      d.at("container_memory_failures_total").label_keys(),
      ElementsAre("container", "id", "image", "name", "namespace", "pod", "failure_type", "scope"));
  EXPECT_THAT(d.at("container_fs_usage_bytes").label_keys(),
              ElementsAre("container", "id", "image", "name", "namespace", "pod", "device"));
  EXPECT_THAT(d.at("container_blkio_device_usage_total").label_keys(),
              ElementsAre("container", "id", "image", "name", "namespace", "pod", "device", "major",
                          "minor", "operation"));
}

// Every family critest v1.37 expects of a runtime (pkg/validate/pod.go), but
// those it lists as not yet implemented anywhere.
TEST(MetricDescriptors, EveryFamilyCritestExpects) {
  std::map<std::string, v1::MetricDescriptor> d = DescriptorsByName();
  for (const char* name : {
           "container_blkio_device_usage_total",
           "container_cpu_cfs_periods_total",
           "container_cpu_cfs_throttled_periods_total",
           "container_cpu_cfs_throttled_seconds_total",
           "container_cpu_system_seconds_total",
           "container_cpu_usage_seconds_total",
           "container_cpu_user_seconds_total",
           "container_file_descriptors",
           "container_fs_inodes_free",
           "container_fs_inodes_total",
           "container_fs_limit_bytes",
           "container_fs_reads_bytes_total",
           "container_fs_reads_total",
           "container_fs_usage_bytes",
           "container_fs_writes_bytes_total",
           "container_fs_writes_total",
           "container_last_seen",
           "container_memory_cache",
           "container_memory_failcnt",
           "container_memory_failures_total",
           "container_memory_kernel_usage",
           "container_memory_mapped_file",
           "container_memory_max_usage_bytes",
           "container_memory_rss",
           "container_memory_swap",
           "container_memory_usage_bytes",
           "container_memory_working_set_bytes",
           "container_network_receive_bytes_total",
           "container_network_receive_errors_total",
           "container_network_receive_packets_dropped_total",
           "container_network_receive_packets_total",
           "container_network_transmit_bytes_total",
           "container_network_transmit_errors_total",
           "container_network_transmit_packets_dropped_total",
           "container_network_transmit_packets_total",
           "container_oom_events_total",
           "container_processes",
           "container_sockets",
           "container_spec_cpu_period",
           "container_spec_cpu_shares",
           "container_spec_memory_limit_bytes",
           "container_spec_memory_swap_limit_bytes",
           "container_start_time_seconds",
           "container_threads",
           "container_threads_max",
       }) {
    ASSERT_EQ(d.count(name), 1u) << name;
    EXPECT_FALSE(d.at(name).help().empty()) << name;
    EXPECT_FALSE(d.at(name).label_keys().empty()) << name;
  }
}

TEST(AppendMetrics, ContainerValuesTypesAndLabels) {
  google::protobuf::RepeatedPtrField<v1::Metric> out;
  const absl::Time now = absl::FromUnixSeconds(1'700'000'005);
  AppendMetrics(ContainerSample(), now, &out);
  std::map<std::string, v1::MetricDescriptor> d = DescriptorsByName();
  for (const v1::Metric& m : out) {
    ASSERT_EQ(d.count(m.name()), 1u) << "undescribed " << m.name();
    EXPECT_EQ(m.label_values_size(), d.at(m.name()).label_keys_size()) << m.name();
    EXPECT_THAT(std::vector<std::string>(m.label_values().begin(), m.label_values().begin() + 6),
                ElementsAre("app", "c0ffee", "registry.example/app:1", "c0ffee", "prod", "web-0"));
    EXPECT_EQ(m.timestamp(), 0) << m.name() << ": gathered live, not cached";
  }
  auto value = [&](const std::string& name) {
    const v1::Metric* m = Find(out, name);
    EXPECT_NE(m, nullptr) << name;
    return m == nullptr ? ~uint64_t{0} : m->value().value();
  };
  auto type = [&](const std::string& name) {
    const v1::Metric* m = Find(out, name);
    return m == nullptr ? v1::MetricType(-1) : m->metric_type();
  };
  EXPECT_EQ(value("container_cpu_usage_seconds_total"), 3u) << "whole seconds";
  EXPECT_EQ(type("container_cpu_usage_seconds_total"), v1::COUNTER);
  EXPECT_EQ(value("container_memory_usage_bytes"), 50'000u);
  EXPECT_EQ(value("container_memory_working_set_bytes"), 40'000u);
  EXPECT_EQ(type("container_memory_working_set_bytes"), v1::GAUGE);
  EXPECT_EQ(value("container_memory_rss"), 30'000u);
  EXPECT_EQ(value("container_memory_cache"), 20'000u);
  EXPECT_EQ(value("container_spec_memory_limit_bytes"), 1u << 20);
  EXPECT_EQ(value("container_oom_events_total"), 2u);
  EXPECT_EQ(type("container_oom_events_total"), v1::COUNTER);
  EXPECT_EQ(value("container_threads"), 5u);
  EXPECT_EQ(value("container_start_time_seconds"), 1'699'999'000u);
  EXPECT_EQ(value("container_last_seen"), 1'700'000'005u);
  EXPECT_EQ(type("container_last_seen"), v1::GAUGE);
  const v1::Metric* major =
      Find(out, "container_memory_failures_total", "failure_type", "pgmajfault");
  ASSERT_NE(major, nullptr);
  EXPECT_EQ(major->value().value(), 3u);
  EXPECT_EQ(major->metric_type(), v1::COUNTER);
  EXPECT_EQ(major->label_values(7), "container");
  const v1::Metric* minor = Find(out, "container_memory_failures_total", "failure_type", "pgfault");
  ASSERT_NE(minor, nullptr);
  EXPECT_EQ(minor->value().value(), 77u);
  EXPECT_EQ(Find(out, "container_network_receive_bytes_total"), nullptr)
      << "a container without interfaces has no network samples";

  EXPECT_EQ(value("container_cpu_user_seconds_total"), 2u);
  EXPECT_EQ(type("container_cpu_user_seconds_total"), v1::COUNTER);
  EXPECT_EQ(value("container_cpu_system_seconds_total"), 0u) << "0.8 s in whole seconds";
  EXPECT_EQ(value("container_cpu_cfs_periods_total"), 40u);
  EXPECT_EQ(value("container_cpu_cfs_throttled_periods_total"), 7u);
  EXPECT_EQ(value("container_cpu_cfs_throttled_seconds_total"), 4u);
  EXPECT_EQ(type("container_cpu_cfs_throttled_seconds_total"), v1::COUNTER);
  EXPECT_EQ(value("container_spec_cpu_period"), 100000u);
  EXPECT_EQ(value("container_spec_cpu_quota"), 20000u);
  EXPECT_EQ(value("container_spec_cpu_shares"), 1024u);
  EXPECT_EQ(type("container_spec_cpu_shares"), v1::GAUGE);
  EXPECT_EQ(value("container_memory_failcnt"), 6u);
  EXPECT_EQ(type("container_memory_failcnt"), v1::COUNTER);
  EXPECT_EQ(value("container_memory_kernel_usage"), 700u);
  EXPECT_EQ(value("container_memory_mapped_file"), 800u);
  EXPECT_EQ(value("container_memory_max_usage_bytes"), 90'000u);
  EXPECT_EQ(value("container_memory_swap"), 4096u);
  EXPECT_EQ(value("container_spec_memory_swap_limit_bytes"), 2u << 20);
  EXPECT_EQ(value("container_threads_max"), 1024u);
  EXPECT_EQ(value("container_processes"), 2u);
  EXPECT_EQ(value("container_file_descriptors"), 9u);
  EXPECT_EQ(value("container_sockets"), 3u);
  EXPECT_EQ(type("container_sockets"), v1::GAUGE);
  for (const auto& [name, v] :
       std::map<std::string, uint64_t>{{"container_fs_inodes_free", 500'000},
                                       {"container_fs_inodes_total", 600'000},
                                       {"container_fs_limit_bytes", 10'000'000'000},
                                       {"container_fs_usage_bytes", 123'456}}) {
    const v1::Metric* m = Find(out, name, "device", "/dev/vda1");
    ASSERT_NE(m, nullptr) << name;
    EXPECT_EQ(m->value().value(), v) << name;
    EXPECT_EQ(m->metric_type(), v1::GAUGE) << name;
  }
  for (const auto& [name, v] :
       std::map<std::string, uint64_t>{{"container_fs_reads_bytes_total", 4096},
                                       {"container_fs_reads_total", 1},
                                       {"container_fs_writes_bytes_total", 12288},
                                       {"container_fs_writes_total", 3}}) {
    const v1::Metric* m = Find(out, name, "device", "/dev/sdb");
    ASSERT_NE(m, nullptr) << name;
    EXPECT_EQ(m->value().value(), v) << name;
    EXPECT_EQ(m->metric_type(), v1::COUNTER) << name;
  }
  const v1::Metric* written = Find(out, "container_blkio_device_usage_total", "operation", "Write");
  ASSERT_NE(written, nullptr);
  EXPECT_EQ(written->value().value(), 12288u);
  EXPECT_THAT(
      std::vector<std::string>(written->label_values().begin() + 6, written->label_values().end()),
      ElementsAre("/dev/sdb", "8", "16", "Write"));
}

TEST(AppendMetrics, CfsFamiliesOnlyWithAQuota) {
  MetricSample s = ContainerSample();
  s.cgroup->cpu_quota_us = 0;
  google::protobuf::RepeatedPtrField<v1::Metric> out;
  AppendMetrics(s, absl::FromUnixSeconds(1'700'000'005), &out);
  EXPECT_EQ(Find(out, "container_cpu_cfs_periods_total"), nullptr);
  EXPECT_EQ(Find(out, "container_cpu_cfs_throttled_seconds_total"), nullptr);
  EXPECT_EQ(Find(out, "container_spec_cpu_quota"), nullptr);
  EXPECT_NE(Find(out, "container_spec_cpu_period"), nullptr) << "cAdvisor always has the period";
}

TEST(MountSourceOf, TheMountOfTheDevice) {
  const char* mountinfo =
      "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
      "28 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
      "40 28 254:1 /var/lib/x /mnt/x rw master:3 - ext4 /dev/vda1 rw\n"
      "41 28 8:16 / /data rw - xfs /dev/sdb rw\n";
  EXPECT_EQ(MountSourceOf(mountinfo, 254, 1), "/dev/vda1");
  EXPECT_EQ(MountSourceOf(mountinfo, 8, 16), "/dev/sdb");
  EXPECT_EQ(MountSourceOf(mountinfo, 9, 9), "");
}

TEST(ReadFilesystem, SizeAndInodesOfThisFilesystem) {
  auto fs = ReadFilesystem("/");
  ASSERT_TRUE(fs.ok()) << fs.status();
  EXPECT_GT(fs->limit_bytes, 0u);
  EXPECT_FALSE(fs->device.empty());
}

TEST(AppendMetrics, WithoutCgroupOnlyWhatIsKnown) {
  MetricSample s = ContainerSample();
  s.cgroup.reset();
  s.processes.reset();
  s.filesystem.reset();
  s.started = absl::InfinitePast();
  google::protobuf::RepeatedPtrField<v1::Metric> out;
  AppendMetrics(s, absl::FromUnixSeconds(1'700'000'005), &out);
  ASSERT_EQ(out.size(), 1);
  EXPECT_EQ(out[0].name(), "container_last_seen");
}

TEST(AppendMetrics, PodNetworkPerInterface) {
  MetricSample pod;
  pod.labels.id = "pod123";
  pod.labels.namespace_name = "prod";
  pod.labels.pod = "web-0";
  InterfaceCounters eth0;
  eth0.name = "eth0";
  eth0.rx_bytes = 1000;
  eth0.rx_packets = 10;
  eth0.rx_dropped = 1;
  eth0.rx_errors = 2;
  eth0.tx_bytes = 2000;
  eth0.tx_packets = 20;
  eth0.tx_dropped = 3;
  eth0.tx_errors = 4;
  InterfaceCounters net1 = eth0;
  net1.name = "net1";
  net1.rx_bytes = 5;
  pod.interfaces = {eth0, net1};
  google::protobuf::RepeatedPtrField<v1::Metric> out;
  AppendMetrics(pod, absl::FromUnixSeconds(1'700'000'005), &out);
  const std::map<std::string, uint64_t> expected = {
      {"container_network_receive_bytes_total", 1000},
      {"container_network_receive_packets_total", 10},
      {"container_network_receive_packets_dropped_total", 1},
      {"container_network_receive_errors_total", 2},
      {"container_network_transmit_bytes_total", 2000},
      {"container_network_transmit_packets_total", 20},
      {"container_network_transmit_packets_dropped_total", 3},
      {"container_network_transmit_errors_total", 4}};
  for (const auto& [name, v] : expected) {
    const v1::Metric* m = Find(out, name, "interface", "eth0");
    ASSERT_NE(m, nullptr) << name;
    EXPECT_EQ(m->value().value(), v) << name;
    EXPECT_EQ(m->metric_type(), v1::COUNTER) << name;
    EXPECT_THAT(m->label_values(), ElementsAre("", "pod123", "", "", "prod", "web-0", "eth0"));
  }
  const v1::Metric* other = Find(out, "container_network_receive_bytes_total", "interface", "net1");
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->value().value(), 5u);
}

TEST(ParseNetDev, AllCountersOfEveryInterfaceButLo) {
  const char* text =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
      "drop fifo colls carrier compressed\n"
      "    lo:     100       1    0    0    0     0          0         0      100       1    0 "
      "   0    0     0       0          0\n"
      "  eth0: 1500 12 1 2 0 0 0 0 2500 22 3 4 0 0 0 0\n"
      "  bad: 1 2 3\n";
  std::vector<InterfaceCounters> interfaces = ParseNetDev(text);
  ASSERT_EQ(interfaces.size(), 1u);
  const InterfaceCounters& c = interfaces[0];
  EXPECT_EQ(c.name, "eth0");
  EXPECT_EQ(c.rx_bytes, 1500u);
  EXPECT_EQ(c.rx_packets, 12u);
  EXPECT_EQ(c.rx_errors, 1u);
  EXPECT_EQ(c.rx_dropped, 2u);
  EXPECT_EQ(c.tx_bytes, 2500u);
  EXPECT_EQ(c.tx_packets, 22u);
  EXPECT_EQ(c.tx_errors, 3u);
  EXPECT_EQ(c.tx_dropped, 4u);
}

}  // namespace
}  // namespace crid
