// End to end: PullImage through crid's socket as kubelet sends it. Credentials
// (an image pull secret in PullImageRequest.auth): what one pull's credentials
// unlocked stays locked for pulls without them, and a mirror is never shown
// credentials meant for the registry it mirrors. The image spec's annotations
// and runtime handler come back in Image.spec.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "base/temp_dir.h"
#include "gtest/gtest.h"
#include "image/test_layers.h"
#include "proto/cri_api.grpc.pb.h"
#include "tests/crid_process.h"
#include "tests/image_registry_fixture.h"

namespace crid {
namespace {

namespace v1 = ::runtime::v1;

class ImagePullE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(registry_.Start().ok());
    TestImageSpec spec;
    spec.layers = {{TarBuilder().File("secret", "1").Finish()}};
    ASSERT_TRUE(registry_.PushImage("private/app", "1", spec).ok());
    // "localhost:1" (where nothing listens) is mirrored by the private registry.
    std::ofstream(tmp_.Sub("crid.json"))
        << R"({"image": {"pullAttempts": 1, "registries": {"localhost:1": {"mirrors": ["http://)"
        << registry_.host() << R"("]}}}})";
    crid_ = std::make_unique<CridProcess>(
        RunfilePath("crid"),
        std::vector<std::string>{"--root", tmp_.Sub("root"), "--state=" + tmp_.Sub("state"),
                                 "--listen", "unix://" + socket(), "--config",
                                 tmp_.Sub("crid.json")});
    crid_->Start(tmp_.Sub("crid.log"));
    ASSERT_TRUE(crid_->WaitForSocket(socket(), absl::Seconds(20))) << Log();
    stub_ = v1::ImageService::NewStub(
        grpc::CreateChannel("unix://" + socket(), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    crid_->Signal(SIGTERM);
    EXPECT_EQ(crid_->Wait(absl::Seconds(20)), 0) << Log();
  }

  std::string socket() const { return tmp_.Sub("crid.sock"); }
  std::string Log() const {
    std::ifstream in(tmp_.Sub("crid.log"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  grpc::Status Pull(const std::string& image, const std::string& user, const std::string& password,
                    const std::string& server_address = "") {
    grpc::ClientContext ctx;
    v1::PullImageRequest req;
    v1::PullImageResponse resp;
    req.mutable_image()->set_image(image);
    if (!user.empty()) {
      req.mutable_auth()->set_username(user);
      req.mutable_auth()->set_password(password);
      req.mutable_auth()->set_server_address(server_address);
    }
    return stub_->PullImage(&ctx, req, &resp);
  }

  grpc::Status Remove(const std::string& image) {
    grpc::ClientContext ctx;
    v1::RemoveImageRequest req;
    v1::RemoveImageResponse resp;
    req.mutable_image()->set_image(image);
    return stub_->RemoveImage(&ctx, req, &resp);
  }

  TempDir tmp_;
  TestRegistry registry_{"crid", "s3cret"};
  std::unique_ptr<CridProcess> crid_;
  std::unique_ptr<v1::ImageService::Stub> stub_;
};

TEST_F(ImagePullE2eTest, AfterACredentialedPullAndRemovalOthersAreStillRefused) {
  std::string ref = registry_.host() + "/private/app:1";
  grpc::Status st = Pull(ref, "crid", "s3cret");
  ASSERT_TRUE(st.ok()) << st.error_message() << Log();
  ASSERT_TRUE(Remove(ref).ok());

  st = Pull(ref, "", "");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  st = Pull(ref, "crid", "wrong");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  st = Pull(ref, "crid", "s3cret");
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(ImagePullE2eTest, CredentialsGoOnlyToTheRegistryTheyAreFor) {
  // For localhost:1 (the image's registry): its mirror gets none, so the pull fails.
  grpc::Status st = Pull("localhost:1/private/app:1", "crid", "s3cret");
  EXPECT_FALSE(st.ok());
  // server_address names the mirror: now they are for it.
  st = Pull("localhost:1/private/app:1", "crid", "s3cret", "http://" + registry_.host());
  EXPECT_TRUE(st.ok()) << st.error_message() << Log();
}

TEST_F(ImagePullE2eTest, ImageSpecAnnotationsAndHandlerAreKept) {
  std::string ref = registry_.host() + "/private/app:1";
  grpc::ClientContext pull_ctx;
  v1::PullImageRequest pull;
  v1::PullImageResponse pulled;
  pull.mutable_image()->set_image(ref);
  (*pull.mutable_image()->mutable_annotations())["example.com/team"] = "payments";
  pull.mutable_image()->set_runtime_handler("runc");
  pull.mutable_auth()->set_username("crid");
  pull.mutable_auth()->set_password("s3cret");
  grpc::Status st = stub_->PullImage(&pull_ctx, pull, &pulled);
  ASSERT_TRUE(st.ok()) << st.error_message();

  grpc::ClientContext status_ctx;
  v1::ImageStatusRequest req;
  v1::ImageStatusResponse resp;
  req.mutable_image()->set_image(ref);
  ASSERT_TRUE(stub_->ImageStatus(&status_ctx, req, &resp).ok());
  ASSERT_TRUE(resp.has_image());
  EXPECT_EQ(resp.image().spec().image(), pulled.image_ref());
  EXPECT_EQ(resp.image().spec().annotations().at("example.com/team"), "payments");
  EXPECT_EQ(resp.image().spec().runtime_handler(), "runc");
}

}  // namespace
}  // namespace crid
