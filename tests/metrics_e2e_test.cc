// End to end: the real crid binary serves its own metrics on 127.0.0.1; a
// pod's whole life over the CRI socket shows up in GET /metrics with the
// right counts, error codes, latency samples and gauges.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/cri_api.grpc.pb.h"
#include "tests/container_e2e_fixture.h"
#include "tests/http_get.h"

namespace crid {
namespace {

namespace v1 = ::runtime::v1;
using container_e2e::ContainerEndToEndTest;

// The value of the series `series` (name and labels exactly as exposed) in a
// text exposition; -1 when it is absent.
double Value(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, series) && line.size() > series.size() &&
        line[series.size()] == ' ') {
      return std::strtod(std::string(line.substr(series.size() + 1)).c_str(), nullptr);
    }
  }
  return -1;
}

std::string Rpc(const std::string& method, const std::string& service = "RuntimeService") {
  return absl::StrCat("method=\"", method, "\",service=\"", service, "\"");
}

class MetricsEndToEndTest : public ContainerEndToEndTest {
 protected:
  MetricsEndToEndTest() : port_(FreeLoopbackPort()) {
    extra_args_ = {"--metrics-address", absl::StrCat("127.0.0.1:", port_)};
  }

  std::string Scrape() {
    absl::StatusOr<std::string> body = HttpGet(port_, "/metrics");
    EXPECT_TRUE(body.ok()) << body.status() << "\n" << Log();
    return body.value_or("");
  }

  const int port_;
};

TEST_F(MetricsEndToEndTest, PodLifeIsCountedByMethodCodeAndLatency) {
  ASSERT_GT(port_, 0);
  // SetUp pulled the test image once.
  std::string before = Scrape();
  EXPECT_EQ(Value(before, "crid_cri_requests_total{" + Rpc("PullImage", "ImageService") + "}"), 1);
  EXPECT_EQ(Value(before, "crid_image_pulls_total{result=\"success\"}"), 1);
  EXPECT_GT(Value(before, "crid_image_pull_bytes_total"), 1000);
  EXPECT_EQ(Value(before, "crid_image_pull_duration_seconds_count"), 1);
  EXPECT_EQ(Value(before, "crid_cri_requests_total{" + Rpc("RunPodSandbox") + "}"), 0);

  std::string pod = RunPod(PodConfig("metrics"));
  ASSERT_FALSE(pod.empty());
  std::string id = CreateOk(pod, ShellContainer("c1", "sleep 1000"));
  ASSERT_FALSE(id.empty());
  grpc::Status started = Start(id);
  ASSERT_TRUE(started.ok()) << started.error_message() << "\n" << Log();

  // Gauges follow the pod's life at each scrape.
  std::string running = Scrape();
  EXPECT_EQ(Value(running, "crid_pods{state=\"ready\"}"), 1) << running;
  EXPECT_EQ(Value(running, "crid_containers{state=\"running\"}"), 1) << running;
  EXPECT_EQ(Value(running, "crid_shims"), 1) << running;
  EXPECT_EQ(Value(running, "crid_shim_launches_total"), 1) << running;
  EXPECT_EQ(Value(running, "crid_shim_unexpected_exits_total"), 0) << running;
  EXPECT_GE(
      Value(running, "crid_cni_plugin_duration_seconds_count{plugin=\"bridge\",verb=\"ADD\"}"), 1)
      << running;

  ASSERT_TRUE(Stop(id, 0).ok()) << Log();
  ASSERT_TRUE(Remove(id).ok()) << Log();
  {
    grpc::ClientContext ctx;
    v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(pod);
    v1::StopPodSandboxResponse resp;
    ASSERT_TRUE(stub_->StopPodSandbox(&ctx, req, &resp).ok()) << Log();
  }
  {
    grpc::ClientContext ctx;
    v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(pod);
    v1::RemovePodSandboxResponse resp;
    ASSERT_TRUE(stub_->RemovePodSandbox(&ctx, req, &resp).ok()) << Log();
  }
  // A bad call: the container is gone.
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    v1::ContainerStatusRequest req;
    req.set_container_id(id);
    v1::ContainerStatusResponse resp;
    EXPECT_EQ(stub_->ContainerStatus(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }

  std::string after = Scrape();
  for (const char* method : {"RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer",
                             "RemoveContainer", "StopPodSandbox", "RemovePodSandbox"}) {
    SCOPED_TRACE(method);
    EXPECT_EQ(Value(after, absl::StrCat("crid_cri_requests_total{", Rpc(method), "}")), 1);
    EXPECT_EQ(
        Value(after, absl::StrCat("crid_cri_request_duration_seconds_count{", Rpc(method), "}")),
        1);
    EXPECT_EQ(Value(after, absl::StrCat("crid_cri_request_duration_seconds_bucket{", Rpc(method),
                                        ",le=\"+Inf\"}")),
              1);
    EXPECT_GT(
        Value(after, absl::StrCat("crid_cri_request_duration_seconds_sum{", Rpc(method), "}")), 0);
    // No error of any code.
    EXPECT_FALSE(absl::StrContains(
        after, absl::StrCat("crid_cri_request_errors_total{code=\"", "NOT_FOUND\",", Rpc(method))));
  }
  EXPECT_EQ(Value(after, "crid_cri_requests_total{" + Rpc("ContainerStatus") + "}"), 2);
  EXPECT_EQ(Value(after, "crid_cri_request_errors_total{code=\"NOT_FOUND\"," +
                             Rpc("ContainerStatus") + "}"),
            2)
      << after;
  EXPECT_EQ(Value(after, "crid_cri_request_duration_seconds_count{" + Rpc("ContainerStatus") + "}"),
            2);
  EXPECT_EQ(Value(after, "crid_pods{state=\"ready\"}"), 0);
  EXPECT_EQ(Value(after, "crid_containers{state=\"running\"}"), 0);
  EXPECT_EQ(Value(after, "crid_shims"), 0);
  EXPECT_GE(Value(after, "crid_cni_plugin_duration_seconds_count{plugin=\"bridge\",verb=\"DEL\"}"),
            1);
  // RunPodSandbox did real work (namespaces, CNI ADD): its time is not zero
  // and it fell in a bucket above the first.
  EXPECT_EQ(Value(after, "crid_cri_request_duration_seconds_bucket{" + Rpc("RunPodSandbox") +
                             ",le=\"0.001\"}"),
            0);
}

TEST_F(MetricsEndToEndTest, ShimDeathIsCountedAndItsReplacementIsARestart) {
  ASSERT_GT(port_, 0);
  std::string pod = RunPod(PodConfig("shimdeath"));
  std::string first = RunContainer(pod, ShellContainer("first", "sleep 1000"));
  pid_t shim_pid =
      std::stoi(ReadFile(tmp_.Sub("state/shims/" + pod.substr(0, 32) + "/shim.pid")).value_or("0"));
  ASSERT_GT(shim_pid, 0);
  ASSERT_EQ(::kill(shim_pid, SIGKILL), 0);
  WaitExited(first, absl::Seconds(20));
  std::string dead = Scrape();
  EXPECT_EQ(Value(dead, "crid_shim_unexpected_exits_total"), 1) << dead;
  EXPECT_EQ(Value(dead, "crid_shims"), 0) << dead;
  EXPECT_EQ(Value(dead, "crid_shim_restarts_total"), 0) << dead;

  RunContainer(pod, ShellContainer("second", "sleep 1000"));
  std::string again = Scrape();
  EXPECT_EQ(Value(again, "crid_shim_launches_total"), 2) << again;
  EXPECT_EQ(Value(again, "crid_shim_restarts_total"), 1) << again;
  EXPECT_EQ(Value(again, "crid_shims"), 1) << again;
  EXPECT_EQ(Value(again, "crid_containers{state=\"running\"}"), 1) << again;
  EXPECT_EQ(Value(again, "crid_containers{state=\"exited\"}"), 1) << again;
}

}  // namespace
}  // namespace crid
