// Seccomp profiles for containers: crid's RuntimeDefault profile (an allowlist in
// the spirit of Docker's default, with capability-gated groups), Unconfined, and
// Localhost profiles read from a JSON file in Docker's format, all turned into
// the OCI spec's linux.seccomp object.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "proto/cri_api.pb.h"

namespace crid {

// The RuntimeDefault profile for a container holding `capabilities` ("CAP_*").
nlohmann::json DefaultSeccompProfile(const std::vector<std::string>& capabilities);

// Converts a Docker-format profile (archMap, names/name, includes/excludes by
// caps and arches) into the OCI form. `origin` names the source in errors.
absl::StatusOr<nlohmann::json> ConvertSeccompProfile(const std::string& text,
                                                     const std::vector<std::string>& capabilities,
                                                     const std::string& origin);

// The profile a container gets from its security context: null for Unconfined
// (and for privileged containers, which run unconfined as in containerd).
absl::StatusOr<nlohmann::json> SeccompForContainer(
    const runtime::v1::LinuxContainerSecurityContext& sc,
    const std::vector<std::string>& capabilities);

}  // namespace crid
