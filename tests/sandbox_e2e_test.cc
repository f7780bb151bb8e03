// End to end: the real crid binary runs, stops and removes a pod over its
// socket, with a private CNI bridge network, and is restarted in between.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/cri_api.grpc.pb.h"
#include "tests/cni_fixture.h"
#include "tests/crid_process.h"
#include "tests/leak_census.h"

namespace crid {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
namespace v1 = ::runtime::v1;

class SandboxEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(tmp_.Sub("crid.json"))
        << absl::StrCat(R"({"cni":{"confDir":")", network_.conf_dir(), R"(","binDirs":[")",
                        kSystemCniBinDir, R"("]},"pod":{"pauseBinary":")",
                        RunfilePath("pause/crid-pause"), R"(","shmSizeBytes":"8388608"}})");
    census_ = std::make_unique<LeakCensus>(
        LeakCensusOptions{tmp_.Sub("root"),
                          tmp_.Sub("state"),
                          network_.bridge(),
                          network_.network_name(),
                          {tmp_.Sub("crid.log"), tmp_.Sub("crid-teardown.log")}});
  }

  void TearDown() override {
    // Whatever a failed test left: a crid on the same root and state removes
    // every pod, then nothing of them may be left on the host.
    std::unique_ptr<CridProcess> crid = StartCrid("crid-teardown.log");
    grpc::ClientContext ctx;
    v1::ListPodSandboxResponse list;
    if (stub_->ListPodSandbox(&ctx, {}, &list).ok()) {
      for (const v1::PodSandbox& pod : list.items()) {
        grpc::ClientContext rm_ctx;
        v1::RemovePodSandboxRequest rm;
        rm.set_pod_sandbox_id(pod.id());
        v1::RemovePodSandboxResponse rm_resp;
        grpc::Status st = stub_->RemovePodSandbox(&rm_ctx, rm, &rm_resp);
        EXPECT_TRUE(st.ok()) << st.error_message();
      }
    }
    crid->Signal(SIGTERM);
    EXPECT_EQ(crid->Wait(absl::Seconds(20)), 0) << Log();
    EXPECT_THAT(census_->Leaks(), IsEmpty()) << Log();
  }

  std::unique_ptr<CridProcess> StartCrid(const std::string& log = "crid.log") {
    auto crid = std::make_unique<CridProcess>(
        RunfilePath("crid"),
        std::vector<std::string>{"--config", tmp_.Sub("crid.json"), "--root", tmp_.Sub("root"),
                                 "--state", tmp_.Sub("state"), "--listen",
                                 "unix://" + tmp_.Sub("crid.sock"), "--log-level", "debug"});
    crid->Start(tmp_.Sub(log));
    EXPECT_TRUE(crid->WaitForSocket(tmp_.Sub("crid.sock"), absl::Seconds(20))) << Log();
    stub_ = v1::RuntimeService::NewStub(
        grpc::CreateChannel("unix://" + tmp_.Sub("crid.sock"), grpc::InsecureChannelCredentials()));
    return crid;
  }

  std::string Log() const {
    std::ifstream in(tmp_.Sub("crid.log"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  v1::PodSandboxStatusResponse Status(const std::string& id) {
    grpc::ClientContext ctx;
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(id);
    req.set_verbose(true);
    v1::PodSandboxStatusResponse resp;
    grpc::Status st = stub_->PodSandboxStatus(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  TempDir tmp_;
  TestCniNetwork network_;
  std::unique_ptr<LeakCensus> census_;
  std::unique_ptr<v1::RuntimeService::Stub> stub_;
};

TEST_F(SandboxEndToEndTest, RunRestartStopRemoveOverTheSocket) {
  auto crid = StartCrid();
  {
    grpc::ClientContext ctx;
    v1::StatusResponse resp;
    ASSERT_TRUE(stub_->Status(&ctx, {}, &resp).ok());
    ASSERT_EQ(resp.status().conditions_size(), 2);
    EXPECT_EQ(resp.status().conditions(1).type(), "NetworkReady");
    EXPECT_TRUE(resp.status().conditions(1).status()) << resp.status().conditions(1).message();
  }
  v1::RunPodSandboxRequest run;
  auto* config = run.mutable_config();
  config->mutable_metadata()->set_name("e2e");
  config->mutable_metadata()->set_namespace_("default");
  config->mutable_metadata()->set_uid("e2e-uid");
  config->set_hostname("e2e");
  config->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      v1::POD);
  std::string id;
  {
    grpc::ClientContext ctx;
    v1::RunPodSandboxResponse resp;
    grpc::Status st = stub_->RunPodSandbox(&ctx, run, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << Log();
    id = resp.pod_sandbox_id();
  }
  v1::PodSandboxStatusResponse status = Status(id);
  EXPECT_EQ(status.status().state(), v1::SANDBOX_READY);
  std::string ip = status.status().network().ip();
  EXPECT_THAT(ip, StartsWith(network_.subnet_prefix()));
  EXPECT_EQ(BridgePortCount(network_.bridge()), 1);
  std::string netns = "/run/netns/crid-" + id.substr(0, 32);
  EXPECT_EQ(access(netns.c_str(), F_OK), 0);
  EXPECT_THAT(status.info().at("info"), HasSubstr(netns));

  // Restart crid: the pod survives and is still reported.
  crid->Signal(SIGTERM);
  EXPECT_EQ(crid->Wait(absl::Seconds(20)), 0);
  crid = StartCrid();
  status = Status(id);
  EXPECT_EQ(status.status().state(), v1::SANDBOX_READY) << Log();
  EXPECT_EQ(status.status().network().ip(), ip);
  {
    grpc::ClientContext ctx;
    v1::ListPodSandboxResponse resp;
    ASSERT_TRUE(stub_->ListPodSandbox(&ctx, {}, &resp).ok());
    ASSERT_EQ(resp.items_size(), 1);
    EXPECT_EQ(resp.items(0).id(), id);
  }
  {
    grpc::ClientContext ctx;
    v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    v1::StopPodSandboxResponse resp;
    grpc::Status st = stub_->StopPodSandbox(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_EQ(BridgePortCount(network_.bridge()), 0);
  EXPECT_NE(access(netns.c_str(), F_OK), 0);
  {
    grpc::ClientContext ctx;
    v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    v1::RemovePodSandboxResponse resp;
    ASSERT_TRUE(stub_->RemovePodSandbox(&ctx, req, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::ListPodSandboxResponse resp;
    ASSERT_TRUE(stub_->ListPodSandbox(&ctx, {}, &resp).ok());
    EXPECT_EQ(resp.items_size(), 0);
  }
  EXPECT_NE(access((tmp_.Sub("state/pods/") + id).c_str(), F_OK), 0);
  std::ifstream mounts("/proc/self/mountinfo");
  std::string mountinfo((std::istreambuf_iterator<char>(mounts)), {});
  EXPECT_THAT(mountinfo, Not(HasSubstr(id.substr(0, 32))));
  crid->Signal(SIGTERM);
  EXPECT_EQ(crid->Wait(absl::Seconds(20)), 0);
}

}  // namespace
}  // namespace crid
