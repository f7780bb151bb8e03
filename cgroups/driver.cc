#include "cgroups/driver.h"

#include <systemd/sd-daemon.h>

#include "absl/strings/str_cat.h"

namespace crid {

absl::StatusOr<CgroupDriver> ResolveCgroupDriver(const std::string& configured) {
  if (configured == "systemd") {
    return CgroupDriver::kSystemd;
  }
  if (configured == "cgroupfs") {
    return CgroupDriver::kCgroupfs;
  }
  if (configured == "auto" || configured.empty()) {
    return sd_booted() > 0 ? CgroupDriver::kSystemd : CgroupDriver::kCgroupfs;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("cgroup_driver: must be auto, systemd or cgroupfs; got \"", configured, "\""));
}

const char* CgroupDriverName(CgroupDriver driver) {
  return driver == CgroupDriver::kSystemd ? "systemd" : "cgroupfs";
}

}  // namespace crid
