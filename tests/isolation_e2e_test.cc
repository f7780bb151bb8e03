// End to end through the real crid, crid-shim, crid-pause and runc: pods with
// their own user namespace (kubelet's hostUsers: false) and recursive
// read-only volumes, as Status advertises them.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
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

constexpr uint32_t kHostUid = 300000;
constexpr uint32_t kHostGid = 400000;

class IsolationEndToEndTest : public ContainerEndToEndTest {
 protected:
  void SetUp() override {
    // As /var/lib: a pod's root (an unprivileged host user) must pass through
    // crid's root directory to reach its rootfs.
    ASSERT_EQ(::chmod(tmp_.path().c_str(), 0711), 0);
    ContainerEndToEndTest::SetUp();
  }

  v1::RuntimeHandlerFeatures DefaultHandlerFeatures() {
    grpc::ClientContext ctx;
    v1::StatusResponse status;
    grpc::Status st = stub_->Status(&ctx, {}, &status);
    EXPECT_TRUE(st.ok()) << st.error_message();
    for (const v1::RuntimeHandler& h : status.runtime_handlers()) {
      if (h.name().empty()) {
        return h.features();
      }
    }
    ADD_FAILURE() << "no default handler in Status";
    return {};
  }

  v1::PodSandboxConfig UserNamespacePod(const std::string& name, v1::NamespaceMode pid) {
    v1::PodSandboxConfig config = PodConfig(name);
    auto* ns = config.mutable_linux()->mutable_security_context()->mutable_namespace_options();
    ns->set_pid(pid);
    v1::UserNamespace* userns = ns->mutable_userns_options();
    userns->set_mode(v1::POD);
    v1::IDMapping* uids = userns->add_uids();
    uids->set_host_id(kHostUid);
    uids->set_length(65536);
    v1::IDMapping* gids = userns->add_gids();
    gids->set_host_id(kHostGid);
    gids->set_length(65536);
    return config;
  }

  // A container of the pod, with the pod's namespace options (as kubelet sends).
  v1::ContainerConfig PodContainer(const v1::PodSandboxConfig& pod, const std::string& name,
                                   const std::string& script) {
    v1::ContainerConfig config = ShellContainer(name, script);
    *config.mutable_linux()->mutable_security_context()->mutable_namespace_options() =
        pod.linux().security_context().namespace_options();
    return config;
  }

  // Field `key` of /proc/PID/status, e.g. "Uid".
  static std::string ProcStatus(int64_t pid, const std::string& key) {
    std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
    std::string line;
    while (std::getline(in, line)) {
      if (absl::StartsWith(line, key + ":")) {
        return line.substr(key.size() + 1);
      }
    }
    return "";
  }
};

// The pod's root is an unprivileged host uid, while the image's files appear
// owned by root inside; what it writes lands in its writable layer under its
// host IDs; its namespaces are its own. Both with and without a shared PID
// namespace (crid-pause then creates the user namespace).
TEST_F(IsolationEndToEndTest, UserNamespacePodIsRootInsideAndUnprivilegedOutside) {
  ASSERT_TRUE(DefaultHandlerFeatures().user_namespaces());
  for (v1::NamespaceMode pid : {v1::CONTAINER, v1::POD}) {
    SCOPED_TRACE(v1::NamespaceMode_Name(pid));
    std::string name = absl::StrCat("userns-", absl::AsciiStrToLower(v1::NamespaceMode_Name(pid)));
    v1::PodSandboxConfig pod_config = UserNamespacePod(name, pid);
    std::string pod = RunPod(pod_config);
    std::string id = RunContainer(pod, PodContainer(pod_config, "app", "sleep 1000"));

    EXPECT_THAT(ExecOut(id, "cat /proc/self/uid_map"),
                ::testing::ContainsRegex(absl::StrCat("^ *0 +", kHostUid, " +65536\n$")));
    EXPECT_THAT(ExecOut(id, "cat /proc/self/gid_map"),
                ::testing::ContainsRegex(absl::StrCat("^ *0 +", kHostGid, " +65536\n$")));
    EXPECT_EQ(ExecOut(id, "id -u; id -g"), "0\n0\n");
    EXPECT_EQ(ExecOut(id, "stat -c %u:%g /bin/busybox /etc"), "0:0\n0:0\n")
        << "the image's files are root's inside";
    int code = 0;
    ExecOut(id, "echo written > /etc/new-file && echo more >> /bin/busybox-copy", &code);
    EXPECT_EQ(code, 0) << "root of the pod may write its rootfs";
    EXPECT_EQ(ExecOut(id, "hostname"), name + "\n") << "the UTS namespace is the pod's";

    nlohmann::json info = nlohmann::json::parse(Status(id, true).info().at("info"));
    const int64_t pid_on_host = info["pid"].get<int64_t>();
    EXPECT_THAT(ProcStatus(pid_on_host, "Uid"),
                ::testing::ContainsRegex(absl::StrCat("^\\s*", kHostUid, "\\s")));
    EXPECT_THAT(ProcStatus(pid_on_host, "Gid"),
                ::testing::ContainsRegex(absl::StrCat("^\\s*", kHostGid, "\\s")));
    struct stat st;
    const std::string upper = info["bundle"].get<std::string>() + "/upper";
    ASSERT_EQ(::stat((upper + "/etc/new-file").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, kHostUid);
    EXPECT_EQ(st.st_gid, kHostGid);
    ASSERT_EQ(::stat(upper.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, kHostUid);

    // sysfs mounts only where the network namespace belongs to the
    // container's user namespace.
    EXPECT_THAT(ExecOut(id, "ls /sys/class/net"), HasSubstr("lo"));
  }
}

// A user-namespaced pod on the host network (kubelet's
// UserNamespacesHostNetworkSupport): Status offers it, the containers are
// root inside and unprivileged outside as in any user-namespaced pod, see the
// host's interfaces, and have the host's /sys read-only (the kernel lets only
// the network namespace's owner mount a sysfs).
TEST_F(IsolationEndToEndTest, UserNamespacePodOnTheHostNetwork) {
  ASSERT_TRUE(DefaultHandlerFeatures().user_namespaces());
  {
    grpc::ClientContext ctx;
    v1::StatusResponse status;
    ASSERT_TRUE(stub_->Status(&ctx, {}, &status).ok());
    EXPECT_TRUE(status.features().user_namespaces_host_network());
  }
  v1::PodSandboxConfig pod_config = UserNamespacePod("userns-hostnet", v1::CONTAINER);
  pod_config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
      v1::NODE);
  std::string pod = RunPod(pod_config);
  std::string id = RunContainer(pod, PodContainer(pod_config, "app", "sleep 1000"));

  EXPECT_THAT(ExecOut(id, "cat /proc/self/uid_map"),
              ::testing::ContainsRegex(absl::StrCat("^ *0 +", kHostUid, " +65536\n$")));
  EXPECT_EQ(ExecOut(id, "id -u"), "0\n");
  char host_net[64] = {};
  ASSERT_GT(::readlink("/proc/self/ns/net", host_net, sizeof(host_net) - 1), 0);
  EXPECT_EQ(ExecOut(id, "readlink /proc/self/ns/net"), absl::StrCat(host_net, "\n"))
      << "the container is on the host's network";
  EXPECT_THAT(ExecOut(id, "ls /sys/class/net"), HasSubstr("lo"));
  EXPECT_THAT(ExecOut(id, "awk '$2 == \"/sys\" {print $3, $4}' /proc/self/mounts"),
              ::testing::StartsWith("sysfs ro,"))
      << "the host's sysfs, bound read-only";
  EXPECT_EQ(ExecOut(id, "stat -c %u /etc/hosts"), "0\n") << "the pod's files are still idmapped";

  nlohmann::json info = nlohmann::json::parse(Status(id, true).info().at("info"));
  EXPECT_THAT(ProcStatus(info["pid"].get<int64_t>(), "Uid"),
              ::testing::ContainsRegex(absl::StrCat("^\\s*", kHostUid, "\\s")));
  ASSERT_TRUE(Stop(id, 0).ok());
  ASSERT_TRUE(Remove(id).ok());
}

// How many mounts of this process's namespace (crid's) have `needle` in
// their mount point.
int MountsUnder(const std::string& needle) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    n += absl::StrContains(line, needle) ? 1 : 0;
  }
  return n;
}

// As kubelet expects of a runtime with user namespaces: a hostPath volume and
// the pod's hosts, resolv.conf and hostname are idmapped into the pod's
// namespace, so host root's files are root's inside (not nobody's) and root
// inside writes them as host root. A volume whose filesystem cannot be
// idmapped is refused, with nothing left mounted.
TEST_F(IsolationEndToEndTest, UserNamespaceVolumesAreIdmapped) {
  ASSERT_TRUE(DefaultHandlerFeatures().user_namespaces());
  const std::string volume = tmp_.Sub("userns-volume");
  ASSERT_TRUE(MakeDirs(volume, 0755).ok());
  std::ofstream(volume + "/owned-by-host-root") << "host";
  v1::PodSandboxConfig pod_config = UserNamespacePod("userns-volumes", v1::CONTAINER);
  std::string pod = RunPod(pod_config);
  v1::ContainerConfig config = PodContainer(pod_config, "app", "sleep 1000");
  v1::Mount* rw = config.add_mounts();
  rw->set_host_path(volume);
  rw->set_container_path("/data");
  v1::Mount* ro = config.add_mounts();
  ro->set_host_path(volume);
  ro->set_container_path("/data-ro");
  ro->set_readonly(true);
  std::string id = RunContainer(pod, config);

  EXPECT_EQ(ExecOut(id,
                    "stat -c %u:%g /data/owned-by-host-root /data /etc/hosts /etc/resolv.conf "
                    "/etc/hostname"),
            "0:0\n0:0\n0:0\n0:0\n0:0\n");
  int code = 0;
  ExecOut(id, "echo from-pod > /data/written && cat /data/owned-by-host-root >> /etc/hosts", &code);
  EXPECT_EQ(code, 0) << "root of the pod may write a writable volume and its pod files";
  struct stat st;
  ASSERT_EQ(::stat((volume + "/written").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "root inside writes as host root through the idmapped mount";
  EXPECT_EQ(st.st_gid, 0u);
  ExecOut(id, "touch /data-ro/nope", &code);
  EXPECT_NE(code, 0) << "a read-only volume stays read-only";
  EXPECT_GT(MountsUnder("/idmapped/"), 0);

  // /proc cannot be idmapped: refused, naming the mount, nothing left behind.
  const int mounts_before = MountsUnder("/idmapped/");
  v1::ContainerConfig bad = PodContainer(pod_config, "bad", "sleep 1000");
  *bad.add_mounts() = *rw;
  v1::Mount* proc = bad.add_mounts();
  proc->set_host_path("/proc/self/fdinfo");
  proc->set_container_path("/host-proc");
  std::string bad_id;
  grpc::Status failed = Create(pod, bad, &bad_id);
  EXPECT_EQ(failed.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(failed.error_message(), HasSubstr("mounts: /host-proc"));
  EXPECT_EQ(MountsUnder("/idmapped/"), mounts_before) << "the failed create left mounts";

  ASSERT_TRUE(Stop(id, 0).ok());
  ASSERT_TRUE(Remove(id).ok());
  EXPECT_EQ(MountsUnder("/idmapped/"), 0);
  EXPECT_EQ(ReadFile(volume + "/owned-by-host-root").value_or(""), "host")
      << "removing the container leaves the volume's files";
  EXPECT_EQ(ReadFile(volume + "/written").value_or(""), "from-pod\n");
}

TEST_F(IsolationEndToEndTest, UnsupportedUserNamespaceRequestsAreRefused) {
  v1::PodSandboxConfig two = UserNamespacePod("two-ranges", v1::CONTAINER);
  *two.mutable_linux()
       ->mutable_security_context()
       ->mutable_namespace_options()
       ->mutable_userns_options()
       ->add_uids() = two.linux().security_context().namespace_options().userns_options().uids(0);
  grpc::ClientContext ctx;
  v1::RunPodSandboxRequest req;
  *req.mutable_config() = two;
  v1::RunPodSandboxResponse resp;
  grpc::Status st = stub_->RunPodSandbox(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("userns_options.uids: exactly one mapping"));

  // A container cannot ask for another user namespace than its pod's.
  v1::PodSandboxConfig pod_config = UserNamespacePod("mismatch", v1::CONTAINER);
  std::string pod = RunPod(pod_config);
  v1::ContainerConfig other = PodContainer(pod_config, "other", "sleep 1000");
  other.mutable_linux()
      ->mutable_security_context()
      ->mutable_namespace_options()
      ->mutable_userns_options()
      ->mutable_uids(0)
      ->set_host_id(500000);
  std::string id;
  st = Create(pod, other, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("userns_options: must be the pod sandbox's"));
}

// A read-only volume with a tmpfs mounted inside it: only the recursive
// read-only mount makes the tmpfs read-only too.
TEST_F(IsolationEndToEndTest, RecursiveReadOnlyVolumeCoversItsSubmounts) {
  ASSERT_TRUE(DefaultHandlerFeatures().recursive_read_only_mounts());
  const std::string volume = tmp_.Sub("volume");
  ASSERT_TRUE(MakeDirs(volume + "/tmpfs", 0755).ok());
  ASSERT_EQ(::mount("none", (volume + "/tmpfs").c_str(), "tmpfs", 0, nullptr), 0);
  absl::Cleanup unmount = [&] { ::umount2((volume + "/tmpfs").c_str(), MNT_DETACH); };

  std::string pod = RunPod(PodConfig("rro"));
  auto with_volume = [&](const std::string& name, bool recursive) {
    v1::ContainerConfig config = ShellContainer(name, "sleep 1000");
    v1::Mount* m = config.add_mounts();
    m->set_host_path(volume);
    m->set_container_path("/mnt");
    m->set_readonly(true);
    m->set_recursive_read_only(recursive);
    return config;
  };
  int code = 0;
  std::string plain = RunContainer(pod, with_volume("plain", false));
  ExecOut(plain, "touch /mnt/tmpfs/from-plain", &code);
  EXPECT_EQ(code, 0) << "a non-recursive read-only volume leaves its submounts writable";
  ExecOut(plain, "touch /mnt/top", &code);
  EXPECT_NE(code, 0);

  std::string recursive = RunContainer(pod, with_volume("recursive", true));
  EXPECT_THAT(ExecOut(recursive, "touch /mnt/tmpfs/from-rro 2>&1", &code),
              HasSubstr("Read-only file system"));
  EXPECT_NE(code, 0);

  // As kubelet and containerd: only on a read-only, private volume.
  v1::ContainerConfig writable = with_volume("writable", true);
  writable.mutable_mounts(0)->set_readonly(false);
  std::string id;
  grpc::Status st = Create(pod, writable, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(),
              HasSubstr("mounts.recursive_read_only: requires mounts.readonly"));
  v1::ContainerConfig shared = with_volume("shared", true);
  shared.mutable_mounts(0)->set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
  st = Create(pod, shared, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("requires mounts.propagation PROPAGATION_PRIVATE"));
}

}  // namespace
}  // namespace crid
