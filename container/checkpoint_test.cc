#include "container/checkpoint.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid::container {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// The member names of a tar, as GNU tar lists them.
std::set<std::string> TarMembers(const std::string& archive) {
  std::string cmd = absl::StrCat("tar -tf '", archive, "'");
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) {
    out.append(buf, n);
  }
  ::pclose(p);
  std::set<std::string> members;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    members.emplace(line);
  }
  return members;
}

void Write(const std::string& path, const std::string& data) {
  ASSERT_TRUE(WriteFileAtomic(path, data, 0644).ok()) << path;
}

TEST(ConfigDump, RoundTripsInCheckpointctlFieldNames) {
  CheckpointConfig c;
  c.id = "abc";
  c.name = "counter";
  c.rootfs_image = "sha256:1111";
  c.rootfs_image_ref = "registry.local/busybox@sha256:2222";
  c.rootfs_image_name = "registry.local/busybox:1";
  c.runtime = "runc";
  c.created_ns = 1700000000123456789;
  c.checkpointed_ns = 1700000100000000000;
  std::string text = ConfigDumpJson(c);
  Json j = Json::parse(text);
  EXPECT_EQ(j["id"], "abc");
  EXPECT_EQ(j["name"], "counter");
  EXPECT_EQ(j["rootfsImageName"], "registry.local/busybox:1");
  EXPECT_EQ(j["runtime"], "runc");
  EXPECT_EQ(j["createdTime"], "2023-11-14T22:13:20.123456789Z");
  absl::StatusOr<CheckpointConfig> back = ParseConfigDump(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->rootfs_image_ref, c.rootfs_image_ref);
  EXPECT_EQ(back->created_ns, c.created_ns);
  EXPECT_EQ(back->checkpointed_ns, c.checkpointed_ns);
}

TEST(ConfigDump, WithoutAnImageIsRefused) {
  absl::StatusOr<CheckpointConfig> c = ParseConfigDump(R"({"id":"x","name":"y"})");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("config.dump"));
}

TEST(CriuLogErrors, KeepsTheLastErrorLines) {
  std::string log =
      "(00.01) Version: 3.17.1\n"
      "(00.02) Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n"
      "(00.03) Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed\n"
      "(00.04) done\n";
  EXPECT_EQ(CriuLogErrors(log, 1),
            "Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed");
  EXPECT_THAT(CriuLogErrors(log), HasSubstr("Unexpected rt vDSO area bounds"));
  EXPECT_EQ(CriuLogErrors("(00.01) fine\n"), "");
}

TEST(CheckCriu, AnswersOkOrFailedPreconditionWithTheReason) {
  absl::Status st = CheckCriu();
  if (!st.ok()) {
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(st.message(), HasSubstr("CRIU"));
    EXPECT_GT(st.message().size(), 40u) << "names why: " << st.message();
  }
}

// An overlay upper directory: a new file, a changed directory and a whiteout
// (a deleted image file) go into rootfs-diff.tar and deleted.files, and come
// back as the same files and a whiteout in a new upper directory.
TEST(RootfsDiff, WritesChangesAndDeletionsAndAppliesThemBack) {
  TempDir tmp;
  std::string upper = tmp.Sub("upper");
  std::string out = tmp.Sub("out");
  ASSERT_TRUE(MakeDirs(upper + "/tmp", 01777).ok());
  ASSERT_TRUE(MakeDirs(upper + "/etc", 0755).ok());
  ASSERT_TRUE(MakeDirs(out, 0700).ok());
  Write(upper + "/tmp/count", "41\n");
  ASSERT_EQ(::symlink("count", (upper + "/tmp/link").c_str()), 0);
  ASSERT_EQ(::mknod((upper + "/etc/motd").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);

  ASSERT_TRUE(WriteRootfsDiff(upper, out).ok());
  EXPECT_THAT(TarMembers(out + "/rootfs-diff.tar"),
              UnorderedElementsAre("tmp/", "etc/", "tmp/count", "tmp/link"));
  absl::StatusOr<std::string> deleted = ReadFile(out + "/deleted.files");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(Json::parse(*deleted), Json::array({"/etc/motd"}));
  struct stat st;
  EXPECT_NE(::stat((out + "/.rootfs-diff.list").c_str(), &st), 0) << "no scratch files left";

  std::string fresh = tmp.Sub("fresh");
  ASSERT_TRUE(MakeDirs(fresh, 0755).ok());
  absl::Status applied = ApplyRootfsDiff(out, fresh);
  ASSERT_TRUE(applied.ok()) << applied;
  EXPECT_EQ(ReadFile(fresh + "/tmp/count").value_or(""), "41\n");
  ASSERT_EQ(::lstat((fresh + "/tmp/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(::lstat((fresh + "/etc/motd").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) << "a whiteout again";
}

TEST(RootfsDiff, DeletedFilesCannotLeaveTheLayer) {
  TempDir tmp;
  std::string dir = tmp.Sub("dir");
  std::string upper = tmp.Sub("upper");
  ASSERT_TRUE(MakeDirs(dir, 0700).ok());
  ASSERT_TRUE(MakeDirs(upper, 0755).ok());
  Write(dir + "/deleted.files", R"(["/../../outside"])");
  absl::Status st = ApplyRootfsDiff(dir, upper);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("leaves the rootfs"));
  struct stat s;
  EXPECT_NE(::lstat(tmp.Sub("outside").c_str(), &s), 0);
}

// The archive holds the directory's entries under plain names (as CRI-O's
// and containerd's archives do, which checkpointctl reads), and unpacks again.
TEST(CheckpointArchive, WritesPlainNamesAtomicallyAndUnpacks) {
  TempDir tmp;
  std::string work = tmp.Sub("work");
  ASSERT_TRUE(MakeDirs(work + "/checkpoint", 0700).ok());
  Write(work + "/config.dump", R"({"id":"a","name":"c","rootfsImageName":"img"})");
  Write(work + "/spec.dump", R"({"process":{"args":["sh"]}})");
  Write(work + "/checkpoint/pages-1.img", "pages");
  Write(work + "/dump.log", "log");
  std::string location = tmp.Sub("checkpoint.tar");

  absl::Status st = WriteCheckpointArchive(work, location);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_THAT(TarMembers(location), UnorderedElementsAre("checkpoint/", "checkpoint/pages-1.img",
                                                         "config.dump", "dump.log", "spec.dump"));
  struct stat s;
  EXPECT_NE(::stat((location + ".crid-tmp").c_str(), &s), 0);
  ASSERT_EQ(::stat(location.c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 0777, 0600u);
  EXPECT_TRUE(IsCheckpointArchive(location));
  EXPECT_FALSE(IsCheckpointArchive("registry.local/busybox:1"));
  EXPECT_FALSE(IsCheckpointArchive(tmp.Sub("missing.tar")));

  std::string dest = tmp.Sub("dest");
  ASSERT_TRUE(MakeDirs(dest, 0700).ok());
  st = UnpackCheckpointArchive(location, dest);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(ReadFile(dest + "/checkpoint/pages-1.img").value_or(""), "pages");
}

TEST(CheckpointArchive, AFailedWriteLeavesNothing) {
  TempDir tmp;
  std::string location = tmp.Sub("no-such-dir/checkpoint.tar");
  absl::Status st = WriteCheckpointArchive(tmp.Sub("missing-work"), location);
  EXPECT_FALSE(st.ok());
  struct stat s;
  EXPECT_NE(::stat(location.c_str(), &s), 0);
  EXPECT_NE(::stat((location + ".crid-tmp").c_str(), &s), 0);
}

TEST(CheckpointArchive, WithoutSpecOrWithLinksIsRefused) {
  TempDir tmp;
  std::string work = tmp.Sub("work");
  ASSERT_TRUE(MakeDirs(work, 0700).ok());
  Write(work + "/config.dump", R"({"id":"a","rootfsImageName":"img"})");
  ASSERT_TRUE(WriteCheckpointArchive(work, tmp.Sub("a.tar")).ok());
  ASSERT_TRUE(MakeDirs(tmp.Sub("d1"), 0700).ok());
  absl::Status st = UnpackCheckpointArchive(tmp.Sub("a.tar"), tmp.Sub("d1"));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("spec.dump"));

  Write(work + "/spec.dump", "{}");
  ASSERT_EQ(::symlink("/etc/passwd", (work + "/passwd").c_str()), 0);
  ASSERT_TRUE(WriteCheckpointArchive(work, tmp.Sub("b.tar")).ok());
  ASSERT_TRUE(MakeDirs(tmp.Sub("d2"), 0700).ok());
  st = UnpackCheckpointArchive(tmp.Sub("b.tar"), tmp.Sub("d2"));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("not a regular file or directory"));
}

}  // namespace
}  // namespace crid::container
