#include "sandbox/validate.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid::sandbox {
namespace {

using ::testing::HasSubstr;

runtime::v1::PodSandboxConfig Valid() {
  runtime::v1::PodSandboxConfig c;
  c.mutable_metadata()->set_name("web");
  c.mutable_metadata()->set_namespace_("default");
  c.mutable_metadata()->set_uid("0b8e");
  c.set_hostname("web-0");
  return c;
}

TEST(ValidateTest, AcceptsAKubeletStylePod) {
  runtime::v1::PodSandboxConfig c = Valid();
  c.set_log_directory("/var/log/pods/default_web_0b8e");
  c.mutable_linux()->set_cgroup_parent("/kubepods.slice/kubepods-besteffort.slice");
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      runtime::v1::CONTAINER);
  (*c.mutable_linux()->mutable_sysctls())["net.ipv4.ip_local_port_range"] = "1024 65000";
  (*c.mutable_linux()->mutable_sysctls())["kernel.shm_rmid_forced"] = "1";
  (*c.mutable_annotations())["kubernetes.io/ingress-bandwidth"] = "10M";
  auto* pm = c.add_port_mappings();
  pm->set_container_port(80);
  pm->set_host_port(8080);
  pm->set_host_ip("127.0.0.1");
  EXPECT_TRUE(ValidatePodSandboxConfig(c).ok()) << ValidatePodSandboxConfig(c);
}

// kubelet's setHostnameAsFQDN name ends in a dot when the cluster domain is empty.
TEST(ValidateTest, HostnameMayBeAnAbsoluteName) {
  runtime::v1::PodSandboxConfig c = Valid();
  c.set_hostname("hostfqdn-432.t.hostfqdn-910.svc.");
  EXPECT_TRUE(ValidatePodSandboxConfig(c).ok()) << ValidatePodSandboxConfig(c);
  for (const char* bad : {"web..", ".", "a..b", "Bad_Host", "web-0.\n"}) {
    c.set_hostname(bad);
    absl::Status st = ValidatePodSandboxConfig(c);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(st.message()), HasSubstr("config.hostname")) << bad;
  }
  c.set_hostname(std::string(64, 'a') + ".");
  EXPECT_EQ(ValidatePodSandboxConfig(c).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateTest, RefusesIpcSysctlsWithHostIpc) {
  runtime::v1::PodSandboxConfig c = Valid();
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_ipc(
      runtime::v1::NODE);
  (*c.mutable_linux()->mutable_sysctls())["kernel.msgmax"] = "10000";
  absl::Status st = ValidatePodSandboxConfig(c);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("IPC namespace"));
}

TEST(ValidateTest, RefusesPathTricksInSysctlNames) {
  EXPECT_FALSE(SysctlPath("net/../kernel/panic", true, true).ok());
  EXPECT_FALSE(SysctlPath("/net/ipv4/ip_forward", true, true).ok());
  EXPECT_TRUE(SysctlPath("net/ipv4/ip_forward", true, true).ok());
  EXPECT_EQ(*SysctlPath("net.ipv4.ip_forward", true, true), "/proc/sys/net/ipv4/ip_forward");
}

runtime::v1::PodSandboxConfig WithUserNamespace(runtime::v1::NamespaceMode mode,
                                                const std::vector<runtime::v1::IDMapping>& ids) {
  runtime::v1::PodSandboxConfig c = Valid();
  auto* ns = c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_pid(runtime::v1::CONTAINER);
  auto* userns = ns->mutable_userns_options();
  userns->set_mode(mode);
  for (const runtime::v1::IDMapping& m : ids) {
    *userns->add_uids() = m;
    *userns->add_gids() = m;
  }
  return c;
}

runtime::v1::IDMapping Mapping(uint32_t container_id, uint32_t host_id, uint32_t length) {
  runtime::v1::IDMapping m;
  m.set_container_id(container_id);
  m.set_host_id(host_id);
  m.set_length(length);
  return m;
}

// What critest's UserNamespaces specs and containerd require of the mappings.
TEST(ValidateTest, UserNamespaceModesAndMappings) {
  using runtime::v1::CONTAINER;
  using runtime::v1::NODE;
  using runtime::v1::POD;
  using runtime::v1::TARGET;
  EXPECT_TRUE(ValidatePodSandboxConfig(WithUserNamespace(POD, {Mapping(0, 1000, 100000)})).ok());
  EXPECT_TRUE(ValidatePodSandboxConfig(WithUserNamespace(NODE, {})).ok());
  struct Case {
    runtime::v1::PodSandboxConfig config;
    const char* message;
  } const cases[] = {
      {WithUserNamespace(POD, {Mapping(0, 1000, 100000), Mapping(0, 2000, 100000)}),
       "userns_options.uids: exactly one mapping is supported, got 2"},
      {WithUserNamespace(POD, {Mapping(1, 1000, 100000)}),
       "userns_options.uids: container ID 0 must be mapped"},
      {WithUserNamespace(POD, {}), "userns_options.uids: exactly one mapping is supported, got 0"},
      {WithUserNamespace(POD, {Mapping(0, 1000, 0)}), "length must not be 0"},
      {WithUserNamespace(POD, {Mapping(0, 4294967000u, 65536)}), "exceeds the 32-bit ID range"},
      {WithUserNamespace(CONTAINER, {}), "userns_options.mode: must be NODE or POD, got CONTAINER"},
      {WithUserNamespace(TARGET, {}), "userns_options.mode: must be NODE or POD, got TARGET"},
      {WithUserNamespace(NODE, {Mapping(0, 1000, 10)}), "mode NODE takes no uid/gid mappings"},
  };
  for (const Case& c : cases) {
    absl::Status st = ValidatePodSandboxConfig(c.config);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(st.message()), HasSubstr(c.message));
  }
  runtime::v1::PodSandboxConfig host_ipc = WithUserNamespace(POD, {Mapping(0, 1000, 100000)});
  host_ipc.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_ipc(NODE);
  EXPECT_THAT(std::string(ValidatePodSandboxConfig(host_ipc).message()),
              HasSubstr("needs the pod's own IPC namespace"));
  runtime::v1::PodSandboxConfig host_net = WithUserNamespace(POD, {Mapping(0, 1000, 100000)});
  host_net.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
      NODE);
  EXPECT_TRUE(ValidatePodSandboxConfig(host_net).ok()) << "user_namespaces_host_network";
  runtime::v1::PodSandboxConfig host_pid = WithUserNamespace(POD, {Mapping(0, 1000, 100000)});
  host_pid.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(NODE);
  EXPECT_THAT(std::string(ValidatePodSandboxConfig(host_pid).message()),
              HasSubstr("cannot share the host's PID namespace"));
  runtime::v1::PodSandboxConfig shared_pid = WithUserNamespace(POD, {Mapping(0, 1000, 100000)});
  shared_pid.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(POD);
  EXPECT_TRUE(ValidatePodSandboxConfig(shared_pid).ok());
}

TEST(BandwidthTest, ParsesKubernetesQuantities) {
  EXPECT_EQ(*ParseBandwidth("10M"), 10000000u);
  EXPECT_EQ(*ParseBandwidth("1Gi"), 1073741824u);
  EXPECT_EQ(*ParseBandwidth("500k"), 500000u);
  EXPECT_EQ(*ParseBandwidth("1234"), 1234u);
  EXPECT_FALSE(ParseBandwidth("").ok());
  EXPECT_FALSE(ParseBandwidth("M").ok());
  EXPECT_FALSE(ParseBandwidth("-5M").ok());
  EXPECT_FALSE(ParseBandwidth("1.5G").ok());
}

}  // namespace
}  // namespace crid::sandbox
