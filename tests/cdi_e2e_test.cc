// End to end through the real crid, crid-shim and runc: CDI devices from a
// spec directory named in crid's config, asked for by CDI_devices and by the
// cdi.k8s.io/ annotation, seen from inside the container; an unknown device
// fails CreateContainer and leaves nothing behind.
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "base/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/container_e2e_fixture.h"

namespace crid {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::runtime::v1;

using container_e2e::ContainerEndToEndTest;

class CdiEndToEndTest : public ContainerEndToEndTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(tmp_.Sub("cdi"), 0755).ok());
    ASSERT_TRUE(MakeDirs(tmp_.Sub("cdi-data"), 0755).ok());
    std::ofstream(tmp_.Sub("cdi-data/marker")) << "from-the-host\n";
    std::ofstream(tmp_.Sub("cdi/test.yaml")) << absl::StrCat(R"(cdiVersion: 0.6.0
kind: example.com/test
containerEdits:
  env: [CDI_SPEC_WIDE=yes]
devices:
- name: devnull
  containerEdits:
    env: [CDI_TEST=hello]
    deviceNodes:
    - path: /dev/cdi-null
      hostPath: /dev/null
    mounts:
    - hostPath: )",
                                                             tmp_.Sub("cdi-data"), R"(
      containerPath: /cdi-data
      options: [rbind, ro]
)");
    ContainerEndToEndTest::SetUp();
    if (HasFatalFailure()) {
      return;
    }
    // Again with the spec directory in the config (the fixture writes its
    // own config first).
    crid_->Signal(SIGTERM);
    ASSERT_EQ(crid_->Wait(absl::Seconds(30)), 0) << Log();
    absl::StatusOr<std::string> text = ReadFile(tmp_.Sub("crid.json"));
    ASSERT_TRUE(text.ok());
    nlohmann::json config = nlohmann::json::parse(*text);
    config["container"]["cdiSpecDirs"] = {tmp_.Sub("no-such-dir"), tmp_.Sub("cdi")};
    std::ofstream(tmp_.Sub("crid.json"), std::ios::trunc) << config.dump();
    crid_ = StartCrid();
  }

  v1::ContainerConfig Sleeper(const std::string& name) {
    return ShellContainer(name, "sleep 1000");
  }

  // What the container sees of the device, the env and the mount.
  void ExpectDeviceInside(const std::string& id) {
    int code = -1;
    std::string out = ExecOut(id,
                              "test -c /dev/cdi-null && echo data > /dev/cdi-null && echo dev-ok; "
                              "echo \"env=$CDI_TEST,$CDI_SPEC_WIDE\"; cat /cdi-data/marker; "
                              "touch /cdi-data/new 2>/dev/null || echo mount-ro",
                              &code);
    EXPECT_THAT(out, HasSubstr("dev-ok")) << out;
    EXPECT_THAT(out, HasSubstr("env=hello,yes")) << out;
    EXPECT_THAT(out, HasSubstr("from-the-host")) << out;
    EXPECT_THAT(out, HasSubstr("mount-ro")) << out;
  }
};

TEST_F(CdiEndToEndTest, DeviceFromTheCdiDevicesField) {
  std::string pod = RunPod(PodConfig("cdi-field"));
  v1::ContainerConfig config = Sleeper("c");
  config.add_cdi_devices()->set_name("example.com/test=devnull");
  std::string id = RunContainer(pod, config);
  ExpectDeviceInside(id);
}

TEST_F(CdiEndToEndTest, DeviceFromTheDeprecatedAnnotation) {
  std::string pod = RunPod(PodConfig("cdi-annotation"));
  v1::ContainerConfig config = Sleeper("c");
  (*config.mutable_annotations())["cdi.k8s.io/test-plugin_dev"] = "example.com/test=devnull";
  std::string id = RunContainer(pod, config);
  ExpectDeviceInside(id);
}

TEST_F(CdiEndToEndTest, SpecWrittenWhileCridRunsIsSeen) {
  std::ofstream(tmp_.Sub("cdi/later.json"))
      << R"({"cdiVersion": "0.3.0", "kind": "example.com/later", "devices": [
           {"name": "x", "containerEdits": {"env": ["LATER=1"]}}]})";
  std::string pod = RunPod(PodConfig("cdi-later"));
  v1::ContainerConfig config = Sleeper("c");
  config.add_cdi_devices()->set_name("example.com/later=x");
  std::string id = RunContainer(pod, config);
  EXPECT_THAT(ExecOut(id, "echo later=$LATER"), HasSubstr("later=1"));
}

TEST_F(CdiEndToEndTest, UnknownOrMalformedDeviceCreatesNothing) {
  std::ofstream(tmp_.Sub("cdi/broken.yaml")) << "cdiVersion: 0.6.0\nkind: example.com/broken\n";
  std::string pod = RunPod(PodConfig("cdi-unknown"));
  v1::ContainerConfig config = Sleeper("c");
  config.add_cdi_devices()->set_name("example.com/broken=x");
  std::string id;
  grpc::Status st = Create(pod, config, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("example.com/broken=x"));
  EXPECT_THAT(st.error_message(), HasSubstr(tmp_.Sub("cdi/broken.yaml")));

  v1::ContainerConfig malformed = Sleeper("c");
  (*malformed.mutable_annotations())["cdi.k8s.io/x"] = "devnull";
  st = Create(pod, malformed, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("cdi.k8s.io/x"));

  grpc::ClientContext ctx;
  v1::ListContainersResponse list;
  ASSERT_TRUE(stub_->ListContainers(&ctx, {}, &list).ok());
  EXPECT_EQ(list.containers_size(), 0);
  // The container directories are gone too (TearDown's census checks the rest).
  absl::StatusOr<std::vector<std::string>> dirs = ListDir(tmp_.Sub("root/containers"));
  EXPECT_TRUE(!dirs.ok() || dirs->empty());

  // The working device still works next to the broken file.
  v1::ContainerConfig good = Sleeper("good");
  good.add_cdi_devices()->set_name("example.com/test=devnull");
  ExpectDeviceInside(RunContainer(pod, good));
}

}  // namespace
}  // namespace crid
