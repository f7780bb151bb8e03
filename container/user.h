// Resolves the user a container runs as, the way kubelet and containerd do: from
// the CRI security context, else the image's User, with names looked up in the
// image's own /etc/passwd and /etc/group (read without ever leaving the rootfs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crid {

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string home;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

// Parsers for passwd(5) and group(5) text; malformed lines are skipped.
std::vector<PasswdEntry> ParsePasswd(absl::string_view text);
std::vector<GroupEntry> ParseGroup(absl::string_view text);

// Where the names come from. Missing files are empty tables.
struct UserDatabase {
  std::vector<PasswdEntry> passwd;
  std::vector<GroupEntry> groups;

  // Reads ROOTFS/etc/passwd and ROOTFS/etc/group, resolving every path component
  // inside `rootfs` (symlinks included), so a hostile image cannot make crid read
  // a host file.
  static absl::StatusOr<UserDatabase> FromRootfs(const std::string& rootfs);
};

struct UserRequest {
  // From LinuxContainerSecurityContext.
  std::optional<int64_t> run_as_user;
  std::string run_as_username;
  std::optional<int64_t> run_as_group;
  std::vector<int64_t> supplemental_groups;  // pod's and container's
  bool strict_supplemental_groups = false;   // SupplementalGroupsPolicy Strict
  // The image config's User ("", "uid", "uid:gid", "name", "name:group").
  std::string image_user;
};

struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;  // sorted, unique, without gid
  std::string username;                   // "" when the uid has no passwd entry
  std::string home = "/";
};

// Errors are INVALID_ARGUMENT (bad request, e.g. run_as_group without a user) or
// NOT_FOUND (a name missing from the image's files), naming the field.
absl::StatusOr<ResolvedUser> ResolveUser(const UserRequest& request, const UserDatabase& db);

}  // namespace crid
