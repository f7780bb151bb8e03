// The systemd cgroup driver against a real systemd: starts the systemd fixture
// (systemd as PID 1 of a private namespace), runs systemd_cgroup_inner inside
// it, and checks that stopping systemd leaves no cgroup behind. A host that
// cannot run the fixture fails this test with the reason.
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <map>
#include <string>

#include "gtest/gtest.h"
#include "tests/crid_process.h"
#include "tests/image_registry_fixture.h"
#include "tests/systemd_fixture.h"

namespace crid {
namespace {

TEST(SystemdCgroup, DriverWorksAgainstSystemdInAPrivateNamespace) {
  auto systemd = SystemdFixture::Start();
  ASSERT_TRUE(systemd.ok()) << systemd.status();
  std::string inner = RunfilePath("tests/systemd_cgroup_inner");
  char resolved[PATH_MAX];
  ASSERT_NE(::realpath(inner.c_str(), resolved), nullptr) << inner;
  // The full crid inside needs its binaries and an image: a registry on the
  // loopback, which systemd's namespace shares with the host.
  TestRegistry registry;
  ASSERT_TRUE(registry.Start().ok());
  TestImageSpec spec;
  spec.layers.push_back({BusyboxToolsLayerTar(), LayerCompression::kGzip});
  ASSERT_TRUE(registry.PushImage("test/busybox", "latest", spec).ok());
  std::map<std::string, std::string> env = {
      {"CRID_TEST_IMAGE", registry.host() + "/test/busybox:latest"}};
  for (auto [name, path] :
       {std::pair{"CRID_BINARY", "crid"}, std::pair{"CRID_SHIM", "shim/crid-shim"},
        std::pair{"CRID_PAUSE", "pause/crid-pause"}}) {
    char real[PATH_MAX];
    ASSERT_NE(::realpath(RunfilePath(path).c_str(), real), nullptr) << path;
    env[name] = real;
  }
  int code = (*systemd)->RunInside({resolved, "--gtest_color=no"}, env);
  EXPECT_EQ(code, 0) << "the tests inside systemd's namespace failed (output above)\n"
                     << (*systemd)->Log();
  absl::Status stopped = (*systemd)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

}  // namespace
}  // namespace crid
