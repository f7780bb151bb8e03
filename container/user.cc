#include "container/user.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"
#include "base/unique_fd.h"

namespace crid {

namespace {

constexpr size_t kMaxDatabaseBytes = size_t{4} * 1024 * 1024;

// Reads `path` (relative to `root_fd`) as if `root_fd` were "/".
absl::StatusOr<std::optional<std::string>> ReadInRoot(int root_fd, const char* path,
                                                      const std::string& rootfs) {
  struct open_how how = {};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  int fd = static_cast<int>(::syscall(SYS_openat2, root_fd, path, &how, sizeof(how)));
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return std::optional<std::string>();
    }
    return ErrnoError(errno, "open ", rootfs, "/", path);
  }
  UniqueFd file(fd);
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(file.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoError(errno, "read ", rootfs, "/", path);
    }
    if (n == 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxDatabaseBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(rootfs, "/", path, " is over ", kMaxDatabaseBytes, " bytes"));
    }
  }
  return std::optional<std::string>(std::move(out));
}

bool ParseId(absl::string_view text, uint32_t* id) {
  return !text.empty() && absl::SimpleAtoi(text, id);
}

const PasswdEntry* FindUserByName(const UserDatabase& db, absl::string_view name) {
  for (const PasswdEntry& e : db.passwd) {
    if (e.name == name) {
      return &e;
    }
  }
  return nullptr;
}

const PasswdEntry* FindUserById(const UserDatabase& db, uint32_t uid) {
  for (const PasswdEntry& e : db.passwd) {
    if (e.uid == uid) {
      return &e;
    }
  }
  return nullptr;
}

absl::StatusOr<uint32_t> LookupGroup(const UserDatabase& db, absl::string_view group,
                                     absl::string_view field) {
  uint32_t gid;
  if (ParseId(group, &gid)) {
    return gid;
  }
  for (const GroupEntry& e : db.groups) {
    if (e.name == group) {
      return e.gid;
    }
  }
  return absl::NotFoundError(
      absl::StrCat(field, ": no group \"", group, "\" in the image's /etc/group"));
}

absl::Status CheckId(int64_t id, absl::string_view field) {
  if (id < 0 || id > 0xfffffffeLL) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", id, " is not a valid id"));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<PasswdEntry> ParsePasswd(absl::string_view text) {
  std::vector<PasswdEntry> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    PasswdEntry e;
    if (f.size() < 7 || f[0].empty() || !ParseId(f[2], &e.uid) || !ParseId(f[3], &e.gid)) {
      continue;
    }
    e.name = std::string(f[0]);
    e.home = std::string(f[5]);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<GroupEntry> ParseGroup(absl::string_view text) {
  std::vector<GroupEntry> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    GroupEntry e;
    if (f.size() < 4 || f[0].empty() || !ParseId(f[2], &e.gid)) {
      continue;
    }
    e.name = std::string(f[0]);
    for (absl::string_view m : absl::StrSplit(f[3], ',', absl::SkipEmpty())) {
      e.members.emplace_back(m);
    }
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<UserDatabase> UserDatabase::FromRootfs(const std::string& rootfs) {
  UniqueFd root(::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) {
    return ErrnoError(errno, "open rootfs ", rootfs);
  }
  UserDatabase db;
  CRID_ASSIGN_OR_RETURN(std::optional<std::string> passwd,
                        ReadInRoot(root.get(), "etc/passwd", rootfs));
  CRID_ASSIGN_OR_RETURN(std::optional<std::string> group,
                        ReadInRoot(root.get(), "etc/group", rootfs));
  if (passwd.has_value()) {
    db.passwd = ParsePasswd(*passwd);
  }
  if (group.has_value()) {
    db.groups = ParseGroup(*group);
  }
  return db;
}

absl::StatusOr<ResolvedUser> ResolveUser(const UserRequest& request, const UserDatabase& db) {
  ResolvedUser user;
  bool gid_from_user_spec = false;
  // As kubelet's API says: a group alone is meaningless (and containerd refuses it
  // even when the image names a user).
  if (request.run_as_group.has_value() && !request.run_as_user.has_value() &&
      request.run_as_username.empty()) {
    return absl::InvalidArgumentError(
        "run_as_group: must not be set without run_as_user or run_as_username");
  }
  if (request.run_as_user.has_value()) {
    CRID_RETURN_IF_ERROR(CheckId(*request.run_as_user, "run_as_user"));
    user.uid = static_cast<uint32_t>(*request.run_as_user);
  } else if (!request.run_as_username.empty()) {
    const PasswdEntry* e = FindUserByName(db, request.run_as_username);
    if (e == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "run_as_username: no user \"", request.run_as_username, "\" in the image's /etc/passwd"));
    }
    user.uid = e->uid;
  } else if (!request.image_user.empty()) {
    // The image's User: "user[:group]", each part a name or a number.
    std::pair<std::string, std::string> parts = absl::StrSplit(request.image_user, ':');
    if (!ParseId(parts.first, &user.uid)) {
      const PasswdEntry* e = FindUserByName(db, parts.first);
      if (e == nullptr) {
        return absl::NotFoundError(absl::StrCat("image config User: no user \"", parts.first,
                                                "\" in the image's /etc/passwd"));
      }
      user.uid = e->uid;
    }
    if (!parts.second.empty()) {
      CRID_ASSIGN_OR_RETURN(user.gid, LookupGroup(db, parts.second, "image config User"));
      gid_from_user_spec = true;
    }
  }

  const PasswdEntry* entry = FindUserById(db, user.uid);
  if (entry != nullptr) {
    user.username = entry->name;
    user.home = entry->home.empty() ? "/" : entry->home;
    if (!gid_from_user_spec) {
      user.gid = entry->gid;
    }
  }
  if (request.run_as_group.has_value()) {
    CRID_RETURN_IF_ERROR(CheckId(*request.run_as_group, "run_as_group"));
    user.gid = static_cast<uint32_t>(*request.run_as_group);
  }

  std::vector<uint32_t> gids;
  // Groups the image's /etc/group lists the user in (unless the policy is Strict).
  if (!request.strict_supplemental_groups && !user.username.empty()) {
    for (const GroupEntry& g : db.groups) {
      if (std::find(g.members.begin(), g.members.end(), user.username) != g.members.end()) {
        gids.push_back(g.gid);
      }
    }
  }
  for (int64_t g : request.supplemental_groups) {
    CRID_RETURN_IF_ERROR(CheckId(g, "supplemental_groups"));
    gids.push_back(static_cast<uint32_t>(g));
  }
  std::sort(gids.begin(), gids.end());
  gids.erase(std::unique(gids.begin(), gids.end()), gids.end());
  gids.erase(std::remove(gids.begin(), gids.end(), user.gid), gids.end());
  user.additional_gids = std::move(gids);
  return user;
}

}  // namespace crid
