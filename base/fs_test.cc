// File helpers: atomic replacement leaves no temporary behind, and disk usage
// counts hard-linked inodes once.
#include "base/fs.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "base/temp_dir.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

int CountEntries(const std::string& dir) {
  int n = 0;
  DIR* d = ::opendir(dir.c_str());
  while (struct dirent* e = ::readdir(d)) {
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") {
      ++n;
    }
  }
  ::closedir(d);
  return n;
}

TEST(MakeDirs, CreatesParentsAndAcceptsExisting) {
  TempDir tmp;
  std::string deep = tmp.Sub("a/b/c");
  ASSERT_TRUE(MakeDirs(deep, 0755).ok());
  struct stat st;
  ASSERT_EQ(::stat(deep.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_TRUE(MakeDirs(deep, 0755).ok());
}

TEST(MakeDirs, RefusesFileInTheWay) {
  TempDir tmp;
  std::ofstream(tmp.Sub("file")) << "x";
  absl::Status st = MakeDirs(tmp.Sub("file/sub"), 0755);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("not a directory"), absl::string_view::npos) << st;
}

TEST(WriteFileAtomic, ReplacesContentAndLeavesNoTemporary) {
  TempDir tmp;
  std::string path = tmp.Sub("data");
  ASSERT_TRUE(WriteFileAtomic(path, "first", 0640).ok());
  ASSERT_TRUE(WriteFileAtomic(path, "second", 0640).ok());
  EXPECT_EQ(*ReadFile(path), "second");
  EXPECT_EQ(CountEntries(tmp.path()), 1);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(WriteFileAtomic, FailureNamesPath) {
  absl::Status st = WriteFileAtomic("/nonexistent-dir-crid/x", "data", 0600);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(st.message().find("/nonexistent-dir-crid/x"), absl::string_view::npos) << st;
}

TEST(ReplaceFile, ReplacesContentAndModeAndLeavesNoTemporary) {
  TempDir tmp;
  std::string path = tmp.Sub("hosts");
  ASSERT_TRUE(ReplaceFile(path, "first", 0600).ok());
  ASSERT_TRUE(ReplaceFile(path, "second", 0644).ok());
  EXPECT_EQ(*ReadFile(path), "second");
  EXPECT_EQ(CountEntries(tmp.path()), 1);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST(ReplaceFile, FailureNamesPathAndLeavesNoTemporary) {
  TempDir tmp;
  // A directory where the file should be: the rename fails.
  ASSERT_TRUE(MakeDirs(tmp.Sub("busy/sub"), 0755).ok());
  absl::Status st = ReplaceFile(tmp.Sub("busy"), "data", 0644);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(tmp.Sub("busy")), absl::string_view::npos) << st;
  EXPECT_EQ(CountEntries(tmp.path()), 1);
}

TEST(ReadFile, MissingFileIsNotFound) {
  EXPECT_EQ(ReadFile("/nonexistent-crid-file").status().code(), absl::StatusCode::kNotFound);
}

TEST(MeasureDiskUsage, CountsInodesAndHardLinksOnce) {
  TempDir tmp;
  ASSERT_TRUE(MakeDirs(tmp.Sub("d/e"), 0755).ok());
  std::string big(size_t{64} * 1024, 'x');
  ASSERT_TRUE(WriteFileAtomic(tmp.Sub("d/big"), big, 0644).ok());
  ASSERT_EQ(::link(tmp.Sub("d/big").c_str(), tmp.Sub("d/e/big2").c_str()), 0);
  ASSERT_EQ(::symlink("big", tmp.Sub("d/link").c_str()), 0);
  absl::StatusOr<DiskUsage> usage = MeasureDiskUsage(tmp.Sub("d"));
  ASSERT_TRUE(usage.ok()) << usage.status();
  // d, e, big (once despite two names), link
  EXPECT_EQ(usage->inodes, 4u);
  EXPECT_GE(usage->bytes, big.size());
  EXPECT_LT(usage->bytes, 2 * big.size());
}

TEST(RemoveTree, RemovesEverythingButFollowsNoLink) {
  TempDir outside;
  std::ofstream(outside.Sub("keep")) << "precious";
  TempDir tmp;
  ASSERT_TRUE(MakeDirs(tmp.Sub("t/a/b"), 0755).ok());
  std::ofstream(tmp.Sub("t/a/b/f")) << "x";
  ASSERT_EQ(::symlink(outside.path().c_str(), tmp.Sub("t/a/link").c_str()), 0);
  ASSERT_TRUE(RemoveTree(tmp.Sub("t")).ok());
  struct stat st;
  EXPECT_NE(::lstat(tmp.Sub("t").c_str(), &st), 0);
  EXPECT_EQ(*ReadFile(outside.Sub("keep")), "precious");
  EXPECT_TRUE(RemoveTree(tmp.Sub("t")).ok()) << "missing is fine";
}

TEST(MeasureDiskUsage, MissingRootIsAnError) {
  EXPECT_FALSE(MeasureDiskUsage("/nonexistent-crid-dir").ok());
}

TEST(ListDirTest, NamesWithoutDotsAndNotFound) {
  TempDir tmp;
  ASSERT_TRUE(MakeDirs(tmp.Sub("d/sub"), 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(tmp.Sub("d/file"), "x", 0644).ok());
  absl::StatusOr<std::vector<std::string>> names = ListDir(tmp.Sub("d"));
  ASSERT_TRUE(names.ok()) << names.status();
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"file", "sub"}));
  EXPECT_EQ(ListDir(tmp.Sub("missing")).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace crid
