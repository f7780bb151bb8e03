// The generated config.json runs for real under runc: user, capabilities,
// readonly rootfs, mounts and resources take effect inside the container.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "container/oci_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::runtime::v1;

constexpr char kRunc[] = "/usr/sbin/runc";
constexpr char kBusybox[] = "/bin/busybox";

// A minimal rootfs: Debian's static busybox with applet links, and a user db.
void MakeRootfs(const std::string& rootfs) {
  ASSERT_TRUE(MakeDirs(rootfs + "/bin", 0755).ok());
  ASSERT_TRUE(MakeDirs(rootfs + "/etc", 0755).ok());
  ASSERT_TRUE(MakeDirs(rootfs + "/tmp", 01777).ok());
  ASSERT_TRUE(MakeDirs(rootfs + "/data", 0755).ok());
  std::string busybox = rootfs + "/bin/busybox";
  std::ifstream in(kBusybox, std::ios::binary);
  std::ofstream out(busybox, std::ios::binary);
  out << in.rdbuf();
  out.close();
  ASSERT_EQ(::chmod(busybox.c_str(), 0755), 0);
  for (const char* applet : {"sh", "id", "cat", "touch", "grep", "echo", "ls", "hostname"}) {
    ASSERT_EQ(::symlink("busybox", (rootfs + "/bin/" + applet).c_str()), 0);
  }
  std::ofstream(rootfs + "/etc/passwd")
      << "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/home:/bin/sh\n";
  std::ofstream(rootfs + "/etc/group") << "root:x:0:\nnogroup:x:65534:\nstaff:x:50:nobody\n";
}

class RuncSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kRunc, X_OK) != 0 || ::access(kBusybox, R_OK) != 0) {
      GTEST_SKIP() << "needs runc and busybox-static (tools/install-deps.sh installs them)";
    }
    MakeRootfs(bundle_.Sub("rootfs"));
    auto* ns = config_.mutable_linux()->mutable_security_context()->mutable_namespace_options();
    ns->set_network(v1::NODE);
    ns->set_ipc(v1::NODE);
    ns->set_pid(v1::CONTAINER);
    config_.mutable_metadata()->set_name("t");
    sandbox_.cgroup_parent = "/crid-spec-test";
    options_.rootfs = bundle_.Sub("rootfs");
    options_.container_id = absl::StrCat("spec-test-", ::getpid());
  }

  void TearDown() override {
    for (const char* controller : {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer",
                                   "blkio", "pids", "systemd", "unified"}) {
      ::rmdir(absl::StrCat("/sys/fs/cgroup/", controller, "/crid-spec-test").c_str());
    }
  }

  // Runs `script` with sh in the container; returns {exit code, stdout+stderr}.
  std::pair<int, std::string> Run(const std::string& script) {
    config_.clear_command();
    config_.add_command("/bin/sh");
    config_.add_command("-c");
    config_.add_command(script);
    absl::StatusOr<nlohmann::json> spec = BuildOciSpec(config_, {}, sandbox_, options_);
    EXPECT_TRUE(spec.ok()) << spec.status();
    if (!spec.ok()) {
      return {-1, ""};
    }
    EXPECT_TRUE(WriteFileAtomic(bundle_.Sub("config.json"), spec->dump(2), 0644).ok());
    std::string output = bundle_.Sub("output");
    std::string cmd =
        absl::StrCat(kRunc, " --root ", bundle_.Sub("runc-state"), " run --bundle ", bundle_.path(),
                     " ", options_.container_id, " >", output, " 2>&1 </dev/null");
    int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(output).value_or("")};
  }

  TempDir bundle_;
  v1::ContainerConfig config_;
  SandboxSpecInfo sandbox_;
  SpecOptions options_;
};

TEST_F(RuncSpecTest, RunsAsTheRequestedUserWithImageGroups) {
  auto* sc = config_.mutable_linux()->mutable_security_context();
  sc->mutable_run_as_user()->set_value(65534);
  sc->add_supplemental_groups(1234);
  auto [code, out] = Run("id -u; id -g; id -G");
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(out, "65534\n65534\n65534 50 1234\n");
}

TEST_F(RuncSpecTest, ReadonlyRootfsRefusesWrites) {
  config_.mutable_linux()->mutable_security_context()->set_readonly_rootfs(true);
  auto [code, out] = Run("touch /newfile");
  EXPECT_NE(code, 0);
  EXPECT_THAT(out, HasSubstr("Read-only file system"));
}

TEST_F(RuncSpecTest, WritableRootfsAcceptsWrites) {
  auto [code, out] = Run("touch /newfile && echo written");
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("written"));
}

TEST_F(RuncSpecTest, DroppedCapabilityIsGone) {
  auto* caps = config_.mutable_linux()->mutable_security_context()->mutable_capabilities();
  caps->add_drop_capabilities("CHOWN");
  auto [code, out] = Run("touch /f && chown 65534 /f");
  EXPECT_NE(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("Operation not permitted"));
}

TEST_F(RuncSpecTest, VolumeIsMountedReadOnly) {
  TempDir host;
  std::ofstream(host.Sub("hello")) << "from host\n";
  v1::Mount* m = config_.add_mounts();
  m->set_container_path("/data");
  m->set_host_path(host.path());
  m->set_readonly(true);
  auto [code, out] = Run("cat /data/hello; touch /data/x");
  EXPECT_NE(code, 0);
  EXPECT_THAT(out, HasSubstr("from host"));
  EXPECT_THAT(out, HasSubstr("Read-only file system"));
}

TEST_F(RuncSpecTest, MemoryLimitLandsInTheCgroup) {
  config_.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(64 << 20);
  auto [code, out] = Run("cat /sys/fs/cgroup/memory/memory.limit_in_bytes");
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(out, absl::StrCat(64 << 20, "\n"));
}

TEST_F(RuncSpecTest, RuntimeDefaultSeccompBlocksSethostnameWithoutSysAdmin) {
  auto* sc = config_.mutable_linux()->mutable_security_context();
  sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  // A new UTS namespace, so a successful sethostname would not touch the host.
  auto* ns = sc->mutable_namespace_options();
  ns->set_network(v1::POD);
  sandbox_.netns_path.clear();
  auto [code, out] = Run("hostname crid-test-name");
  EXPECT_NE(code, 0) << out;
  sc->mutable_capabilities()->add_add_capabilities("SYS_ADMIN");
  auto [admin_code, admin_out] = Run("hostname crid-test-name && hostname");
  EXPECT_EQ(admin_code, 0) << admin_out;
  EXPECT_THAT(admin_out, HasSubstr("crid-test-name"));
}

}  // namespace
}  // namespace crid
