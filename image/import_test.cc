#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "config/config.h"
#include "image/digest.h"
#include "image/image_store.h"
#include "image/test_layers.h"
#include "store/store.h"

namespace crid {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Open(tmp_.Sub("crid.db"));
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    auto images = ImageStore::Open(tmp_.Sub("images"), DefaultConfig().image(), store_.get());
    ASSERT_TRUE(images.ok()) << images.status();
    images_ = std::move(*images);
  }

  absl::StatusOr<std::vector<std::string>> Import(const std::string& tar) {
    EXPECT_TRUE(WriteFileAtomic(tmp_.Sub("archive.tar"), tar, 0600).ok());
    return images_->Import(tmp_.Sub("archive.tar"));
  }

  std::string Config(const std::string& diff_id, const std::string& user) {
    return absl::StrCat("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"",
                        user, "\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"", diff_id,
                        "\"]}}");
  }

  TempDir tmp_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ImageStore> images_;
};

TEST_F(ImportTest, OciLayoutArchive) {
  std::string layer_tar = TarBuilder().File("hello", "from oci").Finish();
  std::string layer = GzipCompress(layer_tar);
  std::string config = Config(DigestOf(layer_tar), "1234");
  std::string manifest = absl::StrCat(
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
      "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"",
      DigestOf(config), "\",\"size\":", config.size(),
      "},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"",
      DigestOf(layer), "\",\"size\":", layer.size(), "}]}");
  std::string index = absl::StrCat(
      "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest."
      "v1+json\",\"digest\":\"",
      DigestOf(manifest), "\",\"size\":", manifest.size(),
      ",\"annotations\":{\"io.containerd.image.name\":\"registry.example/app:2\"}}]}");
  auto blob = [](const std::string& data) {
    return "blobs/sha256/" + std::string(DigestHex(DigestOf(data)));
  };
  std::string tar = TarBuilder()
                        .File("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}")
                        .File("index.json", index)
                        .File(blob(manifest), manifest)
                        .File(blob(config), config)
                        .File(blob(layer), layer)
                        .Finish();
  auto ids = Import(tar);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_THAT(*ids, ElementsAre(DigestOf(config)));
  auto record = images_->Resolve("registry.example/app:2");
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ((*record)->user(), "1234");
  EXPECT_THAT((*record)->repo_digests(), ElementsAre("registry.example/app@" + DigestOf(manifest)));
  EXPECT_EQ(*ReadFile(images_->LayerDir((*record)->chain_ids(0)) + "/hello"), "from oci");
}

// An OCI layout whose only name is a bare tag (as skopeo writes `oci:dir:tag`):
// the image comes in by ID, not as an image called "latest".
TEST_F(ImportTest, BareTagRefNameIsNotTakenAsAnImageName) {
  std::string layer_tar = TarBuilder().File("hello", "tagged").Finish();
  std::string config = Config(DigestOf(layer_tar), "");
  std::string manifest = absl::StrCat(
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
      "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"",
      DigestOf(config), "\",\"size\":", config.size(),
      "},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"",
      DigestOf(layer_tar), "\",\"size\":", layer_tar.size(), "}]}");
  std::string index = absl::StrCat(
      "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest."
      "v1+json\",\"digest\":\"",
      DigestOf(manifest), "\",\"size\":", manifest.size(),
      ",\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}");
  auto blob = [](const std::string& data) {
    return "blobs/sha256/" + std::string(DigestHex(DigestOf(data)));
  };
  auto ids = Import(TarBuilder()
                        .File("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}")
                        .File("index.json", index)
                        .File(blob(manifest), manifest)
                        .File(blob(config), config)
                        .File(blob(layer_tar), layer_tar)
                        .Finish());
  ASSERT_TRUE(ids.ok()) << ids.status();
  auto list = images_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_THAT((*list)[0].repo_tags(), ::testing::IsEmpty());
  EXPECT_THAT((*list)[0].repo_digests(), ::testing::IsEmpty());
  auto by_tag = images_->Resolve("latest");
  ASSERT_TRUE(by_tag.ok());
  EXPECT_FALSE(by_tag->has_value());
  auto by_id = images_->Resolve(DigestOf(config));
  ASSERT_TRUE(by_id.ok());
  EXPECT_TRUE(by_id->has_value());
}

TEST_F(ImportTest, DockerSaveArchive) {
  std::string layer_tar = TarBuilder().File("bin/tool", "docker layer").Finish();
  std::string config = Config(DigestOf(layer_tar), "www-data");
  std::string config_name = std::string(DigestHex(DigestOf(config))) + ".json";
  std::string tar = TarBuilder()
                        .File("manifest.json", "[{\"Config\":\"" + config_name +
                                                   "\",\"RepoTags\":[\"myapp:1.0\"],\"Layers\":["
                                                   "\"abc/layer.tar\"]}]")
                        .File(config_name, config)
                        .File("abc/layer.tar", layer_tar)
                        .Finish();
  auto ids = Import(tar);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_THAT(*ids, ElementsAre(DigestOf(config)));
  auto record = images_->Resolve("docker.io/library/myapp:1.0");
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_THAT((*record)->repo_tags(), ElementsAre("docker.io/library/myapp:1.0"));
  EXPECT_EQ(*ReadFile(images_->LayerDir((*record)->chain_ids(0)) + "/bin/tool"), "docker layer");
}

TEST_F(ImportTest, HostileArchivesAreRefused) {
  auto outside =
      Import(TarBuilder()
                 .File("manifest.json", "[{\"Config\":\"../../../etc/hostname\",\"Layers\":[]}]")
                 .Finish());
  ASSERT_FALSE(outside.ok());
  EXPECT_THAT(std::string(outside.status().message()), HasSubstr("not allowed"));
  auto link = Import(TarBuilder()
                         .Symlink("cfg.json", "/etc/hostname")
                         .File("manifest.json", "[{\"Config\":\"cfg.json\",\"Layers\":[]}]")
                         .Finish());
  ASSERT_FALSE(link.ok());
  EXPECT_THAT(std::string(link.status().message()), HasSubstr("outside"));
  EXPECT_FALSE(Import(TarBuilder().File("random", "x").Finish()).ok());
  auto list = images_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

}  // namespace
}  // namespace crid
