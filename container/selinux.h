// SELinux labels for a container, as containerd gives them: the pod's
// selinux_options label the pod and every container that sets none of its
// own; a container's own options override the policy's default container
// context field by field, its level defaulting to the pod's. Labels go into
// process.selinuxLabel and linux.mountLabel only where the host has SELinux;
// elsewhere nothing is written and nothing fails (after validation).
#pragma once

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/cri_api.pb.h"

namespace crid {

struct SELinuxHost {
  // selinuxfs is mounted and /sys/fs/selinux/enforce exists.
  bool enabled = false;
  // The policy's default container contexts (contexts/lxc_contexts "process"
  // and "file"), the base every label starts from.
  std::string process_label = "system_u:system_r:container_t:s0";
  std::string file_label = "system_u:object_r:container_file_t:s0";
};

// What this host has.
SELinuxHost DetectSELinux();

// The "process" and "file" contexts of an lxc_contexts file; empty for one
// the file does not name.
std::pair<std::string, std::string> ParseLxcContexts(absl::string_view text);

// INVALID_ARGUMENT naming `field` (e.g. "linux.security_context.selinux_options")
// and the part: user, role and type must hold no ':' or whitespace; level
// must be an MLS range such as "s0:c1,c2" (containerd's pattern).
absl::Status ValidateSELinuxOption(const runtime::v1::SELinuxOption& option,
                                   absl::string_view field);

struct SELinuxLabels {
  std::string process_label;  // process.selinuxLabel
  std::string mount_label;    // linux.mountLabel
};

// The pod's MCS level where its options give none: categories derived from
// the pod's ID, so every container of the pod shares them without crid
// keeping a record, and different pods differ (with 523,776 category pairs,
// two pods rarely collide).
std::string PodMcsLevel(absl::string_view pod_id, absl::string_view base_level);

// The labels of a container in pod `pod_id`; empty where the host has no
// SELinux. Both option sets are validated first, whatever the host.
absl::StatusOr<SELinuxLabels> SELinuxLabelsFor(const runtime::v1::SELinuxOption& pod,
                                               const runtime::v1::SELinuxOption& container,
                                               absl::string_view pod_id, const SELinuxHost& host);

}  // namespace crid
