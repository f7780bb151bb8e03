// The fixture of the container end-to-end tests: the real crid binary with a
// private CNI bridge, crid-pause and crid-shim, a busybox image in a real
// registry, and helpers for pods, containers, exec and streaming sessions.
// TearDown removes every pod through crid and checks the host's leak census.
#pragma once

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/cri_api.grpc.pb.h"
#include "tests/cni_fixture.h"
#include "tests/crid_process.h"
#include "tests/image_registry_fixture.h"
#include "tests/leak_census.h"
#include "tests/streaming_client.h"

namespace crid {

namespace container_e2e {
using ::crid::streaming_test::SpdyClient;
using ::testing::IsEmpty;
namespace v1 = ::runtime::v1;

class ContainerEndToEndTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    registry_ = new TestRegistry();
    ASSERT_TRUE(registry_->Start().ok());
    TestImageSpec spec;
    spec.layers.push_back({BusyboxToolsLayerTar(), LayerCompression::kGzip});
    spec.cmd_json = R"(["/bin/sh","-c","echo image-cmd"])";
    spec.env_json = R"(["PATH=/bin","FROM_IMAGE=yes","OVERRIDE=image"])";
    spec.working_dir = "/tmp";
    spec.stop_signal = "SIGUSR1";
    ASSERT_TRUE(registry_->PushImage("test/busybox", "latest", spec).ok());
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }

  void SetUp() override {
    ASSERT_EQ(::access("/usr/sbin/runc", X_OK), 0) << "runc is required (tools/install-deps.sh)";
    image_ = registry_->host() + "/test/busybox:latest";
    census_ = std::make_unique<LeakCensus>(
        LeakCensusOptions{tmp_.Sub("root"),
                          tmp_.Sub("state"),
                          network_.bridge(),
                          network_.network_name(),
                          {tmp_.Sub("crid.log"), tmp_.Sub("crid-teardown.log")}});
    std::ofstream(tmp_.Sub("crid.json")) << absl::StrCat(
        R"({"cni":{"confDir":")", network_.conf_dir(), R"(","binDirs":[")", kSystemCniBinDir,
        R"("]},"pod":{"pauseBinary":")", RunfilePath("pause/crid-pause"),
        R"(","shmSizeBytes":"8388608"},"container":{"shimBinary":")", RunfilePath("shim/crid-shim"),
        R"("}})");
    crid_ = StartCrid();
    grpc::ClientContext ctx;
    v1::PullImageRequest pull;
    pull.mutable_image()->set_image(image_);
    v1::PullImageResponse resp;
    grpc::Status st = images_->PullImage(&ctx, pull, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << Log();
    image_id_ = resp.image_ref();
  }

  void TearDown() override {
    if (census_ == nullptr) {
      return;  // SetUp stopped before anything was made
    }
    // Remove every pod (and so every container and shim) this test made,
    // through crid; a test that left crid down gets one for this.
    if (crid_ == nullptr || !crid_->running()) {
      crid_ = StartCrid("crid-teardown.log");
    }
    grpc::ClientContext ctx;
    v1::ListPodSandboxResponse list;
    if (stub_->ListPodSandbox(&ctx, {}, &list).ok()) {
      for (const auto& pod : list.items()) {
        grpc::ClientContext c1;
        v1::StopPodSandboxRequest stop;
        stop.set_pod_sandbox_id(pod.id());
        v1::StopPodSandboxResponse r1;
        (void)stub_->StopPodSandbox(&c1, stop, &r1);
        grpc::ClientContext c2;
        v1::RemovePodSandboxRequest rm;
        rm.set_pod_sandbox_id(pod.id());
        v1::RemovePodSandboxResponse r2;
        grpc::Status st = stub_->RemovePodSandbox(&c2, rm, &r2);
        EXPECT_TRUE(st.ok()) << st.error_message();
      }
    }
    crid_->Signal(SIGTERM);
    EXPECT_EQ(crid_->Wait(absl::Seconds(30)), 0) << Log();
    crid_.reset();
    // Nothing crid made for the test's pods and containers is left on the host.
    EXPECT_THAT(census_->Leaks(), IsEmpty()) << Log();
  }

  std::unique_ptr<CridProcess> StartCrid(const std::string& log = "crid.log") {
    std::vector<std::string> args = {"--config",    tmp_.Sub("crid.json"),
                                     "--root",      tmp_.Sub("root"),
                                     "--state",     tmp_.Sub("state"),
                                     "--listen",    "unix://" + tmp_.Sub("crid.sock"),
                                     "--log-level", "debug"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    auto crid = std::make_unique<CridProcess>(RunfilePath("crid"), std::move(args));
    crid->Start(tmp_.Sub(log));
    EXPECT_TRUE(crid->WaitForSocket(tmp_.Sub("crid.sock"), absl::Seconds(30))) << Log();
    auto channel =
        grpc::CreateChannel("unix://" + tmp_.Sub("crid.sock"), grpc::InsecureChannelCredentials());
    stub_ = v1::RuntimeService::NewStub(channel);
    images_ = v1::ImageService::NewStub(channel);
    return crid;
  }

  std::string Log() const {
    std::ifstream in(tmp_.Sub("crid.log"));
    std::string text((std::istreambuf_iterator<char>(in)), {});
    return text.size() > 6000 ? text.substr(text.size() - 6000) : text;
  }

  v1::PodSandboxConfig PodConfig(const std::string& name) {
    v1::PodSandboxConfig config;
    config.mutable_metadata()->set_name(name);
    config.mutable_metadata()->set_namespace_("default");
    config.mutable_metadata()->set_uid(name + "-uid");
    config.set_hostname(name);
    config.set_log_directory(tmp_.Sub("logs/" + name));
    return config;
  }

  std::string RunPod(const v1::PodSandboxConfig& config) {
    grpc::ClientContext ctx;
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = config;
    v1::RunPodSandboxResponse resp;
    grpc::Status st = stub_->RunPodSandbox(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message() << "\n" << Log();
    pod_configs_[resp.pod_sandbox_id()] = config;
    return resp.pod_sandbox_id();
  }

  v1::ContainerConfig ShellContainer(const std::string& name, const std::string& script) {
    v1::ContainerConfig config;
    config.mutable_metadata()->set_name(name);
    config.mutable_image()->set_image(image_);
    config.add_command("/bin/sh");
    config.add_args("-c");
    config.add_args(script);
    config.set_log_path(name + ".log");
    return config;
  }

  grpc::Status Create(const std::string& pod, const v1::ContainerConfig& config, std::string* id) {
    grpc::ClientContext ctx;
    v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod);
    *req.mutable_config() = config;
    *req.mutable_sandbox_config() = pod_configs_[pod];
    v1::CreateContainerResponse resp;
    grpc::Status st = stub_->CreateContainer(&ctx, req, &resp);
    *id = resp.container_id();
    return st;
  }

  std::string CreateOk(const std::string& pod, const v1::ContainerConfig& config) {
    std::string id;
    grpc::Status st = Create(pod, config, &id);
    EXPECT_TRUE(st.ok()) << st.error_message() << "\n" << Log();
    return id;
  }

  grpc::Status Start(const std::string& id) {
    grpc::ClientContext ctx;
    v1::StartContainerRequest req;
    req.set_container_id(id);
    v1::StartContainerResponse resp;
    return stub_->StartContainer(&ctx, req, &resp);
  }

  std::string RunContainer(const std::string& pod, const v1::ContainerConfig& config) {
    std::string id = CreateOk(pod, config);
    grpc::Status st = Start(id);
    EXPECT_TRUE(st.ok()) << st.error_message() << "\n" << Log();
    return id;
  }

  grpc::Status Stop(const std::string& id, int64_t timeout) {
    grpc::ClientContext ctx;
    v1::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(timeout);
    v1::StopContainerResponse resp;
    return stub_->StopContainer(&ctx, req, &resp);
  }

  grpc::Status Remove(const std::string& id) {
    grpc::ClientContext ctx;
    v1::RemoveContainerRequest req;
    req.set_container_id(id);
    v1::RemoveContainerResponse resp;
    return stub_->RemoveContainer(&ctx, req, &resp);
  }

  v1::ContainerStatusResponse Status(const std::string& id, bool verbose = false) {
    grpc::ClientContext ctx;
    v1::ContainerStatusRequest req;
    req.set_container_id(id);
    req.set_verbose(verbose);
    v1::ContainerStatusResponse resp;
    grpc::Status st = stub_->ContainerStatus(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  v1::ContainerStatus WaitExited(const std::string& id, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    v1::ContainerStatusResponse resp;
    do {
      resp = Status(id);
      if (resp.status().state() == v1::CONTAINER_EXITED) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(50));
    } while (absl::Now() < deadline);
    EXPECT_EQ(resp.status().state(), v1::CONTAINER_EXITED) << Log();
    return resp.status();
  }

  grpc::Status Exec(const std::string& id, const std::vector<std::string>& cmd, int64_t timeout,
                    v1::ExecSyncResponse* resp) {
    grpc::ClientContext ctx;
    v1::ExecSyncRequest req;
    req.set_container_id(id);
    for (const std::string& arg : cmd) {
      req.add_cmd(arg);
    }
    req.set_timeout(timeout);
    return stub_->ExecSync(&ctx, req, resp);
  }

  // stdout of `sh -c script` run in the container; fails the test on errors.
  std::string ExecOut(const std::string& id, const std::string& script, int* exit_code = nullptr) {
    v1::ExecSyncResponse resp;
    grpc::Status st = Exec(id, {"/bin/sh", "-c", script}, 20, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    if (exit_code != nullptr) {
      *exit_code = resp.exit_code();
    }
    return resp.stdout();
  }

  // The URL of an Exec (or, with an empty cmd, Attach) session.
  std::string SessionUrl(const std::string& id, const std::vector<std::string>& cmd, bool in,
                         bool tty) {
    grpc::ClientContext ctx;
    grpc::Status st;
    std::string url;
    if (cmd.empty()) {
      v1::AttachRequest req;
      req.set_container_id(id);
      req.set_stdin(in);
      req.set_stdout(true);
      req.set_stderr(!tty);
      req.set_tty(tty);
      v1::AttachResponse resp;
      st = stub_->Attach(&ctx, req, &resp);
      url = resp.url();
    } else {
      v1::ExecRequest req;
      req.set_container_id(id);
      for (const std::string& arg : cmd) {
        req.add_cmd(arg);
      }
      req.set_stdin(in);
      req.set_stdout(true);
      req.set_stderr(!tty);
      req.set_tty(tty);
      v1::ExecResponse resp;
      st = stub_->Exec(&ctx, req, &resp);
      url = resp.url();
    }
    EXPECT_TRUE(st.ok()) << st.error_message();
    return url;
  }

  // A session's SPDY streams, opened as kubectl opens them.
  struct Session {
    std::unique_ptr<SpdyClient> client;
    uint32_t error = 0, in = 0, out = 0, err = 0, resize = 0;
  };
  Session OpenSession(const std::string& url, bool in, bool tty) {
    Session s;
    auto client = SpdyClient::Connect(url, {"v4.channel.k8s.io"});
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) {
      return s;
    }
    s.client = std::move(*client);
    auto open = [&](const char* type) -> uint32_t {
      auto stream = s.client->OpenStream({{"streamType", type}});
      EXPECT_TRUE(stream.ok()) << type << ": " << stream.status();
      return stream.value_or(0);
    };
    s.error = open("error");
    if (in) {
      s.in = open("stdin");
    }
    s.out = open("stdout");
    if (tty) {
      s.resize = open("resize");
    } else {
      s.err = open("stderr");
    }
    return s;
  }

  // Reads `stream` until its data contains `needle` (or the timeout passed).
  static std::string ReadUntil(SpdyClient* client, uint32_t stream, const std::string& needle,
                               absl::Duration timeout = absl::Seconds(20)) {
    std::string data;
    absl::Time deadline = absl::Now() + timeout;
    while (!absl::StrContains(data, needle) && absl::Now() < deadline) {
      auto more = client->Read(stream, 1, deadline - absl::Now());
      if (!more.ok() || more->empty()) {
        break;
      }
      data += *more;
    }
    return data;
  }

  // Polls `condition` until it holds or `timeout` passed; returns whether it held.
  static bool WaitFor(const std::function<bool()>& condition,
                      absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!condition()) {
      if (absl::Now() >= deadline) {
        return false;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return true;
  }

  // Sends `command` to the session's shell until its output shows `expected`
  // (a new terminal size reaches the shell some time after the resize
  // message); returns everything read.
  static std::string AskUntil(const Session& s, const std::string& command,
                              const std::string& expected,
                              absl::Duration timeout = absl::Seconds(20)) {
    std::string seen;
    const absl::Time deadline = absl::Now() + timeout;
    while (!absl::StrContains(seen, expected) && absl::Now() < deadline) {
      if (!s.client->Write(s.in, command).ok()) {
        break;
      }
      seen += ReadUntil(s.client.get(), s.out, expected, absl::Milliseconds(500));
    }
    return seen;
  }

  std::string ReadLog(const std::string& pod_name, const std::string& name) {
    return ReadFile(tmp_.Sub("logs/" + pod_name + "/" + name + ".log")).value_or("");
  }

  inline static TestRegistry* registry_ = nullptr;
  TempDir tmp_;
  TestCniNetwork network_;
  std::unique_ptr<LeakCensus> census_;
  std::string image_;
  std::string image_id_;  // PullImage's image_ref for image_
  std::unique_ptr<CridProcess> crid_;
  std::unique_ptr<v1::RuntimeService::Stub> stub_;
  std::unique_ptr<v1::ImageService::Stub> images_;
  std::map<std::string, v1::PodSandboxConfig> pod_configs_;
  // More crid flags, set by a test's constructor (before SetUp starts crid).
  std::vector<std::string> extra_args_;
};

}  // namespace container_e2e

}  // namespace crid
