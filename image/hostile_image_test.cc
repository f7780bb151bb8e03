// Hostile images from a real registry (docker-registry on 127.0.0.1) through the
// image store: a compression bomb refused by the default limits with nothing left
// on disk, and descriptors whose sizes disagree with what the registry sends.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "config/config.h"
#include "image/digest.h"
#include "image/image_store.h"
#include "image/test_layers.h"
#include "store/store.h"
#include "tests/image_registry_fixture.h"

namespace crid {
namespace {

using ::testing::HasSubstr;

constexpr char kLayerType[] = "application/vnd.oci.image.layer.v1.tar+gzip";
constexpr char kConfigType[] = "application/vnd.oci.image.config.v1+json";
constexpr char kManifestType[] = "application/vnd.oci.image.manifest.v1+json";

std::string DescriptorJson(const std::string& media_type, const std::string& digest, int64_t size) {
  return absl::StrCat("{\"mediaType\":\"", media_type, "\",\"digest\":\"", digest,
                      "\",\"size\":", size, "}");
}

std::string ConfigJson(const std::vector<std::string>& diff_ids) {
  return absl::StrCat(
      "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/bin/sh\"]},"
      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"",
      absl::StrJoin(diff_ids, "\",\""), "\"]}}");
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> DirEntries(const std::string& path) {
  return ListDir(path).value_or(std::vector<std::string>());
}

class HostileImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(registry_.Start().ok());
    auto store = Store::Open(tmp_.Sub("crid.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    config::ImageConfig config = DefaultConfig().image();
    config.set_pull_attempts(1);
    auto images = ImageStore::Open(tmp_.Sub("images"), config, store_.get());
    ASSERT_TRUE(images.ok()) << images.status();
    images_ = std::move(*images);
  }

  std::string Ref(const std::string& repo_tag) const {
    return absl::StrCat(registry_.host(), "/", repo_tag);
  }

  // Pushes an image of one layer under `repo`:latest; the descriptors' sizes are
  // the real ones plus the deltas given.
  std::string PushOneLayerImage(const std::string& repo, const std::string& blob,
                                const std::string& diff_id, int64_t layer_delta = 0,
                                int64_t config_delta = 0) {
    absl::StatusOr<std::string> layer = registry_.PushBlob(repo, blob);
    EXPECT_TRUE(layer.ok()) << layer.status();
    std::string config = ConfigJson({diff_id});
    absl::StatusOr<std::string> config_digest = registry_.PushBlob(repo, config);
    EXPECT_TRUE(config_digest.ok()) << config_digest.status();
    std::string manifest = absl::StrCat(
        "{\"schemaVersion\":2,\"mediaType\":\"", kManifestType, "\",\"config\":",
        DescriptorJson(kConfigType, *config_digest,
                       static_cast<int64_t>(config.size()) + config_delta),
        ",\"layers\":[",
        DescriptorJson(kLayerType, *layer, static_cast<int64_t>(blob.size()) + layer_delta), "]}");
    absl::StatusOr<std::string> pushed =
        registry_.PushManifest(repo, "latest", kManifestType, manifest);
    EXPECT_TRUE(pushed.ok()) << pushed.status();
    manifest_ = manifest;
    return layer.ok() ? *layer : "";
  }

  uint64_t StoreBytes() {
    absl::StatusOr<DiskUsage> usage = MeasureDiskUsage(tmp_.Sub("images"));
    EXPECT_TRUE(usage.ok()) << usage.status();
    return usage.ok() ? usage->bytes : 0;
  }

  TempDir tmp_;
  TestRegistry registry_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ImageStore> images_;
  std::string manifest_;  // the last one PushOneLayerImage pushed
};

TEST_F(HostileImageTest, CompressionBombIsRefusedByTheDefaultLimitsAndLeavesNothing) {
  // A good image first, so that "nothing left" means "only what was there".
  TestImageSpec good;
  good.layers.push_back({TarBuilder().File("etc/hostname", "good\n").Finish()});
  ASSERT_TRUE(registry_.PushImage("test/good", "1", good).ok());
  ASSERT_TRUE(images_->Pull(Ref("test/good:1"), {}).ok());
  uint64_t before = StoreBytes();

  // 8 MiB of gzip holding an 8 GiB file of zeros. Its diff ID is never reached.
  std::string bomb = GzipZeroFileLayer("zeros", uint64_t{8} << 30);
  ASSERT_GT(bomb.size(), uint64_t{8} << 20);
  ASSERT_LT(bomb.size(), uint64_t{9} << 20);
  std::string layer = PushOneLayerImage("test/bomb", bomb, DigestOf("not reached"));

  absl::StatusOr<std::string> pulled = images_->Pull(Ref("test/bomb:latest"), {});
  ASSERT_FALSE(pulled.ok()) << "the bomb was unpacked";
  EXPECT_EQ(pulled.status().code(), absl::StatusCode::kResourceExhausted) << pulled.status();
  std::string message(pulled.status().message());
  RecordProperty("error", message);
  EXPECT_THAT(message, HasSubstr(layer));
  // The default: 100 times the layer's compressed size.
  EXPECT_THAT(message, HasSubstr(absl::StrCat("limit of ", bomb.size() * 100)));
  EXPECT_THAT(message, HasSubstr("image.max_layer_expansion_ratio"));

  EXPECT_EQ(StoreBytes(), before);
  for (const std::string& name : DirEntries(tmp_.Sub("images/layers"))) {
    EXPECT_NE(name.rfind(".tmp", 0), 0u) << "partial unpack left: " << name;
  }
  EXPECT_FALSE(Exists(tmp_.Sub(absl::StrCat("images/blobs/sha256/", DigestHex(layer)))));
  auto good_image = images_->Resolve(Ref("test/good:1"));
  ASSERT_TRUE(good_image.ok() && good_image->has_value());
}

TEST_F(HostileImageTest, LayerLargerThanItsDescriptorIsDataLoss) {
  std::string tar = TarBuilder().File("f", std::string(100000, 'q')).Finish();
  std::string blob = GzipCompress(tar);
  std::string layer = PushOneLayerImage("test/long-layer", blob, DigestOf(tar), -10);
  absl::StatusOr<std::string> pulled = images_->Pull(Ref("test/long-layer:latest"), {});
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.status().code(), absl::StatusCode::kDataLoss) << pulled.status();
  EXPECT_THAT(std::string(pulled.status().message()), HasSubstr(layer));
  EXPECT_FALSE(Exists(tmp_.Sub(absl::StrCat("images/blobs/sha256/", DigestHex(layer)))));
}

TEST_F(HostileImageTest, ConfigOfAnotherSizeThanItsDescriptorIsDataLoss) {
  std::string tar = TarBuilder().File("f", "x").Finish();
  for (int64_t delta : {-5, 5}) {
    std::string repo = absl::StrCat("test/config", delta < 0 ? "-short" : "-long");
    PushOneLayerImage(repo, GzipCompress(tar), DigestOf(tar), 0, delta);
    absl::StatusOr<std::string> pulled = images_->Pull(Ref(repo + ":latest"), {});
    ASSERT_FALSE(pulled.ok()) << delta;
    EXPECT_EQ(pulled.status().code(), absl::StatusCode::kDataLoss) << pulled.status();
    EXPECT_THAT(std::string(pulled.status().message()), HasSubstr("descriptor")) << delta;
  }
}

TEST_F(HostileImageTest, IndexEntryOfAnotherSizeThanItsManifestIsDataLoss) {
  std::string tar = TarBuilder().File("f", "x").Finish();
  PushOneLayerImage("test/index", GzipCompress(tar), DigestOf(tar));
  std::string manifest_digest = DigestOf(manifest_);
  for (int64_t delta : {-7, 7}) {
    std::string index = absl::StrCat(
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
        "\"manifests\":[{\"mediaType\":\"",
        kManifestType, "\",\"digest\":\"", manifest_digest,
        "\",\"size\":", static_cast<int64_t>(manifest_.size()) + delta,
        ",\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}");
    std::string tag = delta < 0 ? "short" : "long";
    ASSERT_TRUE(
        registry_.PushManifest("test/index", tag, "application/vnd.oci.image.index.v1+json", index)
            .ok());
    absl::StatusOr<std::string> pulled = images_->Pull(Ref("test/index:" + tag), {});
    ASSERT_FALSE(pulled.ok()) << delta;
    EXPECT_EQ(pulled.status().code(), absl::StatusCode::kDataLoss) << pulled.status();
    EXPECT_THAT(std::string(pulled.status().message()), HasSubstr("descriptor")) << delta;
  }
}

}  // namespace
}  // namespace crid
