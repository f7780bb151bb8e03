// crid's metric families as Prometheus sees them: the RPC interceptor in a
// real gRPC server, the scrape-time gauges and the HTTP endpoint.
#include "metrics/metrics.h"

#include <grpcpp/grpcpp.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metrics/exposer.h"
#include "metrics/rpc_metrics.h"
#include "metrics/scrape_gauges.h"
#include "proto/cri_api.grpc.pb.h"
#include "tests/http_get.h"

namespace crid::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace v1 = ::runtime::v1;

std::string Text(const prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

std::vector<const google::protobuf::ServiceDescriptor*> CriServices() {
  const google::protobuf::FileDescriptor* file = v1::VersionRequest::descriptor()->file();
  return {file->FindServiceByName("RuntimeService"), file->FindServiceByName("ImageService")};
}

TEST(RpcMetricsTest, FindsEveryCriMethodByItsPath) {
  prometheus::Registry registry;
  RpcMetrics rpc(registry, CriServices());
  MethodMetrics* run = rpc.Find("/runtime.v1.RuntimeService/RunPodSandbox");
  ASSERT_NE(run, nullptr);
  EXPECT_EQ(run->service(), "RuntimeService");
  EXPECT_EQ(run->method(), "RunPodSandbox");
  ASSERT_NE(rpc.Find("/runtime.v1.ImageService/PullImage"), nullptr);
  EXPECT_EQ(rpc.Find("/runtime.v1.RuntimeService/NoSuchRpc"), nullptr);
  EXPECT_EQ(rpc.Find("RunPodSandbox"), nullptr);
  // Every method has its request series from the start, at zero.
  EXPECT_THAT(
      Text(registry),
      HasSubstr("crid_cri_requests_total{method=\"ListImages\",service=\"ImageService\"} 0"));
}

TEST(RpcMetricsTest, CountsCallsErrorsByCodeAndLatency) {
  prometheus::Registry registry;
  RpcMetrics rpc(registry, CriServices());
  MethodMetrics* status = rpc.Find("/runtime.v1.RuntimeService/ContainerStatus");
  ASSERT_NE(status, nullptr);
  status->Record(grpc::StatusCode::OK, 0.002);
  status->Record(grpc::StatusCode::OK, 0.2);
  status->Record(grpc::StatusCode::NOT_FOUND, 0.0001);
  std::string text = Text(registry);
  const std::string labels = R"(method="ContainerStatus",service="RuntimeService")";
  EXPECT_THAT(text, HasSubstr(absl::StrCat("crid_cri_requests_total{", labels, "} 3\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat(R"(crid_cri_request_errors_total{code="NOT_FOUND",)",
                                           labels, "} 1\n")));
  EXPECT_THAT(text, Not(HasSubstr(R"(code="OK")")));
  EXPECT_THAT(text,
              HasSubstr(absl::StrCat("crid_cri_request_duration_seconds_count{", labels, "} 3\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("crid_cri_request_duration_seconds_bucket{", labels,
                                           ",le=\"0.001\"} 1\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("crid_cri_request_duration_seconds_bucket{", labels,
                                           ",le=\"0.0025\"} 2\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("crid_cri_request_duration_seconds_bucket{", labels,
                                           ",le=\"0.25\"} 3\n")));
}

TEST(RpcMetricsTest, StreamingCallsAreCountedButNotTimed) {
  prometheus::Registry registry;
  RpcMetrics rpc(registry, CriServices());
  MethodMetrics* events = rpc.Find("/runtime.v1.RuntimeService/GetContainerEvents");
  ASSERT_NE(events, nullptr);
  events->Record(grpc::StatusCode::CANCELLED, 3600);
  std::string text = Text(registry);
  EXPECT_THAT(text, HasSubstr("crid_cri_requests_total{method=\"GetContainerEvents\","
                              "service=\"RuntimeService\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("crid_cri_request_errors_total{code=\"CANCELLED\","
                              "method=\"GetContainerEvents\",service=\"RuntimeService\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("duration_seconds_count{method=\"GetContainerEvents\"")));
}

// A RuntimeService that answers Version and refuses ContainerStatus; the rest
// stay UNIMPLEMENTED (the generated base class).
class FakeRuntime final : public v1::RuntimeService::CallbackService {
  grpc::ServerUnaryReactor* Version(grpc::CallbackServerContext* context, const v1::VersionRequest*,
                                    v1::VersionResponse* resp) override {
    resp->set_runtime_name("fake");
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* ContainerStatus(grpc::CallbackServerContext* context,
                                            const v1::ContainerStatusRequest*,
                                            v1::ContainerStatusResponse*) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "no such container"));
    return reactor;
  }
};

TEST(RpcMetricsTest, InterceptorRecordsEveryCallOfARealServer) {
  prometheus::Registry registry;
  RpcMetrics rpc(registry, CriServices());
  TempDir tmp;
  FakeRuntime service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + tmp.Sub("s.sock"), grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
  factories.push_back(rpc.NewInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(factories));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = v1::RuntimeService::NewStub(
      grpc::CreateChannel("unix://" + tmp.Sub("s.sock"), grpc::InsecureChannelCredentials()));
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    v1::VersionResponse resp;
    ASSERT_TRUE(stub->Version(&ctx, {}, &resp).ok());
  }
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    v1::ContainerStatusResponse resp;
    EXPECT_EQ(stub->ContainerStatus(&ctx, {}, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::StatusResponse resp;
    EXPECT_EQ(stub->Status(&ctx, {}, &resp).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
  server->Shutdown();
  server->Wait();
  std::string text = Text(registry);
  EXPECT_THAT(text,
              HasSubstr(R"(crid_cri_requests_total{method="Version",service="RuntimeService"} 3)"
                        "\n"));
  EXPECT_THAT(text, HasSubstr("crid_cri_request_duration_seconds_count{method=\"Version\","
                              "service=\"RuntimeService\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("crid_cri_requests_total{method=\"ContainerStatus\","
                              "service=\"RuntimeService\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("crid_cri_request_errors_total{code=\"NOT_FOUND\","
                              "method=\"ContainerStatus\",service=\"RuntimeService\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("crid_cri_request_errors_total{code=\"UNIMPLEMENTED\","
                              "method=\"Status\",service=\"RuntimeService\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("method=\"Version\",service=\"RuntimeService\"} 1")));
}

TEST(SubsystemMetricsTest, PullsCniAndShims) {
  prometheus::Registry registry;
  PullMetrics pulls(registry);
  CniMetrics cni(registry);
  ShimMetrics shims(registry);
  pulls.RecordPull(true, 1000, absl::Seconds(2));
  pulls.RecordPull(false, 24, absl::Milliseconds(300));
  cni.RecordPluginCall("bridge", "ADD", true, absl::Milliseconds(12));
  cni.RecordPluginCall("bridge", "ADD", false, absl::Milliseconds(3));
  cni.RecordPluginCall("portmap", "DEL", true, absl::Milliseconds(4));
  shims.RecordLaunch(false);
  shims.RecordLaunch(true);
  shims.RecordUnexpectedExit();
  std::string text = Text(registry);
  EXPECT_THAT(text, HasSubstr("crid_image_pulls_total{result=\"success\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("crid_image_pulls_total{result=\"failure\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("crid_image_pull_bytes_total 1024\n"));
  EXPECT_THAT(text, HasSubstr("crid_image_pull_duration_seconds_count 2\n"));
  EXPECT_THAT(text, HasSubstr("crid_image_pull_duration_seconds_bucket{le=\"1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("crid_cni_plugin_duration_seconds_count{plugin=\"bridge\","
                              "verb=\"ADD\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("crid_cni_plugin_duration_seconds_count{plugin=\"portmap\","
                              "verb=\"DEL\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("crid_cni_plugin_errors_total{plugin=\"bridge\",verb=\"ADD\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("crid_cni_plugin_errors_total{plugin=\"portmap\"")));
  EXPECT_THAT(text, HasSubstr("crid_shim_launches_total 2\n"));
  EXPECT_THAT(text, HasSubstr("crid_shim_restarts_total 1\n"));
  EXPECT_THAT(text, HasSubstr("crid_shim_unexpected_exits_total 1\n"));
}

TEST(MetricsEndpointTest, ServesRegistryAndScrapeGaugesOverHttp) {
  auto registry = std::make_shared<prometheus::Registry>();
  ShimMetrics shims(*registry);
  shims.RecordLaunch(false);
  auto gauges = std::make_shared<ScrapeGauges>();
  int scrapes = 0;
  gauges->Add("crid_test_things", "Things, counted at each scrape.", [&scrapes] {
    ++scrapes;
    return std::vector<ScrapeGauges::Sample>{{{{"state", "ready"}}, 2.0 + scrapes},
                                             {{{"state", "gone"}}, 0}};
  });
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1:0", {registry, gauges});
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  ASSERT_GT((*endpoint)->port(), 0);
  absl::StatusOr<std::string> body = HttpGet((*endpoint)->port(), "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_THAT(*body, HasSubstr("# TYPE crid_test_things gauge\n"));
  EXPECT_THAT(*body, HasSubstr("crid_test_things{state=\"ready\"} 3\n"));
  EXPECT_THAT(*body, HasSubstr("crid_test_things{state=\"gone\"} 0\n"));
  EXPECT_THAT(*body, HasSubstr("crid_shim_launches_total 1\n"));
  // Computed again at the next scrape.
  body = HttpGet((*endpoint)->port(), "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_THAT(*body, HasSubstr("crid_test_things{state=\"ready\"} 4\n"));
  EXPECT_FALSE(HttpGet((*endpoint)->port(), "/other").ok());
}

TEST(MetricsEndpointTest, RefusesABusyPort) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> first =
      MetricsEndpoint::Start("127.0.0.1:0", {});
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> second =
      MetricsEndpoint::Start(absl::StrCat("127.0.0.1:", (*first)->port()), {});
  EXPECT_FALSE(second.ok());
}

}  // namespace
}  // namespace crid::metrics
