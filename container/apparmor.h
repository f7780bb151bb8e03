// AppArmor for a container, as containerd decides it: the CRI profile (or the
// deprecated apparmor_profile string) becomes process.apparmorProfile where
// the host has AppArmor; where it has none, asking for any confinement is an
// error instead of a container that silently runs unconfined. RuntimeDefault
// is crid's own profile, generated and loaded on first use like containerd's
// cri-containerd.apparmor.d.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/cri_api.pb.h"

namespace crid {

// The profile RuntimeDefault maps to; crid loads it where it is missing.
inline constexpr char kAppArmorDefaultProfile[] = "crid-default";

// What the default profile's text depends on besides its name: the host's
// policy files (/etc/apparmor.d) and the profile crid itself runs under.
struct AppArmorTemplate {
  std::string name = kAppArmorDefaultProfile;
  // abi/3.0 exists: the profile declares it, so newer parsers keep 3.0's rules.
  bool abi_3_0 = false;
  // tunables/global exists: it defines @{PROC}; without it the profile does.
  bool tunables_global = false;
  // abstractions/base exists: the profile includes it (libc, locales, ...).
  bool abstractions_base = false;
  // crid's own profile (from /proc/self/attr/current), allowed to signal the
  // container's processes; "unconfined" when crid runs unconfined.
  std::string daemon_profile = "unconfined";
};

struct AppArmorHost {
  // /sys/module/apparmor/parameters/enabled says "Y" (runc's test).
  bool enabled = false;
  // Whether a profile of this name is loaded (Localhost profiles must be).
  std::function<bool(const std::string&)> profile_loaded;
  // Loads (or replaces) the profile in a file: `apparmor_parser -Kr PATH`.
  std::function<absl::Status(const std::string& path)> load_profile;
  // Where crid writes the default profile before loading it.
  std::string profile_dir;
  AppArmorTemplate default_profile;
};

// What this host has. crid's default profile is written under
// `state_dir`/apparmor (crid's state directory; /run/crid unless configured).
AppArmorHost DetectAppArmor(const std::string& state_dir = "/run/crid");

// The default profile's text: deny writes to /proc and /sys outside the
// container's own, mount, and ptrace except among the container's processes.
std::string AppArmorDefaultProfileText(const AppArmorTemplate& t);

// Whether /sys/kernel/security/apparmor/profiles text ("name (mode)" lines)
// lists a profile of this name.
bool AppArmorProfileListed(absl::string_view profiles, absl::string_view name);

// Makes sure the default profile is loaded: writes its text to
// profile_dir/<name> and loads it, unless it is already loaded.
absl::Status EnsureAppArmorDefaultProfile(const AppArmorHost& host);

// The value for process.apparmorProfile; "" for none. RuntimeDefault loads
// crid's default profile first if the host lacks it. Errors name the field:
// FAILED_PRECONDITION when the host cannot apply the profile asked for,
// INVALID_ARGUMENT for a malformed request.
absl::StatusOr<std::string> AppArmorProfileFor(const runtime::v1::LinuxContainerSecurityContext& sc,
                                               const AppArmorHost& host);

}  // namespace crid
