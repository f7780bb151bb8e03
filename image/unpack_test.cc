#include "image/unpack.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "image/digest.h"
#include "image/test_layers.h"

namespace crid {
namespace {

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(tmp_.Sub("layer"), 0755).ok());
    ASSERT_TRUE(MakeDirs(tmp_.Sub("outside"), 0755).ok());
    ASSERT_TRUE(WriteFileAtomic(tmp_.Sub("outside/victim"), "original", 0644).ok());
  }

  absl::StatusOr<UnpackResult> Unpack(const std::string& blob, const UnpackLimits& limits = {}) {
    EXPECT_TRUE(WriteFileAtomic(tmp_.Sub("blob"), blob, 0600).ok());
    return UnpackLayer(tmp_.Sub("blob"), tmp_.Sub("layer"), limits);
  }

  std::string Layer(const std::string& rel) const { return tmp_.Sub("layer/" + rel); }

  void ExpectRefused(const std::string& tar, const std::string& reason) {
    absl::StatusOr<UnpackResult> r = Unpack(tar);
    ASSERT_FALSE(r.ok()) << "hostile layer was accepted";
    EXPECT_NE(r.status().message().find(reason), absl::string_view::npos) << r.status();
    absl::StatusOr<std::string> victim = ReadFile(tmp_.Sub("outside/victim"));
    ASSERT_TRUE(victim.ok());
    EXPECT_EQ(*victim, "original");
    struct stat st {};
    EXPECT_NE(lstat(tmp_.Sub("outside/pwned").c_str(), &st), 0);
  }

  TempDir tmp_;
};

TEST_F(UnpackTest, KeepsFilesLinksModesOwnersTimesAndXattrs) {
  TarMember owned;
  owned.name = "etc/owned";
  owned.data = "secret";
  owned.mode = 04750;
  owned.uid = 1234;
  owned.gid = 5678;
  owned.mtime = 1600000000;
  owned.xattrs = {{"trusted.crid-test", "v1"}};
  TarMember fifo;
  fifo.name = "run/fifo";
  fifo.type = '6';
  TarMember dev;
  dev.name = "dev/null";
  dev.type = '3';
  dev.devmajor = 1;
  dev.devminor = 3;
  dev.mode = 0666;
  std::string long_name = "deep/" + std::string(150, 'n');
  std::string tar = TarBuilder()
                        .Dir("bin")
                        .File("bin/busybox", "#!binary", 0755)
                        .HardLink("bin/sh", "bin/busybox")
                        .Symlink("bin/ls", "/bin/busybox")
                        .Add(owned)
                        .Add(fifo)
                        .Add(dev)
                        .File(long_name, "long")
                        .Finish();
  absl::StatusOr<UnpackResult> r = Unpack(GzipCompress(tar));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->diff_id, DigestOf(tar));
  EXPECT_EQ(r->bytes, tar.size());

  struct stat a {
  }, b{};
  ASSERT_EQ(stat(Layer("bin/busybox").c_str(), &a), 0);
  ASSERT_EQ(stat(Layer("bin/sh").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_mode & 07777, 0755u);
  char target[64] = {};
  ASSERT_GT(readlink(Layer("bin/ls").c_str(), target, sizeof(target)), 0);
  EXPECT_STREQ(target, "/bin/busybox");
  ASSERT_EQ(lstat(Layer("etc/owned").c_str(), &a), 0);
  EXPECT_EQ(a.st_mode & 07777, 04750u);
  EXPECT_EQ(a.st_uid, 1234u);
  EXPECT_EQ(a.st_gid, 5678u);
  EXPECT_EQ(a.st_mtime, 1600000000);
  char value[8] = {};
  EXPECT_EQ(getxattr(Layer("etc/owned").c_str(), "trusted.crid-test", value, sizeof(value)), 2);
  EXPECT_STREQ(value, "v1");
  ASSERT_EQ(lstat(Layer("run/fifo").c_str(), &a), 0);
  EXPECT_TRUE(S_ISFIFO(a.st_mode));
  ASSERT_EQ(lstat(Layer("dev/null").c_str(), &a), 0);
  EXPECT_TRUE(S_ISCHR(a.st_mode));
  EXPECT_EQ(a.st_rdev, makedev(1, 3));
  ASSERT_EQ(lstat(Layer("bin").c_str(), &a), 0);
  EXPECT_EQ(a.st_mtime, 1700000000);  // directory time set after its children
  EXPECT_EQ(*ReadFile(Layer(long_name)), "long");
}

TEST_F(UnpackTest, ZstdAndPlainTarGiveTheSameDiffId) {
  std::string tar = TarBuilder().File("a", "hello").Finish();
  absl::StatusOr<UnpackResult> z = Unpack(ZstdCompress(tar));
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ(z->diff_id, DigestOf(tar));
  EXPECT_EQ(*ReadFile(Layer("a")), "hello");
  ASSERT_TRUE(RemoveTree(tmp_.Sub("layer")).ok());
  ASSERT_TRUE(MakeDirs(tmp_.Sub("layer"), 0755).ok());
  absl::StatusOr<UnpackResult> plain = Unpack(tar);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->diff_id, z->diff_id);
}

TEST_F(UnpackTest, WhiteoutsBecomeOverlayWhiteouts) {
  std::string tar = TarBuilder()
                        .Dir("etc")
                        .File("etc/.wh.removed", "")
                        .Dir("var/cache")
                        .File("var/cache/.wh..wh..opq", "")
                        .File("var/cache/kept", "new")
                        .Finish();
  absl::StatusOr<UnpackResult> r = Unpack(tar);
  ASSERT_TRUE(r.ok()) << r.status();
  struct stat st {};
  ASSERT_EQ(lstat(Layer("etc/removed").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_NE(lstat(Layer("etc/.wh.removed").c_str(), &st), 0);
  char value[4] = {};
  EXPECT_EQ(getxattr(Layer("var/cache").c_str(), "trusted.overlay.opaque", value, sizeof(value)),
            1);
  EXPECT_EQ(value[0], 'y');
  EXPECT_NE(lstat(Layer("var/cache/.wh..wh..opq").c_str(), &st), 0);
  EXPECT_EQ(*ReadFile(Layer("var/cache/kept")), "new");
}

TEST_F(UnpackTest, RefusesDotDot) {
  ExpectRefused(TarBuilder().File("a/../../outside/pwned", "x").Finish(), "\"..\"");
}

TEST_F(UnpackTest, RefusesAbsolutePaths) {
  ExpectRefused(TarBuilder().File(tmp_.Sub("outside/pwned"), "x").Finish(), "absolute");
}

TEST_F(UnpackTest, RefusesWritingThroughSymlinkedDirectory) {
  ExpectRefused(
      TarBuilder().Symlink("escape", tmp_.Sub("outside")).File("escape/pwned", "x").Finish(),
      "symlink");
  ExpectRefused(
      TarBuilder().Symlink("escape", tmp_.Sub("outside")).File("escape/victim", "x").Finish(),
      "symlink");
}

TEST_F(UnpackTest, FileOverSymlinkReplacesTheLinkNotItsTarget) {
  std::string tar =
      TarBuilder().Symlink("link", tmp_.Sub("outside/victim")).File("link", "replaced").Finish();
  absl::StatusOr<UnpackResult> r = Unpack(tar);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*ReadFile(tmp_.Sub("outside/victim")), "original");
  EXPECT_EQ(*ReadFile(Layer("link")), "replaced");
}

TEST_F(UnpackTest, RefusesHardLinksLeavingTheLayer) {
  ExpectRefused(TarBuilder().HardLink("h", "../outside/victim").Finish(), "outside the layer");
  ExpectRefused(TarBuilder().HardLink("h", tmp_.Sub("outside/victim")).Finish(),
                "outside the layer");
  ExpectRefused(TarBuilder().HardLink("h", "not/here").Finish(), "not in this layer");
  // Through a symlinked directory inside the layer.
  ExpectRefused(
      TarBuilder().Symlink("out", tmp_.Sub("outside")).HardLink("h", "out/victim").Finish(),
      "not in this layer");
}

TEST_F(UnpackTest, RefusesAbsurdSizes) {
  TarMember huge;
  huge.name = "huge";
  huge.claimed_size = uint64_t{1} << 42;
  ExpectRefused(TarBuilder().Add(huge).Finish(), "limit");
  UnpackLimits small;
  small.max_bytes = 4096;
  absl::StatusOr<UnpackResult> r =
      Unpack(GzipCompress(TarBuilder().File("big", std::string(100000, 'z')).Finish()), small);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
}

TEST_F(UnpackTest, CompressionBombIsRefusedAtItsHeaderBeforeAnyWrite) {
  std::string bomb = GzipZeroFileLayer("zeros", uint64_t{8} << 30);
  ASSERT_LT(bomb.size(), uint64_t{10} << 20);
  UnpackLimits limits;
  limits.max_ratio = 100;
  limits.ratio_floor_bytes = uint64_t{256} << 20;
  absl::StatusOr<UnpackResult> r = Unpack(bomb, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_NE(r.status().message().find(absl::StrCat("limit of ", bomb.size() * 100)),
            absl::string_view::npos)
      << r.status();
  EXPECT_NE(r.status().message().find("image.max_layer_expansion_ratio"), absl::string_view::npos)
      << r.status();
  struct stat st {};
  EXPECT_NE(lstat(Layer("zeros").c_str(), &st), 0) << "the bomb was written";
}

TEST_F(UnpackTest, ExpansionRatioIsEnforcedAsTheStreamExpands) {
  // Many files, each small enough for its header to pass: the stream is cut.
  TarBuilder tar;
  for (int i = 0; i < 200; ++i) {
    tar.File(absl::StrCat("f", i), std::string(64 << 10, '\0'));
  }
  std::string blob = GzipCompress(tar.Finish());
  UnpackLimits limits;
  limits.max_ratio = 50;
  absl::StatusOr<UnpackResult> r = Unpack(blob, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_NE(r.status().message().find(absl::StrCat("limit of ", blob.size() * 50)),
            absl::string_view::npos)
      << r.status();
}

TEST_F(UnpackTest, LayersUnderTheRatioFloorMayExpandFreely) {
  std::string blob = GzipZeroFileLayer("zeros", 2 << 20);
  UnpackLimits limits;
  limits.max_ratio = 10;
  limits.ratio_floor_bytes = 4 << 20;
  absl::StatusOr<UnpackResult> r = Unpack(blob, limits);
  ASSERT_TRUE(r.ok()) << r.status();
  struct stat st {};
  ASSERT_EQ(lstat(Layer("zeros").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 2 << 20);
  limits.ratio_floor_bytes = 1 << 20;  // now the ratio applies, and the floor is named
  ASSERT_TRUE(RemoveTree(tmp_.Sub("layer")).ok());
  ASSERT_TRUE(MakeDirs(tmp_.Sub("layer"), 0755).ok());
  r = Unpack(blob, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("limit of 1048576 "), absl::string_view::npos) << r.status();
  EXPECT_NE(r.status().message().find("image.max_layer_ratio_floor_bytes"), absl::string_view::npos)
      << r.status();
}

TEST_F(UnpackTest, DirectoryTimesHoldWhateverTheEntryOrder) {
  auto dir = [](const std::string& name, int64_t mtime) {
    TarMember m;
    m.name = name;
    m.type = '5';
    m.mode = 0755;
    m.mtime = mtime;
    return m;
  };
  // Directories are left and entered again; children arrive after their
  // parents' times were set; a file lands in a directory no entry describes.
  std::string tar = TarBuilder()
                        .Add(dir("a", 1000))
                        .Add(dir("a/b", 2000))
                        .File("a/b/f", "1")
                        .File("c", "2")
                        .File("a/b/g", "3")
                        .Add(dir("a/d", 3000))
                        .File("a/d/deep/x/y", "4")
                        .File("a/b/h", "5")
                        .Add(dir("a/d/deep", 4000))
                        .Finish();
  ASSERT_TRUE(Unpack(tar).ok());
  struct stat st {};
  for (const auto& [path, mtime] : std::vector<std::pair<std::string, int64_t>>{
           {"a", 1000}, {"a/b", 2000}, {"a/d", 3000}, {"a/d/deep", 4000}}) {
    ASSERT_EQ(lstat(Layer(path).c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mtime, mtime) << path;
  }
  ASSERT_EQ(lstat(Layer("a/b/h").c_str(), &st), 0);
}

TEST_F(UnpackTest, ManyDirectoriesUnpackWithBoundedState) {
  // 5000 sibling directories: state follows the depth (2), not this count.
  TarBuilder tar;
  for (int i = 0; i < 5000; ++i) {
    tar.Dir(absl::StrCat("d/", i)).File(absl::StrCat("d/", i, "/f"), "x");
  }
  absl::StatusOr<UnpackResult> r = Unpack(GzipCompress(tar.Finish()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries, 10000u);
  struct stat st {};
  ASSERT_EQ(lstat(Layer("d/4999/f").c_str(), &st), 0);
  ASSERT_EQ(lstat(Layer("d/0").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtime, 1700000000);
}

TEST_F(UnpackTest, LargeDirectoriesAreReplacedAndWhitedOutWhole) {
  // More entries than one removal batch, nested, under a name later replaced.
  TarBuilder tar;
  for (int i = 0; i < 600; ++i) {
    tar.File(absl::StrCat("big/f", i), "x").File(absl::StrCat("gone/sub/f", i), "y");
  }
  tar.File("big", "now a file").File(".wh.gone", "");
  ASSERT_TRUE(Unpack(tar.Finish()).ok());
  EXPECT_EQ(*ReadFile(Layer("big")), "now a file");
  struct stat st {};
  ASSERT_EQ(lstat(Layer("gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
}

TEST_F(UnpackTest, RefusesTruncatedAndCorruptLayers) {
  std::string tar = TarBuilder().File("a", std::string(5000, 'a')).Finish();
  EXPECT_FALSE(Unpack(tar.substr(0, 1500)).ok());
  std::string gz = GzipCompress(tar);
  EXPECT_FALSE(Unpack(gz.substr(0, gz.size() / 2)).ok());
  std::string bad = tar;
  bad[10] ^= 1;  // name changes, checksum does not
  absl::StatusOr<UnpackResult> r = Unpack(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("checksum"), absl::string_view::npos) << r.status();
}

TEST_F(UnpackTest, RemoveTreeDoesNotFollowSymlinks) {
  std::string tar = TarBuilder().Symlink("out", tmp_.Sub("outside")).File("d/f", "x").Finish();
  ASSERT_TRUE(Unpack(tar).ok());
  ASSERT_TRUE(RemoveTree(tmp_.Sub("layer")).ok());
  struct stat st {};
  EXPECT_NE(lstat(tmp_.Sub("layer").c_str(), &st), 0);
  EXPECT_EQ(*ReadFile(tmp_.Sub("outside/victim")), "original");
}

}  // namespace
}  // namespace crid
