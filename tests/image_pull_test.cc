// Pulls from a real registry (docker-registry on 127.0.0.1) through the image
// store: image formats, compression, multi-platform indexes, whiteouts, Basic
// auth, mirrors, concurrent pulls, tags moving, removal, restart persistence.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "config/config.h"
#include "image/image_store.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "image/registry.h"
#include "image/test_layers.h"
#include "store/store.h"
#include "tests/image_registry_fixture.h"
#include "tests/token_server.h"

namespace crid {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> DirEntries(const std::string& path) {
  return ListDir(path).value_or(std::vector<std::string>());
}

class ImagePullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(registry_.Start().ok());
    image_config_ = DefaultConfig().image();
    OpenStore();
  }

  void OpenStore() {
    images_.reset();
    store_.reset();
    auto store = Store::Open(tmp_.Sub("crid.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    auto images = ImageStore::Open(tmp_.Sub("images"), image_config_, store_.get());
    ASSERT_TRUE(images.ok()) << images.status();
    images_ = std::move(*images);
    images_->registry()->set_initial_backoff(absl::Milliseconds(10));
  }

  std::string Ref(const std::string& repo_tag) const {
    return absl::StrCat(registry_.host(), "/", repo_tag);
  }

  image::ImageRecord MustResolve(const std::string& name) {
    auto r = images_->Resolve(name);
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r.ok() && r->has_value()) << name << " not found";
    return r.ok() && r->has_value() ? **r : image::ImageRecord();
  }

  TempDir tmp_;
  TestRegistry registry_;
  config::ImageConfig image_config_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ImageStore> images_;
};

TEST_F(ImagePullTest, PullsGzipZstdAndPlainLayersIntoOverlayLowerDirs) {
  TestImageSpec spec;
  spec.layers = {{BusyboxLayerTar(), LayerCompression::kGzip},
                 {TarBuilder().File("etc/zstd", "z").Finish(), LayerCompression::kZstd},
                 {TarBuilder().File("etc/plain", "p").Finish(), LayerCompression::kNone}};
  spec.user = "1002";
  auto pushed = registry_.PushImage("test/multi-layer", "v1", spec);
  ASSERT_TRUE(pushed.ok()) << pushed.status();

  auto id = images_->Pull(Ref("test/multi-layer:v1"), {});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, pushed->config_digest);

  image::ImageRecord r = MustResolve(*id);
  EXPECT_THAT(r.repo_tags(), ElementsAre(Ref("test/multi-layer:v1")));
  EXPECT_THAT(r.repo_digests(), ElementsAre(Ref("test/multi-layer@" + pushed->manifest_digest)));
  EXPECT_EQ(r.user(), "1002");
  ASSERT_EQ(r.chain_ids_size(), 3);
  EXPECT_EQ(r.chain_ids(0), pushed->diff_ids[0]);
  EXPECT_GT(r.size(), 1000000u);
  auto busybox = ReadFile(images_->LayerDir(r.chain_ids(0)) + "/bin/busybox");
  ASSERT_TRUE(busybox.ok());
  EXPECT_EQ(*busybox, *ReadFile("/bin/busybox"));
  struct stat a {
  }, b{};
  ASSERT_EQ(stat((images_->LayerDir(r.chain_ids(0)) + "/bin/sh").c_str(), &a), 0);
  ASSERT_EQ(stat((images_->LayerDir(r.chain_ids(0)) + "/bin/busybox").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(*ReadFile(images_->LayerDir(r.chain_ids(1)) + "/etc/zstd"), "z");
  EXPECT_EQ(*ReadFile(images_->LayerDir(r.chain_ids(2)) + "/etc/plain"), "p");

  // The same image by digest reference and by bare ID.
  EXPECT_EQ(MustResolve(Ref("test/multi-layer@" + pushed->manifest_digest)).id(), *id);
  EXPECT_EQ(MustResolve(id->substr(7)).id(), *id);
  auto absent = images_->Resolve(Ref("test/multi-layer:other"));
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());
}

TEST_F(ImagePullTest, DockerSchema2AndPullByDigestHaveNoTag) {
  TestImageSpec spec;
  spec.docker_media_types = true;
  spec.layers = {{BusyboxLayerTar()}};
  auto pushed = registry_.PushImage("test/docker", "", spec);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  std::string by_digest = Ref("test/docker@" + pushed->manifest_digest);
  auto id = images_->Pull(by_digest, {});
  ASSERT_TRUE(id.ok()) << id.status();
  image::ImageRecord r = MustResolve(by_digest);
  EXPECT_EQ(r.id(), pushed->config_digest);
  EXPECT_THAT(r.repo_tags(), IsEmpty());
  EXPECT_THAT(r.repo_digests(), ElementsAre(by_digest));
}

TEST_F(ImagePullTest, IndexPicksTheHostPlatform) {
  TestImageSpec arm;
  arm.architecture = "arm64";
  arm.variant = "v8";
  arm.layers = {{TarBuilder().File("arch", "arm64").Finish()}};
  TestImageSpec amd;
  amd.layers = {{TarBuilder().File("arch", "amd64").Finish()}};
  auto pushed_arm = registry_.PushImage("test/multiarch", "", arm);
  auto pushed_amd = registry_.PushImage("test/multiarch", "", amd);
  ASSERT_TRUE(pushed_arm.ok() && pushed_amd.ok());
  auto index = registry_.PushIndex("test/multiarch", "1", {{*pushed_arm, arm}, {*pushed_amd, amd}});
  ASSERT_TRUE(index.ok()) << index.status();
  auto id = images_->Pull(Ref("test/multiarch:1"), {});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, HostPlatform().architecture == "amd64" ? pushed_amd->config_digest
                                                        : pushed_arm->config_digest);
  image::ImageRecord r = MustResolve(Ref("test/multiarch:1"));
  // RepoDigests name the index, as the tag points to it.
  EXPECT_THAT(r.repo_digests(), ElementsAre(Ref("test/multiarch@" + *index)));
  EXPECT_EQ(MustResolve(Ref("test/multiarch@" + *index)).id(), *id);
}

TEST_F(ImagePullTest, IndexWithoutTheHostPlatformIsRefusedNamingWhatItHas) {
  TestImageSpec s390;
  s390.architecture = "s390x";
  s390.layers = {{TarBuilder().File("a", "b").Finish()}};
  auto pushed = registry_.PushImage("test/foreign", "", s390);
  ASSERT_TRUE(pushed.ok());
  ASSERT_TRUE(registry_.PushIndex("test/foreign", "1", {{*pushed, s390}}).ok());
  auto id = images_->Pull(Ref("test/foreign:1"), {});
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("linux/s390x"));
}

TEST_F(ImagePullTest, WhiteoutAndOpaqueLayerBecomeOverlayMarkers) {
  TestImageSpec spec;
  spec.layers = {{TarBuilder().File("etc/gone", "x").File("var/lib/old", "y").Finish()},
                 {TarBuilder()
                      .File("etc/.wh.gone", "")
                      .Dir("var/lib")
                      .File("var/lib/.wh..wh..opq", "")
                      .File("var/lib/new", "n")
                      .Finish()}};
  ASSERT_TRUE(registry_.PushImage("test/whiteout", "1", spec).ok());
  auto id = images_->Pull(Ref("test/whiteout:1"), {});
  ASSERT_TRUE(id.ok()) << id.status();
  std::string upper = images_->LayerDir(MustResolve(*id).chain_ids(1));
  struct stat st {};
  ASSERT_EQ(lstat((upper + "/etc/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  char v = 0;
  EXPECT_EQ(getxattr((upper + "/var/lib").c_str(), "trusted.overlay.opaque", &v, 1), 1);
  EXPECT_EQ(v, 'y');
}

TEST_F(ImagePullTest, MissingImageIsNotFoundNamingRegistryAndRepository) {
  auto id = images_->Pull(Ref("test/absent:1"), {});
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kNotFound) << id.status();
  EXPECT_THAT(std::string(id.status().message()), HasSubstr(registry_.host()));
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("test/absent"));
}

TEST_F(ImagePullTest, ConcurrentPullsOfOneImageShareTheWork) {
  TestImageSpec spec;
  spec.layers = {{BusyboxLayerTar()}, {TarBuilder().File("x", std::string(3 << 20, 'x')).Finish()}};
  auto pushed = registry_.PushImage("test/concurrent", "1", spec);
  ASSERT_TRUE(pushed.ok());
  std::vector<absl::StatusOr<std::string>> results(6);
  std::vector<std::thread> threads;
  threads.reserve(results.size());
  for (auto& result : results) {
    threads.emplace_back([&] { result = images_->Pull(Ref("test/concurrent:1"), {}); });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(*result, pushed->config_digest);
  }
  auto list = images_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);
}

TEST_F(ImagePullTest, TagMovesToTheNewImageAndRemoveTakesAllTags) {
  TestImageSpec first;
  first.layers = {{TarBuilder().File("v", "1").Finish()}};
  TestImageSpec second;
  second.layers = {{TarBuilder().File("v", "2").Finish()}};
  auto a = registry_.PushImage("test/moving", "latest", first);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(registry_.PushImage("test/moving", "stable", first).ok());
  ASSERT_TRUE(images_->Pull(Ref("test/moving:latest"), {}).ok());
  ASSERT_TRUE(images_->Pull(Ref("test/moving:stable"), {}).ok());
  auto b = registry_.PushImage("test/moving", "latest", second);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(images_->Pull(Ref("test/moving"), {}).ok());

  EXPECT_THAT(MustResolve(a->config_digest).repo_tags(), ElementsAre(Ref("test/moving:stable")));
  EXPECT_THAT(MustResolve(b->config_digest).repo_tags(), ElementsAre(Ref("test/moving:latest")));
  std::string old_layer = images_->LayerDir(MustResolve(a->config_digest).chain_ids(0));
  struct stat st {};
  ASSERT_EQ(stat(old_layer.c_str(), &st), 0);

  ASSERT_TRUE(images_->Remove(Ref("test/moving:stable")).ok());
  auto gone = images_->Resolve(a->config_digest);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  EXPECT_NE(stat(old_layer.c_str(), &st), 0) << "unused layer was not collected";
  EXPECT_TRUE(MustResolve(Ref("test/moving:latest")).id() == b->config_digest);
  // Idempotent.
  EXPECT_TRUE(images_->Remove(Ref("test/moving:stable")).ok());
  EXPECT_TRUE(images_->Remove(a->config_digest).ok());
}

TEST_F(ImagePullTest, LayersInUseByContainersOutliveTheirImage) {
  TestImageSpec spec;
  spec.layers = {{TarBuilder().File("a", "1").Finish()}, {TarBuilder().File("b", "2").Finish()}};
  ASSERT_TRUE(registry_.PushImage("test/inuse", "1", spec).ok());
  auto id = images_->Pull(Ref("test/inuse:1"), {});
  ASSERT_TRUE(id.ok()) << id.status();
  image::ImageRecord r = MustResolve(*id);
  std::vector<std::string> lower = ImageStore::LowerDirs(*images_, r);
  ASSERT_EQ(lower.size(), 2u);
  EXPECT_EQ(lower[0], images_->LayerDir(r.chain_ids(1)));  // topmost first
  std::set<std::string> in_use(r.chain_ids().begin(), r.chain_ids().end());
  images_->SetLayersInUse([&in_use] { return in_use; });
  ASSERT_TRUE(images_->Remove(*id).ok());
  struct stat st {};
  EXPECT_EQ(stat(lower[0].c_str(), &st), 0);
  EXPECT_EQ(stat(lower[1].c_str(), &st), 0);
  in_use.clear();
  ASSERT_TRUE(images_->CollectGarbageNow().ok());
  EXPECT_NE(stat(lower[0].c_str(), &st), 0);
  EXPECT_NE(stat(lower[1].c_str(), &st), 0);
}

TEST_F(ImagePullTest, ImagesSurviveRestart) {
  TestImageSpec spec;
  spec.layers = {{BusyboxLayerTar()}};
  spec.user = "www-data:50";
  auto pushed = registry_.PushImage("test/persist", "1", spec);
  ASSERT_TRUE(pushed.ok());
  ASSERT_TRUE(images_->Pull(Ref("test/persist:1"), {}).ok());
  OpenStore();
  image::ImageRecord r = MustResolve(Ref("test/persist:1"));
  EXPECT_EQ(r.id(), pushed->config_digest);
  EXPECT_EQ(ParseImageUser(r.user()).username, "www-data");
  EXPECT_TRUE(ReadFile(images_->LayerDir(r.chain_ids(0)) + "/bin/busybox").ok());
  auto config = images_->ConfigJson(r.id());
  ASSERT_TRUE(config.ok());
  EXPECT_THAT(*config, HasSubstr("www-data:50"));
}

TEST_F(ImagePullTest, ConfiguredImagesArePinnedByTagOrDigest) {
  TestImageSpec spec;
  spec.layers = {{BusyboxLayerTar()}};
  auto pinned_by_tag = registry_.PushImage("test/pause", "3.9", spec);
  spec.user = "1000";  // another config, another image
  auto pinned_by_digest = registry_.PushImage("test/agent", "1", spec);
  spec.user = "2000";
  auto plain = registry_.PushImage("test/app", "1", spec);
  ASSERT_TRUE(pinned_by_tag.ok() && pinned_by_digest.ok() && plain.ok());
  image_config_.add_pinned_images(Ref("test/pause:3.9"));
  image_config_.add_pinned_images(Ref("test/agent@" + pinned_by_digest->manifest_digest));
  OpenStore();
  for (const char* name : {"test/pause:3.9", "test/agent:1", "test/app:1"}) {
    ASSERT_TRUE(images_->Pull(Ref(name), {}).ok()) << name;
  }
  EXPECT_TRUE(MustResolve(Ref("test/pause:3.9")).pinned());
  EXPECT_TRUE(MustResolve(Ref("test/agent:1")).pinned());
  EXPECT_FALSE(MustResolve(Ref("test/app:1")).pinned());
  auto all = images_->List();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(std::count_if(all->begin(), all->end(),
                          [](const image::ImageRecord& r) { return r.pinned(); }),
            2);
  // A reference that does not parse stops the store from opening, naming it.
  image_config_.add_pinned_images("Not A Reference");
  auto store = Store::Open(tmp_.Sub("other.db"));
  ASSERT_TRUE(store.ok());
  auto bad = ImageStore::Open(tmp_.Sub("other"), image_config_, store->get());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("image.pinned_images[2]"));
}

TEST_F(ImagePullTest, MirrorIsTriedFirstAndTheRegistryIsTheFallback) {
  TestImageSpec spec;
  spec.layers = {{TarBuilder().File("m", "1").Finish()}};
  auto pushed = registry_.PushImage("test/mirrored", "1", spec);
  ASSERT_TRUE(pushed.ok());
  // A registry name that only exists through its mirror ("localhost:1" refuses
  // connections, so a wrong fallback fails fast and stays on this machine).
  config::RegistryHost& only_mirror = (*image_config_.mutable_registries())["localhost:1"];
  only_mirror.add_mirrors("http://" + registry_.host());
  // The real registry behind a dead mirror.
  config::RegistryHost& dead_mirror = (*image_config_.mutable_registries())[registry_.host()];
  dead_mirror.add_mirrors("http://127.0.0.1:1");
  image_config_.set_pull_attempts(1);
  OpenStore();

  auto id = images_->Pull("localhost:1/test/mirrored:1", {});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, pushed->config_digest);
  EXPECT_THAT(MustResolve("localhost:1/test/mirrored:1").repo_tags(),
              ElementsAre("localhost:1/test/mirrored:1"));

  ASSERT_TRUE(images_->Remove(*id).ok());
  id = images_->Pull(Ref("test/mirrored:1"), {});
  ASSERT_TRUE(id.ok()) << id.status();
}

TEST(ImageTlsTest, HttpsRegistryNeedsItsCaFromTheCertsDir) {
  TestRegistry registry;
  ASSERT_TRUE(registry.EnableTls().ok());
  ASSERT_TRUE(registry.Start().ok());
  TestImageSpec spec;
  spec.layers = {{TarBuilder().File("tls", "1").Finish()}};
  auto pushed = registry.PushImage("secure/app", "1", spec);
  ASSERT_TRUE(pushed.ok()) << pushed.status();

  TempDir tmp;
  auto store = Store::Open(tmp.Sub("crid.db"));
  ASSERT_TRUE(store.ok());
  config::ImageConfig config = DefaultConfig().image();
  config.set_pull_attempts(1);
  config.set_certs_dir(tmp.Sub("certs.d"));
  // Reached only as a mirror over HTTPS; the fallback (localhost:1) refuses.
  (*config.mutable_registries())["localhost:1"].add_mirrors("https://" + registry.host());
  auto images = ImageStore::Open(tmp.Sub("images"), config, store->get());
  ASSERT_TRUE(images.ok());

  auto untrusted = (*images)->Pull("localhost:1/secure/app:1", {});
  ASSERT_FALSE(untrusted.ok());
  EXPECT_THAT(std::string(untrusted.status().message()), HasSubstr("certificate"));

  ASSERT_TRUE(MakeDirs(tmp.Sub("certs.d/" + registry.host()), 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(tmp.Sub("certs.d/" + registry.host() + "/ca.crt"),
                              *ReadFile(registry.ca_path()), 0644)
                  .ok());
  auto trusted = (*images)->Pull("localhost:1/secure/app:1", {});
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  EXPECT_EQ(*trusted, pushed->config_digest);
}

TEST_F(ImagePullTest, DockerHubNamesGoToTheirMirrorBeforeTheOrigin) {
  config::RegistryHost& hub = (*image_config_.mutable_registries())["docker.io"];
  hub.add_mirrors("http://127.0.0.1:5000/");
  RegistryClient client(image_config_);
  std::vector<RegistryEndpoint> endpoints = client.Endpoints("docker.io");
  ASSERT_EQ(endpoints.size(), 2u);
  EXPECT_EQ(endpoints[0].base_url, "http://127.0.0.1:5000");
  EXPECT_EQ(endpoints[1].base_url, "https://registry-1.docker.io");
  EXPECT_EQ(client.Endpoints("127.0.0.1:5000")[0].base_url, "http://127.0.0.1:5000");
  // An air-gapped node asks its mirrors only.
  hub.set_mirrors_only(true);
  RegistryClient gapped(image_config_);
  ASSERT_EQ(gapped.Endpoints("docker.io").size(), 1u);
  EXPECT_EQ(gapped.Endpoints("docker.io")[0].base_url, "http://127.0.0.1:5000");
  EXPECT_EQ(client.Endpoints("registry.k8s.io")[0].base_url, "https://registry.k8s.io");
}

// Usage is kept as layers come and go, and agrees with a walk of the tree.
TEST_F(ImagePullTest, UsageFollowsPullsAndRemovalsWithoutWalkingLayers) {
  auto walk = [&] { return *MeasureDiskUsage(tmp_.Sub("images")); };
  auto usage = images_->Usage();
  ASSERT_TRUE(usage.ok()) << usage.status();
  uint64_t empty_bytes = usage->bytes;

  TestImageSpec spec;
  spec.layers = {{BusyboxLayerTar()}, {TarBuilder().File("etc/extra", "x").Finish()}};
  ASSERT_TRUE(registry_.PushImage("test/usage", "1", spec).ok());
  auto id = images_->Pull(Ref("test/usage:1"), {});
  ASSERT_TRUE(id.ok()) << id.status();
  usage = images_->Usage();
  ASSERT_TRUE(usage.ok());
  DiskUsage walked = walk();
  EXPECT_GT(usage->bytes, empty_bytes + (512u << 10));
  // The walk also counts a few directories of the store itself.
  EXPECT_NEAR(static_cast<double>(usage->bytes), static_cast<double>(walked.bytes), 64 * 1024);
  EXPECT_NEAR(static_cast<double>(usage->inodes), static_cast<double>(walked.inodes), 16);

  // Reopened, the layers are measured again.
  OpenStore();
  auto reopened = images_->Usage();
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(reopened->bytes, usage->bytes);
  EXPECT_EQ(reopened->inodes, usage->inodes);

  ASSERT_TRUE(images_->Remove(*id).ok());
  usage = images_->Usage();
  ASSERT_TRUE(usage.ok());
  EXPECT_LT(usage->bytes, empty_bytes + (64u << 10));
}

// A container being created holds a lease: removing its image meanwhile keeps
// the layers until the lease ends.
TEST_F(ImagePullTest, LeasedLayersSurviveImageRemoval) {
  TestImageSpec spec;
  spec.layers = {{TarBuilder().File("etc/a", "a").Finish()}};
  ASSERT_TRUE(registry_.PushImage("test/leased", "1", spec).ok());
  auto id = images_->Pull(Ref("test/leased:1"), {});
  ASSERT_TRUE(id.ok()) << id.status();
  auto leased = images_->Acquire(Ref("test/leased:1"));
  ASSERT_TRUE(leased.ok()) << leased.status();
  std::string layer = images_->LayerDir(leased->first.chain_ids(0));

  ASSERT_TRUE(images_->Remove(*id).ok());
  EXPECT_TRUE(Exists(layer + "/etc/a")) << "a leased layer was removed";
  EXPECT_EQ(images_->Acquire(Ref("test/leased:1")).status().code(), absl::StatusCode::kNotFound);

  leased->second.Release();
  ASSERT_TRUE(images_->CollectGarbageNow().ok());
  EXPECT_FALSE(Exists(layer));
  // Removal renames first: nothing half-deleted is left under the layers dir.
  for (const std::string& name : DirEntries(tmp_.Sub("images/layers"))) {
    ADD_FAILURE() << "left in layers/: " << name;
  }
}

// A pull that starts while garbage collection runs, and finds a layer it shares
// with the image being removed, keeps that layer: collection checks again under
// the layer's lock before it deletes.
TEST_F(ImagePullTest, CollectionSparesALayerAPullTookMeanwhile) {
  TestImageSpec a;
  a.layers = {{TarBuilder().File("etc/shared", "s").Finish()}};
  a.marker = "a";
  TestImageSpec b = a;
  b.marker = "b";
  ASSERT_TRUE(registry_.PushImage("test/a", "1", a).ok());
  auto pushed_b = registry_.PushImage("test/b", "1", b);
  ASSERT_TRUE(pushed_b.ok());
  auto id_a = images_->Pull(Ref("test/a:1"), {});
  ASSERT_TRUE(id_a.ok()) << id_a.status();
  std::string chain = MustResolve(Ref("test/a:1")).chain_ids(0);

  // Called by the collection after it took its snapshot: a pull of b starts
  // and gets as far as holding the shared layer.
  std::thread pull_b;
  absl::StatusOr<std::string> id_b;
  bool started = false;
  images_->SetLayersInUse([&] {
    if (!started) {
      started = true;
      pull_b = std::thread([&] { id_b = images_->Pull(Ref("test/b:1"), {}); });
      absl::Time deadline = absl::Now() + absl::Seconds(20);
      while (!images_->IsHeld(chain) && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(1));
      }
    }
    return std::set<std::string>();
  });
  ASSERT_TRUE(images_->Remove(*id_a).ok());
  pull_b.join();
  images_->SetLayersInUse(nullptr);
  ASSERT_TRUE(started);
  ASSERT_TRUE(id_b.ok()) << id_b.status();
  EXPECT_TRUE(Exists(images_->LayerDir(chain) + "/etc/shared"))
      << "the layer of a freshly pulled image was collected";
}

// An image store over its own database, with one attempt per endpoint unless
// the test asks for more.
struct AuthTestStore {
  explicit AuthTestStore(const std::function<void(config::ImageConfig*)>& configure = nullptr) {
    auto opened = Store::Open(tmp.Sub("crid.db"));
    EXPECT_TRUE(opened.ok()) << opened.status();
    store = std::move(*opened);
    config::ImageConfig config = DefaultConfig().image();
    config.set_pull_attempts(1);
    if (configure) {
      configure(&config);
    }
    auto opened_images = ImageStore::Open(tmp.Sub("images"), config, store.get());
    EXPECT_TRUE(opened_images.ok()) << opened_images.status();
    images = std::move(*opened_images);
    images->registry()->set_initial_backoff(absl::Milliseconds(10));
  }
  TempDir tmp;
  std::unique_ptr<Store> store;
  std::unique_ptr<ImageStore> images;
};

RegistryAuth UserPassword(const std::string& user, const std::string& password) {
  RegistryAuth auth;
  auth.username = user;
  auth.password = password;
  return auth;
}

TEST(ImageAuthTest, BasicAuthRegistryNeedsCredentials) {
  TestRegistry registry("crid", "s3cret");
  ASSERT_TRUE(registry.Start().ok());
  TestImageSpec spec;
  spec.layers = {{TarBuilder().File("secret", "1").Finish()}};
  auto pushed = registry.PushImage("private/app", "1", spec);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  AuthTestStore s;
  std::string ref = registry.host() + "/private/app:1";

  auto anonymous = s.images->Pull(ref, {});
  ASSERT_FALSE(anonymous.ok());
  EXPECT_EQ(anonymous.status().code(), absl::StatusCode::kUnauthenticated) << anonymous.status();
  EXPECT_THAT(std::string(anonymous.status().message()), HasSubstr("private/app"));
  EXPECT_EQ(s.images->Pull(ref, UserPassword("crid", "wrong")).status().code(),
            absl::StatusCode::kUnauthenticated);

  RegistryAuth auth;
  auth.auth = absl::Base64Escape("crid:s3cret");
  auto id = s.images->Pull(ref, auth);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, pushed->config_digest);
  ASSERT_TRUE(s.images->Remove(*id).ok());
  EXPECT_TRUE(s.images->Pull(ref, UserPassword("crid", "s3cret")).ok());
}

// What one pull's credentials unlocked stays locked for pulls without them: the
// Authorization that worked is remembered per credential identity only.
TEST(ImageAuthTest, BasicCredentialsOfOnePullAreNotReusedByOthers) {
  TestRegistry registry("crid", "s3cret");
  ASSERT_TRUE(registry.Start().ok());
  TestImageSpec spec;
  spec.layers = {{TarBuilder().File("secret", "1").Finish()}};
  ASSERT_TRUE(registry.PushImage("private/app", "1", spec).ok());
  AuthTestStore s;
  std::string ref = registry.host() + "/private/app:1";

  auto id = s.images->Pull(ref, UserPassword("crid", "s3cret"));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(s.images->Remove(*id).ok());

  auto anonymous = s.images->Pull(ref, {});
  EXPECT_EQ(anonymous.status().code(), absl::StatusCode::kUnauthenticated) << anonymous.status();
  auto wrong = s.images->Pull(ref, UserPassword("crid", "wrong"));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated) << wrong.status();
  auto other_user = s.images->Pull(ref, UserPassword("mallory", "s3cret"));
  EXPECT_EQ(other_user.status().code(), absl::StatusCode::kUnauthenticated) << other_user.status();
  EXPECT_TRUE(s.images->Pull(ref, UserPassword("crid", "s3cret")).ok());
}

// A registry behind a token server (distribution's token auth with RS256 JWTs).
class BearerAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tokens_.Start().ok());
    registry_.EnableTokenAuth(tokens_.realm(), tokens_.cert_path(), TokenServer::kService,
                              TokenServer::kIssuer);
    ASSERT_TRUE(registry_.Start().ok());
    registry_.set_push_authorization("Authorization: Bearer " +
                                     tokens_.Mint("pusher", "private/app", {"pull", "push"}));
    TestImageSpec spec;
    spec.layers = {{TarBuilder().File("secret", "1").Finish()}};
    auto pushed = registry_.PushImage("private/app", "1", spec);
    ASSERT_TRUE(pushed.ok()) << pushed.status();
    id_ = pushed->config_digest;
    ref_ = registry_.host() + "/private/app:1";
  }

  TokenServer tokens_{"crid", "s3cret"};
  TestRegistry registry_;
  std::string id_;
  std::string ref_;
};

TEST_F(BearerAuthTest, TokensOfOnePullAreNotReusedByOthers) {
  AuthTestStore s;
  auto id = s.images->Pull(ref_, UserPassword("crid", "s3cret"));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, id_);
  ASSERT_TRUE(s.images->Remove(*id).ok());

  auto anonymous = s.images->Pull(ref_, {});
  EXPECT_EQ(anonymous.status().code(), absl::StatusCode::kUnauthenticated) << anonymous.status();
  auto wrong = s.images->Pull(ref_, UserPassword("crid", "wrong"));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated) << wrong.status();
  EXPECT_TRUE(s.images->Pull(ref_, UserPassword("crid", "s3cret")).ok());
}

// A pull without credentials that starts while a credentialed pull of the same
// image runs gets its own answer, not the other pull's.
TEST_F(BearerAuthTest, ConcurrentPullsShareOnlyWithTheSameCredentials) {
  AuthTestStore s;
  tokens_.set_answer_delay_ms(1500);
  absl::StatusOr<std::string> credentialed;
  std::thread leader([&] { credentialed = s.images->Pull(ref_, UserPassword("crid", "s3cret")); });
  // The first token request has arrived: the credentialed pull is in flight.
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (tokens_.requests().empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_FALSE(tokens_.requests().empty());
  auto anonymous = s.images->Pull(ref_, {});
  leader.join();
  ASSERT_TRUE(credentialed.ok()) << credentialed.status();
  EXPECT_EQ(anonymous.status().code(), absl::StatusCode::kUnauthenticated) << anonymous.status();
}

// A token the registry refuses is dropped, not handed back on the next try.
TEST_F(BearerAuthTest, RefusedTokenIsFetchedAnew) {
  AuthTestStore s;
  tokens_.set_hand_out_expired(true);
  auto refused = s.images->Pull(ref_, UserPassword("crid", "s3cret"));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated) << refused.status();
  tokens_.set_hand_out_expired(false);
  size_t before = tokens_.requests().size();
  auto id = s.images->Pull(ref_, UserPassword("crid", "s3cret"));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_GT(tokens_.requests().size(), before);
}

// Credentials are for the registry the image names (or the one server_address
// names); a mirror of it and the mirror's token realm never see them.
TEST_F(BearerAuthTest, CredentialsAreNotSentToMirrors) {
  // localhost:1 is the registry the image names; nothing listens there.
  AuthTestStore s([&](config::ImageConfig* config) {
    (*config->mutable_registries())["localhost:1"].add_mirrors("http://" + registry_.host());
  });
  std::string ref = "localhost:1/private/app:1";
  auto through_mirror = s.images->Pull(ref, UserPassword("crid", "s3cret"));
  EXPECT_FALSE(through_mirror.ok());
  for (const std::string& user : tokens_.requests()) {
    EXPECT_EQ(user, "") << "credentials for localhost:1 reached the mirror's token realm";
  }

  RegistryAuth for_mirror = UserPassword("crid", "s3cret");
  for_mirror.server_address = registry_.host();
  auto id = s.images->Pull(ref, for_mirror);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, id_);
  EXPECT_THAT(tokens_.requests(), ::testing::Contains("crid"));
}

TEST(RegistryAuthTest, CredentialsAreForTheirRegistryOnly) {
  RegistryAuth auth = UserPassword("crid", "s3cret");
  EXPECT_TRUE(auth.IsFor("registry.example.com", "registry.example.com"));
  EXPECT_FALSE(auth.IsFor("mirror.example.com", "registry.example.com"));
  EXPECT_TRUE(auth.IsFor("registry-1.docker.io", "docker.io"));
  auth.server_address = "https://index.docker.io/v1/";
  EXPECT_TRUE(auth.IsFor("registry-1.docker.io", "docker.io"));
  EXPECT_FALSE(auth.IsFor("127.0.0.1:5000", "docker.io"));
  auth.server_address = "127.0.0.1:5000";
  EXPECT_TRUE(auth.IsFor("127.0.0.1:5000", "docker.io"));
  EXPECT_NE(UserPassword("crid", "a").Identity(), UserPassword("crid", "b").Identity());
  EXPECT_EQ(RegistryAuth().Identity(), "");
}

// A full disk and an over-size answer are final: no attempt is repeated (a
// repeat would first sleep the 30 s backoff).
TEST(RegistryErrorTest, DiskFullAndOversizeAnswersAreNotRetried) {
  TestRegistry registry;
  ASSERT_TRUE(registry.Start().ok());
  std::string noise(8 << 20, '\0');
  uint64_t x = 88172645463325252ULL;
  for (char& c : noise) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  TestImageSpec spec;
  spec.layers = {{TarBuilder().File("noise", noise).Finish()}};
  ASSERT_TRUE(registry.PushImage("test/big", "1", spec).ok());

  TempDir tmp;
  ASSERT_EQ(mount("tmpfs", tmp.path().c_str(), "tmpfs", 0, "size=2m"), 0) << strerror(errno);
  absl::Cleanup unmount = [&] { umount2(tmp.path().c_str(), MNT_DETACH); };
  auto store = Store::Open(tmp.Sub("crid.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  config::ImageConfig config = DefaultConfig().image();
  config.set_pull_attempts(4);
  auto images = ImageStore::Open(tmp.Sub("images"), config, store->get());
  ASSERT_TRUE(images.ok()) << images.status();
  (*images)->registry()->set_initial_backoff(absl::Seconds(30));

  absl::Time start = absl::Now();
  auto full = (*images)->Pull(registry.host() + "/test/big:1", {});
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted) << full.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));

  RegistryClient client(config);
  client.set_initial_backoff(absl::Seconds(30));
  auto ref = ParseReference(registry.host() + "/test/big:1");
  ASSERT_TRUE(ref.ok());
  start = absl::Now();
  auto oversize = client.FetchManifest(*ref, "1", {}, 16);
  EXPECT_EQ(oversize.status().code(), absl::StatusCode::kResourceExhausted) << oversize.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
}

}  // namespace
}  // namespace crid
