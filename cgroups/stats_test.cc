// Cgroup stats: layouts parsed from mountinfo; v1 and v2 files read into the
// same numbers (fixture trees), and real usage seen in a real cgroup here.
#include "cgroups/stats.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

constexpr char kHybridMountinfo[] =
    "35 26 0:30 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "36 35 0:31 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "37 35 0:32 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "38 35 0:33 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n"
    "39 35 0:34 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "41 35 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "40 35 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

constexpr char kUnifiedMountinfo[] =
    "30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(CgroupLayout, Hybrid) {
  CgroupLayout l = CgroupLayout::FromMountinfo(kHybridMountinfo);
  EXPECT_FALSE(l.unified);
  EXPECT_EQ(l.controllers.at("memory"), "/sys/fs/cgroup/memory");
  EXPECT_EQ(l.controllers.at("cpuacct"), "/sys/fs/cgroup/cpuacct");
  EXPECT_EQ(l.named.at("name=systemd"), "/sys/fs/cgroup/systemd");
  EXPECT_EQ(l.controllers.count("name=systemd"), 0u);
  EXPECT_EQ(l.unified_mount, "/sys/fs/cgroup/unified");
}

TEST(CgroupLayout, Unified) {
  CgroupLayout l = CgroupLayout::FromMountinfo(kUnifiedMountinfo);
  EXPECT_TRUE(l.unified);
  EXPECT_EQ(l.unified_mount, "/sys/fs/cgroup");
}

TEST(ReadCgroupStats, V2Files) {
  TempDir tmp;
  std::string dir = tmp.Sub("kubepods/pod1/crid-c1");
  ASSERT_TRUE(MakeDirs(dir, 0755).ok());
  Write(dir + "/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n");
  Write(dir + "/memory.current", "10485760\n");
  Write(dir + "/memory.max", "max\n");
  Write(dir + "/memory.stat",
        "anon 4096000\nfile 6000000\ninactive_file 2485760\n"
        "pgfault 77\npgmajfault 3\n");
  Write(dir + "/memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n");
  Write(dir + "/pids.current", "4\n");
  Write(dir + "/pids.max", "max\n");
  CgroupLayout layout;
  layout.unified = true;
  layout.unified_mount = tmp.path();
  auto s = ReadCgroupStats(layout, "/kubepods/pod1/crid-c1");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cpu_usage_ns, 1500000u);
  EXPECT_EQ(s->memory_usage_bytes, 10485760u);
  EXPECT_EQ(s->memory_working_set_bytes, 8000000u);
  EXPECT_EQ(s->memory_rss_bytes, 4096000u);
  EXPECT_EQ(s->memory_cache_bytes, 6000000u);
  EXPECT_EQ(s->memory_page_faults, 77u);
  EXPECT_EQ(s->memory_major_page_faults, 3u);
  EXPECT_EQ(s->memory_limit_bytes, 0u);
  EXPECT_EQ(s->memory_available_bytes, 0u);
  EXPECT_EQ(s->oom_kills, 1u);
  EXPECT_EQ(s->pids_current, 4u);

  EXPECT_EQ(s->pids_max, 0u) << "max is unlimited";
  EXPECT_EQ(s->memory_max_usage_bytes, 0u) << "no memory.peak before Linux 5.19";
  EXPECT_EQ(s->memory_swap_bytes, 0u) << "no swap accounting";
  EXPECT_EQ(s->cpu_quota_us, 0u);
  EXPECT_TRUE(s->io.empty());

  Write(dir + "/memory.max", "16777216\n");
  s = ReadCgroupStats(layout, "/kubepods/pod1/crid-c1");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->memory_available_bytes, 16777216u - 8000000u);
}

TEST(ReadCgroupStats, V2CpuMemoryIoAndPidsDetail) {
  TempDir tmp;
  std::string dir = tmp.Sub("pod/c");
  ASSERT_TRUE(MakeDirs(dir, 0755).ok());
  Write(dir + "/cpu.stat",
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 40\nnr_throttled 7\n"
        "throttled_usec 2500\n");
  Write(dir + "/cpu.max", "20000 100000\n");
  Write(dir + "/cpu.weight", "39\n");  // runc's conversion of 1024 shares
  Write(dir + "/memory.current", "8192\n");
  Write(dir + "/memory.max", "67108864\n");
  Write(dir + "/memory.peak", "9000\n");
  Write(dir + "/memory.swap.current", "4096\n");
  Write(dir + "/memory.swap.max", "67108864\n");
  Write(dir + "/memory.stat", "anon 10\nfile 20\nfile_mapped 300\n");
  Write(dir + "/pids.max", "1024\n");
  Write(dir + "/io.stat",
        "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
        "253:1 rbytes=5 wbytes=6 rios=7 wios=8 dbytes=0 dios=0\n");
  CgroupLayout layout;
  layout.unified = true;
  layout.unified_mount = tmp.path();
  auto s = ReadCgroupStats(layout, "/pod/c");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cpu_user_ns, 1'000'000u);
  EXPECT_EQ(s->cpu_system_ns, 500'000u);
  EXPECT_EQ(s->cpu_cfs_periods, 40u);
  EXPECT_EQ(s->cpu_cfs_throttled_periods, 7u);
  EXPECT_EQ(s->cpu_cfs_throttled_ns, 2'500'000u);
  EXPECT_EQ(s->cpu_quota_us, 20000u);
  EXPECT_EQ(s->cpu_period_us, 100000u);
  EXPECT_EQ(s->cpu_shares, 998u) << "cAdvisor's weight -> shares: 1024 -> 39 -> 998";
  EXPECT_EQ(s->memory_max_usage_bytes, 9000u);
  EXPECT_EQ(s->memory_swap_bytes, 4096u);
  EXPECT_EQ(s->memory_swap_limit_bytes, 67108864u);
  EXPECT_EQ(s->memory_mapped_file_bytes, 300u);
  EXPECT_EQ(s->memory_failcnt, 0u) << "v2 has no failcnt";
  EXPECT_EQ(s->pids_max, 1024u);
  ASSERT_EQ(s->io.size(), 2u);
  EXPECT_EQ(s->io[0].major, 8u);
  EXPECT_EQ(s->io[0].minor, 0u);
  EXPECT_EQ(s->io[0].read_bytes, 4096u);
  EXPECT_EQ(s->io[0].write_bytes, 8192u);
  EXPECT_EQ(s->io[0].reads, 1u);
  EXPECT_EQ(s->io[0].writes, 2u);
  EXPECT_EQ(s->io[1].major, 253u);
  EXPECT_EQ(s->io[1].writes, 8u);
}

TEST(ReadCgroupStats, V1Files) {
  TempDir tmp;
  CgroupLayout layout;
  for (const char* c : {"cpuacct", "memory", "pids"}) {
    layout.controllers[c] = tmp.Sub(c);
    ASSERT_TRUE(MakeDirs(tmp.Sub(c) + "/pod/c", 0755).ok());
  }
  Write(tmp.Sub("cpuacct/pod/c/cpuacct.usage"), "123456789\n");
  Write(tmp.Sub("memory/pod/c/memory.usage_in_bytes"), "5000\n");
  Write(tmp.Sub("memory/pod/c/memory.limit_in_bytes"), "9223372036854771712\n");
  Write(tmp.Sub("memory/pod/c/memory.stat"),
        "cache 100\nrss 2000\ntotal_cache 1500\ntotal_rss 3000\ntotal_inactive_file 1000\n"
        "total_pgfault 9\ntotal_pgmajfault 1\n");
  Write(tmp.Sub("memory/pod/c/memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\n"
        "oom_kill 2\n");
  Write(tmp.Sub("pids/pod/c/pids.current"), "7\n");
  auto s = ReadCgroupStats(layout, "/pod/c");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->memory_swap_limit_bytes, 0u) << "no memsw: swap accounting off";
  EXPECT_EQ(s->memory_kernel_bytes, 0u);

  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cpu_usage_ns, 123456789u);
  EXPECT_EQ(s->memory_working_set_bytes, 4000u);
  EXPECT_EQ(s->memory_rss_bytes, 3000u);
  EXPECT_EQ(s->memory_cache_bytes, 1500u) << "the hierarchy's total, as for RSS";
  EXPECT_EQ(s->memory_limit_bytes, 0u) << "v1's huge value means unlimited";
  EXPECT_EQ(s->oom_kills, 2u);
  EXPECT_EQ(s->pids_current, 7u);

  for (const char* c : {"cpu", "blkio"}) {
    layout.controllers[c] = tmp.Sub(c);
    ASSERT_TRUE(MakeDirs(tmp.Sub(c) + "/pod/c", 0755).ok());
  }
  Write(
      tmp.Sub("cpuacct/pod/c/cpuacct.stat"),
      absl::StrCat("user ", 3 * ::sysconf(_SC_CLK_TCK), "\nsystem ", ::sysconf(_SC_CLK_TCK), "\n"));
  Write(tmp.Sub("cpu/pod/c/cpu.stat"),
        "nr_periods 12\nnr_throttled 5\nthrottled_time 987654321\nnr_bursts 0\n");
  Write(tmp.Sub("cpu/pod/c/cpu.cfs_period_us"), "100000\n");
  Write(tmp.Sub("cpu/pod/c/cpu.cfs_quota_us"), "-1\n");
  Write(tmp.Sub("cpu/pod/c/cpu.shares"), "512\n");
  Write(tmp.Sub("memory/pod/c/memory.max_usage_in_bytes"), "6000\n");
  Write(tmp.Sub("memory/pod/c/memory.failcnt"), "4\n");
  Write(tmp.Sub("memory/pod/c/memory.kmem.usage_in_bytes"), "700\n");
  Write(tmp.Sub("memory/pod/c/memory.memsw.limit_in_bytes"), "134217728\n");
  Write(tmp.Sub("memory/pod/c/memory.stat"),
        "total_rss 3000\ntotal_inactive_file 1000\ntotal_mapped_file 111\ntotal_swap 222\n");
  Write(tmp.Sub("pids/pod/c/pids.max"), "max\n");
  // The throttle counters, the policy every kernel keeps; BFQ's file has no devices.
  Write(tmp.Sub("blkio/pod/c/blkio.bfq.io_service_bytes_recursive"), "Total 0\n");
  Write(tmp.Sub("blkio/pod/c/blkio.throttle.io_service_bytes_recursive"),
        "8:16 Read 4096\n8:16 Write 12288\n8:16 Sync 0\n8:16 Total 16384\nTotal 16384\n");
  Write(tmp.Sub("blkio/pod/c/blkio.throttle.io_serviced_recursive"),
        "8:16 Read 1\n8:16 Write 3\n8:16 Total 4\nTotal 4\n");
  s = ReadCgroupStats(layout, "/pod/c");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cpu_user_ns, 3'000'000'000u);
  EXPECT_EQ(s->cpu_system_ns, 1'000'000'000u);
  EXPECT_EQ(s->cpu_cfs_periods, 12u);
  EXPECT_EQ(s->cpu_cfs_throttled_periods, 5u);
  EXPECT_EQ(s->cpu_cfs_throttled_ns, 987654321u);
  EXPECT_EQ(s->cpu_period_us, 100000u);
  EXPECT_EQ(s->cpu_quota_us, 0u) << "-1 is no quota";
  EXPECT_EQ(s->cpu_shares, 512u);
  EXPECT_EQ(s->memory_max_usage_bytes, 6000u);
  EXPECT_EQ(s->memory_failcnt, 4u);
  EXPECT_EQ(s->memory_kernel_bytes, 700u);
  EXPECT_EQ(s->memory_swap_limit_bytes, 134217728u);
  EXPECT_EQ(s->memory_mapped_file_bytes, 111u);
  EXPECT_EQ(s->memory_swap_bytes, 222u);
  EXPECT_EQ(s->pids_max, 0u);
  ASSERT_EQ(s->io.size(), 1u);
  EXPECT_EQ(s->io[0].major, 8u);
  EXPECT_EQ(s->io[0].minor, 16u);
  EXPECT_EQ(s->io[0].read_bytes, 4096u);
  EXPECT_EQ(s->io[0].write_bytes, 12288u);
  EXPECT_EQ(s->io[0].reads, 1u);
  EXPECT_EQ(s->io[0].writes, 3u);
}

// The stats RPCs read five files per cgroup: the detail files are never
// opened (here they hold garbage that fails a full read).
TEST(ReadCgroupStats, UsageDetailReadsOnlyTheUsageFiles) {
  TempDir tmp;
  CgroupLayout v1;
  for (const char* c : {"cpu", "cpuacct", "memory", "pids", "blkio"}) {
    v1.controllers[c] = tmp.Sub(c);
    ASSERT_TRUE(MakeDirs(tmp.Sub(c) + "/pod/c", 0755).ok());
  }
  Write(tmp.Sub("cpuacct/pod/c/cpuacct.usage"), "123456789\n");
  Write(tmp.Sub("memory/pod/c/memory.usage_in_bytes"), "5000\n");
  Write(tmp.Sub("memory/pod/c/memory.limit_in_bytes"), "8000\n");
  Write(tmp.Sub("memory/pod/c/memory.stat"),
        "total_rss 3000\ntotal_cache 1500\ntotal_inactive_file 1000\ntotal_pgfault 9\n"
        "total_pgmajfault 1\n");
  Write(tmp.Sub("pids/pod/c/pids.current"), "7\n");
  for (const char* file :
       {"cpu/pod/c/cpu.cfs_period_us", "cpu/pod/c/cpu.shares", "memory/pod/c/memory.failcnt",
        "memory/pod/c/memory.max_usage_in_bytes", "pids/pod/c/pids.max"}) {
    Write(tmp.Sub(file), "garbage\n");
  }
  ASSERT_EQ(ReadCgroupStats(v1, "/pod/c").status().code(), absl::StatusCode::kDataLoss);
  auto s = ReadCgroupStats(v1, "/pod/c", CgroupStatsDetail::kUsage);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cpu_usage_ns, 123456789u);
  EXPECT_EQ(s->memory_usage_bytes, 5000u);
  EXPECT_EQ(s->memory_working_set_bytes, 4000u);
  EXPECT_EQ(s->memory_available_bytes, 4000u);
  EXPECT_EQ(s->memory_rss_bytes, 3000u);
  EXPECT_EQ(s->memory_page_faults, 9u);
  EXPECT_EQ(s->memory_major_page_faults, 1u);
  EXPECT_EQ(s->pids_current, 7u);
  EXPECT_EQ(s->cpu_shares, 0u);
  EXPECT_EQ(s->pids_max, 0u);

  std::string dir = tmp.Sub("v2/pod/c");
  ASSERT_TRUE(MakeDirs(dir, 0755).ok());
  Write(dir + "/cpu.stat", "usage_usec 1500\nuser_usec 1000\n");
  Write(dir + "/memory.current", "10000\n");
  Write(dir + "/memory.max", "max\n");
  Write(dir + "/memory.stat", "anon 4000\ninactive_file 2000\npgfault 5\npgmajfault 2\n");
  Write(dir + "/pids.current", "3\n");
  for (const char* file : {"/cpu.weight", "/memory.peak", "/pids.max"}) {
    Write(dir + file, "garbage\n");
  }
  CgroupLayout v2;
  v2.unified = true;
  v2.unified_mount = tmp.Sub("v2");
  ASSERT_EQ(ReadCgroupStats(v2, "/pod/c").status().code(), absl::StatusCode::kDataLoss);
  s = ReadCgroupStats(v2, "/pod/c", CgroupStatsDetail::kUsage);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cpu_usage_ns, 1500000u);
  EXPECT_EQ(s->cpu_user_ns, 0u);
  EXPECT_EQ(s->memory_usage_bytes, 10000u);
  EXPECT_EQ(s->memory_working_set_bytes, 8000u);
  EXPECT_EQ(s->memory_rss_bytes, 4000u);
  EXPECT_EQ(s->memory_page_faults, 5u);
  EXPECT_EQ(s->memory_major_page_faults, 2u);
  EXPECT_EQ(s->pids_current, 3u);
}

TEST(ReadCgroupStats, MissingAndBadPaths) {
  TempDir tmp;
  CgroupLayout layout;
  layout.controllers["memory"] = tmp.path();
  EXPECT_EQ(ReadCgroupStats(layout, "/nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadCgroupStats(layout, "/a/../../etc").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadCgroupStats(layout, "relative").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ReadCgroupProcessStats, CountsProcessesFdsAndSockets) {
  TempDir tmp;
  CgroupLayout layout;
  layout.unified = true;
  layout.unified_mount = tmp.Sub("cg");
  ASSERT_TRUE(MakeDirs(tmp.Sub("cg/pod/c"), 0755).ok());
  Write(tmp.Sub("cg/pod/c/cgroup.procs"), "10\n11\n12\n");
  ASSERT_TRUE(MakeDirs(tmp.Sub("proc/10/fd"), 0755).ok());
  ASSERT_TRUE(MakeDirs(tmp.Sub("proc/11/fd"), 0755).ok());
  // 12 exited between the listing and the walk: counted as a process only.
  ASSERT_EQ(::symlink("/dev/null", tmp.Sub("proc/10/fd/0").c_str()), 0);
  ASSERT_EQ(::symlink("socket:[4242]", tmp.Sub("proc/10/fd/3").c_str()), 0);
  ASSERT_EQ(::symlink("pipe:[7]", tmp.Sub("proc/11/fd/1").c_str()), 0);
  ASSERT_EQ(::symlink("socket:[4243]", tmp.Sub("proc/11/fd/5").c_str()), 0);
  ASSERT_EQ(::symlink("anon_inode:[eventfd]", tmp.Sub("proc/11/fd/6").c_str()), 0);
  auto s = ReadCgroupProcessStats(layout, "/pod/c", tmp.Sub("proc"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->processes, 3u);
  EXPECT_EQ(s->file_descriptors, 5u);
  EXPECT_EQ(s->sockets, 2u);
  EXPECT_EQ(ReadCgroupProcessStats(layout, "/nope", tmp.Sub("proc")).status().code(),
            absl::StatusCode::kNotFound);
}

// A real cgroup on this host: a child that allocates and spins shows up.
TEST(ReadCgroupStats, SeesRealUsageOnThisHost) {
  auto layout = CgroupLayout::Detect();
  ASSERT_TRUE(layout.ok()) << layout.status();
  std::vector<std::string> procs_files;
  std::vector<std::string> dirs;
  std::string name = absl::StrCat("/crid-stats-test-", ::getpid());
  if (layout->unified) {
    dirs.push_back(layout->unified_mount + name);
  } else {
    for (const char* c : {"cpuacct", "memory", "pids"}) {
      ASSERT_EQ(layout->controllers.count(c), 1u) << "controller " << c << " is not mounted";
      dirs.push_back(layout->controllers.at(c) + name);
    }
  }
  for (const std::string& d : dirs) {
    ASSERT_EQ(::mkdir(d.c_str(), 0755), 0) << d << ": " << std::strerror(errno);
  }
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    for (const std::string& d : dirs) {
      std::ofstream(d + "/cgroup.procs") << ::getpid();
    }
    std::vector<char> memory(48 << 20);
    std::memset(memory.data(), 1, memory.size());
    absl::Time until = absl::Now() + absl::Milliseconds(300);
    volatile uint64_t spin = 0;
    while (absl::Now() < until) {
      ++spin;
    }
    char c = 'r';
    (void)!::write(ready[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  auto s = ReadCgroupStats(*layout, name);
  auto procs = ReadCgroupProcessStats(*layout, name);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  for (const std::string& d : dirs) {
    ::rmdir(d.c_str());
  }
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GE(s->memory_usage_bytes, uint64_t{48} << 20);
  EXPECT_GE(s->memory_working_set_bytes, uint64_t{40} << 20);
  EXPECT_GE(s->cpu_usage_ns, 200'000'000u);
  EXPECT_EQ(s->pids_current, 1u);
  EXPECT_GE(s->cpu_user_ns, 100'000'000u) << "the spin runs in user mode";
  ASSERT_TRUE(procs.ok()) << procs.status();
  EXPECT_EQ(procs->processes, 1u);
  EXPECT_GE(procs->file_descriptors, 1u) << "the child holds the pipe's write end at least";
}

}  // namespace
}  // namespace crid
