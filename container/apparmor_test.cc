// AppArmor as containerd decides it: on a host without AppArmor, asking for
// any confinement is an error naming the field; where the host has it, the
// profile goes into process.apparmorProfile, and RuntimeDefault (or nothing
// asked) loads crid's default profile first when it is missing.
#include "container/apparmor.h"

#include <algorithm>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "container/oci_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

// The tests set the deprecated apparmor_profile on purpose.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace crid {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
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

// An AppArmor host whose kernel learns the profiles the runner loads: the
// runner records each file it is given and what it held.
struct FakeKernel {
  std::vector<std::string> loaded;
  std::vector<std::string> files;
  std::string last_text;
  absl::Status load_result;
};

AppArmorHost HostLoadingInto(const std::shared_ptr<FakeKernel>& kernel, const std::string& dir) {
  AppArmorHost host;
  host.enabled = true;
  host.profile_loaded = [kernel](const std::string& name) {
    return std::find(kernel->loaded.begin(), kernel->loaded.end(), name) != kernel->loaded.end();
  };
  host.load_profile = [kernel](const std::string& path) {
    kernel->files.push_back(path);
    kernel->last_text = ReadFile(path).value_or("");
    if (kernel->load_result.ok()) {
      kernel->loaded.emplace_back(kAppArmorDefaultProfile);
    }
    return kernel->load_result;
  };
  host.profile_dir = dir + "/apparmor";
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
  AppArmorHost host = HostWith({"my-profile", kAppArmorDefaultProfile});
  EXPECT_EQ(*AppArmorProfileFor({}, host), kAppArmorDefaultProfile) << "nothing asked: default";
  EXPECT_EQ(*AppArmorProfileFor(WithProfile(v1::SecurityProfile::Unconfined), host), "");
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

TEST(AppArmor, DefaultProfileText) {
  AppArmorTemplate t;
  std::string text = AppArmorDefaultProfileText(t);
  EXPECT_THAT(text,
              HasSubstr("\nprofile crid-default flags=(attach_disconnected,mediate_deleted) {\n"));
  for (const char* rule : {
           "  deny @{PROC}/* w,\n",
           "  deny @{PROC}/sys/[^k]** w,\n",
           "  deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,\n",
           "  deny @{PROC}/sysrq-trigger rwklx,\n",
           "  deny @{PROC}/kcore rwklx,\n",
           "  deny mount,\n",
           "  deny /sys/[^f]*/** wklx,\n",
           "  deny /sys/fs/cg[^r]*/** wklx,\n",
           "  deny /sys/firmware/** rwklx,\n",
           "  deny /sys/kernel/security/** rwklx,\n",
           "  ptrace (trace,tracedby,read,readby) peer=crid-default,\n",
           "  signal (send,receive) peer=crid-default,\n",
           "  signal (receive) peer=runc,\n",
           "  umount,\n",
       }) {
    EXPECT_THAT(text, HasSubstr(rule));
  }
  // Without the host's tunables the profile defines @{PROC} itself.
  EXPECT_THAT(text, HasSubstr("@{PROC}=/proc/\n"));
  EXPECT_THAT(text, Not(HasSubstr("#include")));
  EXPECT_THAT(text, Not(HasSubstr("abi <")));

  // Syntax: one profile block, braces balanced, every rule inside it a
  // comment, an include or a line ending in ','.
  EXPECT_EQ(std::count(text.begin(), text.end(), '{') - std::count(text.begin(), text.end(), '}'),
            0);
  size_t open = text.find("flags=(attach_disconnected,mediate_deleted) {\n");
  size_t close = text.rfind("\n}\n");
  ASSERT_NE(open, std::string::npos);
  ASSERT_EQ(close, text.size() - 3) << "the profile ends the file";
  std::string body = text.substr(text.find('\n', open) + 1, close - text.find('\n', open));
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipWhitespace())) {
    line = absl::StripAsciiWhitespace(line);
    EXPECT_TRUE(absl::StartsWith(line, "#") || absl::EndsWith(line, ",")) << line;
  }

  t.name = "other";
  t.abi_3_0 = true;
  t.tunables_global = true;
  t.abstractions_base = true;
  t.daemon_profile = "crid-daemon";
  text = AppArmorDefaultProfileText(t);
  EXPECT_TRUE(absl::StartsWith(text.substr(text.find('\n') + 1),
                               "abi <abi/3.0>,\n#include <tunables/global>\n"))
      << text;
  EXPECT_THAT(text, Not(HasSubstr("@{PROC}=")));
  EXPECT_THAT(text, HasSubstr("{\n  #include <abstractions/base>\n"));
  EXPECT_THAT(text, HasSubstr("profile other flags="));
  EXPECT_THAT(text, HasSubstr("ptrace (trace,tracedby,read,readby) peer=other,\n"));
  EXPECT_THAT(text, HasSubstr("signal (receive) peer=crid-daemon,\n"));
  t.daemon_profile = "has space";
  EXPECT_THAT(AppArmorDefaultProfileText(t), Not(HasSubstr("has space")));
}

TEST(AppArmor, LoadedProfilesAreReadFromTheKernelList) {
  // /sys/kernel/security/apparmor/profiles as an Ubuntu host shows it.
  const std::string profiles =
      "crid-default (enforce)\n"
      "/usr/sbin/cups-browsed (enforce)\n"
      "man_filter (enforce)\n"
      "nvidia_modprobe//kmod (enforce)\n"
      "my profile (complain)\n"
      "lsb_release (enforce)\n";
  EXPECT_TRUE(AppArmorProfileListed(profiles, "crid-default"));
  EXPECT_TRUE(AppArmorProfileListed(profiles, "/usr/sbin/cups-browsed"));
  EXPECT_TRUE(AppArmorProfileListed(profiles, "nvidia_modprobe//kmod"));
  EXPECT_TRUE(AppArmorProfileListed(profiles, "my profile"));
  EXPECT_TRUE(AppArmorProfileListed(profiles, "lsb_release"));
  EXPECT_FALSE(AppArmorProfileListed(profiles, "crid"));
  EXPECT_FALSE(AppArmorProfileListed(profiles, "man"));
  EXPECT_FALSE(AppArmorProfileListed(profiles, "nvidia_modprobe"));
  EXPECT_FALSE(AppArmorProfileListed("", "crid-default"));
  EXPECT_FALSE(AppArmorProfileListed("crid-default\n", "crid-default")) << "no mode: not a list";
}

TEST(AppArmor, ThisHostHasNoAppArmor) {
  TempDir state;
  AppArmorHost host = DetectAppArmor(state.path());
  EXPECT_FALSE(host.enabled);
  EXPECT_EQ(host.profile_dir, state.path() + "/apparmor");
  EXPECT_FALSE(host.profile_loaded(kAppArmorDefaultProfile));
}

TEST(AppArmor, RuntimeDefaultLoadsTheDefaultProfileOnce) {
  TempDir state;
  auto kernel = std::make_shared<FakeKernel>();
  AppArmorHost host = HostLoadingInto(kernel, state.path());

  v1::LinuxContainerSecurityContext privileged = WithProfile(v1::SecurityProfile::RuntimeDefault);
  privileged.set_privileged(true);
  EXPECT_EQ(*AppArmorProfileFor(privileged, host), "");
  EXPECT_TRUE(kernel->files.empty()) << "a privileged container needs no profile";

  EXPECT_EQ(*AppArmorProfileFor(WithProfile(v1::SecurityProfile::RuntimeDefault), host),
            "crid-default");
  ASSERT_EQ(kernel->files.size(), 1u);
  EXPECT_EQ(kernel->files[0], state.path() + "/apparmor/crid-default");
  EXPECT_EQ(kernel->last_text, AppArmorDefaultProfileText(host.default_profile));

  // Loaded now: the next container does not run the parser again.
  EXPECT_EQ(*AppArmorProfileFor({}, host), "crid-default");
  EXPECT_EQ(kernel->files.size(), 1u);
}

TEST(AppArmor, DefaultProfileThatFailsToLoadIsAnError) {
  TempDir state;
  auto kernel = std::make_shared<FakeKernel>();
  kernel->load_result = absl::InternalError("apparmor_parser: syntax error");
  AppArmorHost host = HostLoadingInto(kernel, state.path());
  absl::StatusOr<std::string> profile =
      AppArmorProfileFor(WithProfile(v1::SecurityProfile::RuntimeDefault), host);
  EXPECT_EQ(profile.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(profile.status().message()),
              HasSubstr("linux.security_context.apparmor: load the default profile crid-default"));
  EXPECT_THAT(std::string(profile.status().message()), HasSubstr("syntax error"));

  // A host crid cannot load profiles on.
  AppArmorHost no_loader = HostWith({});
  profile = AppArmorProfileFor(WithProfile(v1::SecurityProfile::RuntimeDefault), no_loader);
  EXPECT_EQ(profile.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(profile.status().message()), HasSubstr("crid-default is not loaded"));
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

  // RuntimeDefault on an AppArmor host without the profile: loaded, then used.
  auto kernel = std::make_shared<FakeKernel>();
  TempDir state;
  options.apparmor = HostLoadingInto(kernel, state.path());
  config.mutable_linux()->mutable_security_context()->mutable_apparmor()->set_profile_type(
      v1::SecurityProfile::RuntimeDefault);
  config.mutable_linux()->mutable_security_context()->mutable_apparmor()->clear_localhost_ref();
  spec = BuildOciSpec(config, {}, {}, options);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ((*spec)["process"]["apparmorProfile"], "crid-default");
  EXPECT_EQ(kernel->files.size(), 1u);
}

}  // namespace
}  // namespace crid
