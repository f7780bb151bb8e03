// Which cgroup driver crid uses, and how it is chosen: kubelet asks through the
// RuntimeConfig RPC and must use the same one, or the two fight over the tree.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace crid {

enum class CgroupDriver { kSystemd, kCgroupfs };

// `configured` is "systemd", "cgroupfs" or "auto"; auto picks systemd when
// systemd is the init system (the same test sd_booted(3) makes).
absl::StatusOr<CgroupDriver> ResolveCgroupDriver(const std::string& configured);

const char* CgroupDriverName(CgroupDriver driver);

}  // namespace crid
