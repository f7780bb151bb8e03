// AppArmor as containerd decides it: no confinement asked, none given; on a
// host without AppArmor, asking for any is an error naming the field; where
// the host has it, the profile goes into process.apparmorProfile.
#include "container/apparmor.h"

#include <algorithm>

#include "base/temp_dir.h"
#include "container/oci_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

// The tests set the deprecated apparmor_profile on purpose.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace crid {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::runtime::v1;

v1::LinuxContainerSecurityContext WithProfile(v1::SecurityProfile::ProfileType type,
                                              const std::string& ref = "") {
  v1::LinuxContainerSecurityContext sc;
  sc.mutable_apparmor()->set_profile_type(type);
  sc.mutable_apparmor()->set_localhost_ref(ref);
  return sc;
}

AppArmorHost HostWith(const std::vector<std::string>& loaded) {
  AppArmorHost host;
  host.enabled = true;
  host.profile_loaded = [loaded](const std::string& name) {
    return std::find(loaded.begin(), loaded.end(), name) != loaded.end();
  };
  return host;
}

TEST(AppArmor, HostWithoutAppArmorRefusesConfinement) {
  AppArmorHost none;  // this machine's case
  EXPECT_EQ(*AppArmorProfileFor({}, none), "");
  EXPECT_EQ(*AppArmorProfileFor(WithProfile(v1::SecurityProfile::Unconfined), none), "");
  for (const auto& sc : {WithProfile(v1::SecurityProfile::RuntimeDefault),
                         WithProfile(v1::SecurityProfile::Localhost, "my-profile")}) {
    absl::StatusOr<std::string> profile = AppArmorProfileFor(sc, none);
    EXPECT_EQ(profile.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(profile.status().message()),
                HasSubstr("linux.security_context.apparmor: apparmor is not supported"));
  }
  v1::LinuxContainerSecurityContext legacy;
  legacy.set_apparmor_profile("runtime/default");
  EXPECT_EQ(AppArmorProfileFor(legacy, none).status().code(),
            absl::StatusCode::kFailedPrecondition);
  legacy.set_apparmor_profile("unconfined");
  EXPECT_EQ(*AppArmorProfileFor(legacy, none), "");
}

TEST(AppArmor, ProfilesWhereTheHostHasAppArmor) {
  AppArmorHost host = HostWith({"my-profile"});
  EXPECT_EQ(*AppArmorProfileFor({}, host), "");
  EXPECT_EQ(*AppArmorProfileFor(WithProfile(v1::SecurityProfile::RuntimeDefault), host),
            kAppArmorDefaultProfile);
  v1::LinuxContainerSecurityContext privileged = WithProfile(v1::SecurityProfile::RuntimeDefault);
  privileged.set_privileged(true);
  EXPECT_EQ(*AppArmorProfileFor(privileged, host), "") << "as containerd";
  EXPECT_EQ(*AppArmorProfileFor(WithProfile(v1::SecurityProfile::Localhost, "my-profile"), host),
            "my-profile");
  EXPECT_EQ(*AppArmorProfileFor(WithProfile(v1::SecurityProfile::Localhost, "localhost/my-profile"),
                                host),
            "my-profile");
  absl::StatusOr<std::string> missing =
      AppArmorProfileFor(WithProfile(v1::SecurityProfile::Localhost, "absent"), host);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("apparmor.localhost_ref: apparmor profile not found: absent"));
  EXPECT_EQ(AppArmorProfileFor(WithProfile(v1::SecurityProfile::RuntimeDefault, "x"), host)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);

  v1::LinuxContainerSecurityContext legacy;
  legacy.set_apparmor_profile("localhost/my-profile");
  EXPECT_EQ(*AppArmorProfileFor(legacy, host), "my-profile");
  legacy.set_apparmor_profile("bogus");
  EXPECT_THAT(std::string(AppArmorProfileFor(legacy, host).status().message()),
              HasSubstr("linux.security_context.apparmor_profile: unknown profile \"bogus\""));
}

TEST(AppArmor, ProfileIsWrittenIntoTheSpec) {
  v1::ContainerConfig config;
  config.mutable_metadata()->set_name("app");
  config.add_command("/bin/true");
  *config.mutable_linux()->mutable_security_context()->mutable_apparmor() =
      WithProfile(v1::SecurityProfile::Localhost, "my-profile").apparmor();
  auto* ns = config.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_network(v1::NODE);
  ns->set_ipc(v1::NODE);
  ns->set_pid(v1::CONTAINER);
  SpecOptions options;
  options.container_id = "c1";
  TempDir rootfs;
  options.rootfs = rootfs.path();
  options.apparmor = HostWith({"my-profile"});
  absl::StatusOr<nlohmann::json> spec = BuildOciSpec(config, {}, {}, options);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ((*spec)["process"]["apparmorProfile"], "my-profile");

  options.apparmor = AppArmorHost{};
  spec = BuildOciSpec(config, {}, {}, options);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace crid
