// End to end: the real crid binary pulls from a real registry (through a
// configured mirror) and serves the ImageService over its socket, as kubelet and
// crictl use it.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "image/digest.h"
#include "image/test_layers.h"
#include "proto/cri_api.grpc.pb.h"
#include "tests/crid_process.h"
#include "tests/image_registry_fixture.h"
#include "tests/leak_census.h"

namespace crid {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
namespace v1 = ::runtime::v1;

class ImageE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(registry_.Start().ok());
    // registry.k8s.io images come from the local registry only, as in an
    // air-gapped cluster (and in the critest lab): nothing is asked upstream.
    std::ofstream(tmp_.Sub("crid.json"))
        << R"({"image": {"registries": {"registry.k8s.io": {"mirrors": ["http://)"
        << registry_.host() << R"("], "mirrorsOnly": true}}}})";
  }

  void StartCrid() {
    crid_ = std::make_unique<CridProcess>(
        RunfilePath("crid"),
        std::vector<std::string>{"--root", tmp_.Sub("root"), "--state=" + tmp_.Sub("state"),
                                 "--listen", "unix://" + socket(), "--log-level", "debug",
                                 "--config", tmp_.Sub("crid.json")});
    crid_->Start(tmp_.Sub("crid.log"));
    ASSERT_TRUE(crid_->WaitForSocket(socket(), absl::Seconds(20))) << Log();
    stub_ = v1::ImageService::NewStub(
        grpc::CreateChannel("unix://" + socket(), grpc::InsecureChannelCredentials()));
  }

  void StopCrid() {
    crid_->Signal(SIGTERM);
    EXPECT_EQ(crid_->Wait(absl::Seconds(20)), 0) << Log();
    crid_.reset();
  }

  void TearDown() override {
    if (crid_ != nullptr) {
      StopCrid();
    }
    // Pulls mount nothing and leave no process behind.
    EXPECT_THAT(census_.Leaks(), IsEmpty()) << Log();
  }

  std::string socket() const { return tmp_.Sub("crid.sock"); }
  std::string Log() const {
    std::ifstream in(tmp_.Sub("crid.log"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  grpc::Status Pull(const std::string& image, v1::PullImageResponse* resp) {
    grpc::ClientContext ctx;
    v1::PullImageRequest req;
    req.mutable_image()->set_image(image);
    return stub_->PullImage(&ctx, req, resp);
  }

  grpc::Status Status(const std::string& image, v1::ImageStatusResponse* resp,
                      bool verbose = false) {
    grpc::ClientContext ctx;
    v1::ImageStatusRequest req;
    req.mutable_image()->set_image(image);
    req.set_verbose(verbose);
    return stub_->ImageStatus(&ctx, req, resp);
  }

  grpc::Status Remove(const std::string& image) {
    grpc::ClientContext ctx;
    v1::RemoveImageRequest req;
    req.mutable_image()->set_image(image);
    v1::RemoveImageResponse resp;
    return stub_->RemoveImage(&ctx, req, &resp);
  }

  TempDir tmp_;
  // Counted when the fixture is made, before SetUp starts anything.
  LeakCensus census_{
      LeakCensusOptions{tmp_.Sub("root"), tmp_.Sub("state"), "", "", {tmp_.Sub("crid.log")}}};
  TestRegistry registry_;
  std::unique_ptr<CridProcess> crid_;
  std::unique_ptr<v1::ImageService::Stub> stub_;
};

TEST_F(ImageE2eTest, PullListStatusRemoveThroughTheSocket) {
  TestImageSpec spec;
  spec.layers = {{BusyboxLayerTar()}};
  spec.user = "1002";
  auto pushed = registry_.PushImage("e2e/busybox", "1.0", spec);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  ASSERT_TRUE(registry_.PushImage("e2e/busybox", "extra", spec).ok());
  StartCrid();

  v1::PullImageResponse pulled;
  grpc::Status st = Pull("registry.k8s.io/e2e/busybox:1.0", &pulled);
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << Log();
  EXPECT_EQ(pulled.image_ref(), pushed->config_digest);
  ASSERT_TRUE(Pull("registry.k8s.io/e2e/busybox:extra", &pulled).ok());

  {
    grpc::ClientContext ctx;
    v1::ListImagesResponse list;
    ASSERT_TRUE(stub_->ListImages(&ctx, {}, &list).ok());
    ASSERT_EQ(list.images_size(), 1);
    const v1::Image& image = list.images(0);
    EXPECT_EQ(image.id(), pulled.image_ref());
    EXPECT_THAT(image.repo_tags(), ElementsAre("registry.k8s.io/e2e/busybox:1.0",
                                               "registry.k8s.io/e2e/busybox:extra"));
    EXPECT_EQ(image.uid().value(), 1002);
    EXPECT_EQ(image.username(), "");
    EXPECT_GT(image.size(), 0u);
  }

  {
    grpc::ClientContext ctx;
    auto reader = stub_->StreamImages(&ctx, {});
    v1::StreamImagesResponse batch;
    int images = 0;
    while (reader->Read(&batch)) {
      images += batch.images_size();
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(images, 1);
  }

  // Same Image by ID, by each tag and by digest.
  v1::ImageStatusResponse by_id;
  ASSERT_TRUE(Status(pulled.image_ref(), &by_id, /*verbose=*/true).ok());
  ASSERT_TRUE(by_id.has_image());
  EXPECT_THAT(by_id.info().at("info"), HasSubstr("\"imageSpec\""));
  EXPECT_THAT(by_id.info().at("info"), HasSubstr(pushed->diff_ids[0]));
  for (const std::string& name :
       {std::string("registry.k8s.io/e2e/busybox:extra"),
        std::string("registry.k8s.io/e2e/busybox@") + pushed->manifest_digest}) {
    v1::ImageStatusResponse other;
    ASSERT_TRUE(Status(name, &other).ok()) << name;
    ASSERT_TRUE(other.has_image()) << name;
    EXPECT_EQ(other.image().SerializeAsString(), by_id.image().SerializeAsString()) << name;
  }
  v1::ImageStatusResponse absent;
  ASSERT_TRUE(Status("registry.k8s.io/e2e/absent:1", &absent).ok());
  EXPECT_FALSE(absent.has_image());

  {
    grpc::ClientContext ctx;
    v1::ImageFsInfoResponse fs;
    ASSERT_TRUE(stub_->ImageFsInfo(&ctx, {}, &fs).ok());
    ASSERT_EQ(fs.image_filesystems_size(), 1);
    EXPECT_EQ(fs.image_filesystems(0).fs_id().mountpoint(), tmp_.Sub("root") + "/images");
    EXPECT_GT(fs.image_filesystems(0).used_bytes().value(), 1000000u);
    EXPECT_GT(fs.image_filesystems(0).inodes_used().value(), 3u);
    EXPECT_GT(fs.image_filesystems(0).timestamp(), 0);
  }

  // Survives a restart.
  StopCrid();
  StartCrid();
  v1::ImageStatusResponse after;
  ASSERT_TRUE(Status("registry.k8s.io/e2e/busybox:1.0", &after).ok());
  ASSERT_TRUE(after.has_image());
  EXPECT_EQ(after.image().id(), pulled.image_ref());

  // Removing by one tag removes the image with every tag; again is fine.
  ASSERT_TRUE(Remove("registry.k8s.io/e2e/busybox:1.0").ok());
  ASSERT_TRUE(Status(pulled.image_ref(), &after).ok());
  EXPECT_FALSE(after.has_image());
  after.Clear();
  ASSERT_TRUE(Status("registry.k8s.io/e2e/busybox:extra", &after).ok());
  EXPECT_FALSE(after.has_image());
  EXPECT_TRUE(Remove("registry.k8s.io/e2e/busybox:1.0").ok());
  EXPECT_TRUE(Remove(pulled.image_ref()).ok());
}

TEST_F(ImageE2eTest, ImagesImportLoadsADockerSaveArchiveForTheDaemon) {
  std::string layer = TarBuilder().File("bin/tool", "imported").Finish();
  std::string config = absl::StrCat(
      "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"www-data\"},"
      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"",
      DigestOf(layer), "\"]}}");
  std::string archive = TarBuilder()
                            .File("manifest.json",
                                  "[{\"Config\":\"c.json\",\"RepoTags\":[\"airgap/app:1\"],"
                                  "\"Layers\":[\"l/layer.tar\"]}]")
                            .File("c.json", config)
                            .File("l/layer.tar", layer)
                            .Finish();
  std::ofstream(tmp_.Sub("app.tar")) << archive;
  std::vector<std::string> import_args = {
      "--root", tmp_.Sub("root"), "--state=" + tmp_.Sub("state"),
      "images", "import",         tmp_.Sub("app.tar")};
  auto [code, output] = RunCridToExit(import_args, tmp_.path());
  ASSERT_EQ(code, 0) << output;
  EXPECT_THAT(output, HasSubstr(DigestOf(config)));

  StartCrid();
  v1::ImageStatusResponse status;
  ASSERT_TRUE(Status("airgap/app:1", &status).ok());
  ASSERT_TRUE(status.has_image());
  EXPECT_EQ(status.image().id(), DigestOf(config));
  EXPECT_EQ(status.image().username(), "www-data");

  // While the daemon owns the root, the command refuses to touch it.
  auto [busy_code, busy_output] = RunCridToExit(import_args, tmp_.path());
  EXPECT_EQ(busy_code, 1);
  EXPECT_THAT(busy_output, HasSubstr("in use"));
}

TEST_F(ImageE2eTest, BadRequestsNameTheProblem) {
  StartCrid();
  v1::PullImageResponse resp;
  grpc::Status st = Pull("", &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("image.image"));
  st = Pull("Invalid/UPPER", &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("lowercase"));
  st = Pull(registry_.host() + "/e2e/none:1", &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("e2e/none"));
  v1::ImageStatusResponse status;
  st = Status("", &status);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace crid
