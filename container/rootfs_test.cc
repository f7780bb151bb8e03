// Real overlayfs rootfs: layers stacked in order, writes land in the upper dir,
// lower layers stay untouched, failures and removal leave nothing behind.
#include "container/rootfs.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "base/fs.h"
#include "base/temp_dir.h"
#include "container/test_user_namespace.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

bool RootfsTestExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

class RootfsTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(tmp_.Sub("layers/base/etc"), 0755).ok());
    ASSERT_TRUE(MakeDirs(tmp_.Sub("layers/top/etc"), 0755).ok());
    std::ofstream(tmp_.Sub("layers/base/etc/os")) << "base";
    std::ofstream(tmp_.Sub("layers/base/etc/shadowed")) << "base";
    std::ofstream(tmp_.Sub("layers/top/etc/shadowed")) << "top";
    lowers_ = {tmp_.Sub("layers/top"), tmp_.Sub("layers/base")};
    options_.force_mount_api = GetParam();
  }

  static bool Exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
  }

  TempDir tmp_;
  std::vector<std::string> lowers_;
  OverlayOptions options_;
};

TEST_P(RootfsTest, StacksLayersAndKeepsThemReadOnly) {
  std::string dir = tmp_.Sub("containers/c1");
  auto rootfs = MountOverlayRootfs(dir, lowers_, options_);
  ASSERT_TRUE(rootfs.ok()) << rootfs.status();
  EXPECT_EQ(*ReadFile(rootfs->rootfs + "/etc/os"), "base");
  EXPECT_EQ(*ReadFile(rootfs->rootfs + "/etc/shadowed"), "top");
  std::ofstream(rootfs->rootfs + "/etc/new") << "container";
  ASSERT_EQ(::unlink((rootfs->rootfs + "/etc/os").c_str()), 0);
  EXPECT_EQ(*ReadFile(rootfs->upper + "/etc/new"), "container");
  EXPECT_TRUE(Exists(tmp_.Sub("layers/base/etc/os"))) << "the layer is untouched";
  EXPECT_FALSE(Exists(tmp_.Sub("layers/base/etc/new")));
  auto usage = WritableLayerUsage(dir);
  ASSERT_TRUE(usage.ok());
  EXPECT_GE(usage->inodes, 3u);  // upper, etc, new (+ whiteout)

  ASSERT_TRUE(RemoveOverlayRootfs(dir).ok());
  EXPECT_FALSE(Exists(dir));
  EXPECT_TRUE(Exists(tmp_.Sub("layers/base/etc/os")));
  EXPECT_TRUE(RemoveOverlayRootfs(dir).ok()) << "removing twice is fine";
}

uid_t OwnerOf(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
}

// Files of the image (owned by 0 on disk) appear owned by the namespace's
// root on the host, so inside the namespace they are root's; what the
// namespace's root writes is stored under its host ID; nothing stays mounted.
TEST_P(RootfsTest, UserNamespaceSeesLayersThroughIdmappedMounts) {
  TestUserNamespace userns;
  ASSERT_TRUE(userns.ok());
  options_.userns_path = userns.path();
  options_.host_uid = 200000;
  options_.host_gid = 300000;
  // As crid's root and containers directories: others may pass through.
  ASSERT_EQ(::chmod(tmp_.path().c_str(), 0711), 0);
  ASSERT_TRUE(MakeDirs(tmp_.Sub("containers"), 0711).ok());
  std::string dir = tmp_.Sub("containers/c1");
  auto rootfs = MountOverlayRootfs(dir, lowers_, options_);
  ASSERT_TRUE(rootfs.ok()) << rootfs.status();
  EXPECT_EQ(OwnerOf(tmp_.Sub("layers/base/etc/os")), 0u);
  EXPECT_EQ(OwnerOf(rootfs->rootfs + "/etc/os"), 200000u);
  EXPECT_EQ(OwnerOf(rootfs->rootfs), 200000u);
  EXPECT_FALSE(Exists(dir + "/idmap")) << "the idmapped layer mounts are gone once stacked";

  // The container's root writes as host uid 200000.
  pid_t child = ::fork();
  if (child == 0) {
    ::setfsgid(300000);
    ::setfsuid(200000);
    int fd = ::open((rootfs->rootfs + "/etc/new").c_str(), O_WRONLY | O_CREAT, 0644);
    int fd2 = ::open((rootfs->rootfs + "/etc/os").c_str(), O_WRONLY | O_APPEND);
    ::_exit(fd >= 0 && fd2 >= 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(status, 0) << "root of the namespace may write its rootfs";
  EXPECT_EQ(OwnerOf(rootfs->upper + "/etc/new"), 200000u);
  EXPECT_EQ(OwnerOf(rootfs->upper + "/etc/os"), 200000u) << "copied up with its mapped owner";
  EXPECT_EQ(OwnerOf(tmp_.Sub("layers/base/etc/os")), 0u) << "the layer is untouched";

  ASSERT_TRUE(RemoveOverlayRootfs(dir).ok());
  EXPECT_FALSE(Exists(dir));
}

TEST_P(RootfsTest, MissingUserNamespaceLeavesNothing) {
  options_.userns_path = tmp_.Sub("no-such-namespace");
  std::string dir = tmp_.Sub("containers/c2");
  auto rootfs = MountOverlayRootfs(dir, lowers_, options_);
  EXPECT_FALSE(rootfs.ok());
  EXPECT_FALSE(Exists(dir));
}

TEST(IdmappedOverlayTest, ThisKernelStacksIdmappedLayers) {
  TempDir tmp;
  absl::Status st = CheckIdmappedOverlay(tmp.Sub("probe"));
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_FALSE(RootfsTestExists(tmp.Sub("probe")));
}

TEST_P(RootfsTest, FailureLeavesNothing) {
  std::string dir = tmp_.Sub("containers/c2");
  auto rootfs = MountOverlayRootfs(dir, {tmp_.Sub("layers/missing")}, options_);
  EXPECT_FALSE(rootfs.ok());
  EXPECT_FALSE(Exists(dir));
}

TEST_P(RootfsTest, RefusesLayerPathsOverlayWouldMisread) {
  auto rootfs = MountOverlayRootfs(tmp_.Sub("c3"), {"/a:b"}, options_);
  EXPECT_EQ(rootfs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MountOverlayRootfs(tmp_.Sub("c3"), {}, options_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(MountApis, RootfsTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "fsconfig" : "mount"; });

TEST(Rootfs, ManyLayersBeyondOnePageOfOptions) {
  TempDir tmp;
  std::vector<std::string> lowers;
  for (int i = 0; i < 60; ++i) {
    std::string dir =
        tmp.Sub("layers/a-rather-long-layer-directory-name-to-fill-the-page-" + std::to_string(i));
    ASSERT_TRUE(MakeDirs(dir, 0755).ok());
    std::ofstream(dir + "/f" + std::to_string(i)) << i;
    lowers.push_back(dir);
  }
  auto rootfs = MountOverlayRootfs(tmp.Sub("c"), lowers);
  ASSERT_TRUE(rootfs.ok()) << rootfs.status();
  EXPECT_EQ(*ReadFile(rootfs->rootfs + "/f59"), "59");
  EXPECT_TRUE(RemoveOverlayRootfs(tmp.Sub("c")).ok());
}

TEST(LayerUsageCache, MeasuresOncePerIntervalAndForgetsRemovedContainers) {
  TempDir tmp;
  std::string dir = tmp.Sub("c1");
  ASSERT_TRUE(MakeDirs(dir + "/upper", 0755).ok());
  std::ofstream(dir + "/upper/a") << std::string(5000, 'a');
  LayerUsageCache cached(absl::Hours(1));
  LayerUsageCache fresh(absl::ZeroDuration());
  auto first = cached.Get(dir);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GE(first->usage.bytes, 5000u);
  std::ofstream(dir + "/upper/b") << std::string(50000, 'b');
  // Within the interval the first sample stands, with the time it was taken.
  auto again = cached.Get(dir);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->usage.bytes, first->usage.bytes);
  EXPECT_EQ(again->taken, first->taken);
  auto now = fresh.Get(dir);
  ASSERT_TRUE(now.ok());
  EXPECT_GE(now->usage.bytes, 55000u);
  // Past its age a sample is still answered at once, and measured again in
  // the background: a later call sees the new size.
  std::ofstream(dir + "/upper/c") << std::string(100000, 'c');
  auto stale = fresh.Get(dir);
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(stale->taken, now->taken);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  absl::StatusOr<LayerUsageCache::Sample> refreshed = stale;
  while (refreshed.ok() && refreshed->usage.bytes < 155000u && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
    refreshed = fresh.Get(dir);
  }
  ASSERT_TRUE(refreshed.ok());
  EXPECT_GE(refreshed->usage.bytes, 155000u);
  // A container that is gone becomes an error once the refresh finds it gone.
  ASSERT_TRUE(RemoveTree(dir).ok());
  deadline = absl::Now() + absl::Seconds(10);
  absl::StatusOr<LayerUsageCache::Sample> gone = fresh.Get(dir);
  while (gone.ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
    gone = fresh.Get(dir);
  }
  EXPECT_FALSE(gone.ok());
}

}  // namespace
}  // namespace crid
