// Limits written into fixture cgroup trees (v1 hierarchies and a v2 tree in a
// temp dir, the kernel's files created empty), and runc's unit conversions.
#include "cgroups/resources.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "cgroups/manager.h"
#include "cgroups/tree.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

void Touch(const std::string& path, const std::string& text = "") { std::ofstream(path) << text; }

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text)) : "<" + path + " missing>";
}

TEST(Conversions, SharesToWeightAsRunc) {
  EXPECT_EQ(CpuSharesToWeight(0), 0u);
  EXPECT_EQ(CpuSharesToWeight(2), 1u);
  EXPECT_EQ(CpuSharesToWeight(1024), 39u);  // kubelet's one CPU
  EXPECT_EQ(CpuSharesToWeight(262144), 10000u);
  EXPECT_EQ(CpuSharesToWeight(1), 1u);  // clamped like the kernel
  EXPECT_EQ(CpuSharesToWeight(1 << 30), 10000u);
}

TEST(Conversions, CpuMax) {
  EXPECT_EQ(CpuMaxValue(0, 0), "");
  EXPECT_EQ(CpuMaxValue(50000, 100000), "50000 100000");
  EXPECT_EQ(CpuMaxValue(20000, 0), "20000 100000");
  EXPECT_EQ(CpuMaxValue(-1, 0), "max 100000");
  EXPECT_EQ(CpuMaxValue(0, 50000), "max 50000");
}

TEST(Conversions, SwapIsTotalMinusMemory) {
  EXPECT_EQ(*SwapMaxV2(0, 100), "");
  EXPECT_EQ(*SwapMaxV2(-1, 100), "max");
  EXPECT_EQ(*SwapMaxV2(300, 100), "200");
  EXPECT_EQ(*SwapMaxV2(100, 100), "0");
  EXPECT_EQ(SwapMaxV2(50, 100).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SwapMaxV2(50, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Conversions, QuotaPerSecondRoundsUpTo10ms) {
  EXPECT_EQ(CpuQuotaPerSecUsec(0, 0), 0u);
  EXPECT_EQ(CpuQuotaPerSecUsec(50000, 100000), 500000u);
  EXPECT_EQ(CpuQuotaPerSecUsec(1234, 100000), 20000u);
  EXPECT_EQ(CpuQuotaPerSecUsec(-1, 100000), UINT64_MAX);
}

TEST(WithPodOverhead, AddsTheOverheadOnlyToWhatIsLimited) {
  CgroupResources pod;
  pod.cpu_shares = 1536;
  pod.cpu_quota_us = 150000;
  pod.cpu_period_us = 100000;
  pod.memory_limit_bytes = 805306368;
  pod.cpuset_cpus = "2-5";
  CgroupResources overhead;
  overhead.cpu_shares = 25;
  overhead.cpu_quota_us = 5000;
  overhead.cpu_period_us = 50000;  // 10% of a CPU: 10000 of the pod's 100000 us
  overhead.memory_limit_bytes = 52428800;
  CgroupResources total = WithPodOverhead(pod, overhead);
  EXPECT_EQ(total.cpu_shares, 1561);
  EXPECT_EQ(total.cpu_quota_us, 160000);
  EXPECT_EQ(total.cpu_period_us, 100000);
  EXPECT_EQ(total.memory_limit_bytes, 857735168);
  EXPECT_EQ(total.cpuset_cpus, "2-5");

  // A pod without limits keeps none: the overhead cannot make it limited.
  CgroupResources unlimited;
  unlimited.cpu_shares = 2;
  unlimited.cpu_quota_us = -1;
  total = WithPodOverhead(unlimited, overhead);
  EXPECT_EQ(total.cpu_shares, 27);
  EXPECT_EQ(total.cpu_quota_us, -1);
  EXPECT_EQ(total.memory_limit_bytes, 0);
}

TEST(FromCriResources, CopiesEveryField) {
  runtime::v1::LinuxContainerResources cri;
  cri.set_cpu_shares(512);
  cri.set_cpu_quota(20000);
  cri.set_cpu_period(100000);
  cri.set_memory_limit_in_bytes(1 << 20);
  cri.set_memory_swap_limit_in_bytes(2 << 20);
  cri.set_cpuset_cpus("0");
  cri.set_cpuset_mems("0");
  auto* h = cri.add_hugepage_limits();
  h->set_page_size("2MB");
  h->set_limit(4 << 20);
  (*cri.mutable_unified())["memory.high"] = "1000000";
  CgroupResources r = FromCriResources(cri);
  EXPECT_EQ(r.cpu_shares, 512);
  EXPECT_EQ(r.cpu_quota_us, 20000);
  EXPECT_EQ(r.cpu_period_us, 100000);
  EXPECT_EQ(r.memory_limit_bytes, 1 << 20);
  EXPECT_EQ(r.memory_swap_limit_bytes, 2 << 20);
  EXPECT_EQ(r.cpuset_cpus, "0");
  EXPECT_EQ(r.hugepage_limits.at("2MB"), 4u << 20);
  EXPECT_EQ(r.unified.at("memory.high"), "1000000");
  EXPECT_FALSE(r.empty());
  EXPECT_TRUE(CgroupResources().empty());
}

class V1Tree : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* c : {"cpu", "cpuacct", "memory", "pids", "cpuset", "hugetlb"}) {
      layout_.controllers[c] = tmp_.Sub(c);
      ASSERT_TRUE(MakeDirs(tmp_.Sub(c) + kPath, 0755).ok());
    }
    std::string d = tmp_.Sub("cpu") + kPath;
    for (const char* f : {"cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"}) {
      Touch(d + "/" + f);
    }
    d = tmp_.Sub("memory") + kPath;
    Touch(d + "/memory.limit_in_bytes", "9223372036854771712\n");
    Touch(d + "/memory.memsw.limit_in_bytes");
    Touch(tmp_.Sub("pids") + kPath + "/pids.max");
    Touch(tmp_.Sub("cpuset") + kPath + "/cpuset.cpus");
    Touch(tmp_.Sub("cpuset") + kPath + "/cpuset.mems");
    Touch(tmp_.Sub("hugetlb") + kPath + "/hugetlb.2MB.limit_in_bytes");
  }
  static constexpr const char* kPath = "/kubepods/pod1/crid-c1";
  TempDir tmp_;
  CgroupLayout layout_;
};

TEST_F(V1Tree, LimitsLandInTheirFiles) {
  CgroupResources r;
  r.cpu_shares = 512;
  r.cpu_quota_us = 25000;
  r.cpu_period_us = 50000;
  r.memory_limit_bytes = 64 << 20;
  r.memory_swap_limit_bytes = 128 << 20;
  r.pids_limit = 42;
  r.cpuset_cpus = "0-1";
  r.cpuset_mems = "0";
  r.hugepage_limits["2MB"] = 0;
  ASSERT_TRUE(ApplyCgroupResources(layout_, kPath, r).ok());
  EXPECT_EQ(Read(tmp_.Sub("cpu") + kPath + "/cpu.shares"), "512");
  EXPECT_EQ(Read(tmp_.Sub("cpu") + kPath + "/cpu.cfs_quota_us"), "25000");
  EXPECT_EQ(Read(tmp_.Sub("cpu") + kPath + "/cpu.cfs_period_us"), "50000");
  EXPECT_EQ(Read(tmp_.Sub("memory") + kPath + "/memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(Read(tmp_.Sub("memory") + kPath + "/memory.memsw.limit_in_bytes"), "134217728");
  EXPECT_EQ(Read(tmp_.Sub("pids") + kPath + "/pids.max"), "42");
  EXPECT_EQ(Read(tmp_.Sub("cpuset") + kPath + "/cpuset.cpus"), "0-1");
  EXPECT_EQ(Read(tmp_.Sub("cpuset") + kPath + "/cpuset.mems"), "0");
  EXPECT_EQ(Read(tmp_.Sub("hugetlb") + kPath + "/hugetlb.2MB.limit_in_bytes"), "0");

  r = CgroupResources();
  r.pids_limit = -1;
  r.cpu_quota_us = -1;
  ASSERT_TRUE(ApplyCgroupResources(layout_, kPath, r).ok());
  EXPECT_EQ(Read(tmp_.Sub("pids") + kPath + "/pids.max"), "max");
  EXPECT_EQ(Read(tmp_.Sub("cpu") + kPath + "/cpu.cfs_quota_us"), "-1");
  // Untouched fields stay.
  EXPECT_EQ(Read(tmp_.Sub("cpu") + kPath + "/cpu.shares"), "512");
}

TEST_F(V1Tree, UnifiedMapIsRefusedOnV1) {
  CgroupResources r;
  r.unified["memory.high"] = "100000";
  absl::Status st = ApplyCgroupResources(layout_, kPath, r);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("linux.resources.unified"), absl::string_view::npos) << st;
}

TEST_F(V1Tree, SwapBelowMemoryIsRefused) {
  CgroupResources r;
  r.memory_limit_bytes = 64 << 20;
  r.memory_swap_limit_bytes = 32 << 20;
  EXPECT_EQ(ApplyCgroupResources(layout_, kPath, r).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(V1Tree, MissingCgroupAndBadPathsAreErrors) {
  CgroupResources r;
  r.cpu_shares = 100;
  EXPECT_EQ(ApplyCgroupResources(layout_, "/kubepods/nope", r).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ApplyCgroupResources(layout_, "/kubepods/../../etc", r).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyCgroupResources(layout_, "relative", r).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(V1Tree, HugepagesWithoutTheControllerOnlyFailForRealLimits) {
  layout_.controllers.erase("hugetlb");
  CgroupResources r;
  r.hugepage_limits["1GB"] = 0;
  EXPECT_TRUE(ApplyCgroupResources(layout_, kPath, r).ok());
  r.hugepage_limits["2MB"] = 2 << 20;
  EXPECT_EQ(ApplyCgroupResources(layout_, kPath, r).code(), absl::StatusCode::kFailedPrecondition);
}

class V2Tree : public ::testing::Test {
 protected:
  void SetUp() override {
    layout_.unified = true;
    layout_.unified_mount = tmp_.path();
    dir_ = tmp_.path() + kPath;
    ASSERT_TRUE(MakeDirs(dir_, 0755).ok());
    for (const char* f : {"cpu.weight", "cpu.max", "memory.max", "memory.swap.max", "pids.max",
                          "cpuset.cpus", "cpuset.mems", "hugetlb.2MB.max", "memory.high"}) {
      Touch(dir_ + "/" + f);
    }
  }
  static constexpr const char* kPath = "/kubepods/pod1/crid-c1";
  TempDir tmp_;
  CgroupLayout layout_;
  std::string dir_;
};

TEST_F(V2Tree, LimitsAreConvertedLikeRunc) {
  CgroupResources r;
  r.cpu_shares = 1024;
  r.cpu_quota_us = 50000;
  r.cpu_period_us = 100000;
  r.memory_limit_bytes = 64 << 20;
  r.memory_swap_limit_bytes = 96 << 20;
  r.pids_limit = 100;
  r.cpuset_cpus = "1";
  r.hugepage_limits["2MB"] = 4 << 20;
  r.unified["memory.high"] = "50000000";
  ASSERT_TRUE(ApplyCgroupResources(layout_, kPath, r).ok());
  EXPECT_EQ(Read(dir_ + "/cpu.weight"), "39");
  EXPECT_EQ(Read(dir_ + "/cpu.max"), "50000 100000");
  EXPECT_EQ(Read(dir_ + "/memory.max"), "67108864");
  EXPECT_EQ(Read(dir_ + "/memory.swap.max"), "33554432");
  EXPECT_EQ(Read(dir_ + "/pids.max"), "100");
  EXPECT_EQ(Read(dir_ + "/cpuset.cpus"), "1");
  EXPECT_EQ(Read(dir_ + "/hugetlb.2MB.max"), "4194304");
  EXPECT_EQ(Read(dir_ + "/memory.high"), "50000000");

  r = CgroupResources();
  r.memory_limit_bytes = -1;
  r.memory_swap_limit_bytes = -1;
  ASSERT_TRUE(ApplyCgroupResources(layout_, kPath, r).ok());
  EXPECT_EQ(Read(dir_ + "/memory.max"), "max");
  EXPECT_EQ(Read(dir_ + "/memory.swap.max"), "max");
}

TEST_F(V2Tree, UnifiedKeysAreChecked) {
  CgroupResources r;
  r.unified["../../escape"] = "1";
  EXPECT_EQ(ApplyCgroupResources(layout_, kPath, r).code(), absl::StatusCode::kInvalidArgument);
  r.unified.clear();
  r.unified["cgroup.subtree_control"] = "+cpu";
  EXPECT_EQ(ApplyCgroupResources(layout_, kPath, r).code(), absl::StatusCode::kInvalidArgument);
  r.unified.clear();
  r.unified["io.max"] = "8:0 rbps=1";  // the io controller is not enabled in this tree
  absl::Status st = ApplyCgroupResources(layout_, kPath, r);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("io.max"), absl::string_view::npos) << st;
}

TEST_F(V2Tree, EnableControllersInEveryAncestor) {
  Touch(tmp_.path() + "/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
  Touch(tmp_.path() + "/cgroup.subtree_control");
  Touch(tmp_.path() + "/kubepods/cgroup.controllers", "cpu memory pids\n");
  Touch(tmp_.path() + "/kubepods/cgroup.subtree_control");
  Touch(tmp_.path() + "/kubepods/pod1/cgroup.controllers", "memory\n");
  Touch(tmp_.path() + "/kubepods/pod1/cgroup.subtree_control");
  ASSERT_TRUE(EnableV2Controllers(tmp_.path(), kPath).ok());
  EXPECT_EQ(Read(tmp_.path() + "/cgroup.subtree_control"),
            "+cpuset +cpu +io +memory +hugetlb +pids");
  EXPECT_EQ(Read(tmp_.path() + "/kubepods/cgroup.subtree_control"), "+cpu +memory +pids");
  EXPECT_EQ(Read(tmp_.path() + "/kubepods/pod1/cgroup.subtree_control"), "+memory");
}

TEST(CgroupfsManager, PathsUnderTheParent) {
  CgroupManagerOptions options;
  options.driver = CgroupDriver::kCgroupfs;
  auto m = NewCgroupManager(options);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*(*m)->ContainerCgroupsPath("/kubepods/burstable/pod1", "abc"),
            "/kubepods/burstable/pod1/crid-abc");
  EXPECT_EQ(*(*m)->ContainerCgroupDir("/kubepods/burstable/pod1/", "abc"),
            "/kubepods/burstable/pod1/crid-abc");
  EXPECT_EQ(*(*m)->ContainerCgroupDir("", "abc"), "/crid/crid-abc");
  EXPECT_EQ(*(*m)->ContainerCgroupDir("/", "abc"), "/crid-abc");
  EXPECT_EQ(*(*m)->PodCgroupDir("/kubepods/burstable/pod1/"), "/kubepods/burstable/pod1");
  EXPECT_EQ((*m)->PodCgroupDir("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*m)->PodCgroupDir("/a/../b").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*m)->ContainerCgroupDir("kubepods", "abc").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*m)->ContainerCgroupDir("/a/../b", "abc").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*m)->ContainerCgroupDir("/a", "x/y").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace crid
