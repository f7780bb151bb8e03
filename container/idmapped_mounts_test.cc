// Real idmapped clones of a spec's bind mounts: host root's files appear as the
// namespace's root, a filesystem that cannot be idmapped is refused with
// nothing left mounted, and removal never reaches into the host directory.
#include "container/idmapped_mounts.h"

#include <sys/stat.h>

#include <fstream>

#include "base/fs.h"
#include "base/temp_dir.h"
#include "container/rootfs.h"
#include "container/test_user_namespace.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using nlohmann::json;

uid_t OwnerOf(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

json Bind(const std::string& destination, const std::string& source) {
  return json{{"destination", destination},
              {"type", "bind"},
              {"source", source},
              {"options", {"rbind", "rprivate", "rw"}}};
}

class IdmappedMountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(userns_.ok());
    ASSERT_TRUE(MakeDirs(tmp_.Sub("host/data"), 0755).ok());
    std::ofstream(tmp_.Sub("host/data/owned-by-root")) << "x";
    std::ofstream(tmp_.Sub("host/hosts")) << "127.0.0.1 localhost\n";
    ASSERT_TRUE(MakeDirs(container_, 0700).ok());
  }

  TestUserNamespace userns_;
  TempDir tmp_;
  std::string container_ = tmp_.Sub("containers/c1");
};

TEST_F(IdmappedMountsTest, HostRootsFilesBelongToTheNamespacesRoot) {
  json mounts = json::array({
      json{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
      Bind("/data", tmp_.Sub("host/data")),
      Bind("/etc/hosts", tmp_.Sub("host/hosts")),
      Bind("/image", container_ + "/image-volumes/0"),
  });
  absl::Status st =
      IdmapBindMounts(container_, userns_.path(), container_ + "/image-volumes/", mounts);
  ASSERT_TRUE(st.ok()) << st;

  EXPECT_EQ(mounts[0]["source"], "proc") << "not a bind mount";
  EXPECT_EQ(mounts[3]["source"], container_ + "/image-volumes/0") << "already idmapped";
  const std::string data = mounts[1]["source"];
  const std::string hosts = mounts[2]["source"];
  EXPECT_EQ(data, container_ + "/idmapped/0");
  EXPECT_EQ(hosts, container_ + "/idmapped/1");
  // Seen from the host through the clone: host uid 0 is the namespace's root,
  // whose host ID is 200000; inside the namespace that is uid 0.
  EXPECT_EQ(OwnerOf(tmp_.Sub("host/data/owned-by-root")), 0u);
  EXPECT_EQ(OwnerOf(data + "/owned-by-root"), 200000u);
  EXPECT_EQ(OwnerOf(hosts), 200000u);
  EXPECT_EQ(*ReadFile(hosts), "127.0.0.1 localhost\n");

  // The container's directory goes, the host's files stay.
  ASSERT_TRUE(RemoveOverlayRootfs(container_).ok());
  EXPECT_FALSE(Exists(container_));
  EXPECT_TRUE(Exists(tmp_.Sub("host/data/owned-by-root")));
  EXPECT_TRUE(Exists(tmp_.Sub("host/hosts")));
  EXPECT_TRUE(RemoveIdmappedMounts(container_).ok()) << "removing twice is fine";
}

// /proc cannot be idmapped (no FS_ALLOW_IDMAP): as containerd, the volume is
// refused rather than bound with host owners, and nothing stays mounted.
TEST_F(IdmappedMountsTest, FilesystemWithoutIdmapIsRefusedAndLeavesNothing) {
  json mounts = json::array({
      Bind("/data", tmp_.Sub("host/data")),
      Bind("/host-proc", "/proc/self/fdinfo"),
  });
  absl::Status st = IdmapBindMounts(container_, userns_.path(), "", mounts);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(st.message().find("mounts: /host-proc"), std::string::npos) << st;
  EXPECT_FALSE(Exists(container_ + "/idmapped")) << "the first clone was undone";
  EXPECT_EQ(mounts[0]["source"], tmp_.Sub("host/data")) << "no clone to point at";
  EXPECT_TRUE(Exists(tmp_.Sub("host/data/owned-by-root")));
}

TEST_F(IdmappedMountsTest, MissingSourceNamesTheMount) {
  json mounts = json::array({Bind("/gone", tmp_.Sub("host/gone"))});
  absl::Status st = IdmapBindMounts(container_, userns_.path(), "", mounts);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("mounts: /gone"), std::string::npos) << st;
  EXPECT_FALSE(Exists(container_ + "/idmapped"));
}

TEST_F(IdmappedMountsTest, LayerClonesGoWithTheirOwner) {
  std::string mapped_path;
  {
    IdmappedLayers layers(tmp_.Sub("layers"));
    auto mapped = layers.Mount({tmp_.Sub("host/data")}, userns_.path());
    ASSERT_TRUE(mapped.ok()) << mapped.status();
    ASSERT_EQ(mapped->size(), 1u);
    mapped_path = (*mapped)[0];
    EXPECT_EQ(OwnerOf(mapped_path + "/owned-by-root"), 200000u);
  }
  EXPECT_FALSE(Exists(mapped_path));
  EXPECT_FALSE(Exists(tmp_.Sub("layers")));
}

}  // namespace
}  // namespace crid
