// Finding a container's memory cgroup from /proc/<pid>/cgroup on v1, hybrid
// and v2 hosts.
#include "shim/oom.h"

#include "gtest/gtest.h"

namespace crid::shim {
namespace {

TEST(MemoryCgroupDir, V1MemoryHierarchyWinsOnHybridHosts) {
  CgroupLayout layout;
  layout.controllers = {{"memory", "/sys/fs/cgroup/memory"}, {"cpu", "/sys/fs/cgroup/cpu"}};
  layout.unified_mount = "/sys/fs/cgroup/unified";
  EXPECT_EQ(MemoryCgroupDir(layout, "5:cpu,cpuacct:/x\n4:memory:/pods/c1\n0::/\n"),
            "/sys/fs/cgroup/memory/pods/c1");
}

TEST(MemoryCgroupDir, UnifiedHierarchy) {
  CgroupLayout layout;
  layout.unified = true;
  layout.unified_mount = "/sys/fs/cgroup";
  EXPECT_EQ(MemoryCgroupDir(layout, "0::/kubepods/c2\n"), "/sys/fs/cgroup/kubepods/c2");
}

TEST(MemoryCgroupDir, NothingWithoutAMemoryController) {
  CgroupLayout layout;
  layout.controllers = {{"cpu", "/sys/fs/cgroup/cpu"}};
  EXPECT_EQ(MemoryCgroupDir(layout, "1:cpu:/x\n"), "");
  EXPECT_EQ(MemoryCgroupDir(layout, "garbage"), "");
}

TEST(ReadOomKills, MissingCgroupIsNothing) {
  EXPECT_FALSE(ReadOomKills("").has_value());
  EXPECT_FALSE(ReadOomKills("/nonexistent-cgroup").has_value());
}

}  // namespace
}  // namespace crid::shim
