// Linux capability sets for containers: the default set, and CRI add/drop
// lists applied the way containerd does (ALL first, then single names).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace crid {

// Every capability this host's kernel knows and crid holds in its bounding set
// (what privileged containers and "add ALL" get), "CAP_" names in number order.
std::vector<std::string> AllCapabilities();

// What an unprivileged container gets without add/drop (Docker's set).
std::vector<std::string> DefaultCapabilities();

// Applies CRI Capability lists: "ALL" in add, then "ALL" in drop, then the single
// adds, then the single drops. Names are case-insensitive, with or without the
// CAP_ prefix; an unknown name is INVALID_ARGUMENT naming `field`.
absl::StatusOr<std::vector<std::string>> ApplyCapabilityChanges(
    std::vector<std::string> base, const std::vector<std::string>& add,
    const std::vector<std::string>& drop);

// "net_admin" / "CAP_NET_ADMIN" -> "CAP_NET_ADMIN"; error when unknown.
absl::StatusOr<std::string> NormalizeCapability(const std::string& name);

}  // namespace crid
