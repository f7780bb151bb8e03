// Seccomp selection follows the CRI security context; the default profile gates
// privileged syscalls on capabilities; Docker-format localhost profiles convert.
#include "container/seccomp.h"

#include <fstream>

#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

// The tests set the deprecated seccomp_profile_path on purpose.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace crid {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
namespace v1 = ::runtime::v1;

bool Allows(const json& profile, const std::string& syscall) {
  for (const json& rule : profile["syscalls"]) {
    if (rule["action"] != "SCMP_ACT_ALLOW" || rule.contains("args")) {
      continue;
    }
    for (const json& name : rule["names"]) {
      if (name == syscall) {
        return true;
      }
    }
  }
  return false;
}

TEST(DefaultSeccompProfile, SethostnameNeedsSysAdmin) {
  json plain = DefaultSeccompProfile({"CAP_CHOWN"});
  EXPECT_EQ(plain["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_TRUE(Allows(plain, "read"));
  EXPECT_FALSE(Allows(plain, "sethostname"));
  EXPECT_FALSE(Allows(plain, "mount"));
  EXPECT_FALSE(Allows(plain, "clone")) << "clone only without namespace flags";
  json admin = DefaultSeccompProfile({"CAP_SYS_ADMIN"});
  EXPECT_TRUE(Allows(admin, "sethostname"));
  EXPECT_TRUE(Allows(admin, "clone"));
  EXPECT_TRUE(Allows(DefaultSeccompProfile({"CAP_SYS_TIME"}), "settimeofday"));
}

TEST(SeccompForContainer, ProfileTypes) {
  v1::LinuxContainerSecurityContext sc;
  EXPECT_TRUE(SeccompForContainer(sc, {})->is_null()) << "nothing set: unconfined";
  sc.mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  EXPECT_FALSE(SeccompForContainer(sc, {})->is_null());
  sc.mutable_seccomp()->set_profile_type(v1::SecurityProfile::Unconfined);
  EXPECT_TRUE(SeccompForContainer(sc, {})->is_null());
  sc.mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  sc.set_privileged(true);
  EXPECT_TRUE(SeccompForContainer(sc, {})->is_null()) << "privileged runs unconfined";
}

TEST(SeccompForContainer, DeprecatedPathForms) {
  v1::LinuxContainerSecurityContext sc;
  sc.set_seccomp_profile_path("docker/default");
  EXPECT_FALSE(SeccompForContainer(sc, {})->is_null());
  sc.set_seccomp_profile_path("unconfined");
  EXPECT_TRUE(SeccompForContainer(sc, {})->is_null());
  sc.set_seccomp_profile_path("/etc/profile.json");
  auto profile = SeccompForContainer(sc, {});
  EXPECT_EQ(profile.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(profile.status().message()), HasSubstr("localhost/"));
}

TEST(SeccompForContainer, LocalhostDockerFormatIsConverted) {
  TempDir tmp;
  std::ofstream(tmp.Sub("p.json")) << R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
    "syscalls": [
      {"names": ["sethostname", "setdomainname"], "action": "SCMP_ACT_ERRNO"},
      {"name": "mount", "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
      {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_CHROOT"]}}
    ]})";
  v1::LinuxContainerSecurityContext sc;
  sc.mutable_seccomp()->set_profile_type(v1::SecurityProfile::Localhost);
  sc.mutable_seccomp()->set_localhost_ref(tmp.Sub("p.json"));
  auto profile = SeccompForContainer(sc, {"CAP_SYS_CHROOT"});
  ASSERT_TRUE(profile.ok()) << profile.status();
  EXPECT_EQ((*profile)["defaultAction"], "SCMP_ACT_ALLOW");
  EXPECT_EQ((*profile)["architectures"], json({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}));
  ASSERT_EQ((*profile)["syscalls"].size(), 1u) << profile->dump();
  EXPECT_EQ((*profile)["syscalls"][0]["names"], json({"sethostname", "setdomainname"}));

  sc.set_seccomp_profile_path("localhost" + tmp.Sub("p.json"));
  sc.clear_seccomp();
  EXPECT_TRUE(SeccompForContainer(sc, {}).ok());
}

TEST(SeccompForContainer, LocalhostErrorsNameTheProfile) {
  TempDir tmp;
  v1::LinuxContainerSecurityContext sc;
  sc.mutable_seccomp()->set_profile_type(v1::SecurityProfile::Localhost);
  sc.mutable_seccomp()->set_localhost_ref(tmp.Sub("missing.json"));
  EXPECT_EQ(SeccompForContainer(sc, {}).status().code(), absl::StatusCode::kNotFound);
  std::ofstream(tmp.Sub("bad.json")) << "{not json";
  sc.mutable_seccomp()->set_localhost_ref(tmp.Sub("bad.json"));
  auto profile = SeccompForContainer(sc, {});
  EXPECT_EQ(profile.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(profile.status().message()), HasSubstr("bad.json"));
  sc.mutable_seccomp()->set_localhost_ref("relative.json");
  EXPECT_THAT(std::string(SeccompForContainer(sc, {}).status().message()),
              HasSubstr("localhost_ref"));
}

}  // namespace
}  // namespace crid
