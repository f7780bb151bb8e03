// SELinux labels as containerd composes them: the pod's for containers with
// no options of their own, the policy's defaults overridden part by part,
// nothing at all on a host without SELinux, and options validated everywhere.
#include "container/selinux.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
namespace v1 = ::runtime::v1;

v1::SELinuxOption Option(const std::string& user, const std::string& role, const std::string& type,
                         const std::string& level) {
  v1::SELinuxOption o;
  o.set_user(user);
  o.set_role(role);
  o.set_type(type);
  o.set_level(level);
  return o;
}

SELinuxHost Enabled() {
  SELinuxHost host;
  host.enabled = true;
  return host;
}

TEST(SELinux, HostWithoutSELinuxGetsNoLabels) {
  SELinuxHost none;  // this machine's case
  absl::StatusOr<SELinuxLabels> labels =
      SELinuxLabelsFor(Option("u", "r", "t", "s0:c1,c2"), Option("", "", "spc_t", ""), "pod", none);
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(labels->process_label, "");
  EXPECT_EQ(labels->mount_label, "");
  EXPECT_FALSE(DetectSELinux().enabled) << "this host has no selinuxfs";
}

TEST(SELinux, ContainerWithoutOptionsGetsThePodsLabel) {
  SELinuxHost host = Enabled();
  const std::string level = PodMcsLevel("pod-1", "s0");
  EXPECT_THAT(level, MatchesRegex("s0:c[0-9]+,c[0-9]+"));

  // Nothing set anywhere: the policy's defaults with the pod's categories.
  SELinuxLabels labels = *SELinuxLabelsFor({}, {}, "pod-1", host);
  EXPECT_EQ(labels.process_label, "system_u:system_r:container_t:" + level);
  EXPECT_EQ(labels.mount_label, "system_u:object_r:container_file_t:" + level);
  EXPECT_EQ(SELinuxLabelsFor({}, {}, "pod-1", host)->process_label, labels.process_label)
      << "every container of a pod shares its level";
  EXPECT_NE(SELinuxLabelsFor({}, {}, "pod-2", host)->process_label, labels.process_label);

  // The pod's options label its containers.
  labels = *SELinuxLabelsFor(Option("user_u", "user_r", "pod_t", "s0:c5,c6"), {}, "pod-1", host);
  EXPECT_EQ(labels.process_label, "user_u:user_r:pod_t:s0:c5,c6");
  EXPECT_EQ(labels.mount_label, "user_u:object_r:container_file_t:s0:c5,c6")
      << "user and level go into the mount label, role and type do not";

  labels = *SELinuxLabelsFor(Option("", "", "pod_t", ""), {}, "pod-1", host);
  EXPECT_EQ(labels.process_label, "system_u:system_r:pod_t:" + level);
  EXPECT_EQ(labels.mount_label, "system_u:object_r:container_file_t:" + level);
}

TEST(SELinux, ContainerOptionsOverrideTheDefaultsPartByPart) {
  SELinuxHost host = Enabled();
  // The container's type, the pod's level; user and role are the policy's
  // defaults, not the pod's (containerd starts from the default context).
  SELinuxLabels labels = *SELinuxLabelsFor(Option("user_u", "user_r", "pod_t", "s0:c5,c6"),
                                           Option("", "", "spc_t", ""), "pod-1", host);
  EXPECT_EQ(labels.process_label, "system_u:system_r:spc_t:s0:c5,c6");
  EXPECT_EQ(labels.mount_label, "system_u:object_r:container_file_t:s0:c5,c6");

  // Without a pod level, the pod's derived one.
  labels = *SELinuxLabelsFor({}, Option("", "", "", "s0:c7,c8"), "pod-1", host);
  EXPECT_EQ(labels.process_label, "system_u:system_r:container_t:s0:c7,c8");
  labels = *SELinuxLabelsFor({}, Option("", "r2", "", ""), "pod-1", host);
  EXPECT_EQ(labels.process_label, "system_u:r2:container_t:" + PodMcsLevel("pod-1", "s0"));

  // A policy with other defaults (lxc_contexts).
  host.process_label = "system_u:system_r:svirt_lxc_net_t:s0";
  host.file_label = "system_u:object_r:svirt_sandbox_file_t:s0";
  labels = *SELinuxLabelsFor({}, Option("", "", "", "s0-s0:c0.c1023"), "pod-1", host);
  EXPECT_EQ(labels.process_label, "system_u:system_r:svirt_lxc_net_t:s0-s0:c0.c1023");
  EXPECT_EQ(labels.mount_label, "system_u:object_r:svirt_sandbox_file_t:s0-s0:c0.c1023");
}

TEST(SELinux, PodLevelsAreTwoDistinctOrderedCategories) {
  for (int i = 0; i < 2000; ++i) {
    std::string level = PodMcsLevel("pod-" + std::to_string(i), "s0-s0:c0.c1023");
    int a = -1;
    int b = -1;
    ASSERT_EQ(std::sscanf(level.c_str(), "s0:c%d,c%d", &a, &b), 2) << level;
    EXPECT_LT(a, b) << level;
    EXPECT_GE(a, 0);
    EXPECT_LT(b, 1024);
  }
}

TEST(SELinux, OptionsAreValidated) {
  const SELinuxHost none;
  struct {
    v1::SELinuxOption pod;
    v1::SELinuxOption container;
    const char* message;
  } const cases[] = {
      {{},
       Option("a:b", "", "", ""),
       "linux.security_context.selinux_options.user: \"a:b\" must not contain ':' or whitespace"},
      {{}, Option("", "r r", "", ""), "linux.security_context.selinux_options.role: \"r r\""},
      {{}, Option("", "", "t\n", ""), "linux.security_context.selinux_options.type"},
      {{}, Option("", "", "", "s0:c1, c2"), "linux.security_context.selinux_options.level"},
      {{}, Option("", "", "", "s10"), "selinux_options.level: \"s10\" is not an MLS level"},
      {{}, Option("", "", "", "s0:c12345"), "selinux_options.level"},
      {{}, Option("", "", "", "c1"), "selinux_options.level"},
      {Option("", "", "x:y", ""),
       {},
       "sandbox.linux.security_context.selinux_options.type: \"x:y\""},
  };
  for (const auto& c : cases) {
    for (const SELinuxHost& host : {none, Enabled()}) {
      absl::StatusOr<SELinuxLabels> labels = SELinuxLabelsFor(c.pod, c.container, "pod", host);
      EXPECT_EQ(labels.status().code(), absl::StatusCode::kInvalidArgument) << c.message;
      EXPECT_THAT(std::string(labels.status().message()), HasSubstr(c.message));
    }
  }
  for (const char* level : {"s0", "s0:c1", "s0:c1,c2", "s0-s0:c0.c1023", "s0:c1.c3,c9,c1023"}) {
    EXPECT_TRUE(ValidateSELinuxOption(Option("u", "r", "t", level), "f").ok()) << level;
  }
  for (const char* level : {"s", "s0-", "s0-c1", "s0:", "s0:c1,", "s0:c1.", "s0:c1.c2.c3", "s0:c",
                            "s0:c1,,c2", "s0x", "s0-s1-s2", "s0:c1 "}) {
    EXPECT_FALSE(ValidateSELinuxOption(Option("u", "r", "t", level), "f").ok()) << level;
  }
}

TEST(SELinux, LxcContextsAreRead) {
  // Fedora's container-selinux contexts/lxc_contexts.
  auto [process, file] = ParseLxcContexts(
      "process = \"system_u:system_r:container_t:s0\"\n"
      "content = \"system_u:object_r:virt_var_lib_t:s0\"\n"
      "file = \"system_u:object_r:container_file_t:s0\"\n"
      "ro_file = \"system_u:object_r:container_ro_file_t:s0\"\n"
      "sandbox_kvm_process = \"system_u:system_r:container_kvm_t:s0\"\n"
      "# a comment = \"x\"\n");
  EXPECT_EQ(process, "system_u:system_r:container_t:s0");
  EXPECT_EQ(file, "system_u:object_r:container_file_t:s0");
  auto [none_p, none_f] = ParseLxcContexts("");
  EXPECT_EQ(none_p, "");
  EXPECT_EQ(none_f, "");
}

}  // namespace
}  // namespace crid
