// The streaming server end to end over real sockets, with host processes
// standing in for containers and the test clients in tests/streaming_client.h.
#include "cri/streaming/server.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "cri/streaming/spdy_connection.h"
#include "cri/streaming/test_runtime.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/streaming_client.h"

namespace crid::streaming {
namespace {

using ::crid::streaming_test::HttpRequest;
using ::crid::streaming_test::SpdyClient;
using ::crid::streaming_test::WsClient;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class StreamingServerTest : public ::testing::Test {
 protected:
  // The server runs in this process as it runs in crid, which ignores SIGPIPE
  // (cmd/main.cc): OpenSSL writes with write(2), and a client that hangs up
  // while the server answers would otherwise kill the test binary.
  static void SetUpTestSuite() { ::signal(SIGPIPE, SIG_IGN); }
  void SetUp() override { StartServer({}); }

  void StartServer(ServerOptions options) {
    server_.reset();
    options.session.stream_creation_timeout = absl::Seconds(5);
    auto server = Server::Start(options, &runtime_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::string ExecUrl(const std::vector<std::string>& cmd, bool in, bool out, bool err,
                      bool tty = false) {
    runtime::v1::ExecRequest req;
    req.set_container_id("c1");
    for (const auto& c : cmd) {
      req.add_cmd(c);
    }
    req.set_stdin(in);
    req.set_stdout(out);
    req.set_stderr(err);
    req.set_tty(tty);
    auto resp = server_->GetExec(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->url() : "";
  }

  std::string PortForwardUrl(const std::string& pod = "pod") {
    runtime::v1::PortForwardRequest req;
    req.set_pod_sandbox_id(pod);
    auto resp = server_->GetPortForward(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->url() : "";
  }

  HostProcessRuntime runtime_;
  std::unique_ptr<Server> server_;
};

spdy::HeaderBlock StreamHeaders(const std::string& type) { return {{"streamType", type}}; }

TEST_F(StreamingServerTest, UrlsPointAtTheLoopbackListener) {
  std::string url = ExecUrl({"true"}, false, true, false);
  EXPECT_THAT(url, StartsWith(absl::StrCat("http://127.0.0.1:", server_->port(), "/exec/")));
}

TEST_F(StreamingServerTest, RequestsAreValidatedLikeKubelet) {
  runtime::v1::ExecRequest exec;
  exec.add_cmd("sh");
  exec.set_stdout(true);
  EXPECT_THAT(server_->GetExec(exec).status().message(), HasSubstr("container_id"));
  exec.set_container_id("c");
  exec.clear_cmd();
  EXPECT_THAT(server_->GetExec(exec).status().message(), HasSubstr("cmd"));
  exec.add_cmd("sh");
  exec.set_stdout(false);
  EXPECT_TRUE(absl::IsInvalidArgument(server_->GetExec(exec).status()));
  exec.set_stderr(true);
  exec.set_tty(true);
  EXPECT_THAT(server_->GetExec(exec).status().message(),
              HasSubstr("tty and stderr cannot both be true"));
  runtime::v1::AttachRequest attach;
  attach.set_stdout(true);
  EXPECT_TRUE(absl::IsInvalidArgument(server_->GetAttach(attach).status()));
  runtime::v1::PortForwardRequest pf;
  EXPECT_THAT(server_->GetPortForward(pf).status().message(), HasSubstr("pod_sandbox_id"));
  pf.set_pod_sandbox_id("p");
  pf.add_port(70000);
  EXPECT_TRUE(absl::IsInvalidArgument(server_->GetPortForward(pf).status()));
}

TEST_F(StreamingServerTest, TooManyOutstandingTokensIsResourceExhausted) {
  ServerOptions options;
  options.max_tokens = 2;
  StartServer(options);
  ExecUrl({"true"}, false, true, false);
  ExecUrl({"true"}, false, true, false);
  runtime::v1::ExecRequest req;
  req.set_container_id("c");
  req.add_cmd("true");
  req.set_stdout(true);
  EXPECT_TRUE(absl::IsResourceExhausted(server_->GetExec(req).status()));
}

TEST_F(StreamingServerTest, ExecV4StreamsOutputAndReportsTheExitCode) {
  auto client = SpdyClient::Connect(
      ExecUrl({"sh", "-c", "echo out; echo err >&2; exit 3"}, false, true, true),
      {"v4.channel.k8s.io", "v3.channel.k8s.io"});
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->protocol(), "v4.channel.k8s.io");
  auto error = (*client)->OpenStream(StreamHeaders("error"));
  auto out = (*client)->OpenStream(StreamHeaders("stdout"));
  auto err = (*client)->OpenStream(StreamHeaders("stderr"));
  ASSERT_TRUE(error.ok() && out.ok() && err.ok());
  ASSERT_TRUE((*client)->CloseStream(*error).ok());
  EXPECT_EQ(*(*client)->ReadAll(*out), "out\n");
  EXPECT_EQ(*(*client)->ReadAll(*err), "err\n");
  auto status = nlohmann::json::parse(*(*client)->ReadAll(*error));
  EXPECT_EQ(status["status"], "Failure");
  EXPECT_EQ(status["reason"], "NonZeroExitCode");
  EXPECT_EQ(status["details"]["causes"][0]["message"], "3");
  auto goaway = (*client)->WaitGoAway();
  ASSERT_TRUE(goaway.ok());
  EXPECT_EQ(*goaway, 0u);
}

TEST_F(StreamingServerTest, ExecSuccessWritesTheSuccessStatus) {
  auto client = SpdyClient::Connect(ExecUrl({"true"}, false, true, false), {"v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok());
  auto error = (*client)->OpenStream(StreamHeaders("error"));
  auto out = (*client)->OpenStream(StreamHeaders("stdout"));
  ASSERT_TRUE(error.ok() && out.ok());
  EXPECT_EQ(*(*client)->ReadAll(*out), "");
  EXPECT_EQ(*(*client)->ReadAll(*error), R"({"metadata":{},"status":"Success"})");
}

TEST_F(StreamingServerTest, OlderProtocolsGetPlainTextErrors) {
  auto client = SpdyClient::Connect(ExecUrl({"sh", "-c", "exit 2"}, false, true, false),
                                    {"v2.channel.k8s.io"});
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->protocol(), "v2.channel.k8s.io");
  auto error = (*client)->OpenStream(StreamHeaders("error"));
  auto out = (*client)->OpenStream(StreamHeaders("stdout"));
  ASSERT_TRUE(error.ok() && out.ok());
  EXPECT_EQ(*(*client)->ReadAll(*error), "command terminated with non-zero exit code: 2");
}

TEST_F(StreamingServerTest, StdinFlowsWithBackPressureAndEofReachesTheCommand) {
  auto client = SpdyClient::Connect(ExecUrl({"cat"}, true, true, false), {"v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok());
  auto error = (*client)->OpenStream(StreamHeaders("error"));
  auto in = (*client)->OpenStream(StreamHeaders("stdin"));
  auto out = (*client)->OpenStream(StreamHeaders("stdout"));
  ASSERT_TRUE(error.ok() && in.ok() && out.ok());
  // 4 MiB: far more than the pipes and queues hold, so every stage has to wait.
  std::string payload;
  for (int i = 0; i < 4 * 1024 * 1024 / 16; ++i) {
    payload += absl::StrCat(absl::Hex(i, absl::kZeroPad8), "-abcdefg");
  }
  std::thread writer([&] {
    for (size_t at = 0; at < payload.size(); at += 10000) {
      ASSERT_TRUE((*client)->Write(*in, absl::string_view(payload).substr(at, 10000)).ok());
    }
    ASSERT_TRUE((*client)->CloseStream(*in).ok());
  });
  auto echoed = (*client)->ReadAll(*out, absl::Seconds(60));
  writer.join();
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(echoed->size(), payload.size());
  EXPECT_TRUE(*echoed == payload);
  EXPECT_EQ(*(*client)->ReadAll(*error), R"({"metadata":{},"status":"Success"})");
}

TEST_F(StreamingServerTest, TtyResizeEventsReachTheRuntime) {
  auto client =
      SpdyClient::Connect(ExecUrl({"cat"}, true, true, false, /*tty=*/true), {"v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok());
  auto error = (*client)->OpenStream(StreamHeaders("error"));
  auto in = (*client)->OpenStream(StreamHeaders("stdin"));
  auto out = (*client)->OpenStream(StreamHeaders("stdout"));
  auto resize = (*client)->OpenStream(StreamHeaders("resize"));
  ASSERT_TRUE(error.ok() && in.ok() && out.ok() && resize.ok());
  ASSERT_TRUE((*client)->Write(*resize, R"({"Width":100,"Height":40})").ok());
  ASSERT_TRUE((*client)->Write(*resize, R"({"Width":120,)").ok());
  ASSERT_TRUE((*client)->Write(*resize, R"("Height":50})").ok());
  ASSERT_TRUE((*client)->Write(*in, "typed\n").ok());
  EXPECT_EQ(*(*client)->Read(*out, 6), "typed\n");
  ASSERT_TRUE((*client)->CloseStream(*in).ok());
  EXPECT_EQ(*(*client)->ReadAll(*error), R"({"metadata":{},"status":"Success"})");
  EXPECT_THAT(runtime_.sizes(),
              ::testing::ElementsAre(TerminalSize{100, 40}, TerminalSize{120, 50}));
}

TEST_F(StreamingServerTest, VanishedClientStopsTheCommand) {
  auto client =
      SpdyClient::Connect(ExecUrl({"sleep", "1000"}, false, true, false), {"v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->OpenStream(StreamHeaders("error")).ok());
  ASSERT_TRUE((*client)->OpenStream(StreamHeaders("stdout")).ok());
  absl::SleepFor(absl::Milliseconds(200));
  client->reset();
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (runtime_.finished_execs() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(runtime_.finished_execs(), 1);
  EXPECT_TRUE(runtime_.last_exec_cancelled());
}

TEST_F(StreamingServerTest, RuntimeErrorsBecomeInternalErrorStatus) {
  runtime::v1::AttachRequest req;
  req.set_container_id("c1");
  req.set_stdout(true);  // no stdin: the test runtime refuses
  auto url = server_->GetAttach(req);
  ASSERT_TRUE(url.ok());
  auto client = SpdyClient::Connect(url->url(), {"v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok());
  auto error = (*client)->OpenStream(StreamHeaders("error"));
  auto out = (*client)->OpenStream(StreamHeaders("stdout"));
  ASSERT_TRUE(error.ok() && out.ok());
  auto status = nlohmann::json::parse(*(*client)->ReadAll(*error));
  EXPECT_EQ(status["reason"], "InternalError");
  EXPECT_THAT(status["message"].get<std::string>(), HasSubstr("test attach echoes stdin"));
}

TEST_F(StreamingServerTest, AttachCarriesStdinAndStdout) {
  runtime::v1::AttachRequest req;
  req.set_container_id("c1");
  req.set_stdin(true);
  req.set_stdout(true);
  auto url = server_->GetAttach(req);
  ASSERT_TRUE(url.ok());
  EXPECT_THAT(url->url(), HasSubstr("/attach/"));
  auto client = SpdyClient::Connect(url->url(), {"v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok());
  auto error = (*client)->OpenStream(StreamHeaders("error"));
  auto in = (*client)->OpenStream(StreamHeaders("stdin"));
  auto out = (*client)->OpenStream(StreamHeaders("stdout"));
  ASSERT_TRUE(error.ok() && in.ok() && out.ok());
  ASSERT_TRUE((*client)->Write(*in, "hello attach").ok());
  ASSERT_TRUE((*client)->CloseStream(*in).ok());
  EXPECT_EQ(*(*client)->ReadAll(*out), "hello attach");
  EXPECT_EQ(*(*client)->ReadAll(*error), R"({"metadata":{},"status":"Success"})");
}

TEST_F(StreamingServerTest, UnexpectedStreamTypesAreRefused) {
  auto client = SpdyClient::Connect(ExecUrl({"true"}, false, true, false), {"v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok());
  EXPECT_FALSE((*client)->OpenStream(StreamHeaders("stdin")).ok());
  EXPECT_FALSE((*client)->OpenStream(StreamHeaders("bogus")).ok());
  ASSERT_TRUE((*client)->OpenStream(StreamHeaders("error")).ok());
  EXPECT_FALSE((*client)->OpenStream(StreamHeaders("error")).ok());
}

TEST_F(StreamingServerTest, PingIsAnswered) {
  auto client = SpdyClient::Connect(ExecUrl({"true"}, false, true, false), {"v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE((*client)->Ping(1).ok());
}

TEST_F(StreamingServerTest, UnknownExpiredAndReusedTokensAre404) {
  auto reply = HttpRequest("POST", absl::StrCat(server_->base_url(), "/exec/nosuchtoken"));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->code, 404);
  reply = HttpRequest("POST", absl::StrCat(server_->base_url(), "/nothing/here"));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->code, 404);

  std::string url = ExecUrl({"true"}, false, true, false);
  ASSERT_TRUE(SpdyClient::Connect(url, {"v4.channel.k8s.io"}).ok());
  auto reused = SpdyClient::Connect(url, {"v4.channel.k8s.io"});
  EXPECT_THAT(reused.status().message(), HasSubstr("HTTP 404"));

  ServerOptions options;
  options.token_ttl = absl::Milliseconds(100);
  StartServer(options);
  url = ExecUrl({"true"}, false, true, false);
  absl::SleepFor(absl::Milliseconds(300));
  auto expired = SpdyClient::Connect(url, {"v4.channel.k8s.io"});
  EXPECT_THAT(expired.status().message(), HasSubstr("HTTP 404"));
}

TEST_F(StreamingServerTest, TokenForAnotherKindIsRejected) {
  std::string url = ExecUrl({"true"}, false, true, false);
  std::string token = url.substr(url.rfind('/') + 1);
  auto reply = HttpRequest("POST", absl::StrCat(server_->base_url(), "/attach/", token));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->code, 400);
}

TEST_F(StreamingServerTest, ProtocolNegotiationFailures) {
  auto reply = HttpRequest("POST", ExecUrl({"true"}, false, true, false),
                           {{"Connection", "Upgrade"}, {"Upgrade", "SPDY/3.1"}});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->code, 400);
  EXPECT_THAT(reply->body, HasSubstr("X-Stream-Protocol-Version is required"));

  reply = HttpRequest("POST", ExecUrl({"true"}, false, true, false),
                      {{"Connection", "Upgrade"},
                       {"Upgrade", "SPDY/3.1"},
                       {"X-Stream-Protocol-Version", "v9.channel.k8s.io"}});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->code, 403);
  EXPECT_EQ(reply->Header("x-accepted-stream-protocol-versions"), "v4.channel.k8s.io");

  reply = HttpRequest("GET", ExecUrl({"true"}, false, true, false));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->code, 400);
  EXPECT_THAT(reply->body, HasSubstr("missing upgrade headers"));

  reply = HttpRequest("DELETE", ExecUrl({"true"}, false, true, false));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->code, 405);
}

TEST_F(StreamingServerTest, MalformedAndOversizedRequestsGetCleanErrors) {
  std::string path;
  auto fd = streaming_test::DialUrl(server_->base_url() + "/", &path);
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(SendAll(fd->get(), "BAD REQUEST\r\n\r\n").ok());
  char buf[256] = {};
  ASSERT_GT(recv(fd->get(), buf, sizeof(buf) - 1, 0), 0);
  EXPECT_THAT(std::string(buf), StartsWith("HTTP/1.1 400"));

  fd = streaming_test::DialUrl(server_->base_url() + "/", &path);
  ASSERT_TRUE(fd.ok());
  std::string huge = "GET / HTTP/1.1\r\nX: " + std::string(20000, 'a');
  SendAll(fd->get(), huge).IgnoreError();
  std::string reply;
  ssize_t n;
  while ((n = recv(fd->get(), buf, sizeof(buf), 0)) > 0) {
    reply.append(buf, static_cast<size_t>(n));
  }
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 431"));
}

TEST_F(StreamingServerTest, GarbageFramesEndTheConnectionWithProtocolError) {
  auto client = SpdyClient::Connect(ExecUrl({"true"}, false, true, false), {"v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok());
  // A control frame of SPDY version 2.
  ASSERT_TRUE((*client)->SendRaw(std::string("\x80\x02\x00\x01\x00\x00\x00\x00", 8)).ok());
  auto goaway = (*client)->WaitGoAway();
  ASSERT_TRUE(goaway.ok());
  EXPECT_EQ(*goaway, 1u);
  EXPECT_TRUE((*client)->WaitClosed());

  // A SYN_STREAM whose header block is not zlib.
  client = SpdyClient::Connect(ExecUrl({"true"}, false, true, false), {"v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->SendRaw(spdy::EncodeSynStream(1, 0, 0, 0, "garbage!")).ok());
  goaway = (*client)->WaitGoAway();
  ASSERT_TRUE(goaway.ok());
  EXPECT_EQ(*goaway, 1u);
  EXPECT_TRUE((*client)->WaitClosed());
}

// Echo server on the host loopback: each connection gets back what it sent.
class EchoServer {
 public:
  EchoServer() {
    fd_.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_.get(), 64), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      std::vector<std::thread> conns;
      int c;
      while ((c = accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC)) >= 0) {
        conns.emplace_back([c] {
          char buf[8192];
          ssize_t n;
          while ((n = recv(c, buf, sizeof(buf), 0)) > 0) {
            if (!SendAll(c, absl::string_view(buf, static_cast<size_t>(n))).ok()) {
              break;
            }
          }
          close(c);
        });
      }
      for (auto& t : conns) {
        t.join();
      }
    });
  }
  ~EchoServer() {
    shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  UniqueFd fd_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(StreamingServerTest, PortForwardCarriesManyParallelConnections) {
  EchoServer echo;
  auto client = SpdyClient::Connect(PortForwardUrl(), {"portforward.k8s.io"});
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->protocol(), "portforward.k8s.io");
  constexpr int kConnections = 20;
  std::vector<std::pair<uint32_t, uint32_t>> pairs;
  for (int i = 0; i < kConnections; ++i) {
    std::string port = std::to_string(echo.port());
    auto error = (*client)->OpenStream(
        {{"streamType", "error"}, {"port", port}, {"requestID", std::to_string(i)}});
    ASSERT_TRUE(error.ok()) << error.status();
    ASSERT_TRUE((*client)->CloseStream(*error).ok());
    auto data = (*client)->OpenStream(
        {{"streamType", "data"}, {"port", port}, {"requestID", std::to_string(i)}});
    ASSERT_TRUE(data.ok()) << data.status();
    pairs.emplace_back(*error, *data);
  }
  std::vector<std::thread> threads;
  threads.reserve(kConnections);
  for (int i = 0; i < kConnections; ++i) {
    threads.emplace_back([&, i] {
      std::string payload = absl::StrCat("connection ", i, ": ", std::string(100000 + i, 'x'));
      ASSERT_TRUE((*client)->Write(pairs[i].second, payload).ok());
      ASSERT_TRUE((*client)->CloseStream(pairs[i].second).ok());
      auto echoed = (*client)->ReadAll(pairs[i].second);
      ASSERT_TRUE(echoed.ok()) << echoed.status();
      EXPECT_TRUE(*echoed == payload) << i;
      EXPECT_EQ(*(*client)->ReadAll(pairs[i].first), "");
    });
  }
  for (auto& t : threads) {
    t.join();
  }
}

TEST_F(StreamingServerTest, PortForwardReportsConnectionFailuresOnTheErrorStream) {
  int closed_port;
  {
    EchoServer gone;
    closed_port = gone.port();
  }
  auto client = SpdyClient::Connect(PortForwardUrl(), {"portforward.k8s.io"});
  ASSERT_TRUE(client.ok());
  std::string port = std::to_string(closed_port);
  auto error = (*client)->OpenStream({{"streamType", "error"}, {"port", port}, {"requestID", "0"}});
  auto data = (*client)->OpenStream({{"streamType", "data"}, {"port", port}, {"requestID", "0"}});
  ASSERT_TRUE(error.ok() && data.ok());
  auto message = (*client)->ReadAll(*error);
  ASSERT_TRUE(message.ok());
  EXPECT_THAT(*message, HasSubstr(absl::StrCat("error forwarding port ", closed_port)));
  EXPECT_THAT(*message, HasSubstr("Connection refused"));
  // A stream without a valid port is refused.
  EXPECT_FALSE((*client)->OpenStream({{"streamType", "data"}, {"port", "0"}}).ok());
  EXPECT_FALSE((*client)->OpenStream({{"streamType", "data"}}).ok());
}

TEST_F(StreamingServerTest, PortForwardDerivesRequestIdsForOldClients) {
  EchoServer echo;
  auto client = SpdyClient::Connect(PortForwardUrl(), {"portforward.k8s.io"});
  ASSERT_TRUE(client.ok());
  std::string port = std::to_string(echo.port());
  auto error = (*client)->OpenStream({{"streamType", "error"}, {"port", port}});
  auto data = (*client)->OpenStream({{"streamType", "data"}, {"port", port}});
  ASSERT_TRUE(error.ok() && data.ok());
  ASSERT_TRUE((*client)->Write(*data, "ping").ok());
  EXPECT_EQ(*(*client)->Read(*data, 4), "ping");
}

TEST_F(StreamingServerTest, WebSocketV5ExecWithStdinCloseSignal) {
  auto client =
      WsClient::Connect(ExecUrl({"sh", "-c", "cat; echo done >&2; exit 4"}, true, true, true),
                        {"v5.channel.k8s.io", "v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->protocol(), "v5.channel.k8s.io");
  ASSERT_TRUE((*client)->Send(0, "via websocket").ok());
  ASSERT_TRUE((*client)->SendCloseChannel(0).ok());
  auto data = (*client)->ReadUntilClosed();
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ((*data)[1], "via websocket");
  EXPECT_EQ((*data)[2], "done\n");
  auto status = nlohmann::json::parse((*data)[3]);
  EXPECT_EQ(status["details"]["causes"][0]["message"], "4");
  EXPECT_GE((*client)->MessageCount(1), 2);  // the greeting and the output
  // The server never sends close signals: client-go's v5 client rejects them.
  EXPECT_TRUE((*client)->ClosedChannels().empty());
  EXPECT_EQ((*client)->close_code(), 1000);
}

TEST_F(StreamingServerTest, WebSocketBase64Exec) {
  auto client =
      WsClient::Connect(ExecUrl({"sh", "-c", "printf '\\001\\002binary'"}, false, true, false),
                        {"v4.base64.channel.k8s.io"});
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->base64());
  auto data = (*client)->ReadUntilClosed();
  ASSERT_TRUE(data.ok());
  EXPECT_EQ((*data)[1],
            "\x01\x02"
            "binary");
  EXPECT_EQ((*data)[3], R"({"metadata":{},"status":"Success"})");
}

TEST_F(StreamingServerTest, WebSocketWithUnsupportedProtocolIsRefused) {
  auto client = WsClient::Connect(ExecUrl({"true"}, false, true, false), {"v9.channel.k8s.io"});
  EXPECT_THAT(client.status().message(), HasSubstr("HTTP 400"));
}

TEST_F(StreamingServerTest, StopEndsRunningSessions) {
  auto client =
      SpdyClient::Connect(ExecUrl({"sleep", "1000"}, false, true, false), {"v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->OpenStream(StreamHeaders("error")).ok());
  ASSERT_TRUE((*client)->OpenStream(StreamHeaders("stdout")).ok());
  absl::Time start = absl::Now();
  server_->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_TRUE((*client)->WaitClosed());
  EXPECT_TRUE(runtime_.last_exec_cancelled());
}

// A CA and certificates made with the openssl tool for one test.
class TestCertificates {
 public:
  TestCertificates() {
    char pattern[] = "/tmp/crid-tls-XXXXXX";
    dir_ = mkdtemp(pattern);
    ok_ = Run("req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout ca.key "
              "-out ca.crt") &&
          Issue("server", "-addext subjectAltName=IP:127.0.0.1") && Issue("client", "") &&
          Run("req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other -keyout other.key "
              "-out other.crt");
  }
  ~TestCertificates() {
    std::error_code ignored;  // a leftover in /tmp must not fail the test
    std::filesystem::remove_all(dir_, ignored);
  }
  bool ok() const { return ok_; }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  bool Run(const std::string& args) {
    std::string cmd = absl::StrCat("cd ", dir_, " && openssl ", args, " >/dev/null 2>&1");
    return std::system(cmd.c_str()) == 0;
  }
  // A key and a certificate signed by the CA.
  bool Issue(const std::string& name, const std::string& extension) {
    return Run(absl::StrCat("req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout ", name,
                            ".key -out ", name, ".csr ", extension)) &&
           Run(absl::StrCat("x509 -req -in ", name,
                            ".csr -CA ca.crt -CAkey ca.key "
                            "-CAcreateserial -days 1 -copy_extensions copy -out ",
                            name, ".crt"));
  }
  std::string dir_;
  bool ok_ = false;
};

TEST_F(StreamingServerTest, TlsServesExecAndRefusesPlainAndUntrustedClients) {
  TestCertificates certs;
  ASSERT_TRUE(certs.ok()) << "openssl could not make the test certificates";
  ServerOptions options;
  options.tls.cert_file = certs.Path("server.crt");
  options.tls.key_file = certs.Path("server.key");
  StartServer(options);
  std::string url = ExecUrl({"sh", "-c", "echo over-tls; exit 4"}, false, true, false);
  EXPECT_THAT(url, StartsWith(absl::StrCat("https://127.0.0.1:", server_->port(), "/exec/")));

  // A client that does not trust the server's CA gets no session.
  crid::streaming::TlsFiles untrusted;
  untrusted.client_ca_file = certs.Path("other.crt");
  crid::streaming_test::UseTlsClient(untrusted);
  EXPECT_FALSE(SpdyClient::Connect(url, {"v4.channel.k8s.io"}).ok());
  // Plain HTTP to the TLS port gets no HTTP answer.
  auto plain = HttpRequest("GET", absl::StrCat("http://127.0.0.1:", server_->port(), "/exec/x"));
  EXPECT_TRUE(!plain.ok() || plain->code == 0) << plain->code;

  crid::streaming::TlsFiles trusted;
  trusted.client_ca_file = certs.Path("ca.crt");
  crid::streaming_test::UseTlsClient(trusted);
  auto client = SpdyClient::Connect(url, {"v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok()) << client.status();
  auto error = (*client)->OpenStream(StreamHeaders("error"));
  auto out = (*client)->OpenStream(StreamHeaders("stdout"));
  ASSERT_TRUE(error.ok() && out.ok());
  EXPECT_EQ(*(*client)->ReadAll(*out), "over-tls\n");
  auto status = nlohmann::json::parse(*(*client)->ReadAll(*error));
  EXPECT_EQ(status["details"]["causes"][0]["message"], "4");
  // The token was used once: a second connection is a 404, over TLS too.
  auto again = HttpRequest("GET", url);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->code, 404);
}

TEST_F(StreamingServerTest, TlsWithAClientCaRequiresClientCertificates) {
  TestCertificates certs;
  ASSERT_TRUE(certs.ok()) << "openssl could not make the test certificates";
  ServerOptions options;
  options.tls.cert_file = certs.Path("server.crt");
  options.tls.key_file = certs.Path("server.key");
  options.tls.client_ca_file = certs.Path("ca.crt");
  StartServer(options);
  std::string url = ExecUrl({"true"}, false, true, false);
  crid::streaming::TlsFiles anonymous;
  anonymous.client_ca_file = certs.Path("ca.crt");
  crid::streaming_test::UseTlsClient(anonymous);
  auto refused = HttpRequest("GET", url);
  EXPECT_TRUE(!refused.ok() || refused->code == 0);
  crid::streaming::TlsFiles with_cert = anonymous;
  with_cert.cert_file = certs.Path("client.crt");
  with_cert.key_file = certs.Path("client.key");
  crid::streaming_test::UseTlsClient(with_cert);
  auto client = SpdyClient::Connect(url, {"v4.channel.k8s.io"});
  ASSERT_TRUE(client.ok()) << client.status();
  auto error = (*client)->OpenStream(StreamHeaders("error"));
  auto out = (*client)->OpenStream(StreamHeaders("stdout"));
  ASSERT_TRUE(error.ok() && out.ok());
  EXPECT_EQ(*(*client)->ReadAll(*error), R"({"metadata":{},"status":"Success"})");
}

TEST(StreamingTlsConfig, BadFilesAreNamed) {
  TestCertificates certs;
  ASSERT_TRUE(certs.ok()) << "openssl could not make the test certificates";
  TlsFiles files;
  files.cert_file = certs.Path("server.crt");
  EXPECT_THAT(TlsContext::Load(files).status().message(), HasSubstr("both"));
  files.key_file = certs.Path("client.key");  // not the certificate's key
  absl::Status st = TlsContext::Load(files).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("tls_key_file"));
  files.cert_file = certs.Path("missing.crt");
  EXPECT_THAT(TlsContext::Load(files).status().message(), HasSubstr("tls_cert_file"));
  files.cert_file = certs.Path("server.crt");
  files.key_file = certs.Path("server.key");
  files.client_ca_file = certs.Path("missing-ca.crt");
  EXPECT_THAT(TlsContext::Load(files).status().message(), HasSubstr("tls_client_ca_file"));
  files.client_ca_file = "";
  EXPECT_TRUE(TlsContext::Load(files).ok());
}

}  // namespace
}  // namespace crid::streaming
