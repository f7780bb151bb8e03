// End to end: the real crid binary hands out streaming URLs over its socket, and
// the SPDY test client forwards many parallel connections into a pod's network
// namespace, where busybox serves an echo service and HTTP on the loopback.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/temp_dir.h"
#include "cri/streaming/spdy_connection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/cri_api.grpc.pb.h"
#include "tests/cni_fixture.h"
#include "tests/crid_process.h"
#include "tests/leak_census.h"
#include "tests/streaming_client.h"

namespace crid {
namespace {

using ::crid::streaming_test::HttpRequest;
using ::crid::streaming_test::SpdyClient;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
namespace v1 = ::runtime::v1;

constexpr int kEchoPort = 8080;
constexpr int kHttpPort = 8081;

// A process started inside a network namespace, killed by PID at the end.
class NetnsProcess {
 public:
  NetnsProcess(const std::string& netns, std::vector<std::string> argv) {
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        _exit(126);
      }
      int devnull = open("/dev/null", O_RDWR);
      dup2(devnull, 0);
      dup2(devnull, 1);
      std::vector<char*> args;
      args.reserve(argv.size() + 1);
      for (std::string& a : argv) {
        args.push_back(a.data());
      }
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
  }
  ~NetnsProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

 private:
  pid_t pid_ = -1;
};

class StreamingEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(tmp_.Sub("crid.json")) << absl::StrCat(
        R"({"cni":{"confDir":")", network_.conf_dir(), R"(","binDirs":[")", kSystemCniBinDir,
        R"("]},"pod":{"pauseBinary":")", RunfilePath("pause/crid-pause"),
        R"(","shmSizeBytes":"8388608"},"streaming":{"address":"127.0.0.1","port":0}})");
    census_ = std::make_unique<LeakCensus>(LeakCensusOptions{tmp_.Sub("root"),
                                                             tmp_.Sub("state"),
                                                             network_.bridge(),
                                                             network_.network_name(),
                                                             {tmp_.Sub("crid.log")}});
    crid_ = std::make_unique<CridProcess>(
        RunfilePath("crid"),
        std::vector<std::string>{"--config", tmp_.Sub("crid.json"), "--root", tmp_.Sub("root"),
                                 "--state", tmp_.Sub("state"), "--listen",
                                 "unix://" + tmp_.Sub("crid.sock"), "--log-level", "debug"});
    crid_->Start(tmp_.Sub("crid.log"));
    ASSERT_TRUE(crid_->WaitForSocket(tmp_.Sub("crid.sock"), absl::Seconds(20))) << Log();
    stub_ = v1::RuntimeService::NewStub(
        grpc::CreateChannel("unix://" + tmp_.Sub("crid.sock"), grpc::InsecureChannelCredentials()));

    v1::RunPodSandboxRequest run;
    auto* config = run.mutable_config();
    config->mutable_metadata()->set_name("streaming");
    config->mutable_metadata()->set_namespace_("default");
    config->mutable_metadata()->set_uid("streaming-uid");
    grpc::ClientContext ctx;
    v1::RunPodSandboxResponse resp;
    grpc::Status st = stub_->RunPodSandbox(&ctx, run, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << Log();
    pod_id_ = resp.pod_sandbox_id();

    grpc::ClientContext status_ctx;
    v1::PodSandboxStatusRequest status_req;
    status_req.set_pod_sandbox_id(pod_id_);
    status_req.set_verbose(true);
    v1::PodSandboxStatusResponse status;
    ASSERT_TRUE(stub_->PodSandboxStatus(&status_ctx, status_req, &status).ok());
    netns_ = nlohmann::json::parse(status.info().at("info"))["netnsPath"].get<std::string>();
    ASSERT_FALSE(netns_.empty());

    std::ofstream(tmp_.Sub("www/index.html")) << "";
    ASSERT_EQ(RunShell("mkdir -p " + tmp_.Sub("www")), 0);
    std::ofstream(tmp_.Sub("www/index.html")) << "hello from the pod\n";
    echo_ = std::make_unique<NetnsProcess>(
        netns_, std::vector<std::string>{"busybox", "nc", "-ll", "-p", std::to_string(kEchoPort),
                                         "-e", "cat"});
    http_ = std::make_unique<NetnsProcess>(
        netns_,
        std::vector<std::string>{"busybox", "httpd", "-f", "-p",
                                 absl::StrCat("127.0.0.1:", kHttpPort), "-h", tmp_.Sub("www")});
    // Both listen within a moment; wait until the echo service answers through crid.
  }

  void TearDown() override {
    echo_.reset();
    http_.reset();
    if (!pod_id_.empty()) {
      grpc::ClientContext ctx;
      v1::StopPodSandboxRequest stop;
      stop.set_pod_sandbox_id(pod_id_);
      v1::StopPodSandboxResponse stop_resp;
      (void)stub_->StopPodSandbox(&ctx, stop, &stop_resp);
      grpc::ClientContext rm_ctx;
      v1::RemovePodSandboxRequest rm;
      rm.set_pod_sandbox_id(pod_id_);
      v1::RemovePodSandboxResponse rm_resp;
      grpc::Status st = stub_->RemovePodSandbox(&rm_ctx, rm, &rm_resp);
      EXPECT_TRUE(st.ok()) << st.error_message();
    }
    if (crid_ != nullptr) {
      crid_->Signal(SIGTERM);
      EXPECT_EQ(crid_->Wait(absl::Seconds(20)), 0) << Log();
      crid_.reset();
    }
    if (census_ != nullptr) {
      EXPECT_THAT(census_->Leaks(), IsEmpty()) << Log();
    }
  }

  std::string Log() const {
    std::ifstream in(tmp_.Sub("crid.log"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  absl::StatusOr<std::string> PortForwardUrl(const std::string& pod) {
    grpc::ClientContext ctx;
    v1::PortForwardRequest req;
    req.set_pod_sandbox_id(pod);
    v1::PortForwardResponse resp;
    grpc::Status st = stub_->PortForward(&ctx, req, &resp);
    if (!st.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
    }
    return resp.url();
  }

  // Opens an error/data pair for `port`; returns {error, data}.
  static std::pair<uint32_t, uint32_t> OpenPair(SpdyClient* client, int port, int request) {
    std::string p = std::to_string(port);
    std::string id = std::to_string(request);
    auto error = client->OpenStream({{"streamType", "error"}, {"port", p}, {"requestID", id}});
    EXPECT_TRUE(error.ok()) << error.status();
    EXPECT_TRUE(client->CloseStream(*error).ok());
    auto data = client->OpenStream({{"streamType", "data"}, {"port", p}, {"requestID", id}});
    EXPECT_TRUE(data.ok()) << data.status();
    return {error.value_or(0), data.value_or(0)};
  }

  // One echo round trip through a new URL; retried while busybox starts.
  bool EchoWorks() {
    for (int attempt = 0; attempt < 50; ++attempt) {
      auto url = PortForwardUrl(pod_id_);
      if (!url.ok()) {
        return false;
      }
      auto client = SpdyClient::Connect(*url, {"portforward.k8s.io"});
      if (!client.ok()) {
        return false;
      }
      auto [error, data] = OpenPair(client->get(), kEchoPort, 0);
      (*client)->Write(data, "ready?").IgnoreError();
      (*client)->CloseStream(data).IgnoreError();
      auto echoed = (*client)->ReadAll(data, absl::Seconds(5));
      auto message = (*client)->ReadAll(error, absl::Seconds(5));
      if (echoed.ok() && *echoed == "ready?" && message.ok() && message->empty()) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  TempDir tmp_;
  TestCniNetwork network_;
  std::unique_ptr<LeakCensus> census_;
  std::unique_ptr<CridProcess> crid_;
  std::unique_ptr<v1::RuntimeService::Stub> stub_;
  std::string pod_id_;
  std::string netns_;
  std::unique_ptr<NetnsProcess> echo_;
  std::unique_ptr<NetnsProcess> http_;
};

TEST_F(StreamingEndToEndTest, PortForwardRpcValidatesTheRequest) {
  auto empty = PortForwardUrl("");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("pod_sandbox_id"));
  auto unknown = PortForwardUrl("0123456789abcdef");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  auto url = PortForwardUrl(pod_id_);
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_THAT(*url, ::testing::StartsWith("http://127.0.0.1:"));
  EXPECT_THAT(*url, HasSubstr("/portforward/"));
}

TEST_F(StreamingEndToEndTest, ManyParallelConnectionsThroughOneSession) {
  ASSERT_TRUE(EchoWorks()) << Log();
  auto url = PortForwardUrl(pod_id_);
  ASSERT_TRUE(url.ok());
  auto client = SpdyClient::Connect(*url, {"portforward.k8s.io"});
  ASSERT_TRUE(client.ok()) << client.status();
  constexpr int kConnections = 32;
  std::vector<std::pair<uint32_t, uint32_t>> pairs;
  pairs.reserve(kConnections);
  for (int i = 0; i < kConnections; ++i) {
    pairs.push_back(OpenPair(client->get(), kEchoPort, i));
  }
  std::vector<std::thread> threads;
  threads.reserve(kConnections);
  for (int i = 0; i < kConnections; ++i) {
    threads.emplace_back([&, i] {
      std::string payload;
      for (int line = 0; line < 2000; ++line) {
        absl::StrAppend(&payload, "connection ", i, " line ", line, "\n");
      }
      auto [error, data] = pairs[i];
      ASSERT_TRUE((*client)->Write(data, payload).ok());
      ASSERT_TRUE((*client)->CloseStream(data).ok());
      auto echoed = (*client)->ReadAll(data, absl::Seconds(60));
      ASSERT_TRUE(echoed.ok()) << echoed.status();
      EXPECT_EQ(echoed->size(), payload.size()) << i;
      EXPECT_TRUE(*echoed == payload) << i;
      auto message = (*client)->ReadAll(error);
      ASSERT_TRUE(message.ok());
      EXPECT_EQ(*message, "");
    });
  }
  for (auto& t : threads) {
    t.join();
  }
}

TEST_F(StreamingEndToEndTest, HttpThroughTheForwardedPort) {
  ASSERT_TRUE(EchoWorks()) << Log();
  auto url = PortForwardUrl(pod_id_);
  ASSERT_TRUE(url.ok());
  auto client = SpdyClient::Connect(*url, {"portforward.k8s.io"});
  ASSERT_TRUE(client.ok());
  for (int i = 0; i < 8; ++i) {
    auto [error, data] = OpenPair(client->get(), kHttpPort, i);
    ASSERT_TRUE((*client)->Write(data, "GET /index.html HTTP/1.0\r\nHost: pod\r\n\r\n").ok());
    auto response = (*client)->ReadAll(data, absl::Seconds(20));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_THAT(*response, ::testing::MatchesRegex("HTTP/1.[01] 200 OK(.|\r|\n)*"));
    EXPECT_THAT(*response, HasSubstr("hello from the pod"));
    EXPECT_EQ(*(*client)->ReadAll(error), "");
  }
}

TEST_F(StreamingEndToEndTest, ClosedPortIsReportedOnTheErrorStream) {
  auto url = PortForwardUrl(pod_id_);
  ASSERT_TRUE(url.ok());
  auto client = SpdyClient::Connect(*url, {"portforward.k8s.io"});
  ASSERT_TRUE(client.ok());
  auto [error, data] = OpenPair(client->get(), 9, 0);
  auto message = (*client)->ReadAll(error);
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_THAT(*message, HasSubstr("error forwarding port 9 to pod " + pod_id_));
  EXPECT_THAT(*message, HasSubstr("Connection refused"));
  EXPECT_EQ(*(*client)->ReadAll(data), "");
}

TEST_F(StreamingEndToEndTest, ReusedUnknownTokensAndGarbageGetCleanErrors) {
  auto url = PortForwardUrl(pod_id_);
  ASSERT_TRUE(url.ok());
  auto client = SpdyClient::Connect(*url, {"portforward.k8s.io"});
  ASSERT_TRUE(client.ok());
  auto reused = SpdyClient::Connect(*url, {"portforward.k8s.io"});
  EXPECT_THAT(reused.status().message(), HasSubstr("HTTP 404"));
  std::string base = url->substr(0, url->find("/portforward/"));
  auto unknown = HttpRequest("POST", base + "/portforward/AAAAAAAAAAAAAAAAAAAAAA");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->code, 404);

  // A SYN_STREAM header declaring a 16 MiB payload, then junk.
  ASSERT_TRUE((*client)->SendRaw(std::string("\x80\x03\x00\x01\xff\xff\xff\xff garbage", 16)).ok());
  auto goaway = (*client)->WaitGoAway();
  ASSERT_TRUE(goaway.ok());
  EXPECT_EQ(*goaway, 1u);
  EXPECT_TRUE((*client)->WaitClosed());
  // crid is still serving.
  auto again = PortForwardUrl(pod_id_);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(SpdyClient::Connect(*again, {"portforward.k8s.io"}).ok());
}

TEST_F(StreamingEndToEndTest, ExecWithoutContainerSupportReportsAClearError) {
  grpc::ClientContext ctx;
  v1::ExecRequest req;
  req.set_container_id("no-such-container");
  req.add_cmd("true");
  req.set_stdout(true);
  v1::ExecResponse resp;
  grpc::Status st = stub_->Exec(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto client = SpdyClient::Connect(resp.url(), {"v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok());
  auto error = (*client)->OpenStream({{"streamType", "error"}});
  auto out = (*client)->OpenStream({{"streamType", "stdout"}});
  ASSERT_TRUE(error.ok() && out.ok());
  auto status = nlohmann::json::parse(*(*client)->ReadAll(*error));
  EXPECT_EQ(status["status"], "Failure");
  EXPECT_THAT(status["message"].get<std::string>(), HasSubstr("no-such-container"));

  grpc::ClientContext bad_ctx;
  req.set_tty(true);
  req.set_stderr(true);
  st = stub_->Exec(&bad_ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace crid
