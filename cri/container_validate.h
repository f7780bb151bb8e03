// Checks CreateContainer's ContainerConfig before anything is created. Every
// error is INVALID_ARGUMENT and names the field as written in the CRI proto.
#pragma once

#include "absl/status/status.h"
#include "proto/cri_api.pb.h"

namespace crid {

absl::Status ValidateContainerConfig(const runtime::v1::ContainerConfig& config);

}  // namespace crid
