// User resolution follows Kubernetes and containerd, and reading the image's
// user database never leaves the rootfs.
#include "container/user.h"

#include <unistd.h>

#include <fstream>

#include "base/fs.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kPasswd[] =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# comment\n"
    "www:x:33:33:www:/var/www:/bin/false\n"
    "alice:x:1000:1000::/home/alice:/bin/sh\n"
    "broken line\n";
constexpr char kGroup[] =
    "root:x:0:\n"
    "www:x:33:\n"
    "users:x:100:alice,bob\n"
    "audio:x:29:alice\n"
    "alice:x:1000:\n";

UserDatabase Db() {
  UserDatabase db;
  db.passwd = ParsePasswd(kPasswd);
  db.groups = ParseGroup(kGroup);
  return db;
}

TEST(ParsePasswd, SkipsCommentsAndMalformedLines) {
  std::vector<PasswdEntry> p = ParsePasswd(kPasswd);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[2].name, "alice");
  EXPECT_EQ(p[2].uid, 1000u);
  EXPECT_EQ(p[2].home, "/home/alice");
}

TEST(ResolveUser, DefaultsToRoot) {
  auto u = ResolveUser({}, Db());
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 0u);
  EXPECT_EQ(u->gid, 0u);
  EXPECT_EQ(u->username, "root");
  EXPECT_EQ(u->home, "/root");
}

TEST(ResolveUser, RunAsUserTakesGidAndGroupsFromImage) {
  UserRequest r;
  r.run_as_user = 1000;
  auto u = ResolveUser(r, Db());
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 1000u);
  EXPECT_THAT(u->additional_gids, ElementsAre(29, 100));
}

TEST(ResolveUser, UnknownUidRunsWithGidZero) {
  UserRequest r;
  r.run_as_user = 4242;
  auto u = ResolveUser(r, Db());
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 4242u);
  EXPECT_EQ(u->gid, 0u);
  EXPECT_EQ(u->username, "");
}

TEST(ResolveUser, RunAsUsernameAndGroup) {
  UserRequest r;
  r.run_as_username = "www";
  r.run_as_group = 100;
  r.supplemental_groups = {5000, 100, 5000};
  auto u = ResolveUser(r, Db());
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 33u);
  EXPECT_EQ(u->gid, 100u);
  EXPECT_THAT(u->additional_gids, ElementsAre(5000));
}

TEST(ResolveUser, StrictPolicyIgnoresImageGroups) {
  UserRequest r;
  r.run_as_user = 1000;
  r.strict_supplemental_groups = true;
  r.supplemental_groups = {7};
  auto u = ResolveUser(r, Db());
  ASSERT_TRUE(u.ok());
  EXPECT_THAT(u->additional_gids, ElementsAre(7));
}

TEST(ResolveUser, ImageUserForms) {
  UserRequest r;
  r.image_user = "www:users";
  auto u = ResolveUser(r, Db());
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 33u);
  EXPECT_EQ(u->gid, 100u);
  r.image_user = "1000:29";
  u = ResolveUser(r, Db());
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 29u);
  EXPECT_THAT(u->additional_gids, ElementsAre(100));
}

TEST(ResolveUser, ErrorsNameTheField) {
  UserRequest group_only;
  group_only.run_as_group = 5;
  group_only.image_user = "alice";
  auto u = ResolveUser(group_only, Db());
  EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(u.status().message()), HasSubstr("run_as_group"));

  UserRequest missing;
  missing.run_as_username = "mallory";
  u = ResolveUser(missing, Db());
  EXPECT_EQ(u.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(u.status().message()), HasSubstr("run_as_username"));

  UserRequest bad_image;
  bad_image.image_user = "alice:nogroup";
  u = ResolveUser(bad_image, Db());
  EXPECT_THAT(std::string(u.status().message()), HasSubstr("nogroup"));

  UserRequest negative;
  negative.run_as_user = -1;
  EXPECT_EQ(ResolveUser(negative, Db()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(UserDatabase, ReadsFromRootfs) {
  TempDir tmp;
  ASSERT_TRUE(MakeDirs(tmp.Sub("etc"), 0755).ok());
  std::ofstream(tmp.Sub("etc/passwd")) << kPasswd;
  std::ofstream(tmp.Sub("etc/group")) << kGroup;
  auto db = UserDatabase::FromRootfs(tmp.path());
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ(db->passwd.size(), 3u);
  EXPECT_EQ(db->groups.size(), 5u);
}

TEST(UserDatabase, MissingFilesAreEmpty) {
  TempDir tmp;
  auto db = UserDatabase::FromRootfs(tmp.path());
  ASSERT_TRUE(db.ok());
  EXPECT_THAT(db->passwd, IsEmpty());
}

TEST(UserDatabase, SymlinksCannotLeaveTheRootfs) {
  TempDir host;
  ASSERT_TRUE(MakeDirs(host.Sub("secret"), 0755).ok());
  std::ofstream(host.Sub("secret/passwd")) << "evil:x:0:0::/:/bin/sh\n";
  TempDir rootfs;
  ASSERT_TRUE(MakeDirs(rootfs.Sub("etc"), 0755).ok());
  // An absolute link and a ../ climb both resolve inside the rootfs instead.
  ASSERT_EQ(::symlink(host.Sub("secret/passwd").c_str(), rootfs.Sub("etc/passwd").c_str()), 0);
  ASSERT_EQ(::symlink("../../../../../../../../secret", rootfs.Sub("etc/group").c_str()), 0);
  auto db = UserDatabase::FromRootfs(rootfs.path());
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_THAT(db->passwd, IsEmpty());
  EXPECT_THAT(db->groups, IsEmpty());
}

}  // namespace
}  // namespace crid
