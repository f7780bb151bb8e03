// CNI against real plugins (Debian's containernetworking-plugins) and real
// network namespaces, plus small shell plugins for errors, hangs and the
// exact environment and stdin the spec requires.
#include "cni/network.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "base/fs.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "netns/namespace.h"
#include "tests/cni_fixture.h"

namespace crid::cni {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

void WriteExecutable(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  chmod(path.c_str(), 0755);
}

class CniNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mkdir(tmp_.Sub("netns").c_str(), 0755);
    mkdir(tmp_.Sub("bin").c_str(), 0755);
  }

  std::unique_ptr<CniManager> Manager(const std::string& conf_dir,
                                      std::vector<std::string> bin_dirs = {kSystemCniBinDir},
                                      absl::Duration timeout = absl::Seconds(30)) {
    CniOptions options;
    options.conf_dir = conf_dir;
    options.bin_dirs = std::move(bin_dirs);
    options.cache_dir = tmp_.Sub("cache");
    options.plugin_timeout = timeout;
    absl::StatusOr<std::unique_ptr<CniManager>> m = CniManager::Create(options);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }

  std::string NewNetns(const std::string& name) {
    std::string path = tmp_.Sub("netns/" + name);
    EXPECT_TRUE(CreatePinnedNamespace(NamespaceType::kNet, path, BringUpLoopback).ok());
    namespaces_.push_back(path);
    return path;
  }

  bool LinkInNetns(const std::string& netns, const std::string& ifname) {
    bool found = false;
    EXPECT_TRUE(RunInNamespaces({{NamespaceType::kNet, netns}}, [&]() {
                  found = LinkExists(ifname);
                  return absl::OkStatus();
                }).ok());
    return found;
  }

  void TearDown() override {
    for (const std::string& ns : namespaces_) {
      (void)RemovePinnedNamespace(ns);
    }
  }

  TempDir tmp_;
  std::vector<std::string> namespaces_;
};

TEST_F(CniNetworkTest, BridgeChainAddsAndDeletesWithCachedResult) {
  TestCniNetwork net;
  auto manager = Manager(net.conf_dir());
  ASSERT_TRUE(manager->Ready().ok());
  EXPECT_EQ(manager->NetworkName(), net.network_name());
  std::string ns = NewNetns("pod1");
  Attachment a;
  a.container_id = "pod1id";
  a.netns = ns;
  a.args = {{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "p"}};
  absl::StatusOr<NetworkResult> result = manager->Setup(a);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_FALSE(result->ips.empty());
  EXPECT_THAT(result->ips[0].ip(), StartsWith(net.subnet_prefix()));
  EXPECT_EQ(result->ips[0].gateway, net.subnet_prefix() + "1");
  EXPECT_TRUE(LinkInNetns(ns, "eth0"));
  EXPECT_EQ(BridgePortCount(net.bridge()), 1);
  std::optional<NetworkResult> cached = manager->CachedResult("pod1id", "eth0");
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(cached->ips[0].address, result->ips[0].address);

  // The conf dir changes (network removed) before teardown: DEL still runs
  // from the cache, also in a fresh manager (a restart).
  unlink((net.conf_dir() + "/10-test.conflist").c_str());
  manager.reset();
  manager = Manager(net.conf_dir());
  EXPECT_FALSE(manager->Ready().ok());
  ASSERT_TRUE(manager->Teardown(a).ok());
  EXPECT_FALSE(LinkInNetns(ns, "eth0"));
  EXPECT_EQ(BridgePortCount(net.bridge()), 0);
  EXPECT_FALSE(manager->CachedResult("pod1id", "eth0").has_value());
  // The address went back to host-local's pool.
  EXPECT_FALSE(ReadFile(net.Sub("ipam/" + net.network_name() + "/" + result->ips[0].ip())).ok());
  // DEL again is fine.
  EXPECT_TRUE(manager->Teardown(a).ok());
}

TEST_F(CniNetworkTest, FailingPluginReportsItsMessageAndLeavesNothing) {
  TestCniNetwork net(/*with_portmap=*/false);
  // The real bridge first, then a plugin that fails ADD with a CNI error.
  std::string conf_dir = tmp_.Sub("conf");
  mkdir(conf_dir.c_str(), 0755);
  std::string list = net.conflist();
  list.insert(list.rfind(']'), R"(,{"type":"failer"})");
  std::ofstream(conf_dir + "/10.conflist") << list;
  WriteExecutable(tmp_.Sub("bin/failer"),
                  "#!/bin/sh\n"
                  "if [ \"$CNI_COMMAND\" = ADD ]; then\n"
                  "  echo '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"quota exceeded\","
                  "\"details\":\"no more pods here\"}'\n"
                  "  exit 1\n"
                  "fi\n"
                  "exit 0\n");
  auto manager = Manager(conf_dir, {tmp_.Sub("bin"), kSystemCniBinDir});
  std::string ns = NewNetns("pod2");
  Attachment a;
  a.container_id = "pod2id";
  a.netns = ns;
  absl::StatusOr<NetworkResult> result = manager->Setup(a);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("quota exceeded: no more pods here"));
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("type=\"failer\""));
  // Code 11 is "try again later": kubelet retries an UNAVAILABLE answer.
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_FALSE(LinkInNetns(ns, "eth0"));
  EXPECT_EQ(BridgePortCount(net.bridge()), 0);
  EXPECT_FALSE(manager->CachedResult("pod2id", "eth0").has_value());
}

TEST_F(CniNetworkTest, MissingPluginIsNamed) {
  std::string conf_dir = tmp_.Sub("conf");
  mkdir(conf_dir.c_str(), 0755);
  std::ofstream(conf_dir + "/1.conf") << R"({"cniVersion":"1.0.0","name":"n","type":"nosuch"})";
  auto manager = Manager(conf_dir, {tmp_.Sub("bin")});
  Attachment a;
  a.container_id = "x";
  a.netns = "/proc/self/ns/net";
  absl::StatusOr<NetworkResult> result = manager->Setup(a);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("\"nosuch\""));
}

TEST_F(CniNetworkTest, HungPluginIsKilledAfterTheTimeout) {
  std::string conf_dir = tmp_.Sub("conf");
  mkdir(conf_dir.c_str(), 0755);
  std::ofstream(conf_dir + "/1.conf") << R"({"cniVersion":"1.0.0","name":"n","type":"hang"})";
  WriteExecutable(tmp_.Sub("bin/hang"),
                  "#!/bin/sh\necho $$ > " + tmp_.Sub("hang.pid") + "\nexec sleep 100\n");
  auto manager = Manager(conf_dir, {tmp_.Sub("bin")}, absl::Milliseconds(500));
  Attachment a;
  a.container_id = "x";
  a.netns = "/proc/self/ns/net";
  absl::Time start = absl::Now();
  absl::StatusOr<NetworkResult> result = manager->Setup(a);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  absl::StatusOr<std::string> pid = ReadFile(tmp_.Sub("hang.pid"));
  ASSERT_TRUE(pid.ok());
  EXPECT_NE(access(("/proc/" + std::string(pid->substr(0, pid->find('\n')))).c_str(), F_OK), 0)
      << "plugin still running";
}

TEST_F(CniNetworkTest, PassesSpecEnvironmentChainsPrevResultAndCapabilities) {
  std::string conf_dir = tmp_.Sub("conf");
  mkdir(conf_dir.c_str(), 0755);
  std::ofstream(conf_dir + "/1.conflist") << R"({"cniVersion":"1.0.0","name":"rec","plugins":[
      {"type":"rec1"},
      {"type":"rec2","capabilities":{"portMappings":true,"dns":true}}]})";
  // Each plugin records env and stdin, then passes a result along.
  for (const char* name : {"rec1", "rec2"}) {
    WriteExecutable(tmp_.Sub(std::string("bin/") + name),
                    "#!/bin/sh\n"
                    "d=" +
                        tmp_.Sub("") +
                        "$(basename $0)-$CNI_COMMAND\n"
                        "env | grep ^CNI_ | sort > $d.env\n"
                        "cat > $d.in\n"
                        "echo '{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":"
                        "\"eth0\",\"sandbox\":\"'$CNI_NETNS'\"}],\"ips\":[{"
                        "\"address\":\"192.0.2.7/24\",\"interface\":0}]}'\n");
  }
  auto manager = Manager(conf_dir, {tmp_.Sub("bin")});
  Attachment a;
  a.container_id = "cid";
  a.netns = "/run/netns/whatever";
  a.ifname = "eth0";
  a.args = {{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "ns"}};
  absl::StatusOr<Json> caps = ParseJson(R"({"portMappings":[{"hostPort":8080,
      "containerPort":80,"protocol":"tcp"}],"bandwidth":{"ingressRate":1000}})",
                                        "capability args");
  ASSERT_TRUE(caps.ok()) << caps.status();
  a.capability_args = *caps;
  absl::StatusOr<NetworkResult> result = manager->Setup(a);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->ips[0].ip(), "192.0.2.7");

  std::string env1 = ReadFile(tmp_.Sub("rec1-ADD.env")).value_or("");
  EXPECT_THAT(env1, HasSubstr("CNI_COMMAND=ADD\n"));
  EXPECT_THAT(env1, HasSubstr("CNI_CONTAINERID=cid\n"));
  EXPECT_THAT(env1, HasSubstr("CNI_NETNS=/run/netns/whatever\n"));
  EXPECT_THAT(env1, HasSubstr("CNI_IFNAME=eth0\n"));
  EXPECT_THAT(env1, HasSubstr("CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=ns\n"));
  EXPECT_THAT(env1, HasSubstr("CNI_PATH=" + tmp_.Sub("bin") + "\n"));
  std::string in1 = ReadFile(tmp_.Sub("rec1-ADD.in")).value_or("");
  std::string in2 = ReadFile(tmp_.Sub("rec2-ADD.in")).value_or("");
  EXPECT_THAT(in1, Not(HasSubstr("prevResult")));
  EXPECT_THAT(in1, Not(HasSubstr("runtimeConfig")));
  EXPECT_THAT(in2, HasSubstr("\"prevResult\""));
  EXPECT_THAT(in2, HasSubstr("\"portMappings\""));
  EXPECT_THAT(in2, Not(HasSubstr("ingressRate")));
  EXPECT_THAT(in2, HasSubstr("\"name\":\"rec\""));

  ASSERT_TRUE(manager->Teardown(a).ok());
  // DEL in reverse order, both with the cached result.
  struct stat st1, st2;
  ASSERT_EQ(stat(tmp_.Sub("rec1-DEL.in").c_str(), &st1), 0);
  ASSERT_EQ(stat(tmp_.Sub("rec2-DEL.in").c_str(), &st2), 0);
  EXPECT_THAT(ReadFile(tmp_.Sub("rec1-DEL.in")).value_or(""), HasSubstr("192.0.2.7/24"));
  EXPECT_THAT(ReadFile(tmp_.Sub("rec2-DEL.in")).value_or(""), HasSubstr("\"portMappings\""));
  EXPECT_THAT(ReadFile(tmp_.Sub("rec1-DEL.env")).value_or(""), HasSubstr("CNI_COMMAND=DEL\n"));
}

TEST_F(CniNetworkTest, LegacyResultIpsAreRead) {
  std::string conf_dir = tmp_.Sub("conf");
  mkdir(conf_dir.c_str(), 0755);
  std::ofstream(conf_dir + "/1.conf") << R"({"cniVersion":"0.2.0","name":"old","type":"old"})";
  // A CNI 0.2.0 result: "ip4"/"ip6" objects instead of an "ips" list.
  WriteExecutable(tmp_.Sub("bin/old"),
                  "#!/bin/sh\n"
                  "[ \"$CNI_COMMAND\" = ADD ] || exit 0\n"
                  "echo '{\"cniVersion\":\"0.2.0\","
                  "\"ip4\":{\"ip\":\"10.22.0.5/16\",\"gateway\":\"10.22.0.1\","
                  "\"routes\":[{\"dst\":\"0.0.0.0/0\"}]},"
                  "\"ip6\":{\"ip\":\"fd00:22::5/64\",\"gateway\":\"fd00:22::1\"},"
                  "\"dns\":{}}'\n");
  auto manager = Manager(conf_dir, {tmp_.Sub("bin")});
  Attachment a;
  a.container_id = "legacy";
  a.netns = "/proc/self/ns/net";
  absl::StatusOr<NetworkResult> result = manager->Setup(a);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->ips.size(), 2u);
  EXPECT_EQ(result->ips[0].address, "10.22.0.5/16");
  EXPECT_EQ(result->ips[0].gateway, "10.22.0.1");
  EXPECT_EQ(result->ips[1].ip(), "fd00:22::5");
  std::optional<NetworkResult> cached = manager->CachedResult("legacy", "eth0");
  ASSERT_TRUE(cached.has_value());
  ASSERT_EQ(cached->ips.size(), 2u);
  EXPECT_EQ(cached->ips[0].ip(), "10.22.0.5");
  EXPECT_TRUE(manager->Teardown(a).ok());
}

TEST_F(CniNetworkTest, DualStackPodIpIsTheIpv4AddressOnThePodSide) {
  std::string conf_dir = tmp_.Sub("conf");
  mkdir(conf_dir.c_str(), 0755);
  std::ofstream(conf_dir + "/1.conf") << R"({"cniVersion":"1.0.0","name":"ds","type":"ds"})";
  // IPv6 listed first, and an IPv4 address on the host side of the veth.
  WriteExecutable(tmp_.Sub("bin/ds"),
                  "#!/bin/sh\n"
                  "[ \"$CNI_COMMAND\" = ADD ] || exit 0\n"
                  "echo '{\"cniVersion\":\"1.0.0\",\"interfaces\":["
                  "{\"name\":\"veth1\"},{\"name\":\"eth0\",\"sandbox\":\"'$CNI_NETNS'\"}],"
                  "\"ips\":[{\"address\":\"fd00:10::7/64\",\"interface\":1},"
                  "{\"address\":\"192.0.2.1/32\",\"interface\":0},"
                  "{\"address\":\"10.10.0.7/24\",\"interface\":1}]}'\n");
  auto manager = Manager(conf_dir, {tmp_.Sub("bin")});
  Attachment a;
  a.container_id = "dualstack";
  a.netns = "/proc/self/ns/net";
  absl::StatusOr<NetworkResult> result = manager->Setup(a);
  ASSERT_TRUE(result.ok()) << result.status();
  std::vector<std::string> ips;
  for (const IpInfo& ip : result->ips) {
    ips.push_back(ip.ip());
  }
  EXPECT_THAT(ips, ::testing::ElementsAre("10.10.0.7", "fd00:10::7", "192.0.2.1"));
  EXPECT_EQ(result->ips[0].interface, 1);
  EXPECT_TRUE(manager->Teardown(a).ok());
}

TEST_F(CniNetworkTest, WatchFlipsReadinessWithoutRestart) {
  // The conf dir does not exist at first and is not created by crid.
  std::string conf_dir = tmp_.Sub("conf");
  auto manager = Manager(conf_dir);
  EXPECT_FALSE(manager->Ready().ok());
  EXPECT_NE(access(conf_dir.c_str(), F_OK), 0);
  absl::SleepFor(absl::Milliseconds(300));
  mkdir(conf_dir.c_str(), 0755);
  absl::SleepFor(absl::Milliseconds(300));
  std::ofstream(conf_dir + "/.10.conflist.tmp")
      << R"({"cniVersion":"1.0.0","name":"late","plugins":[{"type":"bridge"}]})";
  rename((conf_dir + "/.10.conflist.tmp").c_str(), (conf_dir + "/10.conflist").c_str());
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!manager->Ready().ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(manager->Ready().ok());
  EXPECT_EQ(manager->NetworkName(), "late");
  unlink((conf_dir + "/10.conflist").c_str());
  deadline = absl::Now() + absl::Seconds(5);
  while (manager->Ready().ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_FALSE(manager->Ready().ok());
}

}  // namespace
}  // namespace crid::cni
