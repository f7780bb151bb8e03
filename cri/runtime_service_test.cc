// The runtime-info RPCs answer what kubelet checks at start-up, every other RPC
// says UNIMPLEMENTED with its name, and UpdateRuntimeConfig validates and keeps
// the pod CIDR across restarts.
#include <grpcpp/grpcpp.h>

#include "cri/test_server.h"
#include "cri/version_info.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::runtime::v1;

TEST(Version, AnswersWhatKubeletRequires) {
  TestCriServer server;
  grpc::ClientContext ctx;
  v1::VersionRequest req;
  req.set_version("0.1.0");
  v1::VersionResponse resp;
  ASSERT_TRUE(server.runtime().Version(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.version(), "0.1.0");
  EXPECT_EQ(resp.runtime_name(), "crid");
  EXPECT_EQ(resp.runtime_version(), kCridVersion);
  EXPECT_FALSE(resp.runtime_version().empty());
  EXPECT_EQ(resp.runtime_api_version(), "v1");
}

TEST(Status, ReportsBothConditionsNetworkNotReadyWithoutCni) {
  TestCriServer server;
  grpc::ClientContext ctx;
  v1::StatusRequest req;
  v1::StatusResponse resp;
  ASSERT_TRUE(server.runtime().Status(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.status().conditions_size(), 2);
  const v1::RuntimeCondition& runtime = resp.status().conditions(0);
  EXPECT_EQ(runtime.type(), "RuntimeReady");
  EXPECT_TRUE(runtime.status());
  const v1::RuntimeCondition& network = resp.status().conditions(1);
  EXPECT_EQ(network.type(), "NetworkReady");
  EXPECT_FALSE(network.status());
  EXPECT_EQ(network.reason(), "NetworkPluginNotReady");
  EXPECT_THAT(network.message(), HasSubstr("Network plugin returns error"));
  EXPECT_TRUE(resp.info().empty()) << "info only when verbose";
}

TEST(Status, VerboseInfoIsJson) {
  TestCriServer server;
  grpc::ClientContext ctx;
  v1::StatusRequest req;
  req.set_verbose(true);
  v1::StatusResponse resp;
  ASSERT_TRUE(server.runtime().Status(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.info().count("config"), 1u);
  EXPECT_THAT(resp.info().at("config"), HasSubstr("\"listen\":\"unix://"));
  EXPECT_EQ(resp.info().at("cgroupDriver"), "\"cgroupfs\"");
  EXPECT_EQ(resp.info().at("version"), std::string("\"") + kCridVersion + "\"");
  EXPECT_EQ(resp.info().at("podCIDR"), "\"\"");
}

TEST(RuntimeConfig, ReportsTheCgroupDriverExplicitly) {
  for (CgroupDriver driver : {CgroupDriver::kSystemd, CgroupDriver::kCgroupfs}) {
    TestCriServer server(driver);
    grpc::ClientContext ctx;
    v1::RuntimeConfigResponse resp;
    ASSERT_TRUE(server.runtime().RuntimeConfig(&ctx, {}, &resp).ok());
    ASSERT_TRUE(resp.has_linux());
    EXPECT_EQ(resp.linux().cgroup_driver(),
              driver == CgroupDriver::kSystemd ? v1::SYSTEMD : v1::CGROUPFS);
  }
}

grpc::Status UpdatePodCidr(TestCriServer& server, const std::string& cidr) {
  grpc::ClientContext ctx;
  v1::UpdateRuntimeConfigRequest req;
  req.mutable_runtime_config()->mutable_network_config()->set_pod_cidr(cidr);
  v1::UpdateRuntimeConfigResponse resp;
  return server.runtime().UpdateRuntimeConfig(&ctx, req, &resp);
}

std::string VerbosePodCidr(TestCriServer& server) {
  grpc::ClientContext ctx;
  v1::StatusRequest req;
  req.set_verbose(true);
  v1::StatusResponse resp;
  EXPECT_TRUE(server.runtime().Status(&ctx, req, &resp).ok());
  return resp.info().at("podCIDR");
}

TEST(UpdateRuntimeConfig, StoresPodCidrAcrossRestart) {
  TestCriServer server;
  ASSERT_TRUE(UpdatePodCidr(server, "10.244.1.0/24,fd00:10:244:1::/64").ok());
  EXPECT_EQ(VerbosePodCidr(server), "\"10.244.1.0/24,fd00:10:244:1::/64\"");
  server.Restart();
  EXPECT_EQ(VerbosePodCidr(server), "\"10.244.1.0/24,fd00:10:244:1::/64\"");
}

TEST(UpdateRuntimeConfig, EmptyCidrChangesNothing) {
  TestCriServer server;
  ASSERT_TRUE(UpdatePodCidr(server, "10.244.1.0/24").ok());
  ASSERT_TRUE(UpdatePodCidr(server, "").ok());
  EXPECT_EQ(VerbosePodCidr(server), "\"10.244.1.0/24\"");
}

TEST(UpdateRuntimeConfig, BadCidrIsInvalidArgumentNamingField) {
  TestCriServer server;
  ASSERT_TRUE(UpdatePodCidr(server, "10.244.1.0/24").ok());
  grpc::Status st = UpdatePodCidr(server, "10.244.1.0/24,banana");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("runtime_config.network_config.pod_cidr"));
  EXPECT_THAT(st.error_message(), HasSubstr("banana"));
  EXPECT_EQ(VerbosePodCidr(server), "\"10.244.1.0/24\"") << "a refused update changes nothing";
}

TEST(Unimplemented, UnaryRpcsNameThemselves) {
  TestCriServer server;
  {
    grpc::ClientContext ctx;
    v1::CheckpointPodResponse resp;
    grpc::Status st = server.runtime().CheckpointPod(&ctx, {}, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_THAT(st.error_message(), HasSubstr("runtime.v1.RuntimeService/CheckpointPod"));
  }
  {
    grpc::ClientContext ctx;
    v1::RestorePodResponse resp;
    grpc::Status st = server.runtime().RestorePod(&ctx, {}, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_THAT(st.error_message(), HasSubstr("runtime.v1.RuntimeService/RestorePod"));
  }
  {
    // Without a container manager the container RPCs say so, after validating.
    grpc::ClientContext ctx;
    v1::CreateContainerResponse resp;
    grpc::Status st = server.runtime().CreateContainer(&ctx, {}, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("pod_sandbox_id"));
  }
  {
    grpc::ClientContext ctx;
    v1::PullImageResponse resp;
    grpc::Status st = server.image().PullImage(&ctx, {}, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_THAT(st.error_message(), HasSubstr("runtime.v1.ImageService/PullImage"));
  }
}

TEST(Metrics, DescriptorsAlwaysSamplesNeedTheManagers) {
  TestCriServer server;
  {
    grpc::ClientContext ctx;
    v1::ListMetricDescriptorsResponse resp;
    ASSERT_TRUE(server.runtime().ListMetricDescriptors(&ctx, {}, &resp).ok());
    EXPECT_GT(resp.descriptors_size(), 0);
  }
  grpc::ClientContext ctx;
  v1::ListPodSandboxMetricsResponse resp;
  grpc::Status st = server.runtime().ListPodSandboxMetrics(&ctx, {}, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(StreamRpcs, AnswerAsTheirListTwinsWithoutManagers) {
  TestCriServer server;
  {
    grpc::ClientContext ctx;
    auto reader = server.runtime().StreamContainerStats(&ctx, {});
    v1::StreamContainerStatsResponse batch;
    EXPECT_FALSE(reader->Read(&batch));
    grpc::Status st = reader->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(st.error_message(), HasSubstr("containers are not available"));
  }
  {
    grpc::ClientContext ctx;
    auto reader = server.runtime().StreamPodSandboxes(&ctx, {});
    v1::StreamPodSandboxesResponse batch;
    EXPECT_FALSE(reader->Read(&batch));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  }
}

TEST(UpdatePodSandboxResources, ValidatesBeforeLookingThePodUp) {
  TestCriServer server;
  {
    grpc::ClientContext ctx;
    v1::UpdatePodSandboxResourcesResponse resp;
    grpc::Status st = server.runtime().UpdatePodSandboxResources(&ctx, {}, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("pod_sandbox_id"));
  }
  {
    grpc::ClientContext ctx;
    v1::UpdatePodSandboxResourcesRequest req;
    req.set_pod_sandbox_id("p1");
    v1::UpdatePodSandboxResourcesResponse resp;
    grpc::Status st = server.runtime().UpdatePodSandboxResources(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("resources"));
  }
  {
    grpc::ClientContext ctx;
    v1::UpdatePodSandboxResourcesRequest req;
    req.set_pod_sandbox_id("p1");
    req.mutable_resources()->set_cpu_shares(512);
    req.mutable_overhead()->set_memory_limit_in_bytes(-5);
    v1::UpdatePodSandboxResourcesResponse resp;
    grpc::Status st = server.runtime().UpdatePodSandboxResources(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("overhead"));
  }
}

TEST(RunPodSandbox, RefusesMalformedSELinuxOptionsOnEveryHost) {
  TestCriServer server;
  grpc::ClientContext ctx;
  v1::RunPodSandboxRequest req;
  req.mutable_config()->mutable_metadata()->set_name("web");
  req.mutable_config()->mutable_metadata()->set_namespace_("default");
  req.mutable_config()->mutable_metadata()->set_uid("uid-1");
  req.mutable_config()
      ->mutable_linux()
      ->mutable_security_context()
      ->mutable_selinux_options()
      ->set_type("container_t:s0");
  v1::RunPodSandboxResponse resp;
  grpc::Status st = server.runtime().RunPodSandbox(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(),
              HasSubstr("config.linux.security_context.selinux_options.type: \"container_t:s0\""));
}

TEST(ContainerEvents, WithoutContainersTheStreamSaysUnavailable) {
  TestCriServer server;
  grpc::ClientContext ctx;
  auto reader = server.runtime().GetContainerEvents(&ctx, {});
  v1::ContainerEventResponse event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(Server, AcceptsMessagesUpToSixteenMebibytes) {
  TestCriServer server;
  grpc::ClientContext ctx;
  v1::VersionRequest req;
  req.set_version(std::string(size_t{12} * 1024 * 1024, 'v'));
  v1::VersionResponse resp;
  grpc::Status st = server.runtime().Version(&ctx, req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST(CheckpointContainer, ValidatesTheRequestNamingTheField) {
  TestCriServer server;
  auto checkpoint = [&](const std::string& id, const std::string& location) {
    grpc::ClientContext ctx;
    v1::CheckpointContainerRequest req;
    req.set_container_id(id);
    req.set_location(location);
    v1::CheckpointContainerResponse resp;
    return server.runtime().CheckpointContainer(&ctx, req, &resp);
  };
  grpc::Status st = checkpoint("", "/tmp/c.tar");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("container_id"));
  for (const char* location : {"", "c.tar", "/tmp/dir/"}) {
    st = checkpoint("abc", location);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << location;
    EXPECT_THAT(st.error_message(), HasSubstr("location")) << location;
  }
  // A valid request without a container manager: the containers are not there.
  st = checkpoint("abc", "/tmp/c.tar");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace crid
