// Image volumes mounted for real: read-only, layers stacked, sub paths found
// inside the image only, and removal leaves the layers as they were.
#include "container/image_volume.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "base/fs.h"
#include "base/temp_dir.h"
#include "container/test_user_namespace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::HasSubstr;

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  return text.ok() ? *text : "<missing>";
}

class ImageVolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(tmp_.Sub("layers/base/etc"), 0755).ok());
    ASSERT_TRUE(MakeDirs(tmp_.Sub("layers/base/bin"), 0755).ok());
    ASSERT_TRUE(MakeDirs(tmp_.Sub("layers/top/etc"), 0755).ok());
    std::ofstream(tmp_.Sub("layers/base/etc/passwd")) << "root:x:0:0";
    std::ofstream(tmp_.Sub("layers/base/etc/shadowed")) << "base";
    std::ofstream(tmp_.Sub("layers/top/etc/shadowed")) << "top";
    // A link that would leave the image if followed on the host.
    ASSERT_EQ(::symlink("../../../..", tmp_.Sub("layers/top/escape").c_str()), 0);
    ASSERT_EQ(::symlink("/etc", tmp_.Sub("layers/top/abs-etc").c_str()), 0);
    lowers_ = {tmp_.Sub("layers/top"), tmp_.Sub("layers/base")};
    container_dir_ = tmp_.Sub("container");
    ASSERT_TRUE(MakeDirs(container_dir_, 0700).ok());
  }
  void TearDown() override { EXPECT_TRUE(RemoveImageVolumes(container_dir_).ok()); }

  TempDir tmp_;
  std::vector<std::string> lowers_;
  std::string container_dir_;
};

TEST_F(ImageVolumeTest, LayersStackReadOnly) {
  const std::string dir = ImageVolumeDir(container_dir_, 0);
  absl::StatusOr<std::string> source = MountImageVolume(dir, lowers_, "");
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ(*source, dir);
  EXPECT_EQ(Read(dir + "/etc/shadowed"), "top");
  EXPECT_EQ(Read(dir + "/etc/passwd"), "root:x:0:0");
  int fd = ::open((dir + "/etc/new").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  EXPECT_EQ(fd, -1);
  EXPECT_EQ(errno, EROFS);
  if (fd >= 0) {
    ::close(fd);
  }

  ASSERT_TRUE(RemoveImageVolumes(container_dir_).ok());
  EXPECT_FALSE(Exists(container_dir_ + "/image-volumes"));
  EXPECT_EQ(Read(tmp_.Sub("layers/base/etc/passwd")), "root:x:0:0");
  EXPECT_TRUE(RemoveImageVolumes(container_dir_).ok());  // twice is fine
}

TEST_F(ImageVolumeTest, OneLayerIsBoundReadOnly) {
  const std::string dir = ImageVolumeDir(container_dir_, 3);
  absl::StatusOr<std::string> source = MountImageVolume(dir, {tmp_.Sub("layers/base")}, "");
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ(Read(dir + "/etc/shadowed"), "base");
  EXPECT_NE(::unlink((dir + "/etc/passwd").c_str()), 0);
  EXPECT_EQ(errno, EROFS);
  ASSERT_TRUE(RemoveImageVolumes(container_dir_).ok());
  // The layer itself is untouched and not read-only.
  EXPECT_EQ(Read(tmp_.Sub("layers/base/etc/passwd")), "root:x:0:0");
  std::ofstream(tmp_.Sub("layers/base/etc/writable")) << "x";
  EXPECT_EQ(Read(tmp_.Sub("layers/base/etc/writable")), "x");
}

TEST_F(ImageVolumeTest, SubPathsStayInsideTheImage) {
  absl::StatusOr<std::string> etc =
      MountImageVolume(ImageVolumeDir(container_dir_, 0), lowers_, "etc");
  ASSERT_TRUE(etc.ok()) << etc.status();
  EXPECT_EQ(*etc, ImageVolumeDir(container_dir_, 0) + "/etc");

  // "/etc" inside the image, not the host's.
  absl::StatusOr<std::string> abs =
      MountImageVolume(ImageVolumeDir(container_dir_, 1), lowers_, "abs-etc");
  ASSERT_TRUE(abs.ok()) << abs.status();
  EXPECT_EQ(*abs, ImageVolumeDir(container_dir_, 1) + "/etc");

  // ../../../.. from the image's root is its root.
  absl::StatusOr<std::string> escape =
      MountImageVolume(ImageVolumeDir(container_dir_, 2), lowers_, "escape");
  ASSERT_TRUE(escape.ok()) << escape.status();
  EXPECT_EQ(*escape, ImageVolumeDir(container_dir_, 2));

  absl::StatusOr<std::string> missing =
      MountImageVolume(ImageVolumeDir(container_dir_, 4), lowers_, "not-existing");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("mounts.image_sub_path: \"not-existing\" does not exist"));
  // The failed one left no mount and no directory.
  EXPECT_FALSE(Exists(ImageVolumeDir(container_dir_, 4)));
}

// In a pod with a user namespace (0 -> host 200000) the image's root-owned
// files are the namespace root's, for one layer (a bind) and several (an
// overlay on idmapped layers); the layer clones go once stacked.
TEST_F(ImageVolumeTest, UserNamespaceSeesTheImageThroughIdmappedLayers) {
  TestUserNamespace userns;
  ASSERT_TRUE(userns.ok());
  struct stat st;
  for (int layers : {1, 2}) {
    std::vector<std::string> lowers = lowers_;
    lowers.resize(layers);
    if (layers == 1) {
      lowers = {tmp_.Sub("layers/base")};
    }
    const std::string dir = ImageVolumeDir(container_dir_, layers);
    absl::StatusOr<std::string> source = MountImageVolume(dir, lowers, "", userns.path());
    ASSERT_TRUE(source.ok()) << source.status();
    ASSERT_EQ(::stat((*source + "/etc/passwd").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 200000u) << layers << " layer(s)";
    EXPECT_EQ(st.st_gid, 300000u);
    EXPECT_EQ(Read(*source + "/etc/passwd"), "root:x:0:0");
    EXPECT_FALSE(Exists(dir + ".layers")) << "the idmapped layer clones are gone";
    ASSERT_EQ(::stat(tmp_.Sub("layers/base/etc/passwd").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u) << "the layer is untouched";
  }
  ASSERT_TRUE(RemoveImageVolumes(container_dir_).ok());
  EXPECT_FALSE(Exists(container_dir_ + "/image-volumes"));
}

TEST(ValidateImageVolume, ReadOnlyAndRelativeSubPaths) {
  runtime::v1::Mount m;
  m.set_container_path("/mnt/image");
  m.mutable_image()->set_image("sha256:abc");
  absl::Status st = ValidateImageVolume(m);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("mounts.readonly"));
  m.set_readonly(true);
  EXPECT_TRUE(ValidateImageVolume(m).ok());
  m.set_image_sub_path("/etc");
  EXPECT_THAT(std::string(ValidateImageVolume(m).message()), HasSubstr("mounts.image_sub_path"));
  m.set_image_sub_path("etc/../..");
  EXPECT_EQ(ValidateImageVolume(m).code(), absl::StatusCode::kInvalidArgument);
  m.set_image_sub_path("usr/share");
  EXPECT_TRUE(ValidateImageVolume(m).ok());
}

}  // namespace
}  // namespace crid
