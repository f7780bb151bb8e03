#include "container/apparmor.h"

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/fs.h"

namespace crid {

namespace {

namespace v1 = ::runtime::v1;

constexpr char kField[] = "linux.security_context.apparmor";
constexpr char kLocalhostPrefix[] = "localhost/";

// The deprecated apparmor_profile string, read as kubelet wrote it before the
// structured field existed.
absl::StatusOr<v1::SecurityProfile> ProfileFromString(const std::string& value) {
  v1::SecurityProfile profile;
  if (value == "runtime/default" || value == "docker/default") {
    profile.set_profile_type(v1::SecurityProfile::RuntimeDefault);
  } else if (value == "unconfined") {
    profile.set_profile_type(v1::SecurityProfile::Unconfined);
  } else if (absl::StartsWith(value, kLocalhostPrefix)) {
    profile.set_profile_type(v1::SecurityProfile::Localhost);
    profile.set_localhost_ref(std::string(absl::StripPrefix(value, kLocalhostPrefix)));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("linux.security_context.apparmor_profile: unknown profile \"", value,
                     "\" (runtime/default, unconfined or localhost/<name>)"));
  }
  return profile;
}

}  // namespace

AppArmorHost DetectAppArmor() {
  AppArmorHost host;
  host.enabled =
      absl::StartsWith(ReadFile("/sys/module/apparmor/parameters/enabled").value_or("N"), "Y");
  host.profile_loaded = [](const std::string& name) {
    // One "name (mode)" line per loaded profile.
    std::ifstream in("/sys/kernel/security/apparmor/profiles");
    std::string line;
    while (std::getline(in, line)) {
      if (absl::StartsWith(line, name + " (")) {
        return true;
      }
    }
    return false;
  };
  return host;
}

absl::StatusOr<std::string> AppArmorProfileFor(const v1::LinuxContainerSecurityContext& sc,
                                               const AppArmorHost& host) {
  v1::SecurityProfile profile;
  // The deprecated string form, still sent by older kubelets and critest.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  const std::string& legacy = sc.apparmor_profile();
#pragma GCC diagnostic pop
  if (sc.has_apparmor()) {
    profile = sc.apparmor();
  } else if (!legacy.empty()) {
    auto parsed = ProfileFromString(legacy);
    if (!parsed.ok()) {
      return parsed.status();
    }
    profile = *parsed;
  } else {
    // Nothing asked: nothing applied (crid loads no default profile).
    return std::string();
  }
  if (profile.profile_type() != v1::SecurityProfile::Localhost &&
      !profile.localhost_ref().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kField, ".localhost_ref: set only with profile_type Localhost"));
  }
  if (profile.profile_type() == v1::SecurityProfile::Unconfined) {
    return std::string();
  }
  if (!host.enabled) {
    // containerd's answer: confinement that cannot be given is an error.
    return absl::FailedPreconditionError(
        absl::StrCat(kField,
                     ": apparmor is not supported (AppArmor is not enabled on this host), "
                     "profile type ",
                     v1::SecurityProfile::ProfileType_Name(profile.profile_type())));
  }
  switch (profile.profile_type()) {
    case v1::SecurityProfile::RuntimeDefault:
      // As containerd: a privileged container is left unconfined.
      return sc.privileged() ? std::string() : std::string(kAppArmorDefaultProfile);
    case v1::SecurityProfile::Localhost: {
      std::string name(absl::StripPrefix(profile.localhost_ref(), kLocalhostPrefix));
      if (name.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(kField, ".localhost_ref: empty for profile type Localhost"));
      }
      if (!host.profile_loaded || !host.profile_loaded(name)) {
        return absl::FailedPreconditionError(
            absl::StrCat(kField, ".localhost_ref: apparmor profile not found: ", name));
      }
      return name;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(kField, ".profile_type: unknown value ",
                                                     static_cast<int>(profile.profile_type())));
  }
}

}  // namespace crid
