// RunPodSandbox and StopPodSandbox+RemovePodSandbox latency (p50, p99) over the
// CRI socket for N pods on a private CNI bridge network (Debian's plugins).
// Usage: bazel run //bench:sandbox_bench -- [--pods 50]
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/fs.h"
#include "cni/network.h"
#include "config/config.h"
#include "cri/runtime_service.h"
#include "cri/runtime_state.h"
#include "cri/server.h"
#include "proto/cri_api.grpc.pb.h"
#include "sandbox/manager.h"
#include "store/store.h"
#include "tests/cni_fixture.h"

ABSL_FLAG(int, pods, 50, "pods to run, then stop and remove");
ABSL_FLAG(std::string, pause, "pause/crid-pause", "crid-pause (relative to the runfiles dir)");
ABSL_FLAG(bool, pid_pod, false, "share a PID namespace per pod (start crid-pause)");

namespace crid {
namespace {

namespace v1 = ::runtime::v1;

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  auto i = static_cast<size_t>(std::lround(p * static_cast<double>(v.size() - 1)));
  return v[std::min(i, v.size() - 1)];
}

int Main() {
  TestCniNetwork network;
  const std::string dir = network.Sub("crid");
  config::Config config = DefaultConfig();
  config.set_root(dir + "/root");
  config.set_state(dir + "/state");
  if (!MakeDirs(config.root(), 0711).ok()) {
    return 1;
  }
  auto store = Store::Open(config.root() + "/crid.db");
  auto state = RuntimeState::Load(config, CgroupDriver::kCgroupfs, store->get());
  cni::CniOptions cni_options;
  cni_options.conf_dir = network.conf_dir();
  cni_options.bin_dirs = {kSystemCniBinDir};
  cni_options.cache_dir = config.root() + "/cni/results";
  auto cni = cni::CniManager::Create(cni_options);
  sandbox::SandboxOptions options;
  options.state_dir = config.state();
  options.pause_binary = absl::GetFlag(FLAGS_pause);
  auto sandboxes = sandbox::SandboxManager::Create(options, store->get(), cni->get());
  if (!store.ok() || !state.ok() || !cni.ok() || !sandboxes.ok()) {
    std::fprintf(stderr, "setup failed\n");
    return 1;
  }
  RuntimeService service(state->get(), sandboxes->get());
  ServerOptions server_options;
  server_options.socket_path = dir + "/crid.sock";
  auto server = CriServer::Start(server_options, {&service});
  if (!server.ok()) {
    return 1;
  }
  auto stub = v1::RuntimeService::NewStub(grpc::CreateChannel(
      "unix://" + server_options.socket_path, grpc::InsecureChannelCredentials()));

  const int n = absl::GetFlag(FLAGS_pods);
  std::vector<std::string> ids;
  std::vector<double> run_ms, teardown_ms;
  for (int i = 0; i < n; ++i) {
    v1::RunPodSandboxRequest req;
    auto* md = req.mutable_config()->mutable_metadata();
    md->set_name(absl::StrCat("bench-", i));
    md->set_namespace_("bench");
    md->set_uid(absl::StrCat("bench-uid-", i));
    req.mutable_config()->set_hostname(absl::StrCat("bench-", i));
    // kubelet's default: a PID namespace per container, unless shareProcessNamespace.
    req.mutable_config()
        ->mutable_linux()
        ->mutable_security_context()
        ->mutable_namespace_options()
        ->set_pid(absl::GetFlag(FLAGS_pid_pod) ? v1::POD : v1::CONTAINER);
    grpc::ClientContext ctx;
    v1::RunPodSandboxResponse resp;
    absl::Time start = absl::Now();
    grpc::Status st = stub->RunPodSandbox(&ctx, req, &resp);
    run_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    if (!st.ok()) {
      std::fprintf(stderr, "RunPodSandbox: %s\n", st.error_message().c_str());
      break;
    }
    ids.push_back(resp.pod_sandbox_id());
  }
  for (const std::string& id : ids) {
    absl::Time start = absl::Now();
    {
      grpc::ClientContext ctx;
      v1::StopPodSandboxRequest req;
      req.set_pod_sandbox_id(id);
      v1::StopPodSandboxResponse resp;
      (void)stub->StopPodSandbox(&ctx, req, &resp);
    }
    {
      grpc::ClientContext ctx;
      v1::RemovePodSandboxRequest req;
      req.set_pod_sandbox_id(id);
      v1::RemovePodSandboxResponse resp;
      (void)stub->RemovePodSandbox(&ctx, req, &resp);
    }
    teardown_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
  }
  (*server)->Shutdown(absl::Seconds(5));
  if (run_ms.empty() || teardown_ms.empty()) {
    return 1;
  }
  std::printf("pods: %zu (bridge + host-local + portmap%s)\n", ids.size(),
              absl::GetFlag(FLAGS_pid_pod) ? ", crid-pause" : "");
  std::printf("RunPodSandbox                     p50 %7.1f ms   p99 %7.1f ms\n",
              Percentile(run_ms, 0.5), Percentile(run_ms, 0.99));
  std::printf("StopPodSandbox+RemovePodSandbox   p50 %7.1f ms   p99 %7.1f ms\n",
              Percentile(teardown_ms, 0.5), Percentile(teardown_ms, 0.99));
  std::printf("containerd: not installed on this machine, no comparison\n");
  return ids.size() == static_cast<size_t>(n) ? 0 : 1;
}

}  // namespace
}  // namespace crid

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return crid::Main();
}
