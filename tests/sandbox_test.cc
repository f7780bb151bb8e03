// Pod sandboxes through the CRI socket with real namespaces, Debian's CNI
// plugins (bridge + host-local + portmap on a private subnet) and crid-pause.
#include <arpa/inet.h>
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "base/unique_fd.h"
#include "cni/network.h"
#include "config/config.h"
#include "cri/runtime_service.h"
#include "cri/runtime_state.h"
#include "cri/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "image/digest.h"
#include "image/test_layers.h"
#include "netns/namespace.h"
#include "proto/cri_api.grpc.pb.h"
#include "sandbox/manager.h"
#include "sandbox/pause_process.h"
#include "store/small_filesystem.h"
#include "store/store.h"
#include "tests/cni_fixture.h"
#include "tests/crid_process.h"
#include "tests/leak_census.h"

namespace crid {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
namespace v1 = ::runtime::v1;

std::string PauseBinary() {
  return std::string(std::getenv("TEST_SRCDIR")) + "/" + std::getenv("TEST_WORKSPACE") +
         "/pause/crid-pause";
}

std::string ReadAll(const std::string& path) { return ReadFile(path).value_or(""); }

// crid's pod side in-process: store, CNI, sandboxes, the runtime service on a
// unix socket. Restart() drops everything in memory and starts over on the
// same root and state, like a crid restart.
class PodServer {
 public:
  PodServer(const std::string& dir, const std::string& conf_dir, std::string extra_bin_dir = "")
      : dir_(dir), conf_dir_(conf_dir), extra_bin_dir_(std::move(extra_bin_dir)) {
    Start();
  }
  ~PodServer() { Stop(); }

  void Restart() {
    Stop();
    Start();
  }
  v1::RuntimeService::Stub& stub() { return *stub_; }
  sandbox::SandboxManager& manager() { return *sandboxes_; }

 private:
  void Start() {
    config::Config config = DefaultConfig();
    config.set_root(dir_ + "/root");
    config.set_state(dir_ + "/state");
    ASSERT_TRUE(MakeDirs(config.root(), 0711).ok());
    auto store = Store::Open(dir_ + "/root/crid.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    auto state = RuntimeState::Load(config, CgroupDriver::kCgroupfs, store_.get());
    ASSERT_TRUE(state.ok());
    state_ = std::move(*state);
    cni::CniOptions cni_options;
    cni_options.conf_dir = conf_dir_;
    cni_options.bin_dirs = {kSystemCniBinDir};
    if (!extra_bin_dir_.empty()) {
      cni_options.bin_dirs.insert(cni_options.bin_dirs.begin(), extra_bin_dir_);
    }
    cni_options.cache_dir = dir_ + "/root/cni/results";
    auto cni = cni::CniManager::Create(cni_options);
    ASSERT_TRUE(cni.ok()) << cni.status();
    cni_ = std::move(*cni);
    sandbox::SandboxOptions options;
    options.state_dir = config.state();
    options.pause_binary = PauseBinary();
    options.shm_size_bytes = 8 << 20;
    auto sandboxes = sandbox::SandboxManager::Create(options, store_.get(), cni_.get());
    ASSERT_TRUE(sandboxes.ok()) << sandboxes.status();
    sandboxes_ = std::move(*sandboxes);
    service_ = std::make_unique<RuntimeService>(state_.get(), sandboxes_.get());
    ServerOptions server_options;
    server_options.socket_path = dir_ + "/crid.sock";
    auto server = CriServer::Start(server_options, {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::RuntimeService::NewStub(grpc::CreateChannel("unix://" + server_options.socket_path,
                                                            grpc::InsecureChannelCredentials()));
  }

  void Stop() {
    stub_.reset();
    if (server_) {
      server_->Shutdown(absl::Seconds(5));
    }
    server_.reset();
    service_.reset();
    sandboxes_.reset();
    cni_.reset();
    state_.reset();
    store_.reset();
  }

  std::string dir_, conf_dir_, extra_bin_dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RuntimeState> state_;
  std::unique_ptr<cni::CniManager> cni_;
  std::unique_ptr<sandbox::SandboxManager> sandboxes_;
  std::unique_ptr<RuntimeService> service_;
  std::unique_ptr<CriServer> server_;
  std::unique_ptr<v1::RuntimeService::Stub> stub_;
};

v1::PodSandboxConfig PodConfig(const std::string& name) {
  v1::PodSandboxConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_metadata()->set_namespace_("default");
  c.mutable_metadata()->set_uid("uid-" + name);
  c.mutable_metadata()->set_attempt(0);
  c.set_hostname(name);
  c.set_log_directory("/var/log/pods/default_" + name);
  (*c.mutable_labels())["app"] = name;
  (*c.mutable_labels())["tier"] = "test";
  (*c.mutable_annotations())["note"] = "hello";
  return c;
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    network_ = std::make_unique<TestCniNetwork>();
    census_ = std::make_unique<LeakCensus>(LeakCensusOptions{
        tmp_.Sub("root"), tmp_.Sub("state"), network_->bridge(), network_->network_name()});
    server_ = std::make_unique<PodServer>(tmp_.path(), network_->conf_dir(), tmp_.Sub("bin"));
    mkdir(tmp_.Sub("bin").c_str(), 0755);
  }
  void TearDown() override {
    // Whatever a failed test left: remove every pod through crid.
    if (server_) {
      for (const sandbox::SandboxRecord& r : server_->manager().List({})) {
        census_->Own(r.id());
        (void)server_->manager().Remove(r.id());
      }
    }
    server_.reset();
    // Whatever the test did, removing its pods left nothing on the host.
    if (census_ != nullptr) {
      EXPECT_THAT(census_->Leaks(), IsEmpty());
    }
    network_.reset();
  }

  grpc::Status Run(const v1::PodSandboxConfig& config, std::string* id) {
    grpc::ClientContext ctx;
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = config;
    v1::RunPodSandboxResponse resp;
    grpc::Status st = server_->stub().RunPodSandbox(&ctx, req, &resp);
    *id = resp.pod_sandbox_id();
    return st;
  }
  std::string MustRun(const v1::PodSandboxConfig& config) {
    std::string id;
    grpc::Status st = Run(config, &id);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return id;
  }
  grpc::Status Stop(const std::string& id) {
    grpc::ClientContext ctx;
    v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    v1::StopPodSandboxResponse resp;
    return server_->stub().StopPodSandbox(&ctx, req, &resp);
  }
  grpc::Status Remove(const std::string& id) {
    grpc::ClientContext ctx;
    v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    v1::RemovePodSandboxResponse resp;
    return server_->stub().RemovePodSandbox(&ctx, req, &resp);
  }
  v1::PodSandboxStatusResponse Status(const std::string& id, grpc::Status* st = nullptr) {
    grpc::ClientContext ctx;
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(id);
    req.set_verbose(true);
    v1::PodSandboxStatusResponse resp;
    grpc::Status s = server_->stub().PodSandboxStatus(&ctx, req, &resp);
    if (st != nullptr) {
      *st = s;
    } else {
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    return resp;
  }
  std::vector<v1::PodSandbox> List(const v1::PodSandboxFilter& filter = {}) {
    grpc::ClientContext ctx;
    v1::ListPodSandboxRequest req;
    *req.mutable_filter() = filter;
    v1::ListPodSandboxResponse resp;
    EXPECT_TRUE(server_->stub().ListPodSandbox(&ctx, req, &resp).ok());
    return {resp.items().begin(), resp.items().end()};
  }
  sandbox::SandboxRecord Record(const std::string& id) {
    auto r = server_->manager().Get(id);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : sandbox::SandboxRecord();
  }

  // Everything a pod owns on the host is gone.
  void ExpectNothingLeft(const sandbox::SandboxRecord& r) {
    census_->Own(r.id());  // and TearDown's census looks for its namespaces and cgroups
    EXPECT_NE(access(r.netns_path().c_str(), F_OK), 0) << r.netns_path();
    EXPECT_NE(access(r.pod_dir().c_str(), F_OK), 0) << r.pod_dir();
    EXPECT_NE(access(tmp_.Sub("state/ns/" + r.id()).c_str(), F_OK), 0);
    EXPECT_NE(access(tmp_.Sub("root/cni/results/" + r.id() + "-eth0.json").c_str(), F_OK), 0);
    EXPECT_THAT(ReadAll("/proc/self/mountinfo"), Not(HasSubstr(r.id().substr(0, 32))));
    EXPECT_EQ(BridgePortCount(network_->bridge()), 0);
    if (r.pause_pid() > 0) {
      EXPECT_NE(sandbox::ProcessStartTime(r.pause_pid()), r.pause_start_time());
    }
  }

  TempDir tmp_;
  std::unique_ptr<TestCniNetwork> network_;
  std::unique_ptr<LeakCensus> census_;
  std::unique_ptr<PodServer> server_;
};

// A listening socket created inside `netns` (a socket keeps the namespace it
// was created in).
UniqueFd ListenIn(const std::string& netns, uint16_t port) {
  UniqueFd fd;
  EXPECT_TRUE(RunInNamespaces({{NamespaceType::kNet, netns}}, [&]() -> absl::Status {
                fd.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
                int one = 1;
                setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                sockaddr_in addr{};
                addr.sin_family = AF_INET;
                addr.sin_port = htons(port);
                if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
                    listen(fd.get(), 1) != 0) {
                  return absl::InternalError("bind/listen");
                }
                return absl::OkStatus();
              }).ok());
  return fd;
}

// Connects from inside `netns` to ip:port and sends `message`.
absl::Status ConnectFrom(const std::string& netns, const std::string& ip, uint16_t port,
                         const std::string& message) {
  return RunInNamespaces({{NamespaceType::kNet, netns}}, [&]() -> absl::Status {
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
    timeval tv{5, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return absl::InternalError(absl::StrCat("connect to ", ip, ": ", std::strerror(errno)));
    }
    if (write(fd.get(), message.data(), message.size()) != static_cast<ssize_t>(message.size())) {
      return absl::InternalError("write");
    }
    return absl::OkStatus();
  });
}

TEST_F(SandboxTest, TwoPodsReachEachOtherAndLeaveNothingBehind) {
  v1::PodSandboxConfig a = PodConfig("pod-a");
  auto* pm = a.add_port_mappings();
  pm->set_container_port(8080);
  pm->set_host_port(18080 + (getpid() % 1000));
  pm->set_protocol(v1::TCP);
  std::string id_a = MustRun(a);
  std::string id_b = MustRun(PodConfig("pod-b"));
  ASSERT_FALSE(id_a.empty());
  ASSERT_FALSE(id_b.empty());
  sandbox::SandboxRecord ra = Record(id_a), rb = Record(id_b);

  v1::PodSandboxStatusResponse sa = Status(id_a);
  EXPECT_EQ(sa.status().id(), id_a);
  EXPECT_EQ(sa.status().state(), v1::SANDBOX_READY);
  EXPECT_EQ(sa.status().metadata().name(), "pod-a");
  EXPECT_GT(sa.status().created_at(), 0);
  EXPECT_THAT(sa.status().network().ip(), StartsWith(network_->subnet_prefix()));
  EXPECT_EQ(sa.status().labels().at("app"), "pod-a");
  EXPECT_EQ(sa.status().annotations().at("note"), "hello");
  EXPECT_EQ(sa.status().linux().namespaces().options().network(), v1::POD);
  EXPECT_THAT(sa.info().at("info"), HasSubstr(ra.netns_path()));
  std::string ip_b = Status(id_b).status().network().ip();
  EXPECT_NE(ip_b, sa.status().network().ip());

  // The netns is visible to `ip netns`.
  EXPECT_TRUE(IsPinnedNamespace(ra.netns_path()));
  EXPECT_THAT(ra.netns_path(), StartsWith("/run/netns/crid-"));
  // portmap installed its DNAT rule for this pod.
  EXPECT_EQ(RunShell("iptables-save -t nat | grep -q " + id_a), 0);

  // The port mapping carries traffic: from the host's network namespace to a
  // node address at the host port reaches pod A's port 8080. The test gives
  // the bridge an address in the pod subnet so the host can reach the pods
  // (the network has no gateway, no masquerade, no route off the machine).
  const std::string node_ip = network_->subnet_prefix() + "254";
  ASSERT_EQ(RunShell(absl::StrCat("ip addr add ", node_ip, "/24 dev ", network_->bridge())), 0);
  {
    UniqueFd web = ListenIn(ra.netns_path(), 8080);
    ASSERT_TRUE(web.valid());
    std::string via_port;
    std::thread server([&] {
      UniqueFd conn(accept4(web.get(), nullptr, nullptr, SOCK_CLOEXEC));
      char buf[64] = {};
      ssize_t n = conn.valid() ? read(conn.get(), buf, sizeof(buf)) : -1;
      if (n > 0) {
        via_port.assign(buf, static_cast<size_t>(n));
      }
    });
    absl::Status sent = ConnectFrom("/proc/self/ns/net", node_ip,
                                    static_cast<uint16_t>(pm->host_port()), "via the host port");
    if (!sent.ok()) {
      shutdown(web.get(), SHUT_RDWR);
    }
    server.join();
    EXPECT_TRUE(sent.ok()) << sent;
    EXPECT_EQ(via_port, "via the host port");
  }

  // TCP from pod A to pod B.
  UniqueFd listener = ListenIn(rb.netns_path(), 7777);
  ASSERT_TRUE(listener.valid());
  std::string received;
  std::thread acceptor([&] {
    UniqueFd conn(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    char buf[64] = {};
    ssize_t n = conn.valid() ? read(conn.get(), buf, sizeof(buf)) : -1;
    if (n > 0) {
      received.assign(buf, static_cast<size_t>(n));
    }
  });
  absl::Status connected = ConnectFrom(ra.netns_path(), ip_b, 7777, "ping from a");
  if (!connected.ok()) {
    shutdown(listener.get(), SHUT_RDWR);
  }
  acceptor.join();
  EXPECT_TRUE(connected.ok()) << connected;
  EXPECT_EQ(received, "ping from a");

  // Pod files.
  EXPECT_EQ(ReadAll(ra.pod_dir() + "/hostname"), "pod-a\n");
  EXPECT_THAT(ReadAll(ra.pod_dir() + "/hosts"),
              HasSubstr(sa.status().network().ip() + "\tpod-a\n"));
  EXPECT_THAT(ReadAll(ra.pod_dir() + "/hosts"), HasSubstr("127.0.0.1\tlocalhost"));
  EXPECT_THAT(ReadAll("/proc/self/mountinfo"), HasSubstr(ra.shm_path()));

  for (const std::string& id : {id_a, id_b}) {
    EXPECT_TRUE(Stop(id).ok());
    EXPECT_EQ(Status(id).status().state(), v1::SANDBOX_NOTREADY);
    EXPECT_TRUE(Stop(id).ok()) << "stop is idempotent";
  }
  EXPECT_NE(RunShell("iptables-save -t nat | grep -q " + id_a), 0);
  EXPECT_TRUE(Remove(id_a).ok());
  EXPECT_TRUE(Remove(id_b).ok());
  EXPECT_TRUE(List().empty());
  ExpectNothingLeft(ra);
  ExpectNothingLeft(rb);
  grpc::Status st;
  Status(id_a, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Remove(id_a).ok()) << "remove of an unknown ID is OK";
  EXPECT_TRUE(Stop(id_a).ok()) << "stop of an unknown ID is OK";
}

TEST_F(SandboxTest, HostnameResolvConfAndUtsNamespace) {
  v1::PodSandboxConfig c = PodConfig("dns-pod");
  c.mutable_dns_config()->add_servers("10.10.10.10");
  c.mutable_dns_config()->add_searches("google.com");
  c.mutable_dns_config()->add_options("ndots:8");
  std::string id = MustRun(c);
  sandbox::SandboxRecord r = Record(id);
  EXPECT_EQ(ReadAll(r.pod_dir() + "/resolv.conf"),
            "search google.com\nnameserver 10.10.10.10\noptions ndots:8\n");
  std::string inside;
  ASSERT_TRUE(RunInNamespaces({{NamespaceType::kUts, r.uts_ns_path()}}, [&]() {
                char buf[256] = {};
                gethostname(buf, sizeof(buf) - 1);
                inside = buf;
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(inside, "dns-pod");
  EXPECT_TRUE(Remove(id).ok());
  ExpectNothingLeft(r);
}

TEST_F(SandboxTest, PidModePodRunsPauseAsPidOne) {
  v1::PodSandboxConfig c = PodConfig("pid-pod");
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::POD);
  std::string id = MustRun(c);
  sandbox::SandboxRecord r = Record(id);
  ASSERT_GT(r.pause_pid(), 0);
  std::string status = ReadAll(absl::StrCat("/proc/", r.pause_pid(), "/status"));
  EXPECT_THAT(status, HasSubstr(absl::StrCat("NSpid:\t", r.pause_pid(), "\t1\n")));
  EXPECT_THAT(status, HasSubstr("Name:\tcrid-pause"));
  struct stat pause_net, pod_net;
  ASSERT_EQ(stat(absl::StrCat("/proc/", r.pause_pid(), "/ns/net").c_str(), &pause_net), 0);
  ASSERT_EQ(stat(r.netns_path().c_str(), &pod_net), 0);
  EXPECT_EQ(pause_net.st_ino, pod_net.st_ino);
  EXPECT_EQ(Status(id).status().linux().namespaces().options().pid(), v1::POD);
  EXPECT_TRUE(Stop(id).ok());
  EXPECT_NE(sandbox::ProcessStartTime(r.pause_pid()), r.pause_start_time());
  EXPECT_TRUE(Remove(id).ok());
  ExpectNothingLeft(r);
}

TEST_F(SandboxTest, SysctlsAreAppliedInsideThePodOnly) {
  v1::PodSandboxConfig c = PodConfig("sysctl-pod");
  (*c.mutable_linux()->mutable_sysctls())["kernel.shm_rmid_forced"] = "1";
  (*c.mutable_linux()->mutable_sysctls())["net.ipv4.ip_unprivileged_port_start"] = "80";
  std::string host_shm = ReadAll("/proc/sys/kernel/shm_rmid_forced");
  std::string host_port = ReadAll("/proc/sys/net/ipv4/ip_unprivileged_port_start");
  std::string id = MustRun(c);
  sandbox::SandboxRecord r = Record(id);
  std::string shm, port;
  ASSERT_TRUE(RunInNamespaces(
                  {{NamespaceType::kNet, r.netns_path()}, {NamespaceType::kIpc, r.ipc_ns_path()}},
                  [&]() {
                    shm = ReadAll("/proc/sys/kernel/shm_rmid_forced");
                    port = ReadAll("/proc/sys/net/ipv4/ip_unprivileged_port_start");
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(shm, "1\n");
  EXPECT_EQ(port, "80\n");
  EXPECT_EQ(ReadAll("/proc/sys/kernel/shm_rmid_forced"), host_shm);
  EXPECT_EQ(ReadAll("/proc/sys/net/ipv4/ip_unprivileged_port_start"), host_port);
  EXPECT_TRUE(Remove(id).ok());
}

TEST_F(SandboxTest, InvalidConfigsNameTheField) {
  struct Case {
    std::function<void(v1::PodSandboxConfig*)> mutate;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](v1::PodSandboxConfig* c) { c->clear_metadata(); }, "config.metadata"},
      {[](v1::PodSandboxConfig* c) { c->mutable_metadata()->set_uid(""); }, "config.metadata.uid"},
      {[](v1::PodSandboxConfig* c) { c->set_hostname("Bad_Host"); }, "config.hostname"},
      {[](v1::PodSandboxConfig* c) { c->set_log_directory("relative"); }, "config.log_directory"},
      {[](v1::PodSandboxConfig* c) { c->mutable_dns_config()->add_servers("nope"); },
       "config.dns_config.servers[0]"},
      {[](v1::PodSandboxConfig* c) { c->add_port_mappings()->set_container_port(70000); },
       "config.port_mappings[0].container_port"},
      {[](v1::PodSandboxConfig* c) {
         (*c->mutable_linux()->mutable_sysctls())["kernel.panic"] = "1";
       },
       "not namespaced"},
      {[](v1::PodSandboxConfig* c) {
         (*c->mutable_linux()->mutable_sysctls())["net.ipv4.no_such_knob"] = "1";
       },
       "unknown sysctl"},
      {[](v1::PodSandboxConfig* c) {
         c->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
             v1::NODE);
         (*c->mutable_linux()->mutable_sysctls())["net.ipv4.ip_unprivileged_port_start"] = "1";
       },
       "host network"},
      {[](v1::PodSandboxConfig* c) {
         c->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_ipc(
             v1::CONTAINER);
       },
       "namespace_options.ipc"},
      {[](v1::PodSandboxConfig* c) { c->mutable_linux()->set_cgroup_parent("kubepods"); },
       "config.linux.cgroup_parent"},
      {[](v1::PodSandboxConfig* c) {
         (*c->mutable_annotations())["kubernetes.io/ingress-bandwidth"] = "fast";
       },
       "ingress-bandwidth"},
  };
  for (const Case& tc : cases) {
    v1::PodSandboxConfig c = PodConfig("bad");
    tc.mutate(&c);
    std::string id;
    grpc::Status st = Run(c, &id);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << tc.field;
    EXPECT_THAT(st.error_message(), HasSubstr(tc.field));
  }
  EXPECT_TRUE(List().empty());
}

TEST_F(SandboxTest, FailingPluginGivesItsErrorAndLeavesNothing) {
  std::ofstream(tmp_.Sub("bin/failer"))
      << "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\n"
         "echo '{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"no addresses left\"}'\nexit 1\n";
  chmod(tmp_.Sub("bin/failer").c_str(), 0755);
  std::string list = network_->conflist();
  list.insert(list.rfind(']'), R"(,{"type":"failer"})");
  std::ofstream(network_->conf_dir() + "/10-test.conflist") << list;
  server_->manager().cni()->Reload();
  auto netns_mounts = [] {
    std::string all = ReadAll("/proc/self/mountinfo");
    int n = 0;
    for (size_t pos = all.find("/run/netns/crid-"); pos != std::string::npos;
         pos = all.find("/run/netns/crid-", pos + 1)) {
      ++n;
    }
    return n;
  };
  const int netns_before = netns_mounts();
  std::string id;
  grpc::Status st = Run(PodConfig("doomed"), &id);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.error_message(), HasSubstr("no addresses left"));
  EXPECT_TRUE(List().empty());
  EXPECT_EQ(BridgePortCount(network_->bridge()), 0);
  // No pod dirs, namespaces, mounts or CNI cache entries.
  EXPECT_TRUE(ReadFile(tmp_.Sub("state/pods")).status().code() != absl::StatusCode::kOk);
  EXPECT_EQ(RunShell("test -z \"$(ls -A " + tmp_.Sub("state/pods") + ")\""), 0);
  EXPECT_EQ(RunShell("test -z \"$(ls -A " + tmp_.Sub("state/ns") + ")\""), 0);
  EXPECT_EQ(RunShell("test -z \"$(ls -A " + tmp_.Sub("root/cni/results") + ")\""), 0);
  EXPECT_THAT(ReadAll("/proc/self/mountinfo"), Not(HasSubstr(tmp_.Sub("state"))));
  EXPECT_EQ(netns_mounts(), netns_before);
}

TEST_F(SandboxTest, TeardownWorksAfterRestartAndConfigChange) {
  std::string id = MustRun(PodConfig("survivor"));
  sandbox::SandboxRecord r = Record(id);
  std::string ip = Status(id).status().network().ip();
  ASSERT_EQ(BridgePortCount(network_->bridge()), 1);
  // The network config goes away while crid is down.
  unlink((network_->conf_dir() + "/10-test.conflist").c_str());
  server_->Restart();
  v1::PodSandboxStatusResponse s = Status(id);
  EXPECT_EQ(s.status().state(), v1::SANDBOX_READY);
  EXPECT_EQ(s.status().network().ip(), ip);
  EXPECT_EQ(List().size(), 1u);
  EXPECT_TRUE(Stop(id).ok());
  EXPECT_EQ(BridgePortCount(network_->bridge()), 0);
  server_->Restart();
  EXPECT_EQ(Status(id).status().state(), v1::SANDBOX_NOTREADY);
  EXPECT_TRUE(Remove(id).ok());
  ExpectNothingLeft(r);
}

TEST_F(SandboxTest, RetryWithSameMetadataGetsTheSameSandbox) {
  v1::PodSandboxConfig c = PodConfig("retried");
  std::string id1, id2;
  std::thread t([&] { id2 = MustRun(c); });
  id1 = MustRun(c);
  t.join();
  EXPECT_EQ(id1, id2);
  EXPECT_EQ(List().size(), 1u);
  EXPECT_EQ(MustRun(c), id1);
  // A new attempt is a new sandbox.
  c.mutable_metadata()->set_attempt(1);
  std::string id3 = MustRun(c);
  EXPECT_NE(id3, id1);
  EXPECT_TRUE(Remove(id1).ok());
  EXPECT_TRUE(Remove(id3).ok());
}

TEST_F(SandboxTest, ListFiltersByIdPrefixStateAndLabels) {
  std::string a = MustRun(PodConfig("list-a"));
  std::string b = MustRun(PodConfig("list-b"));
  ASSERT_TRUE(Stop(b).ok());
  EXPECT_EQ(List().size(), 2u);
  v1::PodSandboxFilter f;
  f.set_id(a.substr(0, 12));
  ASSERT_EQ(List(f).size(), 1u);
  EXPECT_EQ(List(f)[0].id(), a);
  f.Clear();
  f.mutable_state()->set_state(v1::SANDBOX_NOTREADY);
  ASSERT_EQ(List(f).size(), 1u);
  EXPECT_EQ(List(f)[0].id(), b);
  f.Clear();
  (*f.mutable_label_selector())["app"] = "list-a";
  ASSERT_EQ(List(f).size(), 1u);
  EXPECT_EQ(List(f)[0].labels().at("tier"), "test");
  (*f.mutable_label_selector())["tier"] = "other";
  EXPECT_TRUE(List(f).empty());
  // Status by unique prefix.
  EXPECT_EQ(Status(a.substr(0, 12)).status().id(), a);
  EXPECT_TRUE(Remove(a).ok());
  EXPECT_TRUE(Remove(b).ok());
}

TEST_F(SandboxTest, HostNetworkPodUsesTheHostNamespaces) {
  v1::PodSandboxConfig c = PodConfig("host-pod");
  auto* ns = c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_network(v1::NODE);
  ns->set_ipc(v1::NODE);
  std::string id = MustRun(c);
  sandbox::SandboxRecord r = Record(id);
  EXPECT_TRUE(r.netns_path().empty());
  EXPECT_TRUE(r.ipc_ns_path().empty());
  EXPECT_TRUE(r.uts_ns_path().empty());
  EXPECT_EQ(BridgePortCount(network_->bridge()), 0);
  EXPECT_TRUE(Status(id).status().network().ip().empty());
  EXPECT_EQ(Status(id).status().linux().namespaces().options().network(), v1::NODE);
  EXPECT_TRUE(Remove(id).ok());
  ExpectNothingLeft(r);
}

TEST_F(SandboxTest, StatusAndListStayFastWhileAPluginHangs) {
  std::ofstream(tmp_.Sub("bin/slow")) << "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] && sleep 3\n"
                                         "echo '{\"cniVersion\":\"1.0.0\"}'\n";
  chmod(tmp_.Sub("bin/slow").c_str(), 0755);
  std::string list = network_->conflist();
  list.insert(list.rfind(']'), R"(,{"type":"slow"})");
  std::ofstream(network_->conf_dir() + "/10-test.conflist") << list;
  server_->manager().cni()->Reload();
  std::string id;
  std::thread runner([&] { id = MustRun(PodConfig("slow-pod")); });
  absl::SleepFor(absl::Milliseconds(300));
  absl::Time start = absl::Now();
  for (int i = 0; i < 20; ++i) {
    List();
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  runner.join();
  ASSERT_FALSE(id.empty());
  EXPECT_TRUE(Remove(id).ok());
}

TEST_F(SandboxTest, RestartStopsOnlyItsOwnOrphanedPause) {
  // A crid-pause whose pod never made it to the store, one started for
  // another crid's state directory, and the pause of a live pod.
  const std::string orphan_id(64, 'a');
  auto orphan = sandbox::StartPause(PauseBinary(), {}, {tmp_.Sub("state"), orphan_id});
  ASSERT_TRUE(orphan.ok()) << orphan.status();
  auto foreign = sandbox::StartPause(PauseBinary(), {}, {tmp_.Sub("other-state"), orphan_id});
  ASSERT_TRUE(foreign.ok()) << foreign.status();
  v1::PodSandboxConfig c = PodConfig("live-pid-pod");
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::POD);
  std::string id = MustRun(c);
  sandbox::SandboxRecord r = Record(id);
  ASSERT_GT(r.pause_pid(), 0);

  server_->Restart();
  EXPECT_FALSE(sandbox::PauseAlive(*orphan)) << "orphaned crid-pause " << orphan->pid;
  EXPECT_TRUE(sandbox::PauseAlive(*foreign)) << "another crid's crid-pause was stopped";
  EXPECT_TRUE(sandbox::PauseAlive({r.pause_pid(), r.pause_start_time()}));
  EXPECT_EQ(Status(id).status().state(), v1::SANDBOX_READY);
  EXPECT_TRUE(sandbox::StopPause(*foreign).ok());
  EXPECT_TRUE(Remove(id).ok());
  ExpectNothingLeft(r);
}

// crid-pause starts clean whatever crid's own state: no signal crid blocks or
// ignores, only /dev/null as stdio, its own session, cwd /, PID 1 of a new PID
// namespace. A binary that cannot run is an error naming it.
TEST(PauseProcessTest, StartsCleanInItsOwnSessionAndNamespace) {
  TempDir tmp;
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, &old_mask), 0);
  sighandler_t old_pipe = signal(SIGPIPE, SIG_IGN);
  auto pause = sandbox::StartPause(PauseBinary(), {}, {tmp.Sub("state"), std::string(64, 'b')});
  signal(SIGPIPE, old_pipe);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ASSERT_TRUE(pause.ok()) << pause.status();

  // Checked once it waits for signals, past its dynamic loader's (sanitizer
  // builds) own descriptors.
  const std::string syscall_path = absl::StrCat("/proc/", pause->pid, "/syscall");
  for (absl::Time deadline = absl::Now() + absl::Seconds(10);
       !absl::StartsWith(ReadAll(syscall_path), absl::StrCat(SYS_rt_sigtimedwait, " ")) &&
       absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  // crid-pause blocks SIGINT, SIGTERM and SIGCHLD itself for sigwait (which
  // shows them unblocked while it waits); nothing else may be blocked.
  std::string status = ReadAll(absl::StrCat("/proc/", pause->pid, "/status"));
  uint64_t blocked = ~uint64_t{0};
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::ConsumePrefix(&line, "SigBlk:\t")) {
      ASSERT_TRUE(absl::SimpleHexAtoi(line, &blocked)) << line;
    }
  }
  constexpr uint64_t kPauseOwn =
      (1u << (SIGINT - 1)) | (1u << (SIGTERM - 1)) | (1u << (SIGCHLD - 1));
  EXPECT_EQ(blocked & ~kPauseOwn, 0u) << status;
  EXPECT_THAT(status, HasSubstr("SigIgn:\t0000000000000000\n"));
  EXPECT_THAT(status, HasSubstr(absl::StrCat("NSpid:\t", pause->pid, "\t1\n")));
  EXPECT_EQ(getsid(pause->pid), pause->pid);
  char cwd[256] = {};
  ASSERT_GT(readlink(absl::StrCat("/proc/", pause->pid, "/cwd").c_str(), cwd, sizeof(cwd) - 1), 0);
  EXPECT_STREQ(cwd, "/");
  std::vector<std::string> fds;
  DIR* dir = opendir(absl::StrCat("/proc/", pause->pid, "/fd").c_str());
  ASSERT_NE(dir, nullptr);
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') {
      char target[256] = {};
      ssize_t n = readlink(absl::StrCat("/proc/", pause->pid, "/fd/", e->d_name).c_str(), target,
                           sizeof(target) - 1);
      fds.push_back(absl::StrCat(e->d_name, "=", n > 0 ? target : "?"));
    }
  }
  closedir(dir);
  std::sort(fds.begin(), fds.end());
  EXPECT_EQ(fds, (std::vector<std::string>{"0=/dev/null", "1=/dev/null", "2=/dev/null"}));
  EXPECT_TRUE(sandbox::StopPause(*pause).ok());
  EXPECT_FALSE(sandbox::PauseAlive(*pause));

  // Executable for access(2), but not a program exec can run.
  std::string bogus = tmp.Sub("crid-pause");
  std::ofstream(bogus) << "not a program";
  ASSERT_EQ(chmod(bogus.c_str(), 0755), 0);
  auto failed = sandbox::StartPause(bogus, {}, {tmp.Sub("state"), std::string(64, 'c')});
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr(bogus));
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr(std::strerror(ENOEXEC)));
}

// The real crid binary restarted on the same root and state, for what only a
// process crash or a full disk shows.
class CridRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(tmp_.Sub("crid.json"))
        << absl::StrCat(R"({"cgroupDriver":"cgroupfs","cni":{"confDir":")", network_.conf_dir(),
                        R"(","binDirs":[")", kSystemCniBinDir, R"("]},"pod":{"pauseBinary":")",
                        RunfilePath("pause/crid-pause"), R"(","shmSizeBytes":"8388608"}})");
  }
  void TearDown() override {
    if (crid_ && crid_->running()) {
      crid_->Signal(SIGTERM);
      EXPECT_EQ(crid_->Wait(absl::Seconds(30)), 0) << Log();
    }
  }

  std::vector<std::string> Args(const std::string& root) const {
    return {"--config", tmp_.Sub("crid.json"), "--root",      root,   "--state", tmp_.Sub("state"),
            "--listen", "unix://" + socket(),  "--log-level", "debug"};
  }
  std::string socket() const { return tmp_.Sub("crid.sock"); }

  // Starts crid and waits for its socket; false when it exited instead.
  bool StartCrid(const std::string& root, std::map<std::string, std::string> env = {}) {
    crid_ = std::make_unique<CridProcess>(RunfilePath("crid"), Args(root), std::move(env));
    crid_->Start(tmp_.Sub("crid.log"));
    if (!crid_->WaitForSocket(socket(), absl::Seconds(30))) {
      return false;
    }
    auto channel = grpc::CreateChannel("unix://" + socket(), grpc::InsecureChannelCredentials());
    runtime_ = v1::RuntimeService::NewStub(channel);
    images_ = v1::ImageService::NewStub(channel);
    return true;
  }

  std::string Log() const {
    std::string text = ReadAll(tmp_.Sub("crid.log"));
    return text.size() > 8000 ? text.substr(text.size() - 8000) : text;
  }

  grpc::Status RunPod(const v1::PodSandboxConfig& config, std::string* id) {
    grpc::ClientContext ctx;
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = config;
    v1::RunPodSandboxResponse resp;
    grpc::Status st = runtime_->RunPodSandbox(&ctx, req, &resp);
    *id = resp.pod_sandbox_id();
    return st;
  }
  std::vector<v1::PodSandbox> ListPods() {
    grpc::ClientContext ctx;
    v1::ListPodSandboxResponse resp;
    grpc::Status st = runtime_->ListPodSandbox(&ctx, {}, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return {resp.items().begin(), resp.items().end()};
  }
  grpc::Status StopPod(const std::string& id) {
    grpc::ClientContext ctx;
    v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    v1::StopPodSandboxResponse resp;
    return runtime_->StopPodSandbox(&ctx, req, &resp);
  }
  grpc::Status RemovePod(const std::string& id) {
    grpc::ClientContext ctx;
    v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    v1::RemovePodSandboxResponse resp;
    return runtime_->RemovePodSandbox(&ctx, req, &resp);
  }
  std::vector<v1::Image> ListImages() {
    grpc::ClientContext ctx;
    v1::ListImagesResponse resp;
    grpc::Status st = images_->ListImages(&ctx, {}, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return {resp.images().begin(), resp.images().end()};
  }

  TempDir tmp_;
  TestCniNetwork network_;
  std::unique_ptr<CridProcess> crid_;
  std::unique_ptr<v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<v1::ImageService::Stub> images_;
};

std::vector<std::string> DirNames(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str()); d != nullptr) {
    while (dirent* e = readdir(d)) {
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") {
        names.emplace_back(e->d_name);
      }
    }
    closedir(d);
  }
  return names;
}

// Processes whose command line names pod `id` (as crid-pause's does).
std::vector<pid_t> ProcessesNaming(const std::string& id) {
  std::vector<pid_t> pids;
  for (const std::string& name : DirNames("/proc")) {
    pid_t pid = 0;
    if (absl::SimpleAtoi(name, &pid) &&
        absl::StrContains(ReadAll("/proc/" + name + "/cmdline"), "--crid-pod=" + id)) {
      pids.push_back(pid);
    }
  }
  return pids;
}

// Paths below the hierarchy roots of the cgroups `pid` is in, e.g. "/x/crid-pause-<id>".
std::vector<std::string> CgroupPathsOf(pid_t pid) {
  std::vector<std::string> paths;
  for (absl::string_view line :
       absl::StrSplit(ReadAll(absl::StrCat("/proc/", pid, "/cgroup")), '\n', absl::SkipEmpty())) {
    paths.emplace_back(line.substr(line.find(':', line.find(':') + 1) + 1));
  }
  return paths;
}

// Every directory `path` names in some mounted hierarchy under /sys/fs/cgroup.
std::vector<std::string> CgroupDirsNamed(const std::string& path) {
  std::vector<std::string> found;
  std::vector<std::string> roots = {"/sys/fs/cgroup"};
  for (const std::string& name : DirNames("/sys/fs/cgroup")) {
    roots.push_back("/sys/fs/cgroup/" + name);
  }
  for (const std::string& root : roots) {
    struct stat st;
    if (stat((root + path).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      found.push_back(root + path);
    }
  }
  return found;
}

TEST_F(CridRestartTest, KilledInsideRunPodSandboxLeavesNoPauseOrFilesAfterRestart) {
  const std::string cgroup_parent = absl::StrCat("/crid-recovery-test-", getpid());
  LeakCensus census(LeakCensusOptions{tmp_.Sub("root"), tmp_.Sub("state"), network_.bridge()});
  ASSERT_TRUE(StartCrid(tmp_.Sub("root"), {{"CRID_TEST_CRASH_AT", "sandbox-run-before-ready"}}))
      << Log();
  v1::PodSandboxConfig c = PodConfig("crashed-pod");
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::POD);
  c.mutable_linux()->set_cgroup_parent(cgroup_parent);
  std::string id;
  EXPECT_FALSE(RunPod(c, &id).ok());
  ASSERT_EQ(crid_->Wait(absl::Seconds(20)), 128 + SIGKILL) << Log();

  // What the crash left: the pod's directory, a running crid-pause in the
  // pod's cgroup holding its network namespace, whose pin is still there.
  std::vector<std::string> pod_dirs = DirNames(tmp_.Sub("state/pods"));
  ASSERT_EQ(pod_dirs.size(), 1u) << Log();
  id = pod_dirs[0];
  std::vector<pid_t> pauses = ProcessesNaming(id);
  ASSERT_EQ(pauses.size(), 1u) << Log();
  const pid_t pause = pauses[0];
  const uint64_t pause_start = sandbox::ProcessStartTime(pause);
  std::vector<std::string> pause_cgroups;
  for (const std::string& path : CgroupPathsOf(pause)) {
    if (absl::EndsWith(path, "/crid-pause-" + id)) {
      for (const std::string& dir : CgroupDirsNamed(path)) {
        pause_cgroups.push_back(dir);
      }
    }
  }
  EXPECT_FALSE(pause_cgroups.empty()) << ReadAll(absl::StrCat("/proc/", pause, "/cgroup"));
  const std::string netns = "/run/netns/crid-" + id.substr(0, 32);
  EXPECT_TRUE(IsPinnedNamespace(netns));
  // And what a kill inside a temp-file write leaves, and a pod directory
  // whose record never made it to the store.
  std::ofstream(tmp_.Sub("state/pods/" + id + "/hostname.tmp.4242")) << "half";
  const std::string stray = std::string(64, 'e');
  ASSERT_TRUE(MakeDirs(tmp_.Sub("state/pods/" + stray), 0755).ok());
  std::ofstream(tmp_.Sub("state/pods/" + stray + "/hosts.tmp.99")) << "half";

  ASSERT_TRUE(StartCrid(tmp_.Sub("root"))) << Log();
  EXPECT_TRUE(ListPods().empty());
  EXPECT_NE(sandbox::ProcessStartTime(pause), pause_start) << "crid-pause " << pause << " survived";
  EXPECT_TRUE(ProcessesNaming(id).empty());
  EXPECT_NE(access(tmp_.Sub("state/pods/" + id).c_str(), F_OK), 0);
  EXPECT_NE(access(tmp_.Sub("state/pods/" + stray).c_str(), F_OK), 0);
  EXPECT_NE(access(tmp_.Sub("state/ns/" + id).c_str(), F_OK), 0);
  EXPECT_NE(access(netns.c_str(), F_OK), 0);
  EXPECT_THAT(ReadAll("/proc/self/mountinfo"), Not(HasSubstr(id.substr(0, 32))));
  for (const std::string& dir : pause_cgroups) {
    EXPECT_NE(access(dir.c_str(), F_OK), 0) << dir;
  }
  EXPECT_EQ(BridgePortCount(network_.bridge()), 0);
  crid_->Signal(SIGTERM);
  EXPECT_EQ(crid_->Wait(absl::Seconds(30)), 0) << Log();
  EXPECT_THAT(census.Leaks(), IsEmpty());
  // The parent is the test's; what is left below it only if the test failed.
  for (const std::string& dir : CgroupDirsNamed(cgroup_parent)) {
    rmdir(absl::StrCat(dir, "/crid-pause-", id).c_str());
    rmdir(dir.c_str());
  }
}

// A `docker save` archive of one small image named `tag`.
std::string SmallImageArchive(const std::string& tag) {
  std::string layer = TarBuilder().File("hello.txt", "hello\n").Finish();
  std::string layer_digest = DigestOf(layer);
  std::string config =
      absl::StrCat(R"({"architecture":"amd64","os":"linux","config":{"Cmd":["/hello"]},)",
                   R"("rootfs":{"type":"layers","diff_ids":[")", layer_digest, R"("]}})");
  std::string manifest = absl::StrCat(R"([{"Config":"config.json","RepoTags":[")", tag,
                                      R"("],"Layers":["layer/layer.tar"]}])");
  return TarBuilder()
      .File("manifest.json", manifest)
      .File("config.json", config)
      .Dir("layer")
      .File("layer/layer.tar", layer)
      .Finish();
}

TEST_F(CridRestartTest, StartsOnAFullDiskServesRemovalsAndRefusesCreates) {
  SmallFilesystem fs(48 << 20);
  ASSERT_TRUE(fs.ok()) << fs.status();
  const std::string root = fs.Sub("root");
  LeakCensus census(LeakCensusOptions{root, tmp_.Sub("state"), network_.bridge()});
  std::ofstream(tmp_.Sub("image.tar")) << SmallImageArchive("test/full:latest");
  auto [code, out] = RunCridToExit(
      {"--root", root, "--state", tmp_.Sub("state"), "images", "import", tmp_.Sub("image.tar")},
      tmp_.path());
  ASSERT_EQ(code, 0) << out;

  ASSERT_TRUE(StartCrid(root)) << Log();
  std::string pod_a, pod_b;
  ASSERT_TRUE(RunPod(PodConfig("full-a"), &pod_a).ok()) << Log();
  ASSERT_TRUE(RunPod(PodConfig("full-b"), &pod_b).ok()) << Log();
  // A crash, as when crid was killed while a container filled the disk.
  crid_->Signal(SIGKILL);
  ASSERT_EQ(crid_->Wait(absl::Seconds(20)), 128 + SIGKILL);
  ASSERT_TRUE(fs.Fill().ok());
  ASSERT_EQ(fs.Available(), 0u);

  ASSERT_TRUE(StartCrid(root)) << Log();
  EXPECT_EQ(ListPods().size(), 2u);
  std::vector<v1::Image> images = ListImages();
  ASSERT_EQ(images.size(), 1u);
  {
    grpc::ClientContext ctx;
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(pod_a);
    v1::PodSandboxStatusResponse resp;
    grpc::Status st = runtime_->PodSandboxStatus(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.status().state(), v1::SANDBOX_READY);
  }

  // What needs space is refused, naming the filesystem.
  std::string refused;
  grpc::Status run = RunPod(PodConfig("full-c"), &refused);
  EXPECT_EQ(run.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << run.error_message();
  EXPECT_THAT(run.error_message(), HasSubstr(fs.path()));
  {
    grpc::ClientContext ctx;
    v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_a);
    req.mutable_config()->mutable_metadata()->set_name("c");
    req.mutable_config()->mutable_image()->set_image("test/full:latest");
    *req.mutable_sandbox_config() = PodConfig("full-a");
    v1::CreateContainerResponse resp;
    grpc::Status st = runtime_->CreateContainer(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  }
  {
    grpc::ClientContext ctx;
    v1::PullImageRequest req;
    req.mutable_image()->set_image("127.0.0.1:1/test/other:latest");
    v1::PullImageResponse resp;
    grpc::Status st = images_->PullImage(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
    EXPECT_THAT(st.error_message(), HasSubstr(fs.path()));
  }

  // What frees space works.
  grpc::Status st = StopPod(pod_a);
  EXPECT_TRUE(st.ok()) << st.error_message() << Log();
  st = RemovePod(pod_a);
  EXPECT_TRUE(st.ok()) << st.error_message() << Log();
  st = RemovePod(pod_b);
  EXPECT_TRUE(st.ok()) << st.error_message() << Log();
  EXPECT_TRUE(ListPods().empty());
  {
    grpc::ClientContext ctx;
    v1::RemoveImageRequest req;
    req.mutable_image()->set_image(images[0].id());
    v1::RemoveImageResponse resp;
    grpc::Status removed = images_->RemoveImage(&ctx, req, &resp);
    EXPECT_TRUE(removed.ok()) << removed.error_message() << Log();
  }
  EXPECT_TRUE(ListImages().empty());
  EXPECT_THAT(Log(), HasSubstr("released the"));

  // Removals survive a restart.
  crid_->Signal(SIGTERM);
  ASSERT_EQ(crid_->Wait(absl::Seconds(30)), 0) << Log();
  ASSERT_TRUE(StartCrid(root)) << Log();
  EXPECT_TRUE(ListPods().empty());
  EXPECT_TRUE(ListImages().empty());
  crid_->Signal(SIGTERM);
  EXPECT_EQ(crid_->Wait(absl::Seconds(30)), 0) << Log();
  EXPECT_THAT(census.Leaks(), IsEmpty());
}

}  // namespace
}  // namespace crid
