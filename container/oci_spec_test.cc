// CRI ContainerConfig -> OCI config.json: Kubernetes' command/env/user rules,
// mounts, namespaces, resources and security, and clear errors naming fields.
#include "container/oci_spec.h"

#include <unistd.h>

#include <fstream>

#include "base/fs.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using json = nlohmann::json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
namespace v1 = ::runtime::v1;

class OciSpecTest : public ::testing::Test {
 protected:
  OciSpecTest() {
    EXPECT_TRUE(MakeDirs(rootfs_.Sub("etc"), 0755).ok());
    std::ofstream(rootfs_.Sub("etc/passwd"))
        << "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n";
    std::ofstream(rootfs_.Sub("etc/group")) << "root:x:0:\nnogroup:x:65534:\n";
    image_.entrypoint = {"/entry"};
    image_.cmd = {"default-arg"};
    image_.env = {"PATH=/bin", "FROM_IMAGE=1", "OVERRIDE=image"};
    sandbox_.id = "pod1";
    sandbox_.name = "web";
    sandbox_.namespace_ = "default";
    sandbox_.uid = "uid-1";
    sandbox_.netns_path = "/run/netns/pod1";
    sandbox_.ipc_ns_path = "/run/crid/ns/pod1/ipc";
    sandbox_.uts_ns_path = "/run/crid/ns/pod1/uts";
    sandbox_.pid_ns_path = "/proc/42/ns/pid";
    sandbox_.hostname_file = "/run/crid/pods/pod1/hostname";
    sandbox_.hosts_file = "/run/crid/pods/pod1/hosts";
    sandbox_.resolv_conf_file = "/run/crid/pods/pod1/resolv.conf";
    sandbox_.shm_path = "/run/crid/pods/pod1/shm";
    sandbox_.cgroup_parent = "/kubepods/besteffort/poduid-1";
    options_.container_id = "c1";
    options_.rootfs = rootfs_.path();
    options_.image_name = "docker.io/library/busybox:latest";
    config_.mutable_metadata()->set_name("app");
  }

  absl::StatusOr<json> Build() { return BuildOciSpec(config_, image_, sandbox_, options_); }

  json BuildOk() {
    absl::StatusOr<json> spec = Build();
    EXPECT_TRUE(spec.ok()) << spec.status();
    return spec.ok() ? *spec : json::object();
  }

  static const json* FindMount(const json& spec, const std::string& destination) {
    for (const json& m : spec["mounts"]) {
      if (m["destination"] == destination) {
        return &m;
      }
    }
    return nullptr;
  }

  static const json* FindNamespace(const json& spec, const std::string& type) {
    for (const json& ns : spec["linux"]["namespaces"]) {
      if (ns["type"] == type) {
        return &ns;
      }
    }
    return nullptr;
  }

  TempDir rootfs_;
  v1::ContainerConfig config_;
  ImageProcessConfig image_;
  SandboxSpecInfo sandbox_;
  SpecOptions options_;
};

TEST_F(OciSpecTest, CommandRulesFollowKubernetes) {
  EXPECT_THAT(ContainerArgs(config_, image_), ElementsAre("/entry", "default-arg"));
  config_.add_args("x");
  EXPECT_THAT(ContainerArgs(config_, image_), ElementsAre("/entry", "x"));
  config_.add_command("/bin/sh");
  EXPECT_THAT(ContainerArgs(config_, image_), ElementsAre("/bin/sh", "x"));
}

TEST_F(OciSpecTest, NoCommandAtAllIsInvalid) {
  image_.entrypoint.clear();
  image_.cmd.clear();
  auto spec = Build();
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("command"));
}

TEST_F(OciSpecTest, EnvMergesImageThenContainerAndAddsHome) {
  v1::KeyValue* kv = config_.add_envs();
  kv->set_key("OVERRIDE");
  kv->set_value("container");
  kv = config_.add_envs();
  kv->set_key("BINARY");
  kv->set_value(std::string("a\xff", 2));
  json spec = BuildOk();
  EXPECT_THAT(spec["process"]["env"].get<std::vector<std::string>>(),
              ElementsAre("PATH=/bin", "FROM_IMAGE=1", "OVERRIDE=container",
                          std::string("BINARY=a\xff", 9), "HOME=/root"));
}

TEST_F(OciSpecTest, DefaultPathWhenImageHasNone) {
  image_.env.clear();
  json spec = BuildOk();
  EXPECT_THAT(spec["process"]["env"][0].get<std::string>(), HasSubstr("PATH=/usr/local/sbin"));
}

TEST_F(OciSpecTest, UserFromSecurityContextAndImageDatabase) {
  auto* sc = config_.mutable_linux()->mutable_security_context();
  sc->mutable_run_as_user()->set_value(65534);
  sandbox_.linux.mutable_security_context()->add_supplemental_groups(1234);
  json spec = BuildOk();
  EXPECT_EQ(spec["process"]["user"]["uid"], 65534);
  EXPECT_EQ(spec["process"]["user"]["gid"], 65534);
  EXPECT_THAT(spec["process"]["user"]["additionalGids"].get<std::vector<uint32_t>>(),
              ElementsAre(1234));
  EXPECT_THAT(spec["process"]["env"].get<std::vector<std::string>>(),
              Contains("HOME=/nonexistent"));
}

TEST_F(OciSpecTest, RunAsGroupWithoutUserIsInvalid) {
  config_.mutable_linux()->mutable_security_context()->mutable_run_as_group()->set_value(3);
  auto spec = Build();
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("run_as_group"));
}

TEST_F(OciSpecTest, WorkingDirFromConfigThenImage) {
  EXPECT_EQ(BuildOk()["process"]["cwd"], "/");
  image_.working_dir = "/srv";
  EXPECT_EQ(BuildOk()["process"]["cwd"], "/srv");
  config_.set_working_dir("/tmp");
  EXPECT_EQ(BuildOk()["process"]["cwd"], "/tmp");
  config_.set_working_dir("relative");
  EXPECT_THAT(std::string(Build().status().message()), HasSubstr("working_dir"));
}

TEST_F(OciSpecTest, PodFilesAndDefaultMounts) {
  json spec = BuildOk();
  for (const char* dest : {"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}) {
    EXPECT_NE(FindMount(spec, dest), nullptr) << dest;
  }
  const json* hosts = FindMount(spec, "/etc/hosts");
  ASSERT_NE(hosts, nullptr);
  EXPECT_EQ((*hosts)["source"], sandbox_.hosts_file);
  const json* shm = FindMount(spec, "/dev/shm");
  ASSERT_NE(shm, nullptr);
  EXPECT_EQ((*shm)["source"], sandbox_.shm_path);
  EXPECT_THAT((*FindMount(spec, "/sys"))["options"].get<std::vector<std::string>>(),
              Contains("ro"));
}

TEST_F(OciSpecTest, VolumesBindWithPropagationAndResolveSymlinks) {
  TempDir host;
  ASSERT_TRUE(MakeDirs(host.Sub("real"), 0755).ok());
  ASSERT_EQ(::symlink(host.Sub("real").c_str(), host.Sub("link").c_str()), 0);
  v1::Mount* m = config_.add_mounts();
  m->set_container_path("/data");
  m->set_host_path(host.Sub("link"));
  m->set_readonly(true);
  m->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
  v1::Mount* created = config_.add_mounts();
  created->set_container_path("/data/new");
  created->set_host_path(host.Sub("missing/dir"));
  json spec = BuildOk();
  const json* data = FindMount(spec, "/data");
  ASSERT_NE(data, nullptr);
  EXPECT_EQ((*data)["source"], host.Sub("real"));
  EXPECT_THAT((*data)["options"].get<std::vector<std::string>>(),
              ElementsAre("rbind", "rslave", "ro"));
  EXPECT_EQ(spec["linux"]["rootfsPropagation"], "rslave");
  EXPECT_NE(FindMount(spec, "/data/new"), nullptr);
  EXPECT_TRUE(MakeDirs(host.Sub("missing/dir"), 0755).ok()) << "host path was created";
}

TEST_F(OciSpecTest, VolumeOverridesPodFile) {
  v1::Mount* m = config_.add_mounts();
  m->set_container_path("/etc/hosts");
  m->set_host_path("/etc/hosts");
  json spec = BuildOk();
  EXPECT_EQ((*FindMount(spec, "/etc/hosts"))["source"], "/etc/hosts");
}

// cri-api v0.37's Mount.mount_options: noexec, nodev, nosuid pass to the OCI
// bind mount; anything else is refused before the host path is touched.
TEST_F(OciSpecTest, MountOptionsRestrictTheBindMount) {
  v1::Mount* m = config_.add_mounts();
  m->set_container_path("/data");
  m->set_host_path("/tmp");
  m->add_mount_options("noexec");
  m->add_mount_options("nosuid");
  m->add_mount_options("nodev");
  json spec = BuildOk();
  const json* data = FindMount(spec, "/data");
  ASSERT_NE(data, nullptr);
  EXPECT_THAT((*data)["options"], Contains("noexec"));
  EXPECT_THAT((*data)["options"], Contains("nosuid"));
  EXPECT_THAT((*data)["options"], Contains("nodev"));
  EXPECT_THAT((*data)["options"], Contains("rbind"));

  m->add_mount_options("exec");
  absl::StatusOr<json> refused = Build();
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("mounts.mount_options: \"exec\" is not one of noexec, nodev, nosuid"));
}

TEST_F(OciSpecTest, BadVolumesNameTheField) {
  v1::Mount* m = config_.add_mounts();
  m->set_container_path("relative");
  m->set_host_path("/tmp");
  EXPECT_THAT(std::string(Build().status().message()), HasSubstr("mounts.container_path"));
  m->set_container_path("/x");
  m->set_recursive_read_only(true);
  EXPECT_THAT(std::string(Build().status().message()), HasSubstr("recursive_read_only"));
}

// As kubelet and containerd: rro only on a read-only, rprivate volume, and only
// when the OCI runtime applies it.
TEST_F(OciSpecTest, RecursiveReadOnlyVolumeGetsRroOption) {
  v1::Mount* m = config_.add_mounts();
  m->set_container_path("/data");
  m->set_host_path("/tmp");
  m->set_readonly(true);
  m->set_recursive_read_only(true);
  absl::StatusOr<json> refused = Build();
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("mounts.recursive_read_only: not supported by the OCI runtime"));

  options_.recursive_read_only_mounts = true;
  json spec = BuildOk();
  const json* data = FindMount(spec, "/data");
  ASSERT_NE(data, nullptr);
  EXPECT_THAT((*data)["options"], Contains("rro"));
  EXPECT_THAT((*data)["options"], Contains("ro"));
  EXPECT_THAT((*data)["options"], Contains("rprivate"));

  m->set_recursive_read_only(false);
  spec = BuildOk();
  EXPECT_THAT((*FindMount(spec, "/data"))["options"], Not(Contains("rro")));
}

TEST_F(OciSpecTest, RecursiveReadOnlyNeedsReadOnlyAndPrivatePropagation) {
  options_.recursive_read_only_mounts = true;
  v1::Mount* m = config_.add_mounts();
  m->set_container_path("/data");
  m->set_host_path("/tmp");
  m->set_recursive_read_only(true);
  absl::StatusOr<json> spec = Build();
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(spec.status().message()),
              HasSubstr("mounts.recursive_read_only: requires mounts.readonly"));
  m->set_readonly(true);
  for (v1::MountPropagation p :
       {v1::PROPAGATION_HOST_TO_CONTAINER, v1::PROPAGATION_BIDIRECTIONAL}) {
    m->set_propagation(p);
    spec = Build();
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(spec.status().message()),
                HasSubstr("requires mounts.propagation PROPAGATION_PRIVATE"));
  }
}

void SetUserNamespace(v1::NamespaceOption* ns, uint32_t host_id) {
  v1::UserNamespace* userns = ns->mutable_userns_options();
  userns->set_mode(v1::POD);
  for (v1::IDMapping* m : {userns->add_uids(), userns->add_gids()}) {
    m->set_container_id(0);
    m->set_host_id(host_id);
    m->set_length(65536);
  }
}

// A container of a pod with a user namespace joins it, with the pod's
// mappings (runc needs them to know root's host IDs).
TEST_F(OciSpecTest, ContainerJoinsThePodsUserNamespace) {
  SetUserNamespace(sandbox_.linux.mutable_security_context()->mutable_namespace_options(), 1000);
  sandbox_.userns_path = "/run/crid/ns/pod1/user";
  SetUserNamespace(config_.mutable_linux()->mutable_security_context()->mutable_namespace_options(),
                   1000);
  json spec = BuildOk();
  const json* user = FindNamespace(spec, "user");
  ASSERT_NE(user, nullptr);
  EXPECT_EQ((*user)["path"], "/run/crid/ns/pod1/user");
  json mapping = {{"containerID", 0}, {"hostID", 1000}, {"size", 65536}};
  EXPECT_EQ(spec["linux"]["uidMappings"], json::array({mapping}));
  EXPECT_EQ(spec["linux"]["gidMappings"], json::array({mapping}));

  // Without its own userns_options (other clients) it still joins the pod's.
  config_.mutable_linux()
      ->mutable_security_context()
      ->mutable_namespace_options()
      ->clear_userns_options();
  EXPECT_NE(FindNamespace(BuildOk(), "user"), nullptr);

  // Different mappings than the pod's cannot be had.
  SetUserNamespace(config_.mutable_linux()->mutable_security_context()->mutable_namespace_options(),
                   2000);
  absl::StatusOr<json> refused = Build();
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("namespace_options.userns_options: must be the pod sandbox's"));
}

TEST_F(OciSpecTest, NoUserNamespaceWithoutThePods) {
  json spec = BuildOk();
  EXPECT_EQ(FindNamespace(spec, "user"), nullptr);
  EXPECT_FALSE(spec["linux"].contains("uidMappings"));
  SetUserNamespace(config_.mutable_linux()->mutable_security_context()->mutable_namespace_options(),
                   1000);
  EXPECT_THAT(std::string(Build().status().message()),
              HasSubstr("the pod sandbox has no user namespace"));
}

// kubelet sends a zero limit for every page size the pod does not request.
TEST_F(OciSpecTest, ZeroHugepageLimitsNeedNoController) {
  auto* r = config_.mutable_linux()->mutable_resources();
  for (const char* size : {"2MB", "1GB"}) {
    auto* h = r->add_hugepage_limits();
    h->set_page_size(size);
    h->set_limit(0);
  }
  auto spec = Build();
  ASSERT_TRUE(spec.ok()) << spec.status();
  const json& resources = (*spec)["linux"]["resources"];
  if (HugetlbControllerAvailable()) {
    EXPECT_EQ(resources["hugepageLimits"].size(), 2u);
  } else {
    EXPECT_FALSE(resources.contains("hugepageLimits")) << resources.dump();
    r->mutable_hugepage_limits(0)->set_limit(2 << 20);
    EXPECT_EQ(Build().status().code(), absl::StatusCode::kFailedPrecondition);
  }
}

// Image volumes arrive mounted (container/image_volume.h): the spec binds the
// mount read-only, with the options asked for; one not mounted is a bug.
TEST_F(OciSpecTest, ImageVolumesBindWhatTheManagerMounted) {
  v1::Mount* m = config_.add_mounts();
  m->set_container_path("/data");
  m->set_readonly(true);
  m->mutable_image()->set_image("registry.example/data:1");
  EXPECT_EQ(Build().status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(Build().status().message()), HasSubstr("mounts.image"));

  m->set_host_path("/tmp");
  m->mutable_image()->set_image_ref("sha256:0123");
  m->add_mount_options("noexec");
  json spec = BuildOk();
  const json* data = FindMount(spec, "/data");
  ASSERT_NE(data, nullptr);
  EXPECT_EQ((*data)["source"], "/tmp");
  EXPECT_THAT((*data)["options"], Contains("ro"));
  EXPECT_THAT((*data)["options"], Contains("noexec"));

  m->set_readonly(false);
  EXPECT_THAT(std::string(Build().status().message()), HasSubstr("mounts.readonly"));
}

TEST_F(OciSpecTest, NamespacesJoinThePod) {
  auto* ns = config_.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_pid(v1::CONTAINER);
  json spec = BuildOk();
  EXPECT_EQ((*FindNamespace(spec, "network"))["path"], sandbox_.netns_path);
  EXPECT_EQ((*FindNamespace(spec, "ipc"))["path"], sandbox_.ipc_ns_path);
  EXPECT_EQ((*FindNamespace(spec, "uts"))["path"], sandbox_.uts_ns_path);
  EXPECT_FALSE(FindNamespace(spec, "pid")->contains("path"));
  EXPECT_EQ(spec.count("hostname"), 0u) << "the pod's UTS namespace carries the hostname";
}

TEST_F(OciSpecTest, PidModes) {
  auto* ns = config_.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_pid(v1::POD);
  sandbox_.pid_ns_path.clear();
  EXPECT_EQ(Build().status().code(), absl::StatusCode::kFailedPrecondition);
  sandbox_.pid_ns_path = "/proc/42/ns/pid";
  EXPECT_EQ((*FindNamespace(BuildOk(), "pid"))["path"], "/proc/42/ns/pid");
  ns->set_pid(v1::NODE);
  EXPECT_EQ(FindNamespace(BuildOk(), "pid"), nullptr);
  ns->set_pid(v1::TARGET);
  ns->set_target_id("other");
  EXPECT_THAT(std::string(Build().status().message()), HasSubstr("target_id"));
  options_.target_pid_ns_path = "/proc/43/ns/pid";
  EXPECT_EQ((*FindNamespace(BuildOk(), "pid"))["path"], "/proc/43/ns/pid");
}

TEST_F(OciSpecTest, HostNetworkAndIpc) {
  auto* ns = config_.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_network(v1::NODE);
  ns->set_ipc(v1::NODE);
  ns->set_pid(v1::CONTAINER);
  sandbox_.uts_ns_path.clear();
  json spec = BuildOk();
  EXPECT_EQ(FindNamespace(spec, "network"), nullptr);
  EXPECT_EQ(FindNamespace(spec, "ipc"), nullptr);
  EXPECT_EQ(FindNamespace(spec, "uts"), nullptr);
}

TEST_F(OciSpecTest, HostNetworkAndIpcOfThePodAlone) {
  // Only the pod says NODE (as crictl and critest send it): the container
  // still shares the host's network and IPC, never a fresh empty namespace.
  auto* pod_ns = sandbox_.linux.mutable_security_context()->mutable_namespace_options();
  pod_ns->set_network(v1::NODE);
  pod_ns->set_ipc(v1::NODE);
  sandbox_.netns_path.clear();
  sandbox_.ipc_ns_path.clear();
  sandbox_.uts_ns_path.clear();
  json spec = BuildOk();
  EXPECT_EQ(FindNamespace(spec, "network"), nullptr);
  EXPECT_EQ(FindNamespace(spec, "ipc"), nullptr);
  EXPECT_EQ(FindNamespace(spec, "uts"), nullptr);
}

TEST_F(OciSpecTest, HostIpcPodSeesTheHostsShm) {
  // As containerd: no pod tmpfs, the host's /dev/shm bound in.
  auto* pod_ns = sandbox_.linux.mutable_security_context()->mutable_namespace_options();
  pod_ns->set_ipc(v1::NODE);
  sandbox_.ipc_ns_path.clear();
  sandbox_.shm_path.clear();
  json spec = BuildOk();
  const json* shm = FindMount(spec, "/dev/shm");
  ASSERT_NE(shm, nullptr);
  EXPECT_EQ((*shm)["type"], "bind");
  EXPECT_EQ((*shm)["source"], "/dev/shm");
  EXPECT_THAT((*shm)["options"], Contains("rw"));

  // A pod of its own IPC namespace keeps its tmpfs.
  pod_ns->set_ipc(v1::POD);
  sandbox_.shm_path = "/run/crid/pods/pod1/shm";
  sandbox_.ipc_ns_path = "/run/crid/ns/pod1/ipc";
  EXPECT_EQ((*FindMount(BuildOk(), "/dev/shm"))["source"], sandbox_.shm_path);
}

TEST_F(OciSpecTest, CgroupNamespaceOnlyOnUnifiedHosts) {
  sandbox_.linux.mutable_security_context()->set_privileged(true);
  options_.cgroup_unified = false;  // this host: v1 (hybrid)
  json spec = BuildOk();
  EXPECT_EQ(FindNamespace(spec, "cgroup"), nullptr);

  options_.cgroup_unified = true;
  spec = BuildOk();
  const json* cgroup = FindNamespace(spec, "cgroup");
  ASSERT_NE(cgroup, nullptr);
  EXPECT_FALSE(cgroup->contains("path")) << "a new one, not the pod's";

  config_.mutable_linux()->mutable_security_context()->set_privileged(true);
  spec = BuildOk();
  EXPECT_EQ(FindNamespace(spec, "cgroup"), nullptr) << "privileged: the host's view";
}

TEST_F(OciSpecTest, SELinuxLabels) {
  sandbox_.linux.mutable_security_context()->mutable_selinux_options()->set_level("s0:c3,c4");
  json spec = BuildOk();  // this host: no SELinux, nothing written
  EXPECT_FALSE(spec["process"].contains("selinuxLabel"));
  EXPECT_FALSE(spec["linux"].contains("mountLabel"));

  options_.selinux.enabled = true;
  spec = BuildOk();
  EXPECT_EQ(spec["process"]["selinuxLabel"], "system_u:system_r:container_t:s0:c3,c4");
  EXPECT_EQ(spec["linux"]["mountLabel"], "system_u:object_r:container_file_t:s0:c3,c4");
  config_.mutable_linux()->mutable_security_context()->mutable_selinux_options()->set_type("spc_t");
  EXPECT_EQ(BuildOk()["process"]["selinuxLabel"], "system_u:system_r:spc_t:s0:c3,c4");

  options_.selinux.enabled = false;
  config_.mutable_linux()->mutable_security_context()->mutable_selinux_options()->set_type(
      "bad type");
  absl::StatusOr<json> bad = Build();
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("linux.security_context.selinux_options.type"));
}

TEST_F(OciSpecTest, Resources) {
  auto* r = config_.mutable_linux()->mutable_resources();
  r->set_cpu_shares(512);
  r->set_cpu_quota(50000);
  r->set_cpu_period(100000);
  r->set_cpuset_cpus("0");
  r->set_memory_limit_in_bytes(64 << 20);
  r->set_memory_swap_limit_in_bytes(128 << 20);
  if (HugetlbControllerAvailable()) {  // ZeroHugepageLimitsNeedNoController covers the rest
    auto* h = r->add_hugepage_limits();
    h->set_page_size("2MB");
    h->set_limit(4 << 20);
  }
  (*r->mutable_unified())["memory.high"] = "50000000";
  r->set_oom_score_adj(-999);
  options_.min_oom_score_adj = -500;
  json spec = BuildOk();
  const json& res = spec["linux"]["resources"];
  EXPECT_EQ(res["cpu"]["shares"], 512);
  EXPECT_EQ(res["cpu"]["quota"], 50000);
  EXPECT_EQ(res["cpu"]["period"], 100000);
  EXPECT_EQ(res["cpu"]["cpus"], "0");
  EXPECT_EQ(res["memory"]["limit"], 64 << 20);
  EXPECT_EQ(res["memory"]["swap"], 128 << 20);
  if (HugetlbControllerAvailable()) {
    EXPECT_EQ(res["hugepageLimits"][0]["pageSize"], "2MB");
  }
  EXPECT_EQ(res["unified"]["memory.high"], "50000000");
  EXPECT_EQ(spec["process"]["oomScoreAdj"], -500) << "clamped to what the kernel allows";
}

TEST_F(OciSpecTest, BadResourcesNameTheField) {
  auto* r = config_.mutable_linux()->mutable_resources();
  r->set_memory_limit_in_bytes(128 << 20);
  r->set_memory_swap_limit_in_bytes(64 << 20);
  EXPECT_THAT(std::string(Build().status().message()), HasSubstr("memory_swap_limit_in_bytes"));
  r->set_memory_swap_limit_in_bytes(0);
  (*r->mutable_unified())["../escape"] = "1";
  EXPECT_THAT(std::string(Build().status().message()), HasSubstr("unified"));
  r->clear_unified();
  r->set_oom_score_adj(5000);
  EXPECT_THAT(std::string(Build().status().message()), HasSubstr("oom_score_adj"));
}

TEST_F(OciSpecTest, UnprivilegedDefaults) {
  json spec = BuildOk();
  auto caps = spec["process"]["capabilities"]["bounding"].get<std::vector<std::string>>();
  EXPECT_THAT(caps, Contains("CAP_NET_BIND_SERVICE"));
  EXPECT_THAT(caps, Not(Contains("CAP_SYS_ADMIN")));
  EXPECT_THAT(spec["linux"]["maskedPaths"].get<std::vector<std::string>>(),
              Contains("/proc/kcore"));
  EXPECT_THAT(spec["linux"]["readonlyPaths"].get<std::vector<std::string>>(),
              Contains("/proc/sys"));
  EXPECT_EQ(spec["linux"]["resources"]["devices"][0]["allow"], false);
  EXPECT_EQ(spec["root"]["readonly"], false);
}

TEST_F(OciSpecTest, SecurityContextPathsAndReadonlyRootfs) {
  auto* sc = config_.mutable_linux()->mutable_security_context();
  sc->add_masked_paths("/proc/secret");
  sc->add_readonly_paths("/proc/ro");
  sc->set_readonly_rootfs(true);
  sc->set_no_new_privs(true);
  json spec = BuildOk();
  EXPECT_THAT(spec["linux"]["maskedPaths"].get<std::vector<std::string>>(),
              ElementsAre("/proc/secret"));
  EXPECT_THAT(spec["linux"]["readonlyPaths"].get<std::vector<std::string>>(),
              ElementsAre("/proc/ro"));
  EXPECT_EQ(spec["root"]["readonly"], true);
  EXPECT_EQ(spec["process"]["noNewPrivileges"], true);
}

TEST_F(OciSpecTest, PrivilegedNeedsAPrivilegedPod) {
  config_.mutable_linux()->mutable_security_context()->set_privileged(true);
  EXPECT_THAT(std::string(Build().status().message()), HasSubstr("privileged"));
  sandbox_.linux.mutable_security_context()->set_privileged(true);
  json spec = BuildOk();
  EXPECT_THAT(spec["process"]["capabilities"]["bounding"].get<std::vector<std::string>>(),
              Contains("CAP_SYS_ADMIN"));
  EXPECT_FALSE(spec["linux"].contains("maskedPaths"));
  EXPECT_EQ(spec["linux"]["resources"]["devices"][0]["allow"], true);
  bool has_null = false;
  for (const json& d : spec["linux"]["devices"]) {
    has_null = has_null || d["path"] == "/dev/null";
  }
  EXPECT_TRUE(has_null) << "host devices are passed to privileged containers";
}

TEST_F(OciSpecTest, DevicesAreAddedWithCgroupRules) {
  v1::Device* d = config_.add_devices();
  d->set_container_path("/dev/mynull");
  d->set_host_path("/dev/null");
  d->set_permissions("rw");
  json spec = BuildOk();
  ASSERT_EQ(spec["linux"]["devices"].size(), 1u);
  EXPECT_EQ(spec["linux"]["devices"][0]["path"], "/dev/mynull");
  EXPECT_EQ(spec["linux"]["devices"][0]["major"], 1);
  EXPECT_EQ(spec["linux"]["devices"][0]["minor"], 3);
  EXPECT_EQ(spec["linux"]["resources"]["devices"].back()["access"], "rw");
  d->set_host_path("/etc/passwd");
  EXPECT_THAT(std::string(Build().status().message()), HasSubstr("not a device"));
}

TEST_F(OciSpecTest, SysctlsAndAnnotations) {
  (*sandbox_.linux.mutable_sysctls())["net.ipv4.ip_unprivileged_port_start"] = "0";
  (*config_.mutable_annotations())["team"] = "web";
  json spec = BuildOk();
  EXPECT_EQ(spec["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"], "0");
  EXPECT_EQ(spec["annotations"]["team"], "web");
  EXPECT_EQ(spec["annotations"]["io.kubernetes.cri.sandbox-id"], "pod1");
  EXPECT_EQ(spec["annotations"]["io.kubernetes.cri.container-name"], "app");
}

TEST(OciCgroupsPath, SystemdUsesTheSliceName) {
  auto path = OciCgroupsPath(CgroupDriver::kSystemd,
                             "/kubepods.slice/kubepods-burstable.slice/"
                             "kubepods-burstable-pod1234_abcd.slice",
                             "c1");
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(*path, "kubepods-burstable-pod1234_abcd.slice:crid:c1");
  EXPECT_EQ(*OciCgroupsPath(CgroupDriver::kSystemd, "", "c1"), "system.slice:crid:c1");
  EXPECT_THAT(
      std::string(OciCgroupsPath(CgroupDriver::kSystemd, "/kubepods/x", "c").status().message()),
      HasSubstr("needs a slice"));
}

TEST(OciCgroupsPath, CgroupfsNestsUnderTheParent) {
  EXPECT_EQ(*OciCgroupsPath(CgroupDriver::kCgroupfs, "/kubepods/burstable/pod12", "c1"),
            "/kubepods/burstable/pod12/crid-c1");
  EXPECT_EQ(*OciCgroupsPath(CgroupDriver::kCgroupfs, "", "c1"), "/crid/crid-c1");
  EXPECT_FALSE(OciCgroupsPath(CgroupDriver::kCgroupfs, "/a/../../b", "c1").ok());
  EXPECT_FALSE(OciCgroupsPath(CgroupDriver::kCgroupfs, "relative", "c1").ok());
}

TEST_F(OciSpecTest, CdiDevicesFromFieldAndAnnotationLandInTheSpec) {
  TempDir cdi_dir;
  std::ofstream(cdi_dir.Sub("test.yaml")) << R"(cdiVersion: 0.7.0
kind: example.com/test
containerEdits:
  env: [CDI_SPEC=1]
devices:
- name: devnull
  containerEdits:
    deviceNodes:
    - {path: /dev/cdi-null, hostPath: /dev/null}
    mounts:
    - {hostPath: /opt/data, containerPath: /data, options: [rbind, ro]}
- name: groups
  containerEdits:
    additionalGids: [777]
)";
  CdiRegistry registry({cdi_dir.path()});
  options_.cdi = &registry;
  config_.add_cdi_devices()->set_name("example.com/test=devnull");
  (*config_.mutable_annotations())["cdi.k8s.io/plugin_dev"] = "example.com/test=groups";
  json spec = BuildOk();
  EXPECT_THAT(spec["process"]["env"], Contains("CDI_SPEC=1"));
  EXPECT_THAT(spec["process"]["user"]["additionalGids"], Contains(777));
  EXPECT_THAT(spec["linux"]["devices"],
              Contains(json{{"path", "/dev/cdi-null"}, {"type", "c"}, {"major", 1}, {"minor", 3}}));
  EXPECT_THAT(spec["linux"]["resources"]["devices"],
              Contains(json{
                  {"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rwm"}}));
  const json* data = FindMount(spec, "/data");
  ASSERT_NE(data, nullptr);
  EXPECT_EQ((*data)["source"], "/opt/data");
}

TEST_F(OciSpecTest, UnknownOrMalformedCdiDevicesAreRefused) {
  TempDir cdi_dir;
  CdiRegistry registry({cdi_dir.path()});
  options_.cdi = &registry;
  config_.add_cdi_devices()->set_name("example.com/test=missing");
  absl::StatusOr<json> spec = Build();
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(spec.status().message(), HasSubstr("example.com/test=missing"));

  config_.mutable_cdi_devices(0)->set_name("missing");
  spec = Build();
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("CDI_devices[0].name"));
}

}  // namespace
}  // namespace crid
