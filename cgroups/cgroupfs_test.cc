// The cgroupfs driver on this host's real cgroups: processes placed into new
// cgroups, limits in the kernel's files, usage that moves when the process
// works, OOM kills counted, and nothing left after removal or a failed
// placement. The host here is cgroup v1 (hybrid); the v2 part runs on the
// host's unified mount where there is one.
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/fs.h"
#include "cgroups/manager.h"
#include "cgroups/tree.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text)) : "<" + path + " missing>";
}

// A child process the test owns and always kills.
class Child {
 public:
  // Runs `body` in a forked child; it never returns.
  template <typename F>
  explicit Child(F body) {
    if (::pipe(go_) != 0 || ::pipe(done_) != 0 || (pid_ = ::fork()) < 0) {
      std::perror("pipe/fork");
      std::abort();
    }
    if (pid_ == 0) {
      char c;
      if (::read(go_[0], &c, 1) != 1) {
        ::_exit(1);
      }
      body();
      c = 'd';
      (void)!::write(done_[1], &c, 1);
      for (;;) {
        ::pause();
      }
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    for (int fd : {go_[0], go_[1], done_[0], done_[1]}) {
      ::close(fd);
    }
  }
  pid_t pid() const { return pid_; }
  void Go() { ASSERT_EQ(::write(go_[1], "g", 1), 1); }
  bool WaitDone() {
    char c;
    return ::read(done_[0], &c, 1) == 1;
  }
  // Kills (if still running) and reaps; returns the wait status.
  int Reap(bool kill_first) {
    if (kill_first) {
      ::kill(pid_, SIGKILL);
    }
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int go_[2] = {-1, -1};
  int done_[2] = {-1, -1};
  bool reaped_ = false;
};

void Touch(size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    ::_exit(2);
  }
  std::memset(p, 0x5a, bytes);
}

class CgroupfsHost : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<CgroupLayout> layout = CgroupLayout::Detect();
    ASSERT_TRUE(layout.ok()) << layout.status();
    layout_ = *layout;
    CgroupManagerOptions options;
    options.driver = CgroupDriver::kCgroupfs;
    options.layout = layout_;
    auto m = NewCgroupManager(options);
    ASSERT_TRUE(m.ok()) << m.status();
    manager_ = std::move(*m);
    parent_ = absl::StrCat("/crid-test-", ::getpid());
  }

  void TearDown() override {
    for (const std::string& root : Roots()) {
      EXPECT_TRUE(RemoveCgroupDir(root + parent_).ok());
    }
  }

  std::vector<std::string> Roots() const {
    return layout_.unified ? std::vector<std::string>{layout_.unified_mount}
                           : V1Hierarchies(layout_);
  }

  // The directory of `path` for a v1 controller (or the v2 directory).
  std::string Dir(const char* controller, const std::string& path) const {
    return (layout_.unified ? layout_.unified_mount : layout_.controllers.at(controller)) + path;
  }

  void ExpectGone(const std::string& path) {
    for (const std::string& root : Roots()) {
      EXPECT_FALSE(IsDir(root + path)) << root + path << " is left behind";
    }
  }

  CgroupLayout layout_;
  std::unique_ptr<CgroupManager> manager_;
  std::string parent_;
};

TEST_F(CgroupfsHost, LimitsLandInTheKernelFiles) {
  Child child([] {});
  CgroupResources r;
  r.cpu_shares = 512;
  r.cpu_quota_us = 20000;
  r.cpu_period_us = 100000;
  r.memory_limit_bytes = 64 << 20;
  r.pids_limit = 50;
  r.cpuset_cpus = "0";
  if (!layout_.unified &&
      ::access((Dir("memory", "") + "/memory.memsw.limit_in_bytes").c_str(), F_OK) == 0) {
    r.memory_swap_limit_bytes = 96 << 20;
  }
  absl::StatusOr<std::string> path = manager_->PlaceProcess("limits", parent_, child.pid(), r);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, parent_ + "/crid-limits");
  if (layout_.unified) {
    EXPECT_EQ(Read(Dir("cpu", *path) + "/cpu.weight"), "20");
    EXPECT_EQ(Read(Dir("cpu", *path) + "/cpu.max"), "20000 100000");
    EXPECT_EQ(Read(Dir("memory", *path) + "/memory.max"), "67108864");
  } else {
    EXPECT_EQ(Read(Dir("cpu", *path) + "/cpu.shares"), "512");
    EXPECT_EQ(Read(Dir("cpu", *path) + "/cpu.cfs_quota_us"), "20000");
    EXPECT_EQ(Read(Dir("cpu", *path) + "/cpu.cfs_period_us"), "100000");
    EXPECT_EQ(Read(Dir("memory", *path) + "/memory.limit_in_bytes"), "67108864");
    if (r.memory_swap_limit_bytes != 0) {
      EXPECT_EQ(Read(Dir("memory", *path) + "/memory.memsw.limit_in_bytes"), "100663296");
    }
  }
  EXPECT_EQ(Read(Dir("pids", *path) + "/pids.max"), "50");
  EXPECT_EQ(Read(Dir("cpuset", *path) + "/cpuset.cpus"), "0");
  // The process is in the new cgroup of every hierarchy.
  for (const std::string& root : Roots()) {
    EXPECT_TRUE(absl::StrContains(Read(root + *path + "/cgroup.procs"), absl::StrCat(child.pid())))
        << root;
  }
  EXPECT_TRUE(absl::StrContains(Read(absl::StrCat("/proc/", child.pid(), "/cgroup")), *path));

  // A live update (UpdateContainerResources) from the CRI message.
  runtime::v1::LinuxContainerResources update;
  update.set_memory_limit_in_bytes(96 << 20);
  update.set_cpu_shares(256);
  ASSERT_TRUE(manager_->ApplyResources(*path, update).ok());
  EXPECT_EQ(
      Read(Dir("memory", *path) + (layout_.unified ? "/memory.max" : "/memory.limit_in_bytes")),
      "100663296");

  EXPECT_EQ(*manager_->ListCgroups(parent_), std::vector<std::string>{"limits"});

  child.Reap(true);
  ASSERT_TRUE(manager_->RemoveCgroup("limits", parent_).ok());
  EXPECT_TRUE(manager_->ListCgroups(parent_)->empty());
  ExpectGone(*path);
  // Removing again is fine.
  EXPECT_TRUE(manager_->RemoveCgroup("limits", parent_).ok());
}

TEST_F(CgroupfsHost, BusyLoopRaisesCpuUsageAndNanoCores) {
  Child child([] {
    for (volatile uint64_t i = 0;; i = i + 1) {
    }
  });
  CgroupResources r;
  r.cpu_quota_us = 50000;  // half a core at most
  r.cpu_period_us = 100000;
  absl::StatusOr<std::string> path = manager_->PlaceProcess("busy", parent_, child.pid(), r);
  ASSERT_TRUE(path.ok()) << path.status();
  absl::StatusOr<CgroupUsage> first = manager_->Stats(*path);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->has_nano_cores);
  child.Go();
  absl::SleepFor(absl::Seconds(2));
  absl::StatusOr<CgroupUsage> second = manager_->Stats(*path);
  ASSERT_TRUE(second.ok()) << second.status();
  uint64_t used = second->stats.cpu_usage_ns - first->stats.cpu_usage_ns;
  std::printf("busy loop: %.3f s CPU in 2 s, %.3f cores (quota 0.5)\n", used / 1e9,
              second->usage_nano_cores / 1e9);
  EXPECT_GT(used, 200'000'000u);  // at least 0.1 core on a loaded 2-core machine
  ASSERT_TRUE(second->has_nano_cores);
  EXPECT_GT(second->usage_nano_cores, 100'000'000u);
  EXPECT_LT(second->usage_nano_cores, 600'000'000u) << "the 0.5 CPU quota is not enforced";
  child.Reap(true);
  ASSERT_TRUE(manager_->RemoveCgroup("busy", parent_).ok());
  ExpectGone(*path);
}

TEST_F(CgroupfsHost, AllocationRaisesMemoryUsage) {
  constexpr size_t kBytes = 48 << 20;
  Child child([] { Touch(kBytes); });
  CgroupResources r;
  r.memory_limit_bytes = 256 << 20;
  absl::StatusOr<std::string> path = manager_->PlaceProcess("alloc", parent_, child.pid(), r);
  ASSERT_TRUE(path.ok()) << path.status();
  absl::StatusOr<CgroupUsage> before = manager_->Stats(*path);
  ASSERT_TRUE(before.ok()) << before.status();
  child.Go();
  ASSERT_TRUE(child.WaitDone());
  absl::StatusOr<CgroupUsage> after = manager_->Stats(*path);
  ASSERT_TRUE(after.ok()) << after.status();
  std::printf("allocation of 48 MiB: usage %.1f MiB, working set %.1f MiB, rss %.1f MiB\n",
              after->stats.memory_usage_bytes / 1048576.0,
              after->stats.memory_working_set_bytes / 1048576.0,
              after->stats.memory_rss_bytes / 1048576.0);
  EXPECT_GE(after->stats.memory_usage_bytes, before->stats.memory_usage_bytes + kBytes);
  EXPECT_GE(after->stats.memory_working_set_bytes, kBytes);
  EXPECT_GE(after->stats.memory_rss_bytes, kBytes);
  EXPECT_GT(after->stats.memory_page_faults, before->stats.memory_page_faults);
  EXPECT_EQ(after->stats.memory_limit_bytes, 256u << 20);
  EXPECT_EQ(after->stats.memory_available_bytes,
            (256u << 20) - after->stats.memory_working_set_bytes);
  EXPECT_GE(after->stats.pids_current, 1u);
  child.Reap(true);
  ASSERT_TRUE(manager_->RemoveCgroup("alloc", parent_).ok());
  ExpectGone(*path);
}

TEST_F(CgroupfsHost, OomKillIsCounted) {
  Child child([] { Touch(256 << 20); });
  CgroupResources r;
  r.memory_limit_bytes = 32 << 20;
  absl::StatusOr<std::string> path = manager_->PlaceProcess("oom", parent_, child.pid(), r);
  ASSERT_TRUE(path.ok()) << path.status();
  child.Go();
  int status = child.Reap(false);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the process was not killed; status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  // The OOM counter is a detail field (the metrics RPCs'), not a usage one.
  absl::StatusOr<CgroupStats> stats = ReadCgroupStats(manager_->layout(), *path);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GE(stats->oom_kills, 1u);
  ASSERT_TRUE(manager_->RemoveCgroup("oom", parent_).ok());
  ExpectGone(*path);
}

TEST_F(CgroupfsHost, FailedPlacementLeavesNothing) {
  Child child([] {});
  std::string before = Read(absl::StrCat("/proc/", child.pid(), "/cgroup"));
  CgroupResources r;
  r.cpu_shares = 100;
  if (layout_.unified) {
    r.unified["nonexistent.file"] = "1";
  } else {
    r.cpuset_cpus = "4096";  // no such CPU: the kernel refuses it
  }
  absl::StatusOr<std::string> path = manager_->PlaceProcess("fails", parent_, child.pid(), r);
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.status().code(), absl::StatusCode::kInvalidArgument) << path.status();
  std::printf("refused as expected: %s\n", path.status().ToString().c_str());
  ExpectGone(parent_ + "/crid-fails");
  ExpectGone(parent_);
  EXPECT_TRUE(manager_->ListCgroups(parent_)->empty());
  EXPECT_EQ(Read(absl::StrCat("/proc/", child.pid(), "/cgroup")), before);

  // The v2 unified map on v1 is named in the error.
  if (!layout_.unified) {
    CgroupResources v2only;
    v2only.unified["memory.high"] = "1000000";
    absl::StatusOr<std::string> refused =
        manager_->PlaceProcess("v2only", parent_, child.pid(), v2only);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(refused.status().message(), "linux.resources.unified"))
        << refused.status();
    ExpectGone(parent_);
  }
}

// Real cgroup v2 files: the host's unified hierarchy (hybrid hosts mount it
// beside v1 with few or no controllers). The test works below its own
// subtree, so the host's root cgroup is left as it is.
TEST(CgroupfsV2Host, PlaceStatsRemoveOnTheUnifiedHierarchy) {
  absl::StatusOr<CgroupLayout> host = CgroupLayout::Detect();
  ASSERT_TRUE(host.ok()) << host.status();
  if (host->unified_mount.empty()) {
    GTEST_SKIP() << "SKIPPED: this host mounts no cgroup v2 hierarchy";
  }
  std::string root = absl::StrCat(host->unified_mount, "/crid-test-v2-", ::getpid());
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0) << std::strerror(errno);
  CgroupManagerOptions options;
  options.driver = CgroupDriver::kCgroupfs;
  options.layout.unified = true;
  options.layout.unified_mount = root;
  auto m = NewCgroupManager(options);
  ASSERT_TRUE(m.ok());
  CgroupManager& manager = **m;
  {
    Child child([] {
      for (volatile uint64_t i = 0; i < 200'000'000; i = i + 1) {
      }
    });
    absl::StatusOr<std::string> path =
        manager.PlaceProcess("v2", "/pod1", child.pid(), CgroupResources());
    ASSERT_TRUE(path.ok()) << path.status();
    EXPECT_EQ(*path, "/pod1/crid-v2");
    EXPECT_EQ(Read(root + "/pod1/crid-v2/cgroup.procs"), absl::StrCat(child.pid()));
    child.Go();
    ASSERT_TRUE(child.WaitDone());
    absl::StatusOr<CgroupUsage> usage = manager.Stats(*path);
    ASSERT_TRUE(usage.ok()) << usage.status();
    EXPECT_GT(usage->stats.cpu_usage_ns, 10'000'000u) << "cpu.stat usage_usec did not move";

    // A limit whose controller this tree does not offer fails, naming the file,
    // and a failed placement leaves no directory.
    Child other([] {});
    CgroupResources r;
    r.memory_limit_bytes = 64 << 20;
    absl::StatusOr<std::string> refused = manager.PlaceProcess("nomem", "/pod2", other.pid(), r);
    if (!absl::StrContains(Read(root + "/cgroup.controllers"), "memory")) {
      EXPECT_FALSE(refused.ok());
      EXPECT_TRUE(absl::StrContains(refused.status().message(), "memory.max")) << refused.status();
      EXPECT_FALSE(IsDir(root + "/pod2"));
    } else {
      EXPECT_TRUE(refused.ok()) << refused.status();
      EXPECT_TRUE(manager.RemoveCgroup("nomem", "/pod2").ok());
    }
    child.Reap(true);
  }
  EXPECT_TRUE(manager.RemoveCgroup("v2", "/pod1").ok());
  EXPECT_FALSE(IsDir(root + "/pod1/crid-v2"));
  EXPECT_TRUE(RemoveCgroupDir(root + "/pod1").ok());
  EXPECT_TRUE(RemoveCgroupDir(root + "/pod2").ok());
  EXPECT_TRUE(RemoveCgroupDir(root).ok());
}

}  // namespace
}  // namespace crid
