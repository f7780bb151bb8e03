// End to end: the real crid binary on a temporary root, state and socket, called
// over the socket with the generated C++ client, as kubelet and crictl do.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <fstream>

#include "base/temp_dir.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/cri_api.grpc.pb.h"
#include "tests/crid_process.h"

namespace crid {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::runtime::v1;

class DaemonTest : public ::testing::Test {
 protected:
  std::string socket() const { return tmp_.Sub("crid.sock"); }

  std::vector<std::string> Args(const std::string& root_name = "root") const {
    return {"--root",   tmp_.Sub(root_name),  "--state=" + tmp_.Sub("state"),
            "--listen", "unix://" + socket(), "--log-level",
            "debug"};
  }

  std::unique_ptr<CridProcess> StartCrid(std::map<std::string, std::string> env = {}) {
    auto crid = std::make_unique<CridProcess>(RunfilePath("crid"), Args(), std::move(env));
    crid->Start(tmp_.Sub("crid.log"));
    EXPECT_TRUE(crid->WaitForSocket(socket(), absl::Seconds(20))) << Log();
    return crid;
  }

  std::string Log() const {
    std::ifstream in(tmp_.Sub("crid.log"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::unique_ptr<v1::RuntimeService::Stub> RuntimeStub() const {
    return v1::RuntimeService::NewStub(
        grpc::CreateChannel("unix://" + socket(), grpc::InsecureChannelCredentials()));
  }

  TempDir tmp_;
};

TEST_F(DaemonTest, AnswersKubeletStartupCallsOverTheSocket) {
  auto crid = StartCrid();
  auto stub = RuntimeStub();
  {
    grpc::ClientContext ctx;
    v1::VersionRequest req;
    req.set_version("0.1.0");
    v1::VersionResponse resp;
    ASSERT_TRUE(stub->Version(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.version(), "0.1.0");
    EXPECT_EQ(resp.runtime_name(), "crid");
    EXPECT_EQ(resp.runtime_api_version(), "v1");
    EXPECT_FALSE(resp.runtime_version().empty());
  }
  {
    grpc::ClientContext ctx;
    v1::RuntimeConfigResponse resp;
    ASSERT_TRUE(stub->RuntimeConfig(&ctx, {}, &resp).ok());
    EXPECT_TRUE(resp.has_linux());
  }
  {
    grpc::ClientContext ctx;
    v1::StatusRequest req;
    req.set_verbose(true);
    v1::StatusResponse resp;
    ASSERT_TRUE(stub->Status(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.status().conditions_size(), 2);
    EXPECT_EQ(resp.status().conditions(0).type(), "RuntimeReady");
    EXPECT_TRUE(resp.status().conditions(0).status());
    EXPECT_EQ(resp.status().conditions(1).type(), "NetworkReady");
    EXPECT_THAT(resp.info().at("config"), HasSubstr(tmp_.Sub("root")));
  }
  {
    grpc::ClientContext ctx;
    v1::ListContainersResponse resp;
    grpc::Status st = stub->ListContainers(&ctx, {}, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.containers_size(), 0);
  }
  struct stat sb;
  ASSERT_EQ(::lstat(socket().c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0660u);
}

TEST_F(DaemonTest, SigtermStopsGracefullyAndRemovesSocket) {
  auto crid = StartCrid();
  crid->Signal(SIGTERM);
  EXPECT_EQ(crid->Wait(absl::Seconds(15)), 0) << Log();
  struct stat sb;
  EXPECT_NE(::lstat(socket().c_str(), &sb), 0) << "socket left behind";
  EXPECT_THAT(Log(), HasSubstr("shutting down"));
}

TEST_F(DaemonTest, SecondInstanceOnSameRootIsRefused) {
  auto crid = StartCrid();
  std::vector<std::string> args = Args();
  args[4] = "unix://" + tmp_.Sub("other.sock");
  auto [code, err] = RunCridToExit(args, tmp_.path());
  EXPECT_NE(code, 0);
  EXPECT_THAT(err, HasSubstr("locked by another process"));
  // The first one is unharmed.
  grpc::ClientContext ctx;
  v1::VersionResponse resp;
  EXPECT_TRUE(RuntimeStub()->Version(&ctx, {}, &resp).ok());
}

TEST_F(DaemonTest, SecondInstanceOnSameSocketIsRefused) {
  auto crid = StartCrid();
  auto [code, err] = RunCridToExit(Args("other-root"), tmp_.path());
  EXPECT_NE(code, 0);
  EXPECT_THAT(err, HasSubstr("another process is serving on " + socket()));
}

TEST_F(DaemonTest, RestartsAfterSigkillOverItsStaleSocket) {
  auto crid = StartCrid();
  crid->Signal(SIGKILL);
  EXPECT_EQ(crid->Wait(absl::Seconds(10)), 128 + SIGKILL);
  struct stat sb;
  ASSERT_EQ(::lstat(socket().c_str(), &sb), 0) << "SIGKILL leaves the socket";
  auto again = StartCrid();
  grpc::ClientContext ctx;
  v1::VersionResponse resp;
  EXPECT_TRUE(RuntimeStub()->Version(&ctx, {}, &resp).ok());
  EXPECT_THAT(Log(), HasSubstr("removing stale socket"));
}

TEST_F(DaemonTest, NotifiesSystemdWhenReady) {
  std::string notify_path = tmp_.Sub("notify.sock");
  UniqueFd notify(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, notify_path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(notify.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);
  struct timeval tv = {10, 0};
  ::setsockopt(notify.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

  auto crid = StartCrid({{"NOTIFY_SOCKET", notify_path}});
  char buf[512] = {};
  ssize_t n = ::recv(notify.get(), buf, sizeof(buf) - 1, 0);
  ASSERT_GT(n, 0) << "no sd_notify message";
  EXPECT_THAT(std::string(buf, n), HasSubstr("READY=1"));
}

TEST_F(DaemonTest, UnknownFlagFailsWithItsName) {
  auto [code, err] = RunCridToExit({"--no-such-flag"}, tmp_.path());
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("unknown flag --no-such-flag"));
}

TEST_F(DaemonTest, StrayArgumentFails) {
  auto [code, err] = RunCridToExit({"serve"}, tmp_.path());
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("unexpected argument \"serve\""));
}

TEST_F(DaemonTest, BadConfigValueFailsNamingTheField) {
  std::string config = tmp_.Sub("crid.json");
  std::ofstream(config) << R"({"cgroupDriver": "cgroupv3"})";
  std::vector<std::string> args = Args();
  args.push_back("--config=" + config);
  auto [code, err] = RunCridToExit(args, tmp_.path());
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("cgroup_driver"));
}

TEST_F(DaemonTest, UnknownConfigFieldFailsNamingIt) {
  std::string config = tmp_.Sub("crid.json");
  std::ofstream(config) << R"({"listen_adress": "unix:///x.sock"})";
  std::vector<std::string> args = Args();
  args.push_back("--config=" + config);
  auto [code, err] = RunCridToExit(args, tmp_.path());
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("listen_adress"));
}

TEST_F(DaemonTest, MissingConfigFileFailsNamingIt) {
  std::vector<std::string> args = Args();
  args.push_back("--config=" + tmp_.Sub("absent.json"));
  auto [code, err] = RunCridToExit(args, tmp_.path());
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("absent.json"));
}

TEST_F(DaemonTest, BadFlagValueFailsNamingTheField) {
  std::vector<std::string> args = Args();
  args.emplace_back("--listen=tcp://127.0.0.1:9");
  auto [code, err] = RunCridToExit(args, tmp_.path());
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("listen: must be unix://"));
}

TEST_F(DaemonTest, ConfigFileSettingsApplyAndFlagsWin) {
  std::string config = tmp_.Sub("crid.json");
  std::ofstream(config) << R"({"cgroupDriver": "systemd", "root": "/nonexistent/ignored"})";
  std::vector<std::string> args = Args();  // --root from the flag wins
  args.push_back("--config=" + config);
  CridProcess crid(RunfilePath("crid"), args);
  crid.Start(tmp_.Sub("crid.log"));
  ASSERT_TRUE(crid.WaitForSocket(socket(), absl::Seconds(20))) << Log();
  grpc::ClientContext ctx;
  v1::RuntimeConfigResponse resp;
  ASSERT_TRUE(RuntimeStub()->RuntimeConfig(&ctx, {}, &resp).ok());
  EXPECT_EQ(resp.linux().cgroup_driver(), v1::SYSTEMD);
  struct stat sb;
  EXPECT_EQ(::stat(tmp_.Sub("root/crid.db").c_str(), &sb), 0);
}

}  // namespace
}  // namespace crid
