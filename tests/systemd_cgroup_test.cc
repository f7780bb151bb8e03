// The systemd cgroup driver against a real systemd: starts the systemd fixture
// (systemd as PID 1 of a private namespace), runs systemd_cgroup_inner inside
// it, and checks that stopping systemd leaves no cgroup behind. A host that
// cannot run the fixture fails this test with the reason.
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "tests/crid_process.h"
#include "tests/systemd_fixture.h"

namespace crid {
namespace {

TEST(SystemdCgroup, DriverWorksAgainstSystemdInAPrivateNamespace) {
  auto systemd = SystemdFixture::Start();
  ASSERT_TRUE(systemd.ok()) << systemd.status();
  std::string inner = RunfilePath("tests/systemd_cgroup_inner");
  char resolved[PATH_MAX];
  ASSERT_NE(::realpath(inner.c_str(), resolved), nullptr) << inner;
  int code = (*systemd)->RunInside({resolved, "--gtest_color=no"});
  EXPECT_EQ(code, 0) << "the tests inside systemd's namespace failed (output above)\n"
                     << (*systemd)->Log();
  absl::Status stopped = (*systemd)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

}  // namespace
}  // namespace crid
