// Driver selection: explicit settings win, auto follows the init system.
#include "cgroups/driver.h"

#include <sys/stat.h>

#include "gtest/gtest.h"

namespace crid {
namespace {

TEST(ResolveCgroupDriver, ExplicitSettingsWin) {
  EXPECT_EQ(*ResolveCgroupDriver("systemd"), CgroupDriver::kSystemd);
  EXPECT_EQ(*ResolveCgroupDriver("cgroupfs"), CgroupDriver::kCgroupfs);
}

TEST(ResolveCgroupDriver, AutoFollowsInitSystem) {
  struct stat st;
  bool systemd = ::lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
  EXPECT_EQ(*ResolveCgroupDriver("auto"),
            systemd ? CgroupDriver::kSystemd : CgroupDriver::kCgroupfs);
}

TEST(ResolveCgroupDriver, UnknownIsInvalidArgumentNamingField) {
  auto driver = ResolveCgroupDriver("cgroupv3");
  ASSERT_FALSE(driver.ok());
  EXPECT_EQ(driver.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(driver.status().message().find("cgroup_driver"), std::string_view::npos);
}

TEST(CgroupDriverName, Names) {
  EXPECT_STREQ(CgroupDriverName(CgroupDriver::kSystemd), "systemd");
  EXPECT_STREQ(CgroupDriverName(CgroupDriver::kCgroupfs), "cgroupfs");
}

}  // namespace
}  // namespace crid
