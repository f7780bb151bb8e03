// AppArmor for a container, as containerd decides it: the CRI profile (or the
// deprecated apparmor_profile string) becomes process.apparmorProfile where
// the host has AppArmor; where it has none, asking for any confinement is an
// error instead of a container that silently runs unconfined.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "proto/cri_api.pb.h"

namespace crid {

// The profile crid asks for with RuntimeDefault. crid does not load it: where
// the host has AppArmor, a profile of this name must be loaded for
// RuntimeDefault to work.
inline constexpr char kAppArmorDefaultProfile[] = "crid-default";

struct AppArmorHost {
  // /sys/module/apparmor/parameters/enabled says "Y" (runc's test).
  bool enabled = false;
  // Whether a profile of this name is loaded (Localhost profiles must be).
  std::function<bool(const std::string&)> profile_loaded;
};

// What this host has.
AppArmorHost DetectAppArmor();

// The value for process.apparmorProfile; "" for none. Errors name the field:
// FAILED_PRECONDITION when the host cannot apply the profile asked for,
// INVALID_ARGUMENT for a malformed request.
absl::StatusOr<std::string> AppArmorProfileFor(const runtime::v1::LinuxContainerSecurityContext& sc,
                                               const AppArmorHost& host);

}  // namespace crid
